"""Meta-tests of the claims plugin under pytest-xdist: a distributed run prints the table and writes the JSON of a
serial one (the workers run the tests; the controller, which collects nothing, gathers their reports)."""
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("xdist")

ROOT = Path(__file__).resolve().parents[2]

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
statement = "impl still does what the lesson said"
kind = "exact"
needs = []
impl = "changed"
impl_reason = "impl now does something else"

[[claim]]
id = "T-3"
section = "Toy"
lines = [4, 4]
quote = "it breaks"
statement = "a claim whose test fails"
kind = "exact"
needs = []

[[claim]]
id = "T-4"
section = "Other"
lines = [5, 5]
quote = "real data"
statement = "holds on the real datasets"
kind = "statistical"
needs = ["real-data"]

[[claim]]
id = "T-5"
section = "Other"
lines = [6, 6]
quote = "nobody tested it"
statement = "an untested claim"
kind = "exact"
needs = []

[[claim]]
id = "T-6"
section = "Other"
lines = []
source = "impl"
quote = ""
statement = "our own promise, checked by a fixture that breaks"
kind = "exact"
needs = []
'''

TEST_A = '''
import pytest

@pytest.mark.claim("T-1")
def test_holds(backend):
    assert backend.name == "impl"

@pytest.mark.claim("T-1", "T-3")
def test_plain():
    assert True

@pytest.mark.claim("T-2")
def test_lesson(backend):
    assert backend.name == "the lesson's"

@pytest.mark.claim("T-2", current=True)
def test_now(backend):
    assert backend.name == "impl"

@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.claim("T-3")
def test_fails(n):
    assert n < 3, f"n = {n}"
'''

TEST_B = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")

@pytest.mark.real_data
@pytest.mark.claim("T-4")
def test_real(backend):
    assert False, "never runs without SPEC_DATA"

@pytest.mark.claim("T-6")
def test_promise(broken):
    assert True

@pytest.mark.parametrize("k", range(6))
@pytest.mark.claim("T-1")
def test_many(backend, k):
    assert k >= 0

@pytest.mark.xdist_group("together")
@pytest.mark.claim("T-1")
def test_grouped(backend):
    assert backend.name == "impl"
'''


