"""The claims plugin: ledger-checked `claim` markers, backends, need-based skips, the claims table and JSON.

Loaded the pytest way: `pytest_plugins = ["spec.plugin", "spec.compare"]` in the root conftest.py (the top-level
conftest of every run: `pytest spec...`, `pytest benches...`, `pytest .`). Its state (the ledger, the
selection, the results) lives in `config.stash[STATE]` (`state(config)`). Options:
  --backend impl|fastai|all   which implementation(s) the spec drives (env SPEC_BACKEND, default all)
  --claims PATTERN            only tests citing matching claims (globs on id or section, comma separated)
  --claims-json PATH          write the per-claim results as JSON
  --claims-strict             fail when a claim testable here has no passing or expected-xfail result
  --claims-ledger PATH        another ledger (the plugin's own meta-tests use this)
  --claims-ran-only           list only the claims some test of which ran (automatic with testmon's selection)

Under pytest-xdist (`-n 2`, `--tx ...`) the workers run the tests and the controller prints the table and writes the
JSON: each report carries its claim result (the `spec_claims` attribute, a plain dict that survives xdist's report
serialisation) and each worker sends its claim -> tests map in `workeroutput`, so a distributed run gives the same
table and JSON as a serial one (the environment's `workers` field aside).

A failing test's report gets a "claims" section: each claim it cites with its id, quote, statement, the transcript
lines it comes from, and what the ledger expects on the test's backend. So the ledger is the only text of a claim:
tests do not repeat it in their assertion messages (spec/checks.py makes those uniform). Reports carry their sections
through xdist's serialisation, so a distributed run prints them too.
"""
from __future__ import annotations

import atexit
import gc
import json
import os
import platform
import shutil
import sys
import textwrap
from collections import defaultdict
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from spec import backends as _backends
from spec import benchclaims as _benchclaims
from spec import ledger as _ledger

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("failed", "xfailed", "passed", "measured", "skipped", "untested", "n/a")  # worst first when aggregating
RESULT = "spec_claims"  # report attribute and workeroutput key: the claim result of one report, a worker's tests map
WORKER_ENV = "spec_environment"  # workeroutput key: the worker's libraries() for the controller's environment()
_NODEID = pytest.StashKey[str]()  # the node id at collection (xdist's loadgroup appends "@group" later)
SECTION = "claims"  # the title of the report section a failing test gets (see claim_section)


# ---------------------------------------------------------------- options and configuration
def pytest_addoption(parser):
    g = parser.getgroup("claims", "lesson6-spec claims")
    g.addoption("--backend", default=os.environ.get("SPEC_BACKEND", "all"), choices=("impl", "fastai", "all"),
                help="implementation(s) to check (env SPEC_BACKEND; default all)")
    g.addoption("--claims", default=None, metavar="PATTERN", help="only claims matching these globs (id or section)")
    g.addoption("--claims-json", default=None, metavar="PATH", help="write the claims results as JSON")
    g.addoption("--claims-strict", action="store_true", help="fail if a claim testable here is not passed/xfailed")
    g.addoption("--claims-ledger", default=str(_ledger.LEDGER), metavar="PATH", help="the claims ledger (TOML)")
    g.addoption("--no-claims-table", action="store_true", help="do not print the claims table")
    g.addoption("--claims-ran-only", action="store_true",
                help="list only claims some test of which ran (automatic when testmon deselects unaffected tests)")


