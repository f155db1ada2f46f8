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
