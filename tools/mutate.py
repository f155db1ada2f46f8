"""Mutation testing of impl by the spec: mutmut over impl/ with the impl backend, results in results/mutation.md.

    python tools/mutate.py [impl/MODULE.py ...] [--together] [--fresh] [--max-children N] [--allow-failing]
                           [--time-limit S] [--report-only]
    nox -s mutate [-- impl/metrics.py ...]          (no module: every impl module; hours on two cores)

The configuration is pyproject's [tool.mutmut]: mutmut copies impl/ (mutated), spec/, fixtures/ and tools/ into
mutants/, records once which not-slow spec tests (`--backend=impl`) reach each impl function (its stats run: the
selected suite once; the fixtures are made once under mutants/.cache/), then runs, for each mutant, only the tests
that reach its function. This driver runs one `mutmut run` per module (each module gets its own wall time; with
--together one for all of them, and --time-limit stops a run and keeps what it checked), reads
mutmut's verdicts from mutants/impl/MODULE.py.meta, keeps each module's latest run in results/mutation.json and
renders results/mutation.md from it. A survivor listed in results/mutation-equivalent.toml (same function, same
changed line before and after) counts as equivalent: score = killed / (mutants - equivalent).

mutmut needs a green baseline (its stats run stops at the first failing test). On a tree where some tests fail for
reasons of their own, --allow-failing runs the selected tests once unmutated first and deselects the failing ones
(listed with the run in results/mutation.md).

This module is also the pytest plugin that [tool.mutmut] loads (`-p tools.mutate`): the hypothesis profile `mutate`
(the dev profile's 25 examples, derandomized, no example database, no shrinking), so a mutant's verdict depends
neither on the run's random draws nor on examples that earlier mutants left behind, and a failing example kills at
once. It also records what the driver reads back (env MUTATE_FAILURES, MUTATE_TIMES, MUTATE_DOCSTRINGS: tests failing
on unmutated code, each mutant's run time, docstring-only mutants, which it ends at once) and freezes the fork
server's warmed heap in each mutant's run (gc.freeze: pytest's exit-time gc.collect() calls then cost 1.2 s, not 4-6).
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import fnmatch
import gc
import importlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "results" / "mutation.json"
REPORT = ROOT / "results" / "mutation.md"
TRIAGE = ROOT / "results" / "mutation-equivalent.toml"
OPEN = ROOT / "results" / "mutation-open.toml"  # survivors neither killed nor equivalent, each with why it is left
FAILURES = ROOT / "mutants" / "failing-unmutated.txt"  # what the plugin records during mutmut's runs
TIMES = ROOT / "mutants" / "mutant-times.txt"
DOCSTRINGS = ROOT / "mutants" / "docstring-mutants.txt"
GOAL = 0.90
GOAL_MODULES = ("layers", "losses", "metrics", "schedule", "interpret", "collab", "readers")


# ---------------------------------------------------------------- the pytest plugin (loaded in mutmut's runs)
_PHASES = ("", "stats", "fail", "list_all_tests", "mutant_generation")  # MUTANT_UNDER_TEST outside a mutant's run
# No shrinking: a mutant needs one failing example, and shrinking it can take longer than the timeout (a kill
# would read as a timeout).
settings.register_profile("mutate", max_examples=25, deadline=None, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False, print_blob=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Load the `mutate` profile after the spec's plugin has loaded its own (dev or ci). In a mutant's run, freeze
    the heap the fork server warmed up (torch, the spec's modules): pytest's gc.collect() calls at exit then skip it,
    1.2 s per run instead of 4-6 s (measured in-process on this suite)."""
    settings.load_profile("mutate")
    if os.environ.get("MUTANT_UNDER_TEST", "") not in _PHASES:
        gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """In a mutant's run, run its tests fastest first, by the durations mutmut's stats run recorded. mutmut passes
    them as a set (hash order) and stops at the first failure (-x), so a kill then costs the fastest test that
    reaches the function, not whichever slow training test came first (test_collab's took 20-30 s each)."""
    if os.environ.get("MUTANT_UNDER_TEST", "") in _PHASES:
        return
    try:
        dur = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return
    items.sort(key=lambda i: dur.get(i.nodeid, float("inf")))  # stable: unknown tests keep their order, last


