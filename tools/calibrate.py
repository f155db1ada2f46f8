"""Calibrate the spec's statistical tests: rerun them under many seed offsets and torch thread counts, and write
results/calibration.md (per test: passes / runs, observed effect min and median, threshold, margin, verdict). The tests
are those marked `statistical`: every test citing a statistical claim (spec/plugin.py marks them) and the seeded
training tests of other claims (marked by hand, e.g. FT-1's pretrained-versus-random runs).

Each statistical test records its effect and threshold as JUnit properties (spec.tiny.record; effect oriented so
that the test passes when effect > threshold). The margin is (weakest effect - threshold) / weakest effect: a test
is calibrated when it passed every run and that margin is at least 1/3. Each (offset, threads) pair is a separate
pytest process run sequentially, with SPEC_SEED_OFFSET (spec.tiny.seeds: disjoint seeds per offset),
SPEC_TORCH_THREADS (spec/conftest.py, spec.tiny.one_thread) and --hypothesis-seed set to the offset.

    python tools/calibrate.py --offsets 20 --threads 1,2 --backend all       # the full calibration
    python tools/calibrate.py --report-only                                  # re-render from the kept JUnit files
"""

import argparse
import ast
import datetime
import fnmatch
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MARGIN = 1 / 3
FULL = 40  # runs per test for a verdict: 20 offsets x 2 thread counts


def statistical_claims():
    "{id: needs} of the ledger's statistical claims."
    d = tomllib.loads((ROOT / "spec" / "claims.toml").read_text())
    return {c["id"]: c.get("needs", []) for c in d["claim"] if c["kind"] == "statistical"}


def test_claims():
    "{(module, test function): [claim ids]} from the claim markers in spec/test_*.py."
    out = {}
    for f in sorted((ROOT / "spec").glob("test_*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            ids = [
                a.value
                for d in node.decorator_list
                if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("mark.claim")
                for a in d.args
                if isinstance(a, ast.Constant)
            ]
            if ids:
                out[f.stem, node.name] = ids
    return out


def run_one(args, offset, threads, xml):
    "One pytest process: the statistical tests at this seed offset and thread count; JUnit XML to `xml`."
    # OMP_WAIT_POLICY=PASSIVE: waiting OpenMP threads sleep instead of spinning. Scheduling only (work is split by
    # thread count, not timing), so no result changes; a 2-thread run beside other processes took 192 s, not 862 s.
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "SPEC_SEED_OFFSET": str(offset),
           "SPEC_TORCH_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "pytest", "spec", "--ignore=spec/meta", "-q", "-p", "no:cacheprovider",
           "--no-claims-table", "-m", "statistical", *([f"--claims={args.claims}"] if args.claims else []),
           f"--backend={args.backend}", f"--junitxml={xml}",
           f"--hypothesis-seed={offset}", *(["-k", args.k] if args.k else [])]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or ["(no output)"]
    print(f"offset {offset:2d} threads {threads}: rc {r.returncode}, {time.perf_counter() - t0:5.0f} s: {tail[0]}",
          flush=True)
    if r.returncode not in (0, 1):
        print(r.stdout[-3000:], r.stderr[-3000:], sep="\n", file=sys.stderr)


def parse(xml):
    "[(nodeid, outcome, effect, threshold, seconds, message)] of one JUnit XML file."
    out = []
    for tc in ET.parse(xml).getroot().iter("testcase"):
        cls, name = tc.get("classname", ""), tc.get("name", "")
        nodeid = f"{cls.replace('.', '/')}.py::{name}"
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        bad = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
        skip = tc.find("skipped")
        outcome = "failed" if bad is not None else "skipped" if skip is not None else "passed"
        msg = (bad if bad is not None else skip).get("message", "") if outcome != "passed" else ""
        eff, thr = (float(props[k]) if k in props else None for k in ("effect", "threshold"))
        out.append((nodeid, outcome, eff, thr, float(tc.get("time", 0)), msg))
    return out