def pytest_configure(config):
    # the plugin marks every test with an xdist group; declared here too, so that --strict-markers runs without xdist
    # (`-p no:xdist`, as nox -s spec_changed runs testmon) accept it
    config.addinivalue_line("markers", "xdist_group(name): the xdist group this test runs in under --dist loadgroup")
    config.addinivalue_line("markers", "statistical: its verdict rests on seeded training or sampling; "
                            "tools/calibrate.py reruns it under many seeds (added to every test citing a statistical "
                            "claim)")
    try:
        claims = _ledger.load(config.getoption("--claims-ledger"))
    except _ledger.LedgerError as e:
        raise pytest.UsageError(str(e)) from None
    b = config.getoption("--backend")
    config.stash[STATE] = st = State(claims, _ledger.select(claims, config.getoption("--claims")),
                                list(_backends.NAMES) if b == "all" else [b])
    if not is_worker(config):  # the results are gathered where the table is printed: here, or xdist's controller
        config.pluginmanager.register(_Results(st, config), f"spec-claims-results-{id(config)}")
    _hypothesis_profiles()
    # At exit, gc.freeze(): the interpreter's last garbage collections then skip every object made before it. With
    # torch, torchvision and fastai loaded they take 1.5-2.5 s of each process's exit, and xdist's controller waits for
    # its workers' (0.6 s with the freeze, measured on this project's 2-core machine). Registered once per process.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def is_worker(config) -> bool:
    "An xdist worker: it runs tests and forwards their reports; the controller prints the table and writes the JSON."
    return hasattr(config, "workerinput")


def _hypothesis_profiles():
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    hc = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=hc)
    settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True, print_blob=True,
                              suppress_health_check=hc)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# ---------------------------------------------------------------- what this machine has
def has_cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def real_data_path() -> Path | None:
    p = os.environ.get("SPEC_DATA")
    return Path(p).expanduser() if p else None


def has_pretrained() -> bool:
    "ImageNet ResNet weights in the torch hub cache (they cannot be downloaded on this project's machines)."
    try:
        import torch
        return any((Path(torch.hub.get_dir()) / "checkpoints").glob("resnet*.pth"))
    except ImportError:
        return False


def missing_needs(needs) -> list[str]:
    "Human reasons for each need this machine lacks."
    why = {"cuda": (has_cuda, "needs a CUDA GPU; none on this machine"),
           "real-data": (lambda: real_data_path() is not None, "needs the real datasets: set SPEC_DATA"),
           "pretrained": (has_pretrained, "needs ImageNet weights in the torch hub cache")}
    return [why[n][1] for n in needs if not why[n][0]()]


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def backend(request):
    "The implementation under test; parametrized over --backend."
    try:
        return _backends.get(request.param)
    except _backends.BackendUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def data_dir():
    "The four miniature datasets (small), made once and cached under .cache/fixtures/."
    import fixtures
    return fixtures.make(ROOT / ".cache" / "fixtures" / "small", seed=0, size="small")


@pytest.fixture(scope="session")
def data_dir_medium():
    "Larger miniature datasets for training and statistical claims."
    import fixtures
    return fixtures.make(ROOT / ".cache" / "fixtures" / "medium", seed=0, size="medium")


@pytest.fixture(scope="session")
def real_data():
    "The real datasets, laid out as fastai's untar_data leaves them, from SPEC_DATA."
    p = real_data_path()
    if p is None:
        pytest.skip("needs the real datasets: set SPEC_DATA")
    if not p.is_dir():
        pytest.fail(f"SPEC_DATA={p} is not a folder")
    return p


# ---------------------------------------------------------------- collection
def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", state(metafunc.config).backends, indirect=True, scope="session")


def _claim_ids(item) -> tuple[list[str], bool]:
    ids, current = [], False
    for m in item.iter_markers("claim"):
        ids += list(m.args)
        current = current or m.kwargs.get("current", False)
    return ids, current


def _backend_of(item) -> str | None:
    return getattr(item, "callspec", None) and item.callspec.params.get("backend")


def group_name(nodeid: str, backend: str | None) -> str:
    """The xdist group of a test: its module and backend, "spec/test_vision.py:impl". No "]" in it: xdist renames a
    grouped test "nodeid@group" and takes the group only when the "@" comes after the id's last "]" (a parameter
    value may hold an "@"), so a name like "test_vision.py[impl]" left every test a group of its own."""
    return f"{nodeid.split('::')[0]}:{backend or '-'}"


def plain_id(nodeid: str) -> str:
    "The node id without an explicit `@group` suffix (see group_of)."
    return nodeid.rsplit("@", 1)[0] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid


def group_of(nodeid: str) -> str:
    """The group of a node id as the xdist controller sees it: an explicit `@group` suffix, else group_name from the id
    (the backend is the parameter id part naming one: "test_x[fastai-resnet18]" -> "spec/test_x.py:fastai")."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.split("@")[-1]
    params = nodeid[nodeid.find("[") + 1 : -1].split("-") if nodeid.endswith("]") else []
    return group_name(nodeid, next((p for p in params if p in _backends.NAMES), None))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` by group_of. xdist's own loadgroup reads the group from the "@group" it appends to node ids
    on the workers, which pytest 9.2's structured node ids ignore (pytest-xdist#1386): every test was then its own
    group, and a module's trained runs were made again on the other worker."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleBackendScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return group_of(nodeid)

    config.option.loadscopereorder = False  # the groups in the workers' order: heaviest_groups_first
    return ModuleBackendScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    st = state(config)
    keep, drop, errors = [], [], []
    for item in items:
        ids, current = _claim_ids(item)
        if unknown := [i for i in ids if i not in st.claims]:
            ledger = config.getoption("--claims-ledger")
            errors.append((item.nodeid, f"unknown claim id(s) {unknown} (not in {ledger})"))
            continue
        if not ids and _needs_claim(item):
            errors.append((item.nodeid, "cites no claim; add @pytest.mark.claim('ID')"))
            continue
        if st.pattern_given and not set(ids) & st.selected:
            drop.append(item)
            continue
        keep.append(item)
        b = _backend_of(item)
        if any(st.claims[i].kind == "statistical" for i in ids):
            item.add_marker(pytest.mark.statistical)
        if not item.get_closest_marker("xdist_group"):  # `--dist loadgroup`: a module's tests on one backend per worker
            item.add_marker(pytest.mark.xdist_group(group_name(item.nodeid, b)))
        for m, reasons in (("cuda", missing_needs(["cuda"])), ("real_data", missing_needs(["real-data"])),
                           ("pretrained", missing_needs(["pretrained"]))):
            if item.get_closest_marker(m) and reasons:
                item.add_marker(pytest.mark.skip(reason=reasons[0]))
        if not current:
            for b2 in [b] if b else []:
                drift = [f"{i} {st.claims[i].drift(b2)}" for i in ids if st.claims[i].drift(b2)]
                if drift:
                    item.add_marker(pytest.mark.xfail(strict=True, reason="; ".join(drift)))
        item.stash[_NODEID] = item.nodeid
        for i in ids:
            st.tests[i].add(item.nodeid)
    if errors and not is_worker(config):
        raise pytest.UsageError("claims: \n  " + "\n  ".join(f"{n}: {e}" for n, e in errors))
    for n, e in errors:  # an xdist worker's UsageError never reaches the controller: a collection error does
        config.hook.pytest_collectreport(report=pytest.CollectReport(n, "failed", f"claims: {n}: {e}", []))
    if is_worker(config):  # the controller collects nothing: it learns which tests cite which claim from here
        config.workeroutput[RESULT] = {i: sorted(t) for i, t in st.tests.items()}
    if drop:
        config.hook.pytest_deselected(items=drop)
    if drop or errors:
        items[:] = keep
    if is_worker(config) and getattr(config.option, "loadgroup", False):  # a worker's "dist" is "no"; xdist keeps this
        heaviest_groups_first(items, config.workerinput.get(DURATIONS, {}))


# ---------------------------------------------------------------- the order groups start in under --dist loadgroup
DURATIONS = "spec_durations"  # workerinput key: seconds per test id, from .cache/spec-durations.json
LIGHT, HEAVY = 0.1, 2.0  # the seconds guessed for a test that no run has timed yet: HEAVY when slow or statistical


def heavy(item) -> bool:
    return bool(item.get_closest_marker("slow") or item.get_closest_marker("statistical")) and not any(
        m.name == "skip" for m in item.iter_markers())


def heaviest_groups_first(items, seconds: dict):
    """Order the groups (group_of) by their seconds, the sum of their tests' `seconds` from earlier runs (a test not
    timed yet: LIGHT, or HEAVY when slow or statistical and run here), keeping each group's tests in their order. Under
    `--dist loadgroup` the workers send their collection in this order and ModuleBackendScheduling hands the groups
    out in it, longest first: the long training groups start first and the short ones even out the end. Ordered by
    number of tests (xdist's own order) the regression runs came last, one worker 4-9 s behind the other (stop 21);
    by test counts weighted for slow tests, the 96 quick tests of test_learner_faults went before Pets (stop 22)."""
    first, weight = {}, defaultdict(float)
    for k, it in enumerate(items):
        g = group_of(it.nodeid)
        first.setdefault(g, k)
        weight[g] += seconds.get(it.nodeid, HEAVY if heavy(it) else LIGHT)
    items.sort(key=lambda it: (-weight[group_of(it.nodeid)], first[group_of(it.nodeid)]))


def durations_path(config) -> Path:
    "Seconds per test id of earlier runs under this root: read when a run starts, updated when it ends."
    return config.rootpath / ".cache" / "spec-durations.json"


def read_durations(path: Path) -> dict | None:
    "The file's {test id: seconds}; {} when there is none; None when it is not such a file (then left alone)."
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    ok = isinstance(d, dict) and all(isinstance(k, str) and type(v) in (int, float) for k, v in d.items())
    return d if ok else None


_KNOWN = pytest.StashKey[dict]()  # the controller's copy of the durations, read once


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    "xdist's controller hands each worker the same durations, read once: every worker must order its tests alike."
    if _KNOWN not in node.config.stash:
        node.config.stash[_KNOWN] = read_durations(durations_path(node.config)) or {}
    node.workerinput[DURATIONS] = node.config.stash[_KNOWN]


def write_durations(path: Path, seconds: dict):
    """Merges a run's seconds per test id into the file (written whole, then renamed into place); a file there that
    is not such a table is not ours to overwrite."""
    old = read_durations(path)
    if not seconds or old is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**old, **{k: round(v, 3) for k, v in seconds.items()}}, indent=0, sort_keys=True))
    os.replace(tmp, path)


def _needs_claim(item) -> bool:
    "Spec tests must cite a claim; the plugin's own meta-tests and benches need not."
    p = Path(str(item.fspath)).resolve()
    return p.parent == Path(__file__).resolve().parent and p.name.startswith("test_")


# ---------------------------------------------------------------- results
class State:
    def __init__(self, claims, selected, backends):
        self.claims, self.selected, self.backends = claims, selected, backends
        self.pattern_given = len(selected) != len(claims)
        self.ran_only = False                        # the table lists only claims with a result (testmon runs)
        self.tests = defaultdict(set)                # claim id -> node ids
        self.out = defaultdict(list)                 # (claim id, backend) -> [(status, reason, nodeid, current)]
        self.workers = set()                         # xdist workers whose results arrived (none: a serial run)
        self.worker_env = []                         # the workers' distinct libraries(), from their workeroutput

    def record(self, r: dict):
        "One report's claim result (see pytest_runtest_makereport): recorded in order-independent form."
        for i in r["ids"]:  # a test without the backend fixture counts for every backend its claim concerns
            self.tests[i].add(r["nodeid"])
            for b2 in [r["backend"]] if r["backend"] else [x for x in self.backends if x in self.claims[i].backends]:
                self.out[i, b2].append((r["status"], r["reason"], r["nodeid"], r["current"]))

    def status(self, cid, b) -> tuple[str, str]:
        "Aggregate of one claim on one backend: failed > xfailed > passed > skipped > untested."
        rs = self.out.get((cid, b), [])
        c = self.claims[cid]
        if b not in c.backends and not rs:
            return "n/a", f"our own contract: concerns {', '.join(c.backends)} only"
        if not rs:
            if c.kind == "benchmark":  # the latest applicable measurement in results/ or .benchmarks/
                return _benchclaims.status(cid, c)
            return "untested", "no test of it ran in this session" if self.tests.get(cid) or self.ran_only else (
                "no test cites it")
        got = {s for s, *_ in rs}
        lesson = [r for r in rs if not r[3]]
        if "failed" in got:
            s = "failed"
        elif any(s == "xfailed" for s, *_ in lesson):
            s = "xfailed"
        elif "passed" in got:
            s = "passed"
        else:
            s = "skipped"
        reasons = sorted({r for st, r, *_ in rs if st == s and r})
        return s, "; ".join(reasons)


STATE = pytest.StashKey[State]()


def state(config) -> State:
    "The plugin's state for this run (set in pytest_configure)."
    return config.stash[STATE]


class _Results:
    "Records the claim result each report carries; under xdist on the controller, to which workers forward reports."

    def __init__(self, st: State, config):
        self.st, self.config, self.seconds = st, config, defaultdict(float)  # seconds: per test id, for the next run

    def pytest_sessionstart(self, session):
        testmon = getattr(session.config, "testmon_config", None)  # pytest-testmon's, set in its pytest_configure
        self.st.ran_only = session.config.getoption("--claims-ran-only") or bool(getattr(testmon, "select", False))

    def pytest_runtest_logreport(self, report):
        if r := getattr(report, RESULT, None):
            self.st.record(r)
        self.seconds[plain_id(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session):
        write_durations(durations_path(self.config), self.seconds)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        "An xdist worker finished (or crashed: then its tests map is missing, and the reports that came still count)."
        self.st.workers.add(node.gateway.id)
        for i, ids in getattr(node, "workeroutput", {}).get(RESULT, {}).items():
            self.st.tests[i].update(ids)
        if (env := getattr(node, "workeroutput", {}).get(WORKER_ENV)) and env not in self.st.worker_env:
            self.st.worker_env.append(env)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    "Attach the claim result to the report (a plain dict: xdist serialises it with the report for the controller)."
    outcome = yield
    rep = outcome.get_result()
    ids, current = _claim_ids(item)
    if not ids:
        return
    if rep.failed and STATE in item.config.stash:
        rep.sections.append((SECTION, claim_section(state(item.config).claims, ids, _backend_of(item) or None)))
    if rep.when == "call" or (rep.when == "setup" and not rep.passed) or (rep.when == "teardown" and rep.failed):
        if hasattr(rep, "wasxfail"):
            status = "failed" if rep.passed else "xfailed"  # a passing strict xfail is reported failed by pytest too
            reason = rep.wasxfail or ""
        elif rep.skipped:
            status = "skipped"
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            reason = reason.removeprefix("Skipped: ")
        else:
            status = rep.outcome  # passed / failed
            reason = "" if rep.passed else f"{rep.when} failed: {_short(rep)}"
        setattr(rep, RESULT, {"nodeid": item.stash.get(_NODEID, item.nodeid), "ids": ids, "current": current,
                              "backend": _backend_of(item) or None, "status": status, "reason": reason})


def claim_section(claims, ids, backend=None) -> str:
    "What a failing test's report shows of the claims it cites: the ledger's words, not a copy in the test."
    out = []
    for cid in ids:
        c = claims[cid]
        where = f"transcript lines {c.lines[0]}-{c.lines[-1]}" if c.lines else f"source: {c.raw.get('source', '?')}"
        out += [f"{cid} ({c.section}; {c.kind}; {where})", f"  quote:     {c.quote!r}"]
        out += textwrap.wrap(c.statement, 116, initial_indent="  statement: ", subsequent_indent=" " * 13)
        for b in [backend] if backend else c.backends:
            status, why = c.expect.get(b, ("holds", ""))
            out.append(f"  expected on {b}: {status}" + (f" ({why})" if why else ""))
        text = transcript(tuple(c.lines)) if c.lines else None
        if text:
            out += textwrap.wrap(text, 116, initial_indent=f"  T:L{c.lines[0]}-{c.lines[-1]}: ",
                                 subsequent_indent="    ")
    return "\n".join(out)


def transcript_path() -> Path | None:
    "The lesson's transcript: env LESSON6_TRANSCRIPT, else shared/ in the checkout or beside it."
    env = os.environ.get("LESSON6_TRANSCRIPT")
    cands = ([Path(env)] if env else []) + [ROOT / "shared" / "lesson6-transcript.txt",
                                            ROOT.parent / "shared" / "lesson6-transcript.txt"]
    return next((p for p in cands if p.is_file()), None)


@cache
def transcript(lines: tuple) -> str | None:
    "Transcript lines [first, last] (1-based) joined into one paragraph; None when the transcript is not here."
    p = transcript_path()
    if p is None:
        return None
    text = p.read_text(encoding="utf-8").splitlines()
    return " ".join(x.strip() for x in text[lines[0] - 1:lines[-1]]) or None


def _short(rep) -> str:
    crash = getattr(rep.longrepr, "reprcrash", None)
    return (crash.message if crash else str(rep.longrepr)).splitlines()[0][:200] if rep.longrepr else ""


# ---------------------------------------------------------------- environment, header, table, JSON, strict
def environment(config=None) -> dict:
    """Where the claims ran: Python, the libraries and the torch device (from the workers under xdist), the run's
    settings and the commit."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    st = state(config) if config is not None else None
    env.update(st.worker_env[0] if st and st.worker_env else libraries())
    if st and len(st.worker_env) > 1:  # workers on other hosts (--tx ssh=...) with other libraries or devices
        env["other_workers"] = st.worker_env[1:]
    env["hypothesis_profile"] = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    if config is not None:
        env["backends"] = st.backends
        env["workers"] = len(st.workers)  # pytest-xdist workers; 0: a serial run
    env["spec_data"] = str(real_data_path()) if real_data_path() else None
    env["commit"] = _git("rev-parse", "HEAD")
    env["dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no")) if env["commit"] else None
    return env