def pytest_runtest_logreport(report):
    """With MUTATE_FAILURES=PATH: append the node id of each failing test (setup, call or teardown) to PATH, in runs
    of unmutated code (the baseline, mutmut's stats and clean runs; a mutant's failures are its kills)."""
    path = os.environ.get("MUTATE_FAILURES")
    if path and report.failed and os.environ.get("MUTANT_UNDER_TEST", "") in ("", "stats"):
        with open(path, "a") as f:
            f.write(report.nodeid + "\n")


_t0 = None


def pytest_sessionstart(session):
    """Time this run; with MUTATE_DOCSTRINGS=PATH, end a docstring-only mutant's run at once as a survivor (exit 0:
    its bytecode is the original's, so no test can tell them apart) and append its name to PATH."""
    global _t0
    _t0 = time.time()
    path, m = os.environ.get("MUTATE_DOCSTRINGS"), os.environ.get("MUTANT_UNDER_TEST", "")
    if path and m not in _PHASES and docstring_only(m):
        with open(path, "a") as f:
            f.write(f"{m} {_t0:.3f}\n")
        pytest.exit("docstring-only mutant", returncode=0)


def docstring_only(name: str) -> bool:
    "Whether mutant `name` (mod.x_f__mutmut_3, mod.xǁCǁf__mutmut_3) differs from the original in f's docstring only."
    mod, _, fn = name.rpartition(".")
    try:
        owner = importlib.import_module(mod)
        if fn.startswith("xǁ"):
            owner = getattr(owner, fn.split("ǁ")[1])
        f, o = getattr(owner, fn), getattr(owner, fn.partition("__mutmut_")[0] + "__mutmut_orig")
    except (ImportError, AttributeError, IndexError):
        return False
    return f.__doc__ != o.__doc__ and _same_code(f.__code__, o.__code__, f.__doc__, o.__doc__)


def _same_code(a, b, doc_a=None, doc_b=None) -> bool:
    "Same bytecode, names and constants (nested code objects alike), line numbers and the docstrings aside."
    ca = [x for x in a.co_consts if x is not doc_a or doc_a is None]
    cb = [x for x in b.co_consts if x is not doc_b or doc_b is None]
    return (a.co_code == b.co_code and a.co_names == b.co_names and a.co_varnames == b.co_varnames
            and len(ca) == len(cb) and all(_same_code(x, y) if hasattr(x, "co_code") and hasattr(y, "co_code")
                                           else type(x) is type(y) and x == y for x, y in zip(ca, cb)))


def pytest_sessionfinish(session, exitstatus):
    "With MUTATE_TIMES=PATH: append 'mutant start end' of this mutant's test run (mutmut 3's fork server reports none)."
    path, m = os.environ.get("MUTATE_TIMES"), os.environ.get("MUTANT_UNDER_TEST", "")
    if path and m not in _PHASES and _t0 is not None:
        with open(path, "a") as f:
            f.write(f"{m} {_t0:.3f} {time.time():.3f}\n")


