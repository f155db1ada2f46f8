"""Meta-tests of the claims plugin, run in a scratch project with pytester and a two-claim ledger."""
import json

import pytest

LEDGER = '''
[[claim]]
id = "T-1"
section = "Toy"
lines = [1, 2]
quote = "it holds"
statement = "one plus one is two"
kind = "exact"
needs = []

[[claim]]
id = "T-2"
section = "Toy"
lines = [3, 3]
quote = "it drifted"
statement = "the library still does what the lesson said"
kind = "exact"
needs = []
fastai = "changed"
fastai_since = "9.9"
fastai_reason = "now does something else"

[[claim]]
id = "T-3"
section = "Toy"
lines = [4, 4]
quote = "needs a gpu"
statement = "fast on a GPU"
kind = "exact"
needs = ["cuda"]
'''

CONFTEST = 'pytest_plugins = ["spec.plugin"]\n'


@pytest.fixture
def project(pytester):
    pytester.makefile(".toml", claims=LEDGER)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n  claim: c\n  cuda: c\n  real_data: r\n  pretrained: p\n  slow: s\n")
    return pytester


def run(p, *args):
    return p.runpytest("--claims-ledger", str(p.path / "claims.toml"), "--backend", "impl", "-p", "no:cacheprovider",
                       *args)


TESTS = '''
import pytest

@pytest.mark.claim("T-1")
def test_holds(backend):
    assert 1 + 1 == 2

@pytest.mark.claim("T-2")
def test_plain():
    assert True
'''


def test_unknown_claim_id_fails_collection(project):
    project.makepyfile(test_x='import pytest\n@pytest.mark.claim("NOPE-1")\ndef test_a():\n    assert True\n')
    r = run(project)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown claim id(s) ['NOPE-1']" in r.stderr.str()


def test_untested_claims_are_shown_not_hidden(project):
    project.makepyfile(test_x=TESTS)
    r = run(project, "--claims-json", "out.json")
    assert r.ret == 0
    out = r.stdout.str()
    assert "T-3" in out and "untested" in out
    rows = {c["id"]: c for c in json.loads((project.path / "out.json").read_text())["claims"]}
    assert rows["T-3"]["results"] == {"impl": "untested"}
    assert rows["T-1"]["results"] == {"impl": "passed"} and rows["T-1"]["tests"] == 1


def test_strict_fails_on_untested_claim_that_could_run_here(project):
    project.makepyfile(test_x=TESTS)
    r = run(project, "--claims-strict")
    # T-1 and T-2 pass; T-3 needs CUDA: missing here, so strict exempts it; with a GPU it is untested and fails
    import torch
    assert r.ret == (1 if torch.cuda.is_available() else 0)
    project.makepyfile(test_y='import pytest\n@pytest.mark.claim("T-1")\ndef test_b():\n    assert True\n')
    r = run(project, "--claims-strict", "test_y.py")
    assert r.ret == 1
    assert "T-2 [impl]: untested" in r.stdout.str()


def test_drift_becomes_strict_xfail_with_reason(project):
    project.makepyfile(test_x='''
import pytest

@pytest.mark.claim("T-2")
def test_lesson(backend):
    assert backend.name == "never"

@pytest.mark.claim("T-2", current=True)
def test_now(backend):
    assert backend.name == "fastai"
''')
    r = project.runpytest("--claims-ledger", str(project.path / "claims.toml"), "--backend", "fastai",
                          "--claims-json", "out.json", "-p", "no:cacheprovider")
    rows = {c["id"]: c for c in json.loads((project.path / "out.json").read_text())["claims"]}
    if rows["T-2"]["results"]["fastai"] == "skipped":
        pytest.skip("fastai is not importable here: " + rows["T-2"]["reasons"]["fastai"])
    r.assert_outcomes(passed=1, xfailed=1)
    assert rows["T-2"]["results"]["fastai"] == "xfailed"
    assert "now does something else (fastai 9.9)" in rows["T-2"]["reasons"]["fastai"]
    # a drift test that passes (the library reverted) is a strict xfail: the run fails
    project.makepyfile(test_x='import pytest\n@pytest.mark.claim("T-2")\ndef test_l(backend):\n    assert True\n')
    r = project.runpytest("--claims-ledger", str(project.path / "claims.toml"), "--backend", "fastai",
                          "-p", "no:cacheprovider")
    assert r.ret == 1


def test_json_schema(project):
    project.makepyfile(test_x=TESTS)
    run(project, "--claims-json", "out.json")
    data = json.loads((project.path / "out.json").read_text())
    assert set(data) == {"claims", "environment"}
    for k in ("python", "torch", "torchvision", "fastai", "device", "tf32_matmul", "hypothesis_profile", "backends"):
        assert k in data["environment"], k
    for c in data["claims"]:
        assert {"id", "section", "statement", "kind", "needs", "tests", "results", "reasons"} <= set(c)
        assert isinstance(c["needs"], list) and isinstance(c["tests"], int)
        assert set(c["results"].values()) <= {"passed", "failed", "skipped", "xfailed", "untested", "n/a"}


def test_claims_pattern_selects(project):
    project.makepyfile(test_x=TESTS)
    r = run(project, "--claims", "T-1", "--claims-json", "out.json")
    r.assert_outcomes(passed=1, deselected=1)
    assert [c["id"] for c in json.loads((project.path / "out.json").read_text())["claims"]] == ["T-1"]


def test_need_markers_skip_with_reason(project, monkeypatch):
    monkeypatch.delenv("SPEC_DATA", raising=False)
    project.makepyfile(test_x='import pytest\n@pytest.mark.real_data\n@pytest.mark.claim("T-1")\n'
                              'def test_a():\n    assert False\n')
    r = run(project, "--claims-json", "out.json")
    r.assert_outcomes(skipped=1)
    row = json.loads((project.path / "out.json").read_text())["claims"][0]
    assert row["results"]["impl"] == "skipped" and "SPEC_DATA" in row["reasons"]["impl"]


def test_failed_result_and_header(project):
    project.makepyfile(test_x='import pytest\n@pytest.mark.claim("T-1")\ndef test_a(backend):\n    assert 1 == 2\n')
    r = run(project)
    assert r.ret == 1
    out = r.stdout.str()
    assert "lesson6-spec: python" in out and "hypothesis profile" in out
    assert "impl failed" in out


def test_bad_ledger_is_a_clear_usage_error(pytester):
    pytester.makefile(".toml", claims='[[claim]]\nid = "X-1"\nkind = "exact"\n')
    pytester.makeconftest(CONFTEST)
    r = pytester.runpytest("--claims-ledger", str(pytester.path / "claims.toml"))
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "missing field(s)" in r.stderr.str()


def test_our_contract_claims_are_not_applicable_to_fastai(project):
    (project.path / "claims.toml").write_text(LEDGER + '''
[[claim]]
id = "T-4"
section = "Toy"
lines = []
source = "impl"
quote = ""
statement = "our own promise"
kind = "exact"
needs = []
''')
    project.makepyfile(test_x='import pytest\n@pytest.mark.claim("T-4")\ndef test_a():\n    assert True\n')
    r = project.runpytest("--claims-ledger", str(project.path / "claims.toml"), "--backend", "all",
                          "--claims", "T-4", "--claims-json", "out.json", "--claims-strict", "-p", "no:cacheprovider")
    row = json.loads((project.path / "out.json").read_text())["claims"][0]
    # a backend-less test counts for every backend its claim concerns: impl passed, fastai not applicable
    assert row["results"] == {"impl": "passed", "fastai": "n/a"}, row
    assert r.ret == 0
