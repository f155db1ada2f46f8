"""`--claims-compare BASELINE.json`: after the run, list every claim whose result changed since a saved claims JSON
(per backend), and fail the run when a claim that passed there fails now. A pytest plugin beside spec.plugin, whose
state it reads: the root conftest.py loads both with `pytest_plugins`."""
from __future__ import annotations

from pathlib import Path

import pytest

from spec import plugin as _plugin

DIFF = pytest.StashKey[object]()  # the specreport.diff.Diff of this run, or the error that prevented it


def pytest_addoption(parser):
    parser.getgroup("claims").addoption(
        "--claims-compare", default=None, metavar="BASELINE.json",
        help="compare the claims results with a saved --claims-json run; fail when a passed claim now fails")


def pytest_configure(config):
    p = config.getoption("--claims-compare", None)
    if p and not Path(p).is_file():
        raise pytest.UsageError(f"--claims-compare: baseline claims JSON not found: {p}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    "Runs before the terminal summary (the terminal reporter prints it after every pytest_sessionfinish)."
    config = session.config
    p = config.getoption("--claims-compare", None)
    if not p or _plugin.STATE not in config.stash or _plugin.is_worker(config):  # xdist: the controller compares
        return
    from specreport.diff import compare
    try:
        d = config.stash[DIFF] = compare(p, _plugin.rows(_plugin.state(config)))
    except (OSError, ValueError) as e:
        config.stash[DIFF] = e
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    if d.regressions and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    d = config.stash.get(DIFF, None)
    if d is None:
        return
    tr, p = terminalreporter, config.getoption("--claims-compare")
    if isinstance(d, Exception):
        tr.write_sep("=", f"claims compare with {p}: {d}", red=True)
        return
    tr.write_sep("=", f"claims compared with {p}", red=bool(d.regressions), green=not d.regressions)
    for line in d.lines():
        tr.write_line(line)
