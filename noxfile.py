"""Sessions: spec (the main job), tests (everything CI runs), lint, bench, bench_gpu, bench_report, report,
mutate and coverage (of impl by the spec; on demand).

Every session installs the project editable, so a reused environment (`nox -R`) never tests stale code.
"""
import hashlib
import os
from pathlib import Path

import nox

nox.options.sessions = ["spec"]
nox.options.reuse_existing_virtualenvs = True  # the torch CUDA wheel is ~5 GB: build each environment once
PY = None  # the interpreter nox runs under; the project supports Python >= 3.10
CLAIMS_JSON = ".cache/claims.json"


def install(session, extra="spec"):
    """pip install -e .[extra], skipped when this environment already has it for the same pyproject.toml (a stamp in the
    environment; the install is editable, so only pyproject.toml can make it stale). Saves ~7 s a run."""
    key = hashlib.sha256(f"{extra}\n".encode() + Path("pyproject.toml").read_bytes()).hexdigest()
    stamp = Path(session.virtualenv.location or ".", ".lesson6-spec-installed")
    if session.virtualenv.location and stamp.is_file() and stamp.read_text() == key:
        session.log(f"project already installed for this pyproject.toml ({stamp.name}); skipping pip")
        return
    session.install("-e", f".[{extra}]")
    if session.virtualenv.location:
        stamp.write_text(key)


@nox.session(python=PY)
def spec(session):
    """The executable specification against both backends, ending with the claims table (and .cache/claims.json).
    On more than one core pytest-xdist runs it on every core, a test file's tests of one backend per worker at a time
    (`--dist loadgroup`, groups set by spec/plugin.py: a module's trained models are built once per backend, and the
    two backends of a slow module run side by side); `nox -s spec -- -n 0` runs it serially, `-n 4` on 4 workers."""
    install(session)
    session.run("pytest", "spec", "--ignore=spec/meta", f"--claims-json={CLAIMS_JSON}", *xdist_args(),
                *session.posargs, env=xdist_env())


def xdist_args() -> list[str]:
    "Every core, a test file's tests of one backend per worker (a later `-n N` in posargs wins); nothing on one core."
    return ["-n", "auto", "--dist", "loadgroup"] if (os.cpu_count() or 1) > 1 else []


def xdist_env() -> dict:
    "One torch thread per worker: N workers with N threads each would oversubscribe the cores."
    return {**BYTECODE, **({"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")} if xdist_args() else {})}


# Bytecode is written (__pycache__/, git-ignored) even where PYTHONDONTWRITEBYTECODE is set, as on this project's
# machines: without it every pytest process recompiles the project and rewrites the asserts of every test module and
# plugin again, 5 of the 12.6 s each xdist worker spends collecting (7.5 s with the cache).
BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


@nox.session(python=PY)
def spec_changed(session):
    """A contributor's fast path: rerun only the spec tests whose code touches what changed since the last run
    (pytest-testmon; its database is .cache/testmondata, and the first run, which builds it, runs everything), on
    impl (posargs `--backend all` adds fastai), serially (testmon and xdist do not mix). The claims table lists the
    claims whose tests ran and counts the others."""
    install(session)
    session.run("pytest", "spec", "--ignore=spec/meta", "--testmon", "--backend=impl", "-p", "no:xdist",
                *session.posargs, env={"TESTMON_DATAFILE": ".cache/testmondata", **BYTECODE})


@nox.session(python=PY)
def calibrate(session):
    """Rerun every statistical test under seed offsets 0..19 at 1 and 2 torch threads on both backends, serially, and
    write results/calibration.md (tools/calibrate.py; posargs: --offsets 20 --threads 1,2 --backend impl -k EXPR)."""
    install(session)
    session.run("python", "tools/calibrate.py", *session.posargs)


@nox.session(python=PY)
def tests(session):
    """Everything CI runs: lint, the spec in strict mode with the CI hypothesis profile, the plugin's and the report's
    meta-tests (Chromium installed when missing), a bench smoke run."""
    install(session, "dev")
    session.run("ruff", "check", ".")
    _ensure_chromium(session)  # the report's browser check (spec/meta/test_report.py) runs for real in CI
    env = {"HYPOTHESIS_PROFILE": "ci", "SPEC_REQUIRE_BROWSER": "1", **BYTECODE}
    session.run("pytest", "spec", "--claims-strict", f"--claims-json={CLAIMS_JSON}", *session.posargs, env=env)
    if os.path.isdir("benches"):
        session.run("pytest", "benches", "--benchmark-disable", "-q", "--no-claims-table", env=env,
                    success_codes=[0, 5])


