"""Sessions: spec (the main job), tests (everything CI runs), lint, bench, bench_gpu, bench_report, report.

Every session installs the project editable, so a reused environment (`nox -R`) never tests stale code.
"""
import os

import nox

nox.options.sessions = ["spec"]
nox.options.reuse_existing_virtualenvs = True  # the torch CUDA wheel is ~5 GB: build each environment once
PY = None  # the interpreter nox runs under; the project supports Python >= 3.10
CLAIMS_JSON = ".cache/claims.json"


def install(session, extra="spec"):
    session.install("-e", f".[{extra}]")


@nox.session(python=PY)
def spec(session):
    "The executable specification against both backends, ending with the claims table (and .cache/claims.json)."
    install(session)
    session.run("pytest", "spec", "--ignore=spec/meta", f"--claims-json={CLAIMS_JSON}", *session.posargs)


@nox.session(python=PY)
def tests(session):
    "Everything CI runs: lint, the spec in strict mode with the CI hypothesis profile, the plugin's meta-tests, a bench smoke run."
    install(session, "dev")
    session.run("ruff", "check", ".")
    env = {"HYPOTHESIS_PROFILE": "ci"}
    session.run("pytest", "spec", "--claims-strict", f"--claims-json={CLAIMS_JSON}", *session.posargs, env=env)
    if os.path.isdir("benches"):
        session.run("pytest", "benches", "--benchmark-disable", "-q", "--no-claims-table", env=env,
                    success_codes=[0, 5])


@nox.session(python=PY)
def lint(session):
    "ruff over the whole project."
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".", *session.posargs)


# ---------------------------------------------------------------- the report (specreport/)
@nox.session(python=PY)
def report(session):
    """The spec (posargs go to it, e.g. --claims-compare BASE.json), then report/index.html: claims, drift since the
    lesson, figures; then that page checked in headless Chromium (apt-get installs it when missing, as root)."""
    install(session)
    session.run("pytest", "spec", "--ignore=spec/meta", f"--claims-json={CLAIMS_JSON}", *session.posargs,
                success_codes=[0, 1])  # failing claims belong in the report
    session.run("python", "-m", "specreport", f"--claims-json={CLAIMS_JSON}", "--out", "report/index.html")
    _ensure_chromium(session)
    session.run("pytest", "spec/meta/test_report.py", "-q", "--no-claims-table",
                env={"SPEC_REPORT_HTML": "report/index.html", "SPEC_REQUIRE_BROWSER": "1"})


def _ensure_chromium(session):
    import shutil
    if any(map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))):
        return
    if getattr(os, "geteuid", lambda: 1)() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-q", external=True)
        session.run("apt-get", "install", "-y", "-q", "chromium", external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})
    else:
        session.error("the report's browser check needs Chromium: `sudo apt-get install -y chromium` "
                      "(Debian/Ubuntu; any chromium/google-chrome on PATH works), then rerun `nox -s report`")
