"""Meta-tests of the report section a failing test gets: the cited claims' id, quote, statement, transcript lines and
expectation, from the ledger (so tests need not copy them into their messages). Under xdist: spec/meta/test_xdist.py."""
import re

import pytest

LEDGER = '''
[[claim]]
id = "T-1"
section = "Toy"
lines = [2, 3]
source = "transcript"
quote = "one plus one"
statement = "one plus one is two, exactly"
kind = "exact"
needs = []

[[claim]]
id = "T-2"
section = "Toy"
lines = [4, 4]
source = "transcript"
quote = "it drifted"
statement = "the library still does what the lesson said"
kind = "exact"
needs = []
impl = "changed"
impl_reason = "impl now does something else"

[[claim]]
id = "T-3"
section = "Ours"
lines = []
source = "impl"
quote = ""
statement = "our own promise"
kind = "property"
needs = []
'''

TRANSCRIPT = "line one of the lesson\nand now one plus one\nis two, says the lesson\nit drifted since\nline five\n"

TESTS = '''
import pytest
from spec.checks import equal

@pytest.mark.claim("T-1", "T-3")
def test_sum(backend):
    equal(1 + 1, 3, "1 + 1")

@pytest.mark.claim("T-1")
def test_passes():
    assert 1 + 1 == 2

@pytest.mark.claim("T-2")
def test_drifted(backend):
    assert False, "the lesson's behaviour is gone"

@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")

@pytest.mark.claim("T-3")
def test_setup_error(broken):
    pass
'''


@pytest.fixture
def project(pytester, monkeypatch):
    pytester.makefile(".toml", claims=LEDGER)
    (pytester.path / "transcript.txt").write_text(TRANSCRIPT)
    monkeypatch.setenv("LESSON6_TRANSCRIPT", str(pytester.path / "transcript.txt"))
    pytester.makeconftest('pytest_plugins = ["spec.plugin"]\n')
    pytester.makeini("[pytest]\nmarkers =\n  claim: c\n  cuda: c\n  real_data: r\n  pretrained: p\n  slow: s\n")
    pytester.makepyfile(test_x=TESTS)
    return pytester


def sections(out: str) -> dict[str, str]:
    "The text of each test's 'claims' section in the failures/errors summary, by the test's header line."
    found, head, cur = {}, None, None
    for line in out.splitlines():
        if m := re.match(r"^_+ (?:ERROR at setup of )?(\S+) _+$", line):
            head, cur = m.group(1), None
        elif re.match(r"^-+ claims -+$", line):
            cur = found.setdefault(head, [])
        elif re.match(r"^(-+ .* -+|=+ .* =+)$", line):
            cur = None
        elif cur is not None:
            cur.append(line)
    return {k: "\n".join(v) for k, v in found.items()}


def test_a_failing_test_shows_its_claims_from_the_ledger(project):
    r = project.runpytest("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                          "-p", "no:cacheprovider", "--no-claims-table")
    r.assert_outcomes(passed=1, failed=1, xfailed=1, errors=1)
    s = sections(r.stdout.str())
    assert set(s) == {"test_sum[impl]", "test_setup_error"}, f"sections for {sorted(s)}: only failures get one"
    got = s["test_sum[impl]"]
    assert "T-1 (Toy; exact; transcript lines 2-3)" in got
    assert "quote:     'one plus one'" in got
    assert "statement: one plus one is two, exactly" in got
    assert "expected on impl: holds" in got
    assert "T:L2-3: and now one plus one is two, says the lesson" in got, "the cited transcript lines, joined"
    assert "T-3 (Ours; property; source: impl)" in got and "statement: our own promise" in got
    assert "line one" not in got and "line five" not in got, "only the cited lines"
    assert "T-3 (Ours; property; source: impl)" in s["test_setup_error"], "a setup error shows its claims too"
    out = r.stdout.str()
    assert "1 + 1: got 2, want 3" in out, "spec.checks.equal's message"


def test_the_section_is_on_the_report_for_other_reporters(project):
    "Sections ride on the report (xdist serialises them, junitxml and other plugins read them)."
    rec = project.inline_run("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                             "-p", "no:cacheprovider", "--no-claims-table")
    failed = [r for r in rec.getreports("pytest_runtest_logreport") if r.failed]
    assert {r.nodeid.split("::")[1] for r in failed} == {"test_sum[impl]", "test_setup_error"}
    for rep in failed:
        names = [n for n, _ in rep.sections]
        assert names.count("claims") == 1, names
    text = dict(failed[0].sections)["claims"]
    assert "quote:" in text and "statement:" in text


def test_without_the_transcript_the_section_still_has_quote_and_statement(project, monkeypatch):
    monkeypatch.setenv("LESSON6_TRANSCRIPT", str(project.path / "nowhere.txt"))
    from spec import plugin
    monkeypatch.setattr(plugin, "ROOT", project.path)  # neither shared/ in a checkout nor beside it
    plugin.transcript.cache_clear()
    try:
        r = project.runpytest("--claims-ledger", str(project.path / "claims.toml"), "--backend", "impl",
                              "-p", "no:cacheprovider", "--no-claims-table", "-k", "sum")
    finally:
        plugin.transcript.cache_clear()
    got = sections(r.stdout.str())["test_sum[impl]"]
    assert "quote:     'one plus one'" in got and "statement: one plus one is two, exactly" in got
    assert "T:L" not in got