def libraries() -> dict:
    """The libraries' versions and the torch device. Imports torch, torchvision and pandas (5-7 s in a fresh process):
    an xdist controller, which collects nothing, takes them from its workers instead (WORKER_ENV)."""
    env = {}
    for mod in ("torch", "torchvision", "fastai", "numpy", "pandas", "hypothesis"):
        try:
            if mod == "fastai" and mod not in sys.modules:  # its metadata, not a 5 s import (impl-only, testmon runs)
                env[mod] = _version(mod)
            else:
                env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
            env[mod] = None
    try:
        import torch
        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
        env["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        env["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
        env["matmul_precision"] = torch.get_float32_matmul_precision()
    except ImportError:
        env["device"] = "unknown (torch missing)"
    return env


def _git(*args) -> str | None:
    import subprocess
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
        return out.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def pytest_report_header(config):
    if is_worker(config):  # nobody reads a worker's header
        return []
    if distributed(config):  # package metadata: importing torch here would hold back the workers' start by 5-7 s
        e = {m: _version(m) for m in ("torch", "torchvision", "fastai")}
        device = "the workers', named at the end"
    else:
        device = device_line(e := libraries())
    return [f"lesson6-spec: python {platform.python_version()}, torch {e['torch']}, torchvision {e['torchvision']}, "
            f"fastai {e['fastai']}",
            f"device: {device}; hypothesis profile {os.environ.get('HYPOTHESIS_PROFILE', 'dev')}; "
            f"backend(s) {', '.join(state(config).backends)}; ledger {len(state(config).claims)} claims"]


def device_line(e: dict) -> str:
    return f"{e['device']}; TF32 matmul={e['tf32_matmul']} cudnn={e['tf32_cudnn']}"


def distributed(config) -> bool:
    "An xdist controller: its workers run the tests."
    return not is_worker(config) and getattr(config.option, "dist", "no") != "no"


def _version(mod) -> str | None:
    try:
        return version(mod)
    except PackageNotFoundError:
        return None


def rows(st: State) -> list[dict]:
    out = []
    for cid in sorted(st.selected, key=_ledger.id_key):
        c = st.claims[cid]
        res = {b: st.status(cid, b) for b in st.backends}
        out.append({"id": cid, "section": c.section, "lines": c.lines, "quote": c.quote, "statement": c.statement,
                    "kind": c.kind, "needs": list(c.needs), "tests": len(set(st.tests[cid])),
                    "test_ids": sorted(set(st.tests[cid])),
                    "expect": {b: {"status": c.expect[b][0], "reason": c.expect[b][1]} for b in _ledger.BACKENDS},
                    "results": {b: s for b, (s, _) in res.items()},
                    "reasons": {b: r for b, (_, r) in res.items()}, **_benchclaims.row_extra(cid, c)})
    order = list(dict.fromkeys(c.section for c in st.claims.values()))
    return sorted(out, key=lambda r: (order.index(r["section"]), _ledger.id_key(r["id"])))


def ran(r: dict) -> bool:
    "Some test of this claim ran in this session (on some backend)."
    return any(s not in ("untested", "n/a") for s in r["results"].values())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if is_worker(config):  # xdist's controller prints the table and writes the JSON
        return
    st = state(config)
    rs = rows(st)
    tr = terminalreporter
    if distributed(config) and st.worker_env:  # the header could not name it (pytest_report_header)
        tr.write_line("device: " + " | ".join(device_line(e) for e in st.worker_env))
    if not config.getoption("--no-claims-table"):
        width = max(80, min(shutil.get_terminal_size((140, 20)).columns, 160))
        shown = [r for r in rs if ran(r)] if st.ran_only else rs
        title = f"claims ({len(shown)}" + (f" of {len(rs)} ran" if st.ran_only else "")
        tr.write_sep("=", f"{title}; backend(s) {', '.join(st.backends)})")
        sw = max(30, width - 12 - 11 * len(st.backends))
        tr.write_line(f"{'claim':<10} {'statement':<{sw}} " + " ".join(f"{b:<10}" for b in st.backends))
        section = None
        for r in shown:
            if r["section"] != section:
                section = r["section"]
                tr.write_line(f"-- {section}")
            stmt = textwrap.shorten(r["statement"], sw)
            tr.write_line(f"{r['id']:<10} {stmt:<{sw}} " + " ".join(f"{r['results'][b]:<10}" for b in st.backends))
            for b in st.backends:
                if r["results"][b] in ("skipped", "xfailed", "failed", "measured") and r["reasons"][b]:
                    tr.write_line(f"{'':<10}   {b} {r['results'][b]}: {textwrap.shorten(r['reasons'][b], width - 30)}")
        counts = {b: {s: sum(r["results"][b] == s for r in shown) for s in ORDER} for b in st.backends}
        for b, c in counts.items() if shown else ():
            tr.write_line(f"{b}: " + ", ".join(f"{n} {s}" for s, n in c.items() if n))
        if len(shown) < len(rs):
            tr.write_line(f"{len(rs) - len(shown)} claim(s) not rerun in this session, not listed (`nox -s spec` runs "
                          "them all)")
    if path := config.getoption("--claims-json"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"claims": rs, "environment": environment(config)}, indent=1, default=str))
        tr.write_line(f"claims JSON written to {path}")
    if config.getoption("--claims-strict"):
        bad = strict_failures(st, rs)
        if bad:
            msg = f"--claims-strict: {len(bad)} claim result(s) neither passed nor expected drift"
            tr.write_sep("=", msg, red=True)
            for line in bad[:60]:
                tr.write_line("  " + line)
            if len(bad) > 60:
                tr.write_line(f"  ... and {len(bad) - 60} more")


def strict_failures(st: State, rs: list[dict]) -> list[str]:
    "Claims testable on this machine (kind other than benchmark, needs met) without a passed/xfailed result."
    bad = []
    for r in rs:
        if r["kind"] == "benchmark" or missing_needs(r["needs"]):
            continue
        for b in st.backends:
            if r["results"][b] not in ("passed", "xfailed", "n/a"):
                bad.append(f"{r['id']} [{b}]: {r['results'][b]} {('- ' + r['reasons'][b]) if r['reasons'][b] else ''}")
    return bad


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if is_worker(config):  # before xdist sends the workeroutput (its hook wraps this one)
        config.workeroutput[WORKER_ENV] = json.loads(json.dumps(libraries(), default=str))  # plain types for execnet
    if config.getoption("--claims-strict") and exitstatus == 0 and not is_worker(config):
        st = state(config)
        if strict_failures(st, rows(st)):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

