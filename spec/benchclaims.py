"""Verdicts of the ledger's benchmark claims from the benchmark runs that measured them.

The benches (benches/, pytest-benchmark) save one JSON per run: the committed runs under results/<run>/benchmark.json
(results/README.md) and the local history under .benchmarks/ (`nox -s bench`). For each benchmark claim this module
takes the newest run that applies (a claim that needs CUDA never takes a CPU run), computes the quantities the ledger
statement bounds (a time ratio, images/s), a 95% bootstrap interval over the run's rounds, and decides:

- `holds` / `does not hold` when the interval clears the bound on one side;
- `undecided` when it straddles the bound, with about how many rounds would make the interval clear it (80% of the
  time) at the same spread (the interval's half width shrinks as 1/sqrt(rounds));
- `depends on the baseline` when the statement holds against one baseline and not another (FP16-6: strict fp32
  vs fp32 with TF32, which GPUs of 2020 did not have).

Rounds: the benches time the variants of one comparison interleaved (benches/_timing.interleave: round i runs every
variant once), so a ratio within one comparison resamples rounds in pairs; across comparisons (resnet50 vs resnet34,
vocabulary 1e3 vs 1e5) the two sides resample independently. A run whose impl/ or benches/ changed since its commit
is `stale` (git), and says which files. The spec's plugin shows the verdict as the claim's status `measured`.

    verdicts(sources=None) -> {claim id: verdict dict}      (sources default: results/ and .benchmarks/)
    status(cid) -> ("measured" | "untested", reason)        for the claims table
    load(sources) -> [Run]                                  every run read, oldest first
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCES = (ROOT / "results", ROOT / ".benchmarks")
ENV = "SPEC_BENCH_RESULTS"  # os.pathsep-separated files or folders read instead of SOURCES
CLAIMS = ("ARCH-5", "FP16-6", "FP16-7", "CF-23", "IMPL-9", "IMPL-10")
VERDICTS = ("holds", "does not hold", "undecided", "depends on the baseline")
BOOT, LEVEL, MIN_ROUNDS = 2000, 0.95, 3
POWER = ((1.96 + 0.84) / 1.96) ** 2  # clear the bound 80% of the time, not half: (z_.975 + z_.8)^2 / z_.975^2
TIMED = ("gpu", "cpu")  # bench profiles that time; smoke and sim sizes only prove the code runs
CODE = ("impl", "benches")  # what a measurement measured: a change there makes it stale


# ---------------------------------------------------------------- reading runs
@dataclass
class Run:
    source: str  # the file, relative to the project root where it is inside it
    date: str  # ISO 8601, UTC
    commit: str | None
    machine: str  # "NVIDIA H200", "CPU Intel(R) Xeon(R) x2"
    device: str  # "cuda" or "cpu"
    detail: str = ""  # driver, CUDA, torch
    tree: str | None = None  # hash of impl/ benches/ fixtures/ (benches/conftest.tree_hash)
    dirty: bool | None = None
    profile: str | None = None
    benches: list = field(default_factory=list)  # {group, params, times, median, extra}

    @property
    def short(self) -> str | None:
        "The commit as git abbreviates it (7 hex digits)."
        c = self.commit
        return c[:7] if c and re.fullmatch(r"[0-9a-f]{8,40}", c) else c

    @property
    def label(self) -> str:
        return f"{self.machine} {self.short or '?'}"

    def find(self, group, **params):
        "The benchmark of `group` whose params include `params`, or None."
        for b in self.benches:
            if b["group"] == group and all(b["params"].get(k) == v for k, v in params.items()):
                return b
        return None


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def _files(sources):
    "Benchmark JSON files, and the JSON-lines records of a run folder that has no benchmark JSON (a run cut short)."
    for p in map(Path, sources):
        if p.is_file():
            yield p
        elif p.is_dir():
            js = sorted(p.rglob("*.json"))
            yield from js
            have = {f.parent for f in js}
            yield from (f for f in sorted(p.rglob("*.jsonl")) if f.parent not in have)


def _bench(b: dict, group=None, params=None, extra=None) -> dict | None:
    extra = extra if extra is not None else b.get("extra_info") or {}
    stats = b.get("stats") or {}
    times = [float(t) for t in (extra.get("epoch_s") or stats.get("data") or []) if t is not None]
    med = statistics.median(times) if times else stats.get("median")
    if med is None or not (group or b.get("group")):
        return None
    return dict(group=group or b.get("group"), params=dict(params if params is not None else b.get("params") or {}),
                times=times, median=float(med), extra=extra)


def _machine(mi: dict) -> tuple[str, str, str]:
    "(machine, device, detail) from pytest-benchmark's machine_info with the benches' additions."
    if mi.get("gpu"):
        detail = ", ".join(f"{k} {mi[k]}" for k in ("driver", "cuda", "torch") if mi.get(k))
        return str(mi["gpu"]), "cuda", detail
    cpu = mi.get("cpu") or {}
    n = mi.get("cpu_count") or cpu.get("count") or "?"
    brand = re.sub(r"\s+(CPU\s+)?@.*$|\s+Processor$", "", str(cpu.get("brand_raw") or mi.get("processor") or "?"))
    return f"CPU {brand} x{n}", "cpu", f"torch {mi.get('torch')}, {mi.get('torch_threads', '?')} threads"


def _read(f: Path) -> Run | None:
    if f.suffix == ".jsonl":
        recs = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        benches = [_bench(r, r.get("group"), r.get("params") or {}, r) for r in recs]
        m = re.match(r"(\d{4}-\d{2}-\d{2})_(.+?)(?:_([0-9a-f]{7,40}))?$", f.parent.name)
        dev = {str(r.get("device", "")).split(":")[0] for r in recs} - {""}
        date = m.group(1) if m else datetime.fromtimestamp(f.stat().st_mtime, timezone.utc).isoformat()
        return Run(_rel(f), date, m and m.group(3), m.group(2) if m else f.parent.name,
                   "cuda" if "cuda" in dev else "cpu", "from its JSON lines records",
                   profile=next((r.get("profile") for r in recs if r.get("profile")), None),
                   benches=[b for b in benches if b])
    d = json.loads(f.read_text())
    if not isinstance(d, dict) or not isinstance(d.get("benchmarks"), list):
        return None  # some other JSON
    mi, ci = d.get("machine_info") or {}, d.get("commit_info") or {}
    commit = ci.get("bench_commit") or ci.get("id")
    commit = None if commit in (None, "", "unknown", "unversioned") else str(commit)
    machine, device, detail = _machine(mi)
    benches = [_bench(b) for b in d["benchmarks"]]
    return Run(_rel(f), str(d.get("datetime") or ""), commit, machine, device, detail, ci.get("tree_hash"),
               ci.get("dirty"), mi.get("bench_profile"), [b for b in benches if b])


def load(sources=None) -> list[Run]:
    """Every run in `sources` (files or folders; default $SPEC_BENCH_RESULTS, else results/ and .benchmarks/) that
    timed something (profiles gpu and cpu), oldest first; one copy of a run found twice. Unreadable files raise
    ValueError naming the file."""
    runs, seen = [], set()
    for f in _files(_sources(sources)):
        try:
            r = _read(f)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise ValueError(f"benchmark results {f}: not readable as pytest-benchmark JSON ({e})") from None
        if r is None or not r.benches or (r.profile and r.profile not in TIMED):
            continue
        key = (r.date, r.machine, r.commit, len(r.benches))
        if key not in seen:
            seen.add(key)
            runs.append(r)
    return sorted(runs, key=lambda r: r.date)


def _sources(sources):
    if sources is not None:
        return [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
    if os.environ.get(ENV):
        return [Path(s) for s in os.environ[ENV].split(os.pathsep) if s]
    return list(SOURCES)


# ---------------------------------------------------------------- spread and decision
def boot(num, den=None, paired=False, n=BOOT, seed=0) -> np.ndarray:
    """Bootstrap replicates of median(num) (den None) or median(num) / median(den): rounds drawn with replacement,
    the same draw for both sides when `paired` (interleaved rounds of one comparison)."""
    rng = np.random.default_rng(seed)
    a = np.asarray(num, float)
    ia = rng.integers(len(a), size=(n, len(a)))
    ma = np.median(a[ia], axis=1)
    if den is None:
        return ma
    b = np.asarray(den, float)
    if paired and len(a) != len(b):
        raise ValueError(f"paired rounds need equal counts, got {len(a)} and {len(b)}")
    ib = ia if paired else rng.integers(len(b), size=(n, len(b)))
    return ma / np.median(b[ib], axis=1)


def decide(value, lo, hi, op, bound, rounds) -> tuple[str, int | None]:
    """(verdict, rounds that would decide it). op '>=' or '<=' with a number, 'in' with (low, high). Undecided when
    the interval [lo, hi] straddles a bound; the rounds estimate scales the half width on that side (as 1/sqrt(n))
    until it clears the gap to the bound 80% of the time at the same spread (POWER)."""
    if lo is None or rounds < MIN_ROUNDS:
        return "undecided", None
    if op == ">=":
        ok, bad, bounds = lo >= bound, hi < bound, [bound]
    elif op == "<=":
        ok, bad, bounds = hi <= bound, lo > bound, [bound]
    elif op == "in":
        a, b = bound
        ok, bad, bounds = a <= lo and hi <= b, hi < a or lo > b, [a, b]
    else:
        raise ValueError(f"op must be '>=', '<=' or 'in', got {op!r}")
    if ok or bad:
        return ("holds" if ok else "does not hold"), None
    need = 0
    for t in (t for t in bounds if lo < t < hi or t in (lo, hi)):
        w, gap = (hi - value if t > value else value - lo), abs(value - t)
        if gap == 0:
            return "undecided", None  # the estimate sits on the bound: no number of rounds decides it
        need = max(need, math.ceil(rounds * POWER * (w / gap) ** 2))
    return "undecided", need or None


def check(what, num, den=None, *, op, bound, paired=False, scale=1.0, unit="x", baseline=None, fmt="{:.3g}"):
    """One bounded quantity: median(num)/median(den) (or scale/median(num) per round when den is None and scale is
    set: a throughput) with its interval and verdict."""
    a = np.asarray(num["times"] if isinstance(num, dict) else num, float)
    b = None if den is None else np.asarray(den["times"] if isinstance(den, dict) else den, float)
    if b is None:
        per = scale / a if unit != "x" else a
        value, reps, rounds = float(np.median(per)), (boot(per) if len(per) else None), len(per)
    else:
        value = float(np.median(a) / np.median(b))
        rounds = min(len(a), len(b))
        reps = boot(a, b, paired=paired) if rounds else None
    lo, hi = (None, None)
    if reps is not None and rounds >= MIN_ROUNDS:
        lo, hi = (float(q) for q in np.quantile(reps, [(1 - LEVEL) / 2, (1 + LEVEL) / 2]))
    verdict, need = decide(value, lo, hi, op, bound, rounds)
    return dict(what=what, baseline=baseline, value=value, unit=unit, lo=lo, hi=hi, rounds=rounds, op=op,
                bound=list(bound) if op == "in" else bound, paired=paired, verdict=verdict, rounds_to_decide=need,
                text=_text(what, value, lo, hi, op, bound, rounds, unit, verdict, need, fmt))


def fixed(what, value, *, op, bound, unit="x", baseline=None, fmt="{:.3g}"):
    "A quantity without rounds (peak memory): decided on its value."
    ok = value >= bound if op == ">=" else value <= bound if op == "<=" else bound[0] <= value <= bound[1]
    verdict = "holds" if ok else "does not hold"
    return dict(what=what, baseline=baseline, value=value, unit=unit, lo=None, hi=None, rounds=1, op=op,
                bound=list(bound) if op == "in" else bound, paired=False, verdict=verdict, rounds_to_decide=None,
                text=f"{what} {_num(value, unit, fmt)} {_bound(op, bound, unit)}: {verdict}")


def _num(v, unit, fmt="{:.3g}"):
    return (fmt.format(v) + ("x" if unit == "x" else f" {unit}")) if v is not None else "-"


def _bound(op, bound, unit):
    u = "" if unit == "x" else f" {unit}"
    return f"(bound {bound[0]:g}-{bound[1]:g}{u})" if op == "in" else f"(bound {op} {bound:g}{u})"


def _text(what, value, lo, hi, op, bound, rounds, unit, verdict, need, fmt):
    ci = (f", {LEVEL:.0%} interval {fmt.format(lo)}-{fmt.format(hi)} over {rounds} rounds" if lo is not None
          else f", {rounds} round(s): no interval (needs >= {MIN_ROUNDS})")
    tail = verdict
    if verdict == "undecided":
        tail += (f": about {need} rounds would decide it" if need else
                 ": the estimate sits on the bound" if lo is not None else "")
    return f"{what} {_num(value, unit, fmt)}{ci} {_bound(op, bound, unit)}: {tail}"


def combine(verdicts) -> str:
    "All must hold: any 'does not hold' decides; else any undecided leaves it undecided."
    vs = list(verdicts)
    if not vs:
        return "undecided"
    return "does not hold" if "does not hold" in vs else "undecided" if "undecided" in vs else "holds"


def by_baseline(checks) -> tuple[str, str]:
    """(verdict, summary) of checks grouped by `baseline` (None: counts for every baseline): the same verdict for
    every baseline, or 'depends on the baseline' naming which."""
    names = list(dict.fromkeys(c["baseline"] for c in checks if c["baseline"]))
    if not names:
        return combine(c["verdict"] for c in checks), "; ".join(c["text"] for c in checks)
    per = {b: combine(c["verdict"] for c in checks if c["baseline"] in (b, None)) for b in names}
    parts = [f"against {b}: {v} (" + "; ".join(c["text"] for c in checks if c["baseline"] == b) + ")"
             for b, v in per.items()]
    common = [c["text"] for c in checks if c["baseline"] is None]
    summary = "; ".join(parts + common)
    vs = set(per.values())
    return (vs.pop() if len(vs) == 1 else "depends on the baseline"), summary


# ---------------------------------------------------------------- what each claim measures
STRICT, TF32 = "strict fp32 (TF32 off)", "fp32 with TF32 (PyTorch's convolution default)"


def _arch_key(a):
    return int("".join(c for c in str(a) if c.isdigit()) or 0)


def fp16_6(run: Run):
    "resnet50 (the lesson's) fp16 speedup per epoch over fp32, against both fp32 baselines, and its peak memory."
    g = "fp16-speedup"
    archs = sorted({b["params"].get("arch") for b in run.benches if b["group"] == g and b["params"].get("arch")},
                   key=_arch_key)
    arch = "resnet50" if "resnet50" in archs else archs[-1] if archs else None
    h = arch and run.find(g, arch=arch, precision="fp16")
    s, d = arch and run.find(g, arch=arch, precision="fp32_strict"), arch and run.find(g, arch=arch, precision="fp32")
    if not h or not (s or d):
        return None
    cs = [check(f"{arch} fp16 speedup over {nm.split(' (')[0]}", base, h, op=">=", bound=2, paired=True, baseline=nm)
          for nm, base in ((STRICT, s), (TF32, d)) if base]
    mh, m32 = h["extra"].get("peak_mem_mib"), (d or s)["extra"].get("peak_mem_mib")
    if mh and m32:
        cs.append(fixed(f"{arch} fp16 peak memory / fp32's", mh / m32, op="<=", bound=1))
    info = []
    for a in archs:
        for p in ("fp16", "bf16", "fp16_cl", "bf16_cl"):
            x, s2, d2 = (run.find(g, arch=a, precision=q) for q in (p, "fp32_strict", "fp32"))
            if x and (a, p) != (arch, "fp16"):
                info.append(f"{a} {p}: " + ", ".join(f"{b['median'] / x['median']:.2f}x over {nm}"
                                                     for nm, b in (("strict fp32", s2), ("TF32", d2)) if b))
    return cs, info


def _cross(run, group, num, den, what, op, bound):
    "Checks of median(num) / median(den) for both fp32 baselines (resnet50 vs resnet34: separate comparisons)."
    out = []
    for nm, p32 in ((STRICT, "fp32_strict"), (TF32, "fp32")):
        a = run.find(group, **{k: (p32 if v == "fp32" else v) for k, v in num.items()})
        b = run.find(group, **{k: (p32 if v == "fp32" else v) for k, v in den.items()})
        if a and b:
            out.append(check(what.format(nm.split(" (")[0]), a, b, op=op, bound=bound, baseline=nm))
    return out


def fp16_7(run: Run):
    "t(resnet50 fp16) / t(resnet34 fp32) per epoch <= about 1.1 (book: 26 s / 25 s), compute-only batches."
    cs = _cross(run, "fp16-speedup", dict(arch="resnet50", precision="fp16"), dict(arch="resnet34", precision="fp32"),
                "t(resnet50 fp16) / t(resnet34 {})", "<=", 1.1)
    if not cs:
        return None
    info = []
    h, f = run.find("fp16-e2e", arch="resnet50", precision="fp16"), run.find("fp16-e2e", arch="resnet34",
                                                                             precision="fp32")
    if h and f:
        info.append(f"end to end on the pets fixture (data pipeline included): {h['median'] / f['median']:.2f}")
    return cs, info


def arch_5(run: Run):
    "t(resnet50 fp32) / t(resnet34 fp32) per epoch between 1.5 and 2.5 (the lesson: about twice)."
    cs = _cross(run, "fp16-speedup", dict(arch="resnet50", precision="fp32"), dict(arch="resnet34", precision="fp32"),
                "t(resnet50) / t(resnet34) in {}", "in", (1.5, 2.5))
    return (cs, []) if cs else None


def cf_23(run: Run):
    "one-hot @ W / embedding at n = 10000 (batch 1024) >= 10, and the embedding's time at n = 1e5 <= 2x that at 1e3."
    g = "embedding-vs-onehot"
    e, o = run.find(g, vocab=10_000, method="embedding"), run.find(g, vocab=10_000, method="onehot")
    if not (e and o):
        return None
    cs = [check("one-hot @ W / embedding time at n = 10000", o, e, op=">=", bound=10, paired=True)]
    e3, e5 = run.find(g, vocab=1_000, method="embedding"), run.find(g, vocab=100_000, method="embedding")
    if e3 and e5:
        cs.append(check("embedding time at n = 100000 / at n = 1000", e5, e3, op="<=", bound=2))
    vocabs = sorted({b["params"]["vocab"] for b in run.benches if b["group"] == g})
    info = [f"vocab {v:.0e}: one-hot / embedding {o2['median'] / e2['median']:.1f}x"
            for v in vocabs for e2, o2 in [(run.find(g, vocab=v, method="embedding"), run.find(g, vocab=v,
                                                                                                method="onehot"))]
            if e2 and o2]
    return cs, info


def impl_9(run: Run):
    "impl / plain loop time per epoch <= 1.05 for every task and batch size measured (interleaved)."
    g = "loop-overhead"
    key = lambda b: (b["params"].get("task", b["extra"].get("task")), b["params"].get("bs", b["extra"].get("bs")))
    cs, info = [], []
    for task, bs in dict.fromkeys(key(b) for b in run.benches if b["group"] == g):
        rows = {b["params"].get("loop"): b for b in run.benches if b["group"] == g and key(b) == (task, bs)}
        if "plain" not in rows:
            continue
        if "impl" in rows:
            cs.append(check(f"{task} bs {bs}: impl / plain", rows["impl"], rows["plain"], op="<=", bound=1.05,
                            paired=True, fmt="{:.3f}"))
        info += [f"{task} bs {bs}: {lp} / plain {b['median'] / rows['plain']['median']:.3f}"
                 for lp, b in rows.items() if lp not in ("impl", "plain")]
    return (cs, info) if cs else None


def impl_10(run: Run):
    "impl's resnet50 fp16 channels_last, compute-only, at bs 64: images/s >= 2800."
    b = run.find("loop-overhead", task="resnet50_fp16_cl", loop="impl", bs=64)
    n = b and b["extra"].get("images_per_epoch")
    if not (b and n and b["times"]):
        return None
    info = [] if "H100" in run.machine else [f"measured on an {run.machine}, not an H100"]
    info += [f"bs {x['params'].get('bs')}: {x['extra'].get('img_s', 0):.0f} img/s" for x in run.benches
             if x["group"] == "loop-overhead" and x["params"].get("task") == "resnet50_fp16_cl"
             and x["params"].get("loop") == "impl" and x["params"].get("bs") != 64]
    return [check("resnet50 fp16 channels_last impl bs 64", b, op=">=", bound=2800, scale=n, unit="img/s",
                  fmt="{:.0f}")], info


RULES = {"FP16-6": fp16_6, "FP16-7": fp16_7, "ARCH-5": arch_5, "CF-23": cf_23, "IMPL-9": impl_9, "IMPL-10": impl_10}
NEEDS_CUDA = {"FP16-6", "FP16-7", "ARCH-5", "IMPL-10"}  # as the ledger's needs; verdicts() reads the ledger's


# ---------------------------------------------------------------- staleness
def tree_hash(root=ROOT) -> str:
    "benches/conftest.tree_hash: impl/, benches/ and fixtures/ *.py, as the benches record it."
    h = hashlib.sha1()
    for d in ("impl", "benches", "fixtures"):
        for f in sorted((Path(root) / d).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()[:12]


def _git(*args, root=ROOT):
    try:
        r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def staleness(run: Run, root=ROOT, here=None) -> tuple[bool | None, str]:
    "(stale, why): the code measured (impl/, benches/) against this checkout's HEAD."
    here = tree_hash(root) if here is None else here
    if run.tree and run.tree == here:
        return False, "the code measured is this checkout's (same impl/ benches/ fixtures/ hash)"
    if not run.commit or _git("cat-file", "-e", f"{run.commit}^{{commit}}", root=root) is None:
        return None, f"commit {run.commit or 'unknown'} is not in this checkout: cannot tell whether the code changed"
    files = (_git("diff", "--name-only", run.commit, "HEAD", "--", *CODE, root=root) or "").split()
    if files:
        shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
        return True, f"stale: {'/ or '.join(CODE)}/ changed since {run.commit[:7]} ({shown})"
    return False, f"no commit since {run.commit[:7]} changed {'/ or '.join(CODE)}/"


# ---------------------------------------------------------------- verdicts
def measure(cid, run: Run) -> dict | None:
    "The verdict of claim `cid` from one run, or None when the run did not measure it."
    got = RULES[cid](run)
    if not got:
        return None
    cs, info = got
    verdict, summary = by_baseline(cs)
    return dict(verdict=verdict, summary=summary, machine=run.machine, device=run.device, detail=run.detail,
                commit=run.short, dirty=bool(run.dirty), date=run.date[:10], datetime=run.date, source=run.source,
                profile=run.profile, checks=cs, info=info)


def verdicts(sources=None, ledger=None, root=ROOT) -> dict:
    """{claim id: verdict} for every benchmark claim some applicable run measured: the newest run of the right
    device class (needs cuda: CUDA runs only), with `others` = the newest verdict of each other machine."""
    needs = {cid: set(c.needs) for cid, c in (ledger or {}).items()} if ledger else {}
    runs = load(sources)
    here, stale_of, out = tree_hash(root), {}, {}
    for cid in RULES:
        cuda = "cuda" in needs[cid] if cid in needs else cid in NEEDS_CUDA
        found = []
        for run in reversed(runs):
            if (cuda and run.device != "cuda") or any(f["machine"] == run.machine for f in found):
                continue
            if m := measure(cid, run):
                if run.source not in stale_of:
                    stale_of[run.source] = staleness(run, root, here)
                m["stale"], m["stale_why"] = stale_of[run.source]
                found.append(m)
        if found:
            out[cid] = {**found[0], "others": [{k: f[k] for k in ("verdict", "summary", "machine", "commit", "date",
                                                                    "source", "stale")} for f in found[1:]]}
    return out


_cache: dict = {}


def cached(sources=None) -> dict | Exception:
    "verdicts() once per process and set of files (their sizes and times), or the error reading them."
    files = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in _files(_sources(sources)))
    if files not in _cache:
        try:
            from spec import ledger
            _cache[files] = verdicts(sources, ledger.load())
        except (ValueError, OSError) as e:
            _cache[files] = e
    return _cache[files]


def reason(v: dict) -> str:
    "One line for the claims table: the verdict, where and when, how stale, and the measured values."
    stale = " (stale)" if v.get("stale") else ""
    dirty = " + uncommitted changes" if v.get("dirty") else ""
    return f"{v['verdict']} on {v['machine']} at {v['commit'] or '?'}{dirty} ({v['date']}){stale}: {v['summary']}"


def status(cid: str, claim=None) -> tuple[str, str]:
    "The claims table's (status, reason) of benchmark claim `cid` that no test of this session measured."
    if cid not in RULES:
        return "untested", "benchmark: no rule in spec/benchclaims.py reads its measurement"
    vs = cached()
    if isinstance(vs, Exception):
        return "untested", f"benchmark: {vs}"
    if cid in vs:
        return "measured", reason(vs[cid])
    cuda = " on a CUDA GPU (CPU runs do not count)" if claim is not None and "cuda" in claim.needs else ""
    return "untested", (f"benchmark: never measured{cuda}: no run in results/ or .benchmarks/ measured it "
                        "(`nox -s bench`, `nox -s bench_gpu`)")


def row_extra(cid: str, claim) -> dict:
    "The claims JSON's `benchmark` entry of a benchmark claim (its verdict), {} for every other claim."
    if claim.kind != "benchmark" or cid not in RULES:
        return {}
    vs = cached()
    return {"benchmark": vs.get(cid)} if isinstance(vs, dict) and cid in vs else {}