CONFTEST = """
import os, sys
pytest_plugins = ["spec.plugin"]

def pytest_unconfigure(config):  # which processes imported torch: the workers only, under xdist
    with open(f"torch-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.txt", "w") as f:
        f.write(str("torch" in sys.modules))
"""


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the subprocesses import spec.plugin from this checkout
    monkeypatch.delenv("SPEC_DATA", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when these meta-tests run under xdist themselves
    pytester.makefile(".toml", claims=LEDGER)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n  claim: c\n  cuda: c\n  real_data: r\n  pretrained: p\n  slow: s\n")
    pytester.makepyfile(test_a=TEST_A, test_b=TEST_B)
    return pytester


def run(p, name, *args):
    "Run the scratch project in a subprocess (xdist needs one); returns (result, claims JSON, table lines)."
    r = p.runpytest_subprocess("--claims-ledger", str(p.path / "claims.toml"), "--backend", "impl",
                               "-p", "no:cacheprovider", "-p", "no:randomly", "--claims-json", f"{name}.json", *args)
    out = r.stdout.lines
    start = next(i for i, line in enumerate(out) if re.match(r"=+ claims \(", line))
    end = next(i for i, line in enumerate(out) if line.startswith("claims JSON written"))
    return r, json.loads((p.path / f"{name}.json").read_text()), out[start:end]


def test_xdist_gives_the_serial_table_and_json(project):
    serial, js, table = run(project, "serial")
    serial.assert_outcomes(passed=12, failed=1, xfailed=1, skipped=1, errors=1)
    rows = {c["id"]: c for c in js["claims"]}
    # the serial run is right to begin with
    assert {i: c["results"]["impl"] for i, c in rows.items()} == {
        "T-1": "passed", "T-2": "xfailed", "T-3": "failed", "T-4": "skipped", "T-5": "untested", "T-6": "failed"}
    assert rows["T-1"]["tests"] == 9 and rows["T-3"]["tests"] == 4 and rows["T-5"]["tests"] == 0
    assert "test_b.py::test_grouped[impl]" in rows["T-1"]["test_ids"]
    assert "impl now does something else" in rows["T-2"]["reasons"]["impl"]
    assert rows["T-3"]["reasons"]["impl"] == "call failed: AssertionError: n = 3"
    assert "the fixture broke" in rows["T-6"]["reasons"]["impl"] and "setup failed" in rows["T-6"]["reasons"]["impl"]
    assert "SPEC_DATA" in rows["T-4"]["reasons"]["impl"]
    assert js["environment"]["workers"] == 0
    # loadgroup renames grouped tests "nodeid@group" on the workers: the table and JSON keep the collected node id
    for name, args in (("n2", ("-n", "2", "--dist", "loadgroup")), ("tx", ("--tx", "2*popen", "--dist", "loadfile"))):
        r, jx, tx = run(project, name, *args)
        r.assert_outcomes(passed=12, failed=1, xfailed=1, skipped=1, errors=1)
        # the controller names the workers' device at the end and imports no torch (5-7 s before workers could start)
        assert {f.name: f.read_text() for f in project.path.glob("torch-*.txt")} == {
            "torch-main.txt": "False", "torch-gw0.txt": "True", "torch-gw1.txt": "True"}, name
        assert f"device: {js['environment']['device']}; TF32 matmul=" in r.stdout.str(), name
        assert jx["claims"] == js["claims"], name
        assert tx == table, name
        assert jx["environment"]["workers"] == 2, name
        # commit and dirty describe this checkout, which other work may change between the two runs
        same = lambda e: {k: v for k, v in e.items() if k not in ("workers", "commit", "dirty")}  # noqa: E731
        assert same(jx["environment"]) == same(js["environment"]), name


def test_workers_print_no_table_and_strict_counts_on_the_controller(project):
    r, js, table = run(project, "strict", "-n", "2", "--claims-strict")
    assert r.ret == 1
    out = r.stdout.str()
    assert out.count("claims JSON written") == 1 and len([t for t in table if t.startswith("-- Toy")]) == 1
    assert "T-5 [impl]: untested" in out and "T-6 [impl]: failed" in out
    assert js["environment"]["workers"] == 2
    # a failing test's claims section (spec/meta/test_claim_section.py) rides on the report from the worker
    assert len(re.findall(r"^-+ claims -+$", out, re.M)) == 2, "test_fails[3] and test_promise's setup error"
    assert "quote:     'it breaks'" in out and "statement: a claim whose test fails" in out
    assert "statement: our own promise, checked by a fixture that breaks" in out


def test_unknown_claim_id_is_an_error_under_xdist_too(project):
    project.makepyfile(test_c='import pytest\n@pytest.mark.claim("NOPE-1")\ndef test_a():\n    assert True\n')
    r = project.runpytest_subprocess("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                                     "-p", "no:cacheprovider", "-n", "2", "test_c.py", "test_a.py::test_plain")
    # a worker's UsageError would be lost (xdist reports an internal error): it is a collection error instead
    assert r.ret == pytest.ExitCode.TESTS_FAILED
    assert "ERROR test_c.py::test_a" in r.stdout.str()
    assert "claims: test_c.py::test_a: unknown claim id(s) ['NOPE-1']" in r.stdout.str()
    assert "INTERNALERROR" not in r.stdout.str() + r.stderr.str()


def test_ran_only_lists_the_claims_that_ran(project):
    r = project.runpytest("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                          "-p", "no:cacheprovider", "--claims-ran-only", "test_a.py", "-k", "holds or lesson")
    out = r.stdout.str()
    assert "claims (2 of 6 ran; backend(s) impl)" in out
    assert "4 claim(s) not rerun in this session" in out
    lines = r.stdout.lines
    assert any(line.startswith("T-1 ") for line in lines) and any(line.startswith("T-2 ") for line in lines)
    assert not any(line.startswith(("T-3 ", "T-5 ")) for line in lines)



def test_pretrained_cache_trains_once_under_concurrent_workers(tmp_path, monkeypatch):
    "Two workers asking for the pretrained body at once: one trains, the other waits and loads the same file."
    import threading
    import time

    import torch

    from fixtures import pretrained

    calls = []

    def slow_pretrain(seed, log=None):
        calls.append(seed)
        time.sleep(0.5)  # long enough for the other thread to arrive while the first trains
        return {"w": torch.full((2,), float(len(calls)))}, {"seed": seed}

    monkeypatch.setattr(pretrained, "pretrain", slow_pretrain)
    got = [None, None]

    def ask(k):
        got[k] = pretrained.body_state(seed=3, cache=tmp_path)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [3], f"pretrain ran {len(calls)} times"
    assert torch.equal(got[0]["w"], got[1]["w"]) and torch.equal(got[0]["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == sorted(
        [pretrained.path(3, tmp_path).name, pretrained.path(3, tmp_path).with_suffix(".json").name])


def test_serial_run_without_xdist_loaded_gives_the_same_json(project):
    """`-p no:xdist` (nox -s spec_changed runs testmon that way) with --strict-markers: the xdist_group marks the
    plugin adds are declared by the plugin too, so the run works and gives the serial run's claims."""
    serial, js, _ = run(project, "serial")
    r, jn, _ = run(project, "no-xdist", "-p", "no:xdist", "--strict-markers")
    assert "INTERNALERROR" not in r.stdout.str() + r.stderr.str(), r.stdout.str()[-2000:]
    r.assert_outcomes(passed=12, failed=1, xfailed=1, skipped=1, errors=1)
    assert jn["claims"] == js["claims"]


GROUPED = '''
import os
import pytest

@pytest.mark.parametrize("k", range(12))
@pytest.mark.claim("T-1")
def test_where(backend, k):
    with open(f"where-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.txt", "a") as f:
        f.write(f"{k}\\n")
'''


def test_loadgroup_keeps_a_modules_tests_of_a_backend_on_one_worker(project):
    """Under `-n 2 --dist loadgroup` the 12 tests of one module and backend run on one worker, so its module-scoped
    runs are made once (with one group per test, as when the group name ended in "]", both workers took some)."""
    project.makepyfile(test_g=GROUPED)
    r = project.runpytest_subprocess("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                                     "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "test_g.py")
    r.assert_outcomes(passed=12)
    ran = {f.name: sorted(map(int, f.read_text().split())) for f in project.path.glob("where-*.txt")}
    assert list(ran.values()) == [list(range(12))], f"tests per worker: {ran}"


ORDERED = """
import os
import pytest

def log(name):
    with open("order.txt", "a") as f:
        f.write(name + "\\n")

@pytest.mark.claim("T-1")
@pytest.mark.parametrize("k", range(8))
def test_light(backend, k):
    log("many")
"""


def weighted(name, *marks, n=1):
    "A scratch module of one light test and n slow ones (also marked `marks`), each logging `name` when it runs."
    deco = "".join(f"@pytest.mark.{m}\n" for m in ("slow", *marks))
    return f"""
import pytest
from test_many import log

@pytest.mark.claim("T-1")
def test_light(backend):
    log("{name}")

{deco}@pytest.mark.claim("T-1")
@pytest.mark.parametrize("k", range({n}))
def test_slow(backend, k):
    log("{name}")
"""


def run_in_order(project) -> list[str]:
    "The scratch modules test_many, test_heavy, test_skipped on one worker: the groups in the order they ran."
    (project.path / "order.txt").unlink(missing_ok=True)
    r = project.runpytest_subprocess("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                                     "-p", "no:cacheprovider", "-n", "1", "--dist", "loadgroup", "test_many.py",
                                     "test_heavy.py", "test_skipped.py")
    r.assert_outcomes(passed=11, skipped=2)
    ran = (project.path / "order.txt").read_text().split()
    return [g for k, g in enumerate(ran) if k == 0 or ran[k - 1] != g]


def test_loadgroup_starts_the_heaviest_groups(project):
    """The groups are handed out longest first (spec.plugin.heaviest_groups_first). With no earlier run's seconds, by
    guessed ones: a group with a slow test that runs here (0.1 + 2) before one of 8 light tests (0.8), and that before
    a group whose slow tests are skipped here (0.3); xdist's own order (by number of tests) would start with the 8. Each
    run merges its tests' seconds into .cache/spec-durations.json, and the next one orders the groups by them: once
    the 8 light tests are known to take 50 s each, their group goes first; seconds of tests that did not run are kept.
    One worker runs the groups in the order handed out."""
    project.makepyfile(test_many=ORDERED, test_heavy=weighted("heavy"),
                      test_skipped=weighted("skipped", "real_data", n=2))
    assert run_in_order(project) == ["heavy", "many", "skipped"]
    path = project.path / ".cache" / "spec-durations.json"
    seconds = json.loads(path.read_text())
    assert sorted(seconds) == sorted(f"test_{m}.py::{t}" for m, t in
                                     [*[("many", f"test_light[impl-{k}]") for k in range(8)],
                                      ("heavy", "test_light[impl]"), ("heavy", "test_slow[impl-0]"),
                                      ("skipped", "test_light[impl]"), ("skipped", "test_slow[impl-0]"),
                                      ("skipped", "test_slow[impl-1]")]), f"ids timed: {sorted(seconds)}"
    assert all(isinstance(v, float) and 0 <= v < 30 for v in seconds.values()), seconds
    path.write_text(json.dumps({**seconds, **{k: 50.0 for k in seconds if "test_many" in k}, "gone.py::test_x": 5.0}))
    assert run_in_order(project) == ["many", "heavy", "skipped"]
    after = json.loads(path.read_text())
    assert after["gone.py::test_x"] == 5.0 and after.keys() == {*seconds, "gone.py::test_x"}
    assert all(after[k] < 30 for k in seconds if "test_many" in k), "this run's seconds replace the earlier ones"


@pytest.mark.parametrize("foreign", ["not json", "[1, 2]", '{"a": "b"}', '{"a": true}'])
def test_durations_file_not_ours_is_left_alone(tmp_path, foreign):
    "A .cache/spec-durations.json that is not a table of seconds is read as none and never overwritten."
    from spec.plugin import read_durations, write_durations

    path = tmp_path / "spec-durations.json"
    path.write_text(foreign)
    assert read_durations(path) is None
    write_durations(path, {"t.py::test_a": 1.5})
    assert path.read_text() == foreign and [p.name for p in tmp_path.iterdir()] == [path.name]
    path.unlink()
    write_durations(path, {"t.py::test_a": 1.5})
    assert read_durations(path) == {"t.py::test_a": 1.5}


def test_group_of_names_module_and_backend():
    from spec.plugin import group_of

    assert group_of("spec/test_v.py::test_a[impl]") == "spec/test_v.py:impl"
    assert group_of("spec/test_v.py::test_a[3-fastai-resnet18]") == "spec/test_v.py:fastai"
    assert group_of("spec/test_v.py::test_a[a@b]") == "spec/test_v.py:-", "an @ inside the parameters is no group"
    assert group_of("spec/test_v.py::test_a") == "spec/test_v.py:-"
    assert group_of("spec/test_v.py::test_a[impl]@gpu") == "gpu", "an explicit group (pytest < 9.2 appends it)"