def machine():
    try:
        cpu = re.search(r"Model name:\s*(.+)", subprocess.run(["lscpu"], capture_output=True, text=True).stdout)
        cpu = cpu.group(1).strip() if cpu else platform.processor()
    except OSError:
        cpu = platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def versions():
    code = "import torch; print(torch.__version__)\ntry:\n import fastai; print(fastai.__version__)\n" \
           "except Exception: print('-')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return (r.stdout.split() + ["?", "?"])[:2]


def commit():
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes in the working tree)" if dirty else "")


def fmt(x):
    return "-" if x is None else f"{x:.3g}"


def report(args, files, wall):
    "Aggregate the JUnit files and write the markdown report."
    claims, mapping = statistical_claims(), test_claims()
    runs, meta = {}, []
    for f in files:
        m = re.search(r"o(\d+)-t(\d+)-(\w+)", f.name)
        meta.append((int(m.group(1)), int(m.group(2)), m.group(3)))
        for nodeid, outcome, eff, thr, sec, msg in parse(f):
            runs.setdefault(nodeid, []).append((int(m.group(2)), outcome, eff, thr, sec, msg))
    threads = sorted({t for _, t, _ in meta})
    cover = "; ".join(f"`{b}`: offsets {_ranges(sorted({o for o, t, c in meta if c == b and t == th}))} at {th} "
                      f"thread{'s' * (th > 1)}" for b in sorted({c for _, _, c in meta}) for th in threads
                      if any(c == b and t == th for _, t, c in meta))
    torch_v, fastai_v = versions()
    lines = [
        "# Calibration of the statistical tests",
        "",
        f"Written by `tools/calibrate.py` (`nox -s calibrate`) on {datetime.date.today().isoformat()} at commit "
        f"{commit()}.",
        f"Machine: {machine()}; torch {torch_v}, fastai {fastai_v}, Python {platform.python_version()}.",
        f"Runs (SPEC_SEED_OFFSET: each offset draws disjoint seeds; SPEC_TORCH_THREADS): {cover}; {len(files)} "
        f"pytest processes" + (f", {wall / 60:.0f} min of wall time" if wall else "") + ".",
        "",
        "Effect: each test's docstring defines it, oriented so that the test passes when effect > threshold. "
        "Margin = (weakest effect - threshold) / weakest effect; a test is **calibrated** when it passed every run and "
        f"the margin is at least {MARGIN:.2f} over at least {FULL} runs at both thread counts. Tests without an "
        "effect are property tests citing a statistical claim (pass counts only). Timings are wall seconds per run "
        "(on a machine shared with other jobs they are inflated).",
        "",
        "| test | claims | passes / runs | by threads | effect min | effect median | threshold | margin | s / run | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    not_run = {}
    for nodeid in sorted(runs):
        rs = runs[nodeid]
        mod, fn = nodeid.split("::")[0].split("/")[-1][:-3], re.sub(r"\[.*", "", nodeid.split("::")[1])
        ids = mapping.get((mod, fn), [])
        done = [r for r in rs if r[1] != "skipped"]
        if not done:
            for i in ids:
                not_run.setdefault(i, set()).add(rs[0][5].replace("Skipped: ", ""))
            continue
        ok = sum(r[1] == "passed" for r in done)
        by_t = ", ".join(f"{t}: {sum(r[1] == 'passed' for r in done if r[0] == t)}/{sum(r[0] == t for r in done)}"
                         for t in threads)
        effs = [r[2] for r in done if r[2] is not None]
        thr = next((r[3] for r in done if r[3] is not None), None)
        lo, med = (min(effs), statistics.median(effs)) if effs else (None, None)
        margin = (lo - thr) / abs(lo) if effs and thr is not None and lo != 0 else None
        if ok < len(done):
            verdict = "**fails**"
        elif margin is None:
            verdict = "passes (no effect recorded)"
        elif margin < MARGIN:
            verdict = "**thin margin**"
        elif len(done) < FULL or len({r[0] for r in done}) < 2:
            verdict = f"margin ok, {len(done)} runs (< {FULL} or one thread count): not yet calibrated"
        else:
            verdict = "calibrated"
        sec = statistics.median(r[4] for r in done)
        lines.append(f"| `{nodeid.split('/')[-1]}` | {', '.join(ids)} | {ok} / {len(done)} | {by_t} | {fmt(lo)} | "
                     f"{fmt(med)} | {fmt(thr)} | {fmt(margin)} | {sec:.1f} | {verdict} |")
    tested = {i for (m, f), ids in mapping.items() for i in ids if any(f"{m}.py::{f}" in n and
              any(r[1] != "skipped" for r in runs[n]) for n in runs)}
    lines += ["", "## Statistical claims not runnable here", ""]
    for cid, needs in claims.items():
        if cid in tested or not _ledger_select(args.claims, cid):
            continue
        why = "; ".join(sorted(not_run.get(cid, []))) or "no test ran"
        lines.append(f"- {cid}: not runnable here (needs {', '.join(needs) or '?'}; skipped: {why})")
    failures = [(n, r[5]) for n, rs in sorted(runs.items()) for r in rs if r[1] == "failed"]
    if failures:
        lines += ["", "## Failures", ""] + [f"- `{n}`: {m[:300]}" for n, m in failures[:40]]
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def _ledger_select(pattern, cid):
    return pattern is None or any(fnmatch.fnmatch(cid, p.strip()) for p in pattern.split(","))


def _ranges(xs):
    return f"{xs[0]}..{xs[-1]}" if xs and xs == list(range(xs[0], xs[-1] + 1)) else ", ".join(map(str, xs))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--offsets", type=int, default=20, help="seed offsets 0..N-1 (default 20)")
    p.add_argument("--first", type=int, default=0, help="first offset (default 0)")
    p.add_argument("--threads", default="1,2", help="torch thread counts (default 1,2)")
    p.add_argument("--backend", default="all", choices=("impl", "fastai", "all"))
    p.add_argument("--claims", default=None, help="only the tests of these claims (default: every test marked "
                   "statistical: those citing a statistical claim, which the plugin marks, and seeded tests marked so "
                   "by hand)")
    p.add_argument("--jobs", type=int, default=1, help="pytest processes at a time (default 1; on a machine with "
                   "many idle cores up to cores / 2)")
    p.add_argument("-k", default=None, help="pytest -k expression, to calibrate some tests only")
    p.add_argument("--tag", default="", help="added to the JUnit file names, so that a partial rerun (-k) keeps the "
                   "earlier files of the same offsets; the report merges every file")
    p.add_argument("--junit-dir", default=".cache/calibration", help="where each run's JUnit XML is kept")
    p.add_argument("--out", default="results/calibration.md")
    p.add_argument("--report-only", action="store_true", help="only aggregate the JUnit files already there")
    p.add_argument("--fresh", action="store_true", help="delete the JUnit files of earlier runs first (by default a "
                   "run replaces only its own (offset, threads, backend) files and the report covers all there)")
    args = p.parse_args(argv)
    d = ROOT / args.junit_dir
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.report_only:
        if args.fresh:
            for f in d.glob("o*-t*.xml"):
                f.unlink()
        todo = [(o, t) for o in range(args.first, args.first + args.offsets) for t in map(int, args.threads.split(","))]
        tag = f"-{args.tag}" if args.tag else ""
        one = lambda ot: run_one(args, *ot, d / f"o{ot[0]:02d}-t{ot[1]}-{args.backend}{tag}.xml")  # noqa: E731
        one(todo[0])  # alone first: it builds the fixture datasets and the pretrained body, cached for the others
        with ThreadPoolExecutor(args.jobs) as pool:  # jobs=1 (default): one pytest process at a time
            list(pool.map(one, todo[1:]))
    files = sorted(d.glob("o*-t*.xml"))
    if not files:
        sys.exit(f"no JUnit files in {d}")
    report(args, files, None if args.report_only else time.perf_counter() - t0)


if __name__ == "__main__":
    main()