# ---------------------------------------------------------------- the driver
def main(argv=None) -> int:
    a = _args(argv)
    os.chdir(ROOT)  # mutmut reads pyproject.toml and writes mutants/ in the current directory
    if a.report_only:
        render()
        return 0
    mods = modules(a.modules)
    if a.fresh:
        shutil.rmtree("mutants", ignore_errors=True)
    Path("mutants").mkdir(exist_ok=True)
    n = a.max_children or os.cpu_count() or 1
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HYPOTHESIS_PROFILE="mutate")
    # one torch thread per worker: parallelism is across mutants, and a forked child never meets an OpenMP pool
    failing = sorted(set(a.deselect) | set(baseline(env) if a.allow_failing else []))
    if failing:
        extra = " ".join(shlex.quote(f"--deselect={x}") for x in failing)
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} {extra}".strip()
    run = run_info(n, failing, a)  # deselected: given with --deselect, or found failing by --allow-failing
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if not mutmut:
        sys.exit("tools/mutate.py: mutmut is not installed (pip install -e '.[mutate]')")
    status = "survived" if a.survivors else "not checked" if a.unchecked else "changed" if a.functions else None
    todo = {x: survivors([x], status) for x in mods} if status in ("survived", "not checked") else {}  # read once
    if a.functions:  # patterns for mutmut; the names are read from its meta file after the run
        todo = {x: [f"{f}__mutmut_*" for f in a.functions if f.startswith(f"impl.{Path(x).stem}.")] for x in mods}
        run = _noted(run, f"every mutant of {', '.join(a.functions)} (changed since their last run)")
    elif status:
        run = _noted(run, f"the previous run's {status} mutants only (" + ", ".join(
            f"{Path(x).stem} {len(todo[x])}" for x in mods) + ")")
    if a.together and len(mods) > 1:  # one mutmut run: one copy, clean run and forced-fail run for all of them
        run = _noted(run, f"one mutmut run for {', '.join(mods)} (wall s: the whole run's)")
    for batch in [mods] if a.together else [[m] for m in mods]:
        m = ", ".join(batch)
        print(f"\n=== mutmut: {m} ({n} worker(s)) ===", flush=True)
        _drop_half_written()
        seen = FAILURES.read_text().split() if FAILURES.exists() else []
        started, t = time.time(), time.monotonic()
        names = [k for x in batch for k in todo[x]] if status else [f"impl.{Path(x).stem}.*" for x in batch]
        if not names:
            print(f"{m}: no survivors to rerun")
            continue
        proc = subprocess.Popen([mutmut, "run", "--max-children", str(n), *names],
                                env=dict(env, MUTATE_FAILURES=str(FAILURES), MUTATE_TIMES=str(TIMES),
                                         MUTATE_DOCSTRINGS=str(DOCSTRINGS)), start_new_session=True)
        try:
            rc = proc.wait(timeout=a.time_limit)
        except subprocess.TimeoutExpired:  # stop mutmut and its workers; what it checked is kept, the rest listed
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            rc, run = 0, _noted(run, f"stopped by --time-limit {a.time_limit:.0f} s")
        wall = time.monotonic() - t
        if rc:
            new = sorted(set(FAILURES.read_text().split()) - set(seen)) if FAILURES.exists() else []
            print(f"tools/mutate.py: mutmut failed on {m} (exit {rc}); its previous result is kept.", file=sys.stderr)
            if new:
                print("Tests that failed on unmutated code in mutants/ (fix them, or pass --deselect NODEID):"
                      + "".join(f"\n  {x}" for x in new), file=sys.stderr)
            return rc
        store = _load_store()
        if a.functions:  # the patterns, expanded over the mutants mutmut made this time
            for x in batch:
                keys = json.loads((ROOT / "mutants" / (x + ".meta")).read_text())["exit_code_by_key"]
                todo[x] = [k for k in keys if any(fnmatch.fnmatchcase(k, p) for p in todo[x])]
        for m in batch:
            store[m] = rec = (recheck(store[m], m, todo[m], run, wall, started) if status
                              else collect(m, wall, run, started))
            c = rec["counts"]
            print(f"{m}: {rec['total']} mutants, killed {c.get('killed', 0)}, survived {c.get('survived', 0)}, "
                  f"score {_pct(rec)}, {wall:.0f} s", flush=True)
        STORE.write_text(json.dumps(store, indent=1, ensure_ascii=False) + "\n")
        render()
    print(f"\nwrote {REPORT.relative_to(ROOT)} and {STORE.relative_to(ROOT)}")
    return 0


def recheck(old: dict, m: str, names: list[str], run: dict, wall: float, started: float) -> dict:
    """`old` (the module's last full record) with the verdicts of the rechecked mutants `names` taken from mutmut's meta
    file (docstring-only ones recognised since `started`); the rest of the record (its run, timings) stays."""
    from mutmut.stats import status_by_exit_code

    codes = json.loads((ROOT / "mutants" / (m + ".meta")).read_text())["exit_code_by_key"]
    docs, defs = _records(DOCSTRINGS), _def_lines(ROOT / m)
    doc = {k for k, t in docs if k in codes and float(t[0]) >= started}
    new = {k: "docstring" if k in doc and codes[k] == 0 else status_by_exit_code.get(codes[k], f"exit {codes[k]}")
           for k in names if k in codes}
    listed, ever_doc, counts = {x["mutant"] for x in old["not_killed"]}, {k for k, _ in docs}, {}
    for k, c in codes.items():  # counted again from the meta file: a changed function may have more or fewer mutants
        s = new.get(k) or ("docstring" if k in ever_doc and c == 0 else status_by_exit_code.get(c, f"exit {c}"))
        counts[s] = counts.get(s, 0) + 1
    rest = [dict(x, status=new[x["mutant"]], **_fresh(m, x, defs)) if x["mutant"] in new else x
            for x in old["not_killed"]]
    rest += [dict(x, status=v, **_fresh(m, x, defs)) for k, v in sorted(new.items(), key=lambda kv: _natural(kv[0]))
             if k not in listed for x in [{"mutant": k, "function": _function(k)}]]
    done = {"run": run, "wall_s": round(wall, 1), "rechecked": len(new), "killed": sum(v == "killed" for v in
            new.values())}
    return dict(old, total=len(codes), counts=counts,
                not_killed=[x for x in rest if x["status"] not in ("killed", "docstring")],
                rechecks=[*old.get("rechecks", []), done])


