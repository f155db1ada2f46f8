"""`--claims-compare BASELINE.json`: after the run, list every claim whose result changed since a saved claims JSON
(per backend), and fail the run when a claim that passed there fails now. Loaded by spec/conftest.py with
`from spec.compare import *`, so every hook has its own name (`specname` maps it onto the pytest hook): a plain
`pytest_addoption` here would replace spec.plugin's in the conftest's namespace."""
from __future__ import annotations

from pathlib import Path

import pytest

from spec import plugin as _plugin


@pytest.hookimpl(specname="pytest_addoption")
def pytest_claims_compare_addoption(parser):
    parser.getgroup("claims").addoption(
        "--claims-compare", default=None, metavar="BASELINE.json",
        help="compare the claims results with a saved --claims-json run; fail when a passed claim now fails")


@pytest.hookimpl(specname="pytest_configure")
def pytest_claims_compare_configure(config):
    p = config.getoption("--claims-compare", None)
    if p and not Path(p).is_file():
        raise pytest.UsageError(f"--claims-compare: baseline claims JSON not found: {p}")


@pytest.hookimpl(specname="pytest_sessionfinish", trylast=True)
def pytest_claims_compare_sessionfinish(session, exitstatus):
    "Runs before the terminal summary (the terminal reporter prints it after every pytest_sessionfinish)."
    config = session.config
    p = config.getoption("--claims-compare", None)
    if not p or not hasattr(config, "_claims") or hasattr(config, "workerinput"):  # xdist: the controller compares
        return
    from specreport.diff import compare
    try:
        config._claims_diff = compare(p, _plugin.rows(config._claims))
    except (OSError, ValueError) as e:
        config._claims_diff = e
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    if config._claims_diff.regressions and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(specname="pytest_terminal_summary", trylast=True)
def pytest_claims_compare_terminal_summary(terminalreporter, exitstatus, config):
    d = getattr(config, "_claims_diff", None)
    if d is None:
        return
    tr, p = terminalreporter, config.getoption("--claims-compare")
    if isinstance(d, Exception):
        tr.write_sep("=", f"claims compare with {p}: {d}", red=True)
        return
    tr.write_sep("=", f"claims compared with {p}", red=bool(d.regressions), green=not d.regressions)
    for line in d.lines():
        tr.write_line(line)


__all__ = ["pytest_claims_compare_addoption", "pytest_claims_compare_configure",
           "pytest_claims_compare_sessionfinish", "pytest_claims_compare_terminal_summary"]