@nox.session(python=PY)
def lint(session):
    "ruff over the whole project."
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".", *session.posargs)


# ---------------------------------------------------------------- benchmarks (benches/, results/README.md)
BENCH_STORE = "--benchmark-storage=file://.benchmarks"


@nox.session(python=PY)
def bench(session):
    "The benchmarks CPU-sized (a few minutes), saved to .benchmarks/ so runs accumulate (BENCH_SIZE overrides)."
    install(session)
    session.run("pytest", "benches", "--benchmark-autosave", BENCH_STORE, "--no-claims-table", "-p", "no:warnings",
                *session.posargs, env={"BENCH_SIZE": os.environ.get("BENCH_SIZE", "cpu")})


@nox.session(python=PY)
def bench_gpu(session):
    "The whole matrix on one CUDA GPU (under 8 minutes), saved to .benchmarks/ (tools/gpu_bench.sh: the same, offline)."
    install(session)
    session.run("python", "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU')")
    session.run("pytest", "benches", "--benchmark-autosave", BENCH_STORE, "--no-claims-table", "-p", "no:warnings",
                *session.posargs, env={"BENCH_SIZE": "gpu", "PYTHONUNBUFFERED": "1"})


@nox.session(python=PY)
def bench_report(session):
    "Render the benchmark history (.benchmarks/ by default, or the posargs) as results/tmp/results.md + plots."
    session.install("matplotlib>=3.7")  # benches.report needs nothing else (no torch)
    session.run("python", "-m", "benches.report", *(session.posargs or [".benchmarks", "--out", "results/tmp"]))


@nox.session(python=PY)
def bench_compare(session):
    """Regression gate on this machine: bench the base revision (posargs[0], default HEAD~1) in a git worktree, then
    HEAD, and fail when any benchmark's mean is 10% slower (--benchmark-compare-fail=mean:10%)."""
    import shutil
    from pathlib import Path
    install(session)
    base = session.posargs[0] if session.posargs else "HEAD~1"
    rest = session.posargs[1:]
    store, tree = Path(".cache/bench-compare").resolve(), Path(".cache/bench-base").resolve()
    shutil.rmtree(store, ignore_errors=True)
    session.run("git", "worktree", "remove", "--force", str(tree), external=True, success_codes=[0, 128])
    session.run("git", "worktree", "add", "--detach", str(tree), base, external=True)
    args = ["--no-claims-table", "-p", "no:warnings", f"--benchmark-storage=file://{store}", *rest]
    try:
        with session.chdir(tree):  # the base's own impl/ and benches/ (pytest puts the rootdir first on sys.path)
            session.run("pytest", "benches", "--benchmark-save=base", *args, env={"PYTHONPATH": str(tree)})
        session.run("pytest", "benches", "--benchmark-compare=0001", "--benchmark-compare-fail=mean:10%", *args)
    finally:
        session.run("git", "worktree", "remove", "--force", str(tree), external=True)


# ---------------------------------------------------------------- mutation testing and coverage of impl
@nox.session(python=PY)
def mutate(session):
    """mutmut over impl, each mutant checked by the not-slow spec tests on the impl backend; updates
    results/mutation.md (tools/mutate.py). `-- impl/metrics.py` runs one module, no posargs all of impl (hours on two
    cores: on demand, not CI); `-- --together --time-limit 3600 impl/a.py impl/b.py` checks several modules in one
    mutmut run and stops it after an hour, keeping what it checked; `-- --allow-failing` deselects tests failing
    unmutated; `-- --report-only` re-renders."""
    install(session, "mutate")
    session.run("python", "tools/mutate.py", *session.posargs)


@nox.session(python=PY)
def coverage(session):
    """Branch coverage of impl by the whole spec on the impl backend (slow tests included; posargs go to pytest, e.g.
    `-- -m "not slow"`): the report (fails under the 95 % goal), .cache/coverage/html/ and coverage.json."""
    install(session, "mutate")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", "spec", "--ignore=spec/meta", "--backend=impl", "-q",
                "--no-claims-table", *session.posargs, success_codes=[0, 1])  # failing tests: still measured
    session.run("coverage", "html", "-q", success_codes=[0, 2])  # 2: under fail_under, which `report` says below
    session.run("coverage", "json", "-q", success_codes=[0, 2])
    session.run("coverage", "report")


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