def _fresh(m: str, x: dict, defs: dict) -> dict:
    """A rechecked mutant's change as mutmut made it this time (the code may have changed since its name was recorded:
    names are numbers within a function); defs: _def_lines of the module."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    before, after, line = _change(get_diff_for_mutant(x["mutant"], path=m), defs.get(x["function"].split(".", 2)[2]))
    return {"before": before, "after": after, "line": line}


def survivors(mods, status="survived") -> list[str]:
    """Names of the mutants of `mods` that their last recorded run left with `status` ("survived": less those triaged
    equivalent or left open with a reason, which would only survive again; "not checked": never run, their run
    stopped by its time limit)."""
    store, triage = _load_store(), load_triage() + load_triage(OPEN, "open")
    return [x["mutant"] for m in mods for x in store.get(m, {}).get("not_killed", [])
            if x["status"] == status and not _equivalent(x, triage)]


def _noted(run: dict, text: str) -> dict:
    "The run's record with `text` appended to its note."
    return dict(run, note=f"{run['note']}; {text}" if run["note"] else text)


def _drop_half_written() -> None:
    """Delete mutated files that an interrupted run left half written (mutmut writes X.py, then X.py.meta, and
    regenerates X.py only when impl/X.py is newer): without this an empty file would stay and pass for a mutant."""
    for py in (ROOT / "mutants" / "impl").glob("*.py"):
        meta = py.with_name(py.name + ".meta")
        if not meta.exists() or meta.stat().st_mtime < py.stat().st_mtime:
            py.unlink()


def _args(argv):
    p = argparse.ArgumentParser(prog="tools/mutate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", metavar="impl/MODULE.py", help="modules to mutate (default: all of impl)")
    p.add_argument("--fresh", action="store_true", help="delete mutants/ first (new copy, new stats run)")
    p.add_argument("--max-children", type=int, default=None, metavar="N", help="parallel workers (default: cores)")
    p.add_argument("--allow-failing", action="store_true",
                   help="run the selected tests once unmutated and deselect the failing ones (listed in the report)")
    p.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                   help="deselect this test (node id prefix) in every run; listed in the report")
    p.add_argument("--together", action="store_true",
                   help="one mutmut run for all the modules given (saves each module's clean and forced-fail runs of "
                        "the suite; the wall time is then the whole run's)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop each mutmut run after S seconds and record what it checked (the rest as not checked)")
    p.add_argument("--survivors", action="store_true",
                   help="rerun only the mutants the module's last run left survived, less those listed equivalent or "
                        "open (after new tests; the others keep their verdicts, and the module's row shows this run)")
    p.add_argument("--unchecked", action="store_true",
                   help="run only the mutants the module's last run did not check (stopped by --time-limit), merging "
                        "their verdicts into its record as --survivors does")
    p.add_argument("--functions", nargs="+", default=None, metavar="NAME",
                   help="rerun every mutant of these functions (mutmut's names without the number, e.g. "
                        "'impl.learner.xǁLearnerǁ_fit'), merging their verdicts as --survivors does: after changing a "
                        "function, whose mutants mutmut renumbers and leaves unrun")
    p.add_argument("--note", default="", help="one line recorded with the run (e.g. why it was made, what was odd)")
    p.add_argument("--report-only", action="store_true",
                   help="only re-render results/mutation.md (after editing the triage file)")
    a = p.parse_args(argv)
    if a.max_children is not None and a.max_children < 1:
        p.error(f"--max-children must be >= 1, got {a.max_children}")
    return a


def modules(given) -> list[str]:
    "impl/X.py paths, checked; none given: every impl module that defines a function."
    if not given:
        return [f"impl/{p.name}" for p in sorted((ROOT / "impl").glob("*.py")) if p.name != "__init__.py"]
    out = []
    for g in given:
        p = (ROOT / g).resolve() if not Path(g).is_absolute() else Path(g)
        if p.parent != ROOT / "impl" or p.suffix != ".py" or not p.is_file() or p.name == "__init__.py":
            sys.exit(f"tools/mutate.py: {g!r} is not a module of impl/ (expected e.g. impl/metrics.py)")
        out.append(f"impl/{p.name}")
    return list(dict.fromkeys(out))


def _mutmut_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def baseline(env) -> list[str]:
    "Run the selected tests once, unmutated, in the checkout; return the node ids that fail."
    c = _mutmut_config()
    out = ROOT / ".cache" / "mutate-baseline-failures.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", *c["pytest_add_cli_args_test_selection"], *c["pytest_add_cli_args"], "-q",
           "-p", "no:randomly"]
    print("baseline (unmutated):", shlex.join(cmd), flush=True)
    subprocess.run(cmd, env=dict(env, MUTATE_FAILURES=str(out)))
    failing = sorted(set(out.read_text().split())) if out.exists() else []
    print(f"baseline: {len(failing)} failing test(s) deselected" + "".join(f"\n  {x}" for x in failing), flush=True)
    return failing


def _git(*args) -> str:
    r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.+)", out).group(1).strip()
    except (OSError, AttributeError):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def _version(pkg) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


def run_info(n, failing, a) -> dict:
    changed = _git("status", "--porcelain", "--", "impl", "spec", "fixtures").splitlines()
    return {"date": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
            "commit": _git("rev-parse", "--short=9", "HEAD"),
            "uncommitted": len(changed),
            "machine": _cpu(), "load": round(os.getloadavg()[0], 1), "workers": n,
            "python": platform.python_version(), "torch": _version("torch"), "mutmut": _version("mutmut"),
            "deselected": failing, "fresh": a.fresh, "note": a.note}


def _function(key: str) -> str:
    "impl.interpret.xǁClassificationInterpretationǁmost_confused__mutmut_2 -> impl.interpret.ClassificationInterpret…"
    mod, _, f = key.partition("__mutmut_")[0].rpartition(".")
    f = f[2:] if f.startswith("x_") else ".".join(s for s in f[1:].split("ǁ") if s)
    return f"{mod}.{f}"


def _def_lines(path) -> dict:
    "function name ('f' or 'Class.f') -> first line of its source (the decorator's, if any)."
    out = {}
    for node in ast.parse(Path(path).read_text()).body:
        items = [(node, "")] if isinstance(node, ast.FunctionDef) else []
        if isinstance(node, ast.ClassDef):
            items = [(n, node.name + ".") for n in node.body if isinstance(n, ast.FunctionDef)]
        for fn, prefix in items:
            out[prefix + fn.name] = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    return out


def _change(diff: str, start: int | None) -> tuple[str, str, int | None]:
    "The changed lines of a mutmut diff (stripped, joined with ' ⏎ ') and the line number of the first one."
    before, after, line, n = [], [], None, None
    for s in diff.splitlines():
        if s.startswith(("---", "+++")):
            continue
        if s.startswith("@@"):
            n = int(re.match(r"@@ -(\d+)", s).group(1))
            continue
        if s.startswith("-"):
            before.append(s[1:].strip())
        elif s.startswith("+"):
            after.append(s[1:].strip())
        if s.startswith(("-", "+")) and line is None and start is not None and n is not None:
            line = start + n - 1
        if not s.startswith("+") and n is not None:
            n += 1
    return " ⏎ ".join(before), " ⏎ ".join(after), line


def collect(m: str, wall: float, run: dict, started: float) -> dict:
    "One module's verdicts from mutmut's meta file; the mutants not killed with their change."
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    meta = json.loads((ROOT / "mutants" / (m + ".meta")).read_text())
    codes = meta["exit_code_by_key"]
    defs = _def_lines(ROOT / m)
    doc = {k for k, t in _records(DOCSTRINGS) if k in codes and float(t[0]) >= started}
    counts, rest = {}, []
    for key, code in sorted(codes.items(), key=lambda kv: _natural(kv[0])):
        s = "docstring" if key in doc and code == 0 else status_by_exit_code.get(code, f"exit {code}")
        counts[s] = counts.get(s, 0) + 1
        if s not in ("killed", "docstring"):
            fn = _function(key)
            before, after, line = _change(get_diff_for_mutant(key, path=m), defs.get(fn.split(".", 2)[2]))
            rest.append({"mutant": key, "status": s, "function": fn, "line": line, "before": before, "after": after})
    runs = {k: (float(t0), float(t1)) for k, (t0, t1) in _records(TIMES) if k in codes and float(t0) >= started}
    spans = [v for k, v in runs.items() if k not in doc]  # a docstring-only mutant's run ends at once
    return {"module": m, "run": run, "wall_s": round(wall, 1), "total": len(codes), "counts": counts,
            "mutant_s": round(sum(b - a for a, b in spans) / len(spans), 2) if spans else None,
            "phase_s": round(max(b for _, b in runs.values()) - min(a for a, _ in runs.values()), 1) if runs else None,
            "not_killed": rest}


def _records(path) -> list[tuple[str, list[str]]]:
    "The plugin's records in `path`: (mutant name, [fields...]) per line."
    lines = path.read_text().splitlines() if path.exists() else []
    return [(x[0], x[1:]) for x in map(str.split, lines) if x]


def _natural(key):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def _load_store() -> dict:
    return json.loads(STORE.read_text()) if STORE.exists() else {}


def load_triage(path=TRIAGE, table="equivalent") -> list[dict]:
    """results/mutation-equivalent.toml: [[equivalent]] function, before, after, reason (mutant: the name when triaged);
    results/mutation-open.toml: [[open]] entries of the same form for survivors left open, with why."""
    if not path.exists():
        return []
    try:
        entries = tomllib.loads(path.read_text()).get(table, [])
    except tomllib.TOMLDecodeError as e:
        sys.exit(f"tools/mutate.py: {path.relative_to(ROOT)}: {e}")
    for i, e in enumerate(entries, 1):
        missing = [k for k in ("function", "before", "after", "reason") if not str(e.get(k, "")).strip()]
        if missing:
            sys.exit(f"tools/mutate.py: {path.relative_to(ROOT)}: entry {i} ({e.get('mutant', '?')}) lacks "
                     f"{', '.join(missing)}")
    return entries


def _equivalent(x, triage):
    return next((e["reason"] for e in triage if x["status"] == "survived" and
                 (e["function"], e["before"], e["after"]) == (x["function"], x["before"], x["after"])), None)


def _pct(rec, triage=(), checked=False) -> str:
    "killed / (mutants - docstring - equivalent); checked: leaving out the mutants a stopped run never reached too."
    eq = sum(1 for x in rec["not_killed"] if _equivalent(x, triage))
    d = rec["total"] - eq - rec["counts"].get("docstring", 0) - (rec["counts"].get("not checked", 0) if checked else 0)
    return f"{100 * rec['counts'].get('killed', 0) / d:.1f} %" if d else "-"


def _per_mutant(r) -> str:
    tested = r["total"] - sum(r["counts"].get(k, 0) for k in ("no tests", "docstring", "not checked"))
    if not tested:
        return "-"
    return f"{r['phase_s'] / tested:.1f}" if r.get("phase_s") else f"<= {r['wall_s'] / tested:.1f}"


def _code(s: str) -> str:
    s = s or "(nothing)"
    return f"`` {s} ``" if "`" in s else f"`{s}`"


def render() -> None:
    "results/mutation.md from results/mutation.json and the triage file."
    store, triage, left = _load_store(), load_triage(), load_triage(OPEN, "open")
    runs = {}
    for rec in store.values():
        for r in [rec["run"], *(x["run"] for x in rec.get("rechecks", []))]:
            runs.setdefault(json.dumps(r, sort_keys=True), r)
    label = {k: chr(ord("A") + i) for i, k in enumerate(sorted(runs, key=lambda k: runs[k]["date"]))}
    L = ["# Mutation testing of impl by the spec", "",
         "Generated by `nox -s mutate` (`tools/mutate.py`) from `results/mutation.json`: do not edit by hand; triage "
         "survivors in `results/mutation-equivalent.toml`.", "",
         "mutmut 3 mutates impl's functions in a copy (`mutants/`) and runs, for each mutant, the not-slow spec tests "
         "on the impl backend that reach the mutated function (hypothesis profile `mutate`: 25 examples, "
         "derandomized). Mutants that change a docstring only are recognised by their bytecode (the original's) "
         "and not run (`docstring`). Score = killed / (mutants - docstring - equivalent); timeouts, suspicious, "
         "no-tests and not-checked mutants (a run stopped by its time limit) count as not killed; `of checked` "
         "leaves the not-checked ones out. "
         f"Goal: >= {GOAL:.0%} in {', '.join(GOAL_MODULES)}; every other module run once with its "
         "survivors triaged. `wall s`: the module's whole `mutmut run` (copy, mutant generation, clean run and, "
         "in the first run on a fresh mutants/, the one-off stats run: the selected suite once); `s/mutant`: mean "
         "time of one mutant's tests in one worker; `wall s/mutant`: the mutation phase's wall time per mutant with "
         "the run's workers (`<=`: whole wall time / mutants, where the per-mutant times were not recorded). `run` "
         "X+Y: run X's verdicts with those of its survivors or unchecked mutants rerun in Y (`--survivors`, "
         "`--unchecked`, `--functions`); the times are X's.", "",
         "| module | run | mutants | docstring | killed | survived | timeout | suspicious | no tests | not checked | "
         "equivalent | score | of checked | goal | wall s | s/mutant | wall s/mutant |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: "
         "| ---: |"]
    for m in sorted(store):
        r, c = store[m], store[m]["counts"]
        eq = sum(1 for x in r["not_killed"] if _equivalent(x, triage))
        goal = "90 %" if Path(m).stem in GOAL_MODULES else "run, triage"
        ran = "+".join(label[json.dumps(x, sort_keys=True)]
                       for x in [r["run"], *(y["run"] for y in r.get("rechecks", []))])
        L.append(f"| {m} | {ran} | {r['total']} | {c.get('docstring', '-')} | "
                 f"{c.get('killed', 0)} | "
                 f"{c.get('survived', 0)} | {c.get('timeout', 0)} | {c.get('suspicious', 0) + c.get('segfault', 0)} "
                 f"| {c.get('no tests', 0)} | {c.get('not checked', 0)} | {eq} | {_pct(r, triage)} | "
                 f"{_pct(r, triage, checked=True)} | {goal} | {r['wall_s']:.0f} | "
                 f"{r['mutant_s'] if r.get('mutant_s') is not None else '-'} | {_per_mutant(r)} |")
    L += ["", "## Runs", ""]
    for k in sorted(runs, key=lambda k: label[k]):
        r = runs[k]
        tree = f" + {r['uncommitted']} uncommitted changes in impl/, spec/, fixtures/" if r["uncommitted"] else ""
        L.append(f"- **{label[k]}**: {r['date']}, commit {r['commit']}{tree}; {r['machine']} (load {r['load']} at "
                 f"start), {r['workers']} worker(s); Python {r['python']}, torch {r['torch']}, mutmut {r['mutmut']}"
                 f"{'; fresh mutants/' if r.get('fresh') else ''}.{' ' + r['note'] if r.get('note') else ''}")
        if r["deselected"]:
            L.append(f"  Deselected as failing on the unmutated tree ({len(r['deselected'])}): "
                     + ", ".join(f"`{x}`" for x in r["deselected"]) + ".")
    L += ["", "## Mutants not killed", "",
          "One line each: mutant, status, source line, the changed code before -> after; equivalent ones with the "
          "triage file's reason, survivors left open (not equivalent, not killed yet) with the reason in "
          "results/mutation-open.toml.", ""]
    used = set()
    for m in sorted(store):
        L += [f"### {m}", ""]
        xs = store[m]["not_killed"]
        for x in xs:
            why = _equivalent(x, triage)
            if why:
                used.add((x["function"], x["before"], x["after"]))
            st = f"equivalent: {why}" if why else x["status"]
            if not why and (open_why := _equivalent(x, left)):
                st = f"survived, left open: {open_why}"
            L.append(f"- `{x['mutant']}` ({st}) {m}:{x['line'] or '?'}: {_code(x['before'])} -> {_code(x['after'])}")
        L += ["(none)"] if not xs else []
        L.append("")
    stale = [e for e in triage if (e["function"], e["before"], e["after"]) not in used
             and (e["function"].split(".")[1] in {Path(m).stem for m in store})]
    if stale:
        L += ["## Triage entries that matched no survivor (the code or the mutant changed: re-triage or delete)", ""]
        L += [f"- `{e.get('mutant', '?')}` {e['function']}: {_code(e['before'])} -> {_code(e['after'])}"
              for e in stale]
        L.append("")
    REPORT.write_text("\n".join(L).rstrip() + "\n")


if __name__ == "__main__":
    sys.exit(main())
