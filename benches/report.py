"""Render pytest-benchmark history as markdown and plots, with the lesson's figures beside the measured ratios.

    python -m benches.report [PATH ...] [--out DIR]

PATH: pytest-benchmark JSON files, folders searched recursively for them (a --benchmark-storage folder such as
.benchmarks/, or results/), or the JSON-lines file the benches append to ($BENCH_JSONL) when a run was cut short (in
a folder, a JSON-lines file is read only where no JSON file sits beside it: that one holds the same run, and its
machine). Default PATH: .benchmarks. Writes DIR/results.md (default DIR: results/tmp), DIR/epoch_times.png (median
per-epoch time of each configuration across runs) and DIR/ratios.png (the speedup ratios of the latest run).
Per-epoch times are each benchmark's `extra_info.epoch_s` (pytest-benchmark's own rounds where that is absent).
A ratio is of the medians of one run, with a 95% bootstrap interval over its rounds: the benches interleave the
variants they compare, so a ratio within a run is measured side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from datetime import datetime, timezone
from pathlib import Path

# The lesson's (and ledger's) figures, set beside each measured ratio.
LESSON = {
    "FP16-6": "2-3x faster with to_fp16 (T:L526)",
    "FP16-7": "r50 fp16 / r34 fp32 = 26 s / 25 s = 1.04 (claim: <= ~1.1)",
    "ARCH-5": "r50 / r34 in fp32 about 2x (claim: 1.5-2.5)",
    "CF-23": "embedding >= 10x faster than one-hot @ W at n = 1e4 (batch 1024), barely growing with n",
    "IMPL-9": "impl / plain <= 1.05 per epoch",
    "IMPL-10": ">= 2800 img/s, resnet50 fp16 channels_last, compute-only, H100",
}
# Dense tensor-core / FMA peaks by datasheet, TFLOP/s: (fp16 = bf16, tf32, fp32). H200 is the H100 SXM chip.
PEAKS = [
    ("H100 PCIe", (756.0, 378.0, 51.2)),
    ("H100 NVL", (835.0, 418.0, 60.0)),
    ("H200", (989.4, 494.7, 66.9)),
    ("H100", (989.4, 494.7, 66.9)),
    ("A100", (312.0, 156.0, 19.5)),
]
DIAGNOSTIC = {"impl_lean": "impl without its fault guard", "plain_item": "plain + loss.item() per batch"}
PEAK_KIND = {"fp16": 0, "bf16": 0, "fp16_cl": 0, "bf16_cl": 0, "fp32": 1, "fp32_strict": 2}
CEILING_KEY = {
    "fp16": "fp16",
    "fp16_cl": "fp16",
    "bf16": "bf16",
    "bf16_cl": "bf16",
    "fp32": "tf32",
    "fp32_strict": "fp32",
}
FP, E2E, EMB, LOOP = "fp16-speedup", "fp16-e2e", "embedding-vs-onehot", "loop-overhead"
LOOPC = "loop-compiled"  # the loops with torch.compile: impl_compiled over plain_compiled
HALF = ("fp16", "bf16", "fp16_cl", "bf16_cl")


# ---------------------------------------------------------------- loading
def _files(paths):
    for p in map(Path, paths):
        if p.is_dir():
            fs = sorted(x for x in p.rglob("*.json*") if x.suffix in (".json", ".jsonl"))
            has_json = {x.parent for x in fs if x.suffix == ".json"}
            yield from (x for x in fs if x.suffix == ".json" or x.parent not in has_json)
        elif p.exists():
            yield p


def machine_label(mi: dict) -> str:
    if mi.get("gpu"):
        return f"{mi['gpu']} (driver {mi.get('driver')}, CUDA {mi.get('cuda')}, torch {mi.get('torch')})"
    cpu = mi.get("cpu") or {}
    n = mi.get("cpu_count") or cpu.get("count", "?")
    return f"CPU {cpu.get('brand_raw', mi.get('processor') or '?')} x{n} ({mi.get('node', '?')})"


def _read(f: Path):
    "(date, machine_info, commit_info, rows) of one JSON or JSON-lines file; None when it is not a benchmark run."
    if f.suffix == ".jsonl":
        recs = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        date = datetime.fromtimestamp(f.stat().st_mtime, timezone.utc).isoformat()
        return date, {}, {}, [_row(r["group"], r.get("params"), r, None, r.get("name")) for r in recs]
    d = json.loads(f.read_text())
    if not isinstance(d, dict) or "benchmarks" not in d:
        return None
    rows = [
        _row(b.get("group"), b.get("params"), b.get("extra_info"), b.get("stats"), b.get("name"))
        for b in d["benchmarks"]
    ]
    return d.get("datetime", ""), d.get("machine_info", {}), d.get("commit_info", {}), rows


def load(paths) -> list[dict]:
    "Runs, oldest first: {file, date, commit, machine, machine_info, rows: [{group, params, median, ..., extra}]}."
    runs = []
    for f in _files(paths):
        try:
            got = _read(f)
        except (OSError, ValueError, KeyError) as e:
            print(f"report: skipping {f}: {e}")
            continue
        rows = [r for r in got[3] if r["median"] is not None] if got else []
        if rows:
            date, mi, ci, _ = got
            commit = ci.get("bench_commit") or ci.get("id") or "?"
            runs.append(
                dict(
                    file=str(f),
                    date=date,
                    commit=str(commit)[:10],
                    dirty=ci.get("dirty"),
                    tree=ci.get("tree_hash"),
                    machine=machine_label(mi) if mi else "unknown (from JSON lines)",
                    machine_info=mi,
                    rows=rows,
                )
            )
    return sorted(runs, key=lambda r: r["date"])


def _row(group, params, extra, stats, name):
    """One benchmark: its per-epoch times and their median, min, max. The times: extra_info.epoch_s (the interleaved
    rounds and the test's own epoch), else pytest-benchmark's rounds (stats.data, or only its summary stats)."""
    extra, st = extra or {}, stats or {}
    times = extra.get("epoch_s") or st.get("data") or []
    if extra.get("epoch_s") or not st:
        st = dict(median=statistics.median(times), min=min(times), max=max(times)) if times else {}
    rounds = len(times) if extra.get("epoch_s") else st.get("rounds", len(times))
    return dict(
        group=group, params=dict(params or {}), name=name, times=times, **_summary(st), rounds=rounds, extra=extra
    )


def _summary(st):
    return {k: st.get(k) for k in ("median", "min", "max")}


# ---------------------------------------------------------------- ratios
class Ratio(float):
    "A ratio of two median per-epoch times; `ci`: its 95% bootstrap interval (None below two rounds each)."

    ci = None


def _ratio(a, b, n=1000):
    """t(a) / t(b), medians of per-epoch times, or None. The interval: percentiles of the ratio over `n` resamplings
    of the rounds, in pairs where the two have as many rounds (interleaved rounds ran side by side)."""
    if not (a and b and b["median"]):
        return None
    r, x, y = Ratio(a["median"] / b["median"]), a["times"], b["times"]
    if min(len(x), len(y)) > 1:
        rng, med = random.Random(0), statistics.median
        rs = []
        for _ in range(n):
            i = rng.choices(range(len(x)), k=len(x))
            j = i if len(x) == len(y) else rng.choices(range(len(y)), k=len(y))
            rs.append(med([x[k] for k in i]) / med([y[k] for k in j]))
        rs.sort()
        r.ci = (rs[int(0.025 * n)], rs[int(0.975 * n) - 1])
    return r


def find(rows, group, **params):
    "The row of `group` whose params include `params` (None when absent)."
    for r in rows:
        if r["group"] == group and all(r["params"].get(k) == v for k, v in params.items()):
            return r
    return None


def _x(r, k):
    "extra_info `k` of row `r` (None when either is absent)."
    return (r or {}).get("extra", {}).get(k)


def _task_bs(r):
    return r["params"].get("task", _x(r, "task")), r["params"].get("bs", _x(r, "bs"))


def _archs(rows, group):
    return sorted(
        {r["params"]["arch"] for r in rows if r["group"] == group},
        key=lambda a: int("".join(filter(str.isdigit, a)) or 0),
    )


def peaks_for(gpu: str | None):
    for key, p in PEAKS:
        if gpu and key in gpu:
            return key, p
    return None, None


def fp16_6(rows):
    "FP16-6: each half precision's speedup per epoch over strict fp32 and over fp32 (TF32), per arch; peak memory."
    out = []
    for a in _archs(rows, FP):
        strict, tf32 = (find(rows, FP, arch=a, precision=p) for p in ("fp32_strict", "fp32"))
        for p, r in ((p, find(rows, FP, arch=a, precision=p)) for p in HALF):
            if r is None:
                continue
            mem = _x(r, "peak_mem_mib"), _x(tf32, "peak_mem_mib")
            s = dict(arch=a, precision=p, vs_strict=_ratio(strict, r), vs_default=_ratio(tf32, r))
            s["mem_ratio"] = mem[0] / mem[1] if all(mem) else None
            s["text"] = (
                f"{a} {p}: {_r(s['vs_strict'], unit='x')} vs strict fp32, "
                f"{_r(s['vs_default'], unit='x')} vs fp32 (TF32)"
                + (f"; peak memory {_f(s['mem_ratio'])}x fp32's" if s["mem_ratio"] else "")
            )
            out.append(s)
    return out


def _rn(rows, group, depth, precision):
    "The resnet`depth` row of `group` in `precision`."
    return find(rows, group, arch=f"resnet{depth}", precision=precision)


def _r50_over_r34(rows, pairs, text):
    """Per group (compute-only, end to end) where any: {name: t(resnet50 in p) / t(resnet34 in q)} for each (name, p, q)
    of `pairs`, and `text` formatted with the group and the ratios."""
    out = []
    for g in (FP, E2E):
        s = {k: _ratio(_rn(rows, g, 50, p), _rn(rows, g, 34, q)) for k, p, q in pairs}
        if any(v is not None for v in s.values()):
            out.append(dict(group=g, **s, text=text.format(group=g, **{k: _r(v) for k, v in s.items()})))
    return out


def fp16_7(rows):
    "FP16-7: t(resnet50 fp16) / t(resnet34 fp32), and over strict fp32; compute-only and end to end."
    text = "{group}: t(r50 fp16)/t(r34 fp32) = {vs_fp32} (vs strict fp32: {vs_strict})"
    return _r50_over_r34(rows, [("vs_fp32", "fp16", "fp32"), ("vs_strict", "fp16", "fp32_strict")], text)


def arch_5(rows):
    "ARCH-5: t(resnet50) / t(resnet34) in fp32, with TF32 and strict; compute-only and end to end."
    text = "{group}: {fp32} (TF32), {fp32_strict} (strict)"
    return _r50_over_r34(rows, [("fp32", "fp32", "fp32"), ("fp32_strict", "fp32_strict", "fp32_strict")], text)


def cf_23(rows):
    "CF-23: one-hot @ W over the embedding lookup (dense and sparse gradient) per vocabulary; the lookup's growth."
    out = []
    for v in sorted({r["params"]["vocab"] for r in rows if r["group"] == EMB}):
        e, sp, o = (find(rows, EMB, vocab=v, method=m) for m in ("embedding", "embedding_sparse", "onehot"))
        us = e["median"] / (_x(e, "steps_per_epoch") or 1) * 1e6 if e else None
        out.append(dict(vocab=v, onehot_over_embedding=_ratio(o, e), onehot_over_sparse=_ratio(o, sp), bs=_x(e, "bs")))
        out[-1]["embedding_step_us"] = us
    if out and out[0]["embedding_step_us"] and out[-1]["embedding_step_us"]:
        out[-1]["growth"] = out[-1]["embedding_step_us"] / out[0]["embedding_step_us"]
    for s in out:
        s["text"] = (
            f"vocab {s['vocab']:.0e} (batch {s['bs']}): one-hot/embedding {_r(s['onehot_over_embedding'], 1, 'x')}, "
            f"one-hot/sparse embedding {_r(s['onehot_over_sparse'], 1, 'x')}; "
            f"embedding step {_f(s['embedding_step_us'], 0)} us"
            + (f", {_f(s['growth'])}x the smallest vocab's" if s.get("growth") else "")
        )
    return out


def impl_9(rows):
    """IMPL-9: each loop's per-epoch time over the plain PyTorch loop's, per task and batch size; in group
    loop-compiled, impl_compiled over plain_compiled (with the compile time, apart)."""
    out = []
    for g, pl in ((LOOP, "plain"), (LOOPC, "plain_compiled")):
        lrows = [r for r in rows if r["group"] == g]
        for key in dict.fromkeys(map(_task_bs, lrows)):
            base = next((r for r in lrows if _task_bs(r) == key and r["params"]["loop"] == pl), None)
            for r in (r for r in lrows if _task_bs(r) == key and r["params"]["loop"] != pl):
                lp, img_s = r["params"]["loop"], _x(r, "img_s")
                s = dict(task=key[0], bs=key[1], loop=lp, ratio=_ratio(r, base), img_s=img_s,
                         plain_img_s=_x(base, "img_s"))
                s["text"] = (
                    f"{key[0]} bs {key[1]}: {lp}/{pl} = {_r(s['ratio'], 3)}"
                    + (" (diagnostic)" if lp in DIAGNOSTIC else "")
                    + (f" ({_f(img_s, 0)} vs {_f(s['plain_img_s'], 0)} img/s)" if img_s else "")
                    + (f"; compile {_f(_x(r, 'compile_s'), 1)} s vs {_f(_x(base, 'compile_s'), 1)} s"
                       if g == LOOPC else "")
                )
                out.append(s)
    return out


def impl_10(rows):
    "IMPL-10: images per second of each loop, resnet50 fp16 channels_last, compute-only, per batch size."
    out = []
    for r in (r for r in rows if r["group"] == LOOP and _task_bs(r)[0] == "resnet50_fp16_cl"):
        s = dict(bs=_task_bs(r)[1], loop=r["params"]["loop"], img_s=_x(r, "img_s"))
        diag = " (diagnostic)" if s["loop"] in DIAGNOSTIC else ""
        s["text"] = f"{s['loop']}{diag} bs {s['bs']}: {_f(s['img_s'], 0)} img/s"
        out.append(s)
    return out


CLAIMS = {"FP16-6": fp16_6, "FP16-7": fp16_7, "ARCH-5": arch_5, "CF-23": cf_23, "IMPL-9": impl_9, "IMPL-10": impl_10}


def peak_fraction(run) -> dict:
    "The achieved fraction of the GPU's datasheet peak and of the ceiling this card measured (group `peak`)."
    rows = run["rows"]
    key, pk = peaks_for(run["machine_info"].get("gpu"))
    ceil = {r["params"]["dtype"]: _x(r, "tflops") for r in rows if r["group"] == "peak"}
    measured = [r for r in rows if r["group"] == FP] + [
        r
        for r in rows
        if r["group"] == LOOP and r["params"].get("loop") in ("impl", "plain") and _task_bs(r)[0] != "collab"
    ]
    frac = []
    for r in measured:
        prec, g, img_s = r["params"].get("precision") or _x(r, "precision"), _x(r, "fwd_gflop_per_img"), _x(r, "img_s")
        if not (g and img_s and prec in PEAK_KIND):
            continue
        tf = img_s * 3 * g / 1e3  # training ~ 3x the forward FLOP
        arch = r["params"].get("arch") or _task_bs(r)[0].split("_")[0]
        c, bs, loop = ceil.get(CEILING_KEY[prec]), _x(r, "bs") or r["params"].get("bs"), r["params"].get("loop", "impl")
        frac.append(
            dict(
                what=f"{r['group']} {arch} {prec} bs {bs} {loop}",
                tflops=tf,
                peak=pk[PEAK_KIND[prec]] if pk else None,
                of_peak=tf / pk[PEAK_KIND[prec]] if pk else None,
                of_ceiling=tf / c if c else None,
            )
        )
    return dict(gpu_key=key, peaks=pk, ceilings=ceil, rows=frac)


def ratios(run) -> dict:
    "Every ratio the lesson makes a claim about, from one run: {claim id: [row dicts, each with its `text`], peak}."
    return {cid: f(run["rows"]) for cid, f in CLAIMS.items()} | {"peak": peak_fraction(run)}


# ---------------------------------------------------------------- markdown
def _f(x, nd=2, unit=""):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}f}{unit}"


def _r(x, nd=2, unit=""):
    "A Ratio with its interval: 1.23x [1.20, 1.26]."
    ci = getattr(x, "ci", None)
    return _f(x, nd, unit) + (f" [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]" if ci else "")


def _label(params):
    return " ".join(f"{k}={v}" for k, v in params.items())


def _header(runs):
    last, mi = runs[-1], runs[-1]["machine_info"]
    return [
        f"# Benchmark results: {last['machine']}",
        "",
        f"Latest run {last['date']}, commit {last['commit']}{' (dirty)' if last['dirty'] else ''}, "
        f"code hash {last['tree']}, "
        f"profile {mi.get('bench_profile', '?')}; cuDNN {mi.get('cudnn')}, torchvision {mi.get('torchvision')}, "
        f"fastai {mi.get('fastai')}, Python {mi.get('python')}. {len(runs)} run(s) read.",
        "",
        "Diagnostics (not claims): " + "; ".join(f"`{k}` = {v}" for k, v in DIAGNOSTIC.items()) + ".",
        "",
        "Ratios are of medians of per-epoch times measured side by side (interleaved) in that run. "
        "Speedup = t(slower) / t(faster); > 1 means the second configuration is faster. "
        "[a, b]: the 95% bootstrap interval of a ratio over the run's rounds.",
        "",
    ]


def _claims_table(R):
    L = ["## The lesson's figures beside the measured ones", "", "| claim | the lesson / ledger | measured |"]
    L.append("| --- | --- | --- |")
    return L + [f"| {cid} | {LESSON[cid]} | {s['text']} |" for cid in CLAIMS for s in R[cid]]


def _peak_table(P):
    if not P["rows"]:
        return []
    ceilings = ", ".join(f"{k} {v:.4g}" for k, v in P["ceilings"].items() if v)
    return [
        "",
        "## Achieved fraction of the GPU's peak",
        "",
        f"Training FLOP ~ 3 x forward FLOP (2 per multiply-add of every convolution and linear layer, counted). "
        f"Datasheet dense peaks ({P['gpu_key'] or 'GPU not in the table'}): "
        f"fp16/bf16, TF32, fp32 = {P['peaks']} TFLOP/s; "
        f"ceilings this card measured (group `peak`, large matmul): {ceilings} TFLOP/s.",
        "",
        "| configuration | TFLOP/s | of datasheet peak | of measured ceiling |",
        "| --- | --- | --- | --- |",
    ] + [
        f"| {r['what']} | {_f(r['tflops'], 1)} | {_f(r['of_peak'] and 100 * r['of_peak'], 1, '%')} | "
        f"{_f(r['of_ceiling'] and 100 * r['of_ceiling'], 1, '%')} |"
        for r in P["rows"]
    ]


def _all_benchmarks(run):
    L = ["", "## Every benchmark of the latest run", ""]
    for g in dict.fromkeys(r["group"] for r in run["rows"]):
        L += [f"### {g}", "", "| params | median s/epoch | min | max | rounds | img/s | notes |"]
        L.append("| --- | --- | --- | --- | --- | --- | --- |")
        for r in (r for r in run["rows"] if r["group"] == g):
            x = r["extra"]
            notes = ", ".join(
                f"{k} {f'{x[k]:.4g}' if isinstance(x[k], float) else x[k]}"
                for k in ("peak_mem_mib", "ratio_to_plain", "compile_s", "valid_last", "loss_last", "tflops")
                if x.get(k)
            )
            L.append(
                f"| {_label(r['params'])} | {_f(r['median'], 4)} | {_f(r['min'], 4)} | {_f(r['max'], 4)} | "
                f"{r['rounds']} | {_f(x.get('img_s'), 0)} | {notes} |"
            )
        L.append("")
    return L


def markdown(runs) -> str:
    R = ratios(runs[-1])
    L = _header(runs) + _claims_table(R) + _peak_table(R["peak"]) + _all_benchmarks(runs[-1])
    if len(runs) > 1:
        L += ["## Runs read", "", "| date | commit | machine | benchmarks |", "| --- | --- | --- | --- |"]
        L += [f"| {r['date']} | {r['commit']} | {r['machine']} | {len(r['rows'])} |" for r in runs]
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- plots
def _history(plt, runs, path):
    "One panel per group: each configuration's median per-epoch time in each run."
    groups = list(dict.fromkeys(r["group"] for run in runs for r in run["rows"]))
    fig, axs = plt.subplots(len(groups), 1, figsize=(11, 3.2 * len(groups)), squeeze=False)
    for ax, g in zip(axs[:, 0], groups):
        series = {}
        for i, run in enumerate(runs):
            for r in (r for r in run["rows"] if r["group"] == g):
                series.setdefault(_label(r["params"]), []).append((i, r["median"]))
        for lab, pts in series.items():
            ax.plot(*zip(*pts), "o-", label=lab, ms=3)
        ax.set(title=f"{g}: median per-epoch time per run", ylabel="s / epoch", yscale="log", xlabel="run")
        ax.set_xticks(range(len(runs)), [f"{r['date'][:10]}\n{r['commit'][:7]}" for r in runs], fontsize=6)
        ax.legend(fontsize=5, ncol=3, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax, labels, series, rotation=60, fontsize=7):
    "Side-by-side bars: series = {legend: values}, None drawn as 0."
    w = 0.8 / len(series)
    for n, (lab, ys) in enumerate(series.items()):
        ax.bar([x + (n - (len(series) - 1) / 2) * w for x in range(len(labels))], [y or 0 for y in ys], w, label=lab)
    ax.set_xticks(range(len(labels)), labels, rotation=rotation, fontsize=fontsize)


def _plot_fp16(ax, R, run):
    sp = R["FP16-6"]
    if sp:
        vs = {"vs strict fp32": [s["vs_strict"] for s in sp], "vs fp32 (TF32)": [s["vs_default"] for s in sp]}
        _bars(ax, [f"{s['arch'][6:]} {s['precision']}" for s in sp], vs)
        ax.axhspan(2, 3, color="g", alpha=0.15, label="lesson: 2-3x")
        ax.legend(fontsize=7)
    ax.set(title="FP16-6: speedup over fp32 per epoch", ylabel="x")


def _plot_emb(ax, R, run):
    emb = [r for r in run["rows"] if r["group"] == EMB]
    for m in dict.fromkeys(r["params"]["method"] for r in emb):
        per_step = lambda r: r["median"] / r["extra"].get("steps_per_epoch", 1) * 1e6
        ax.plot(
            *zip(*sorted((r["params"]["vocab"], per_step(r)) for r in emb if r["params"]["method"] == m)), "o-", label=m
        )
    ax.set(title="CF-23: forward + backward per step vs vocabulary", xscale="log", yscale="log", xlabel="vocab")
    ax.set(ylabel="us / step")
    ax.legend(fontsize=7)


def _plot_loops(ax, R, run):
    lo = R["IMPL-9"]
    if lo:
        _bars(ax, [f"{s['task']} bs{s['bs']} {s['loop']}" for s in lo], {"ratio": [s["ratio"] for s in lo]})
        ax.axhline(1.05, color="r", ls="--", label="IMPL-9: 1.05")
        ax.axhline(1.0, color="k", lw=0.5)
        ax.legend(fontsize=7)
    ax.set(title="loop time / plain PyTorch loop time", ylabel="ratio")


def _plot_peak(ax, R, run):
    fr = R["peak"]["rows"]
    if fr:
        pct = lambda k: [100 * (r[k] or 0) for r in fr]
        labels = [r["what"].split(" ", 1)[1] for r in fr]
        _bars(ax, labels, {"of datasheet peak": pct("of_peak"), "of measured matmul ceiling": pct("of_ceiling")}, 75, 5)
        ax.legend(fontsize=7)
    ax.set(title=f"achieved % of peak ({R['peak']['gpu_key'] or 'no datasheet peak for this device'})", ylabel="%")


def plots(runs, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = [out / "epoch_times.png", out / "ratios.png"]
    _history(plt, runs, files[0])
    R = ratios(runs[-1])
    fig, axs = plt.subplots(2, 2, figsize=(13, 8))
    for ax, panel in zip(axs.flat, (_plot_fp16, _plot_emb, _plot_loops, _plot_peak)):
        panel(ax, R, runs[-1])
    fig.suptitle(runs[-1]["machine"], fontsize=9)
    fig.tight_layout()
    fig.savefig(files[1], dpi=110)
    plt.close(fig)
    return files


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benches.report", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "paths", nargs="*", default=[".benchmarks"], help="pytest-benchmark JSON files or folders, JSON lines files"
    )
    ap.add_argument("--out", default="results/tmp", help="output folder (default results/tmp)")
    ap.add_argument("--machine", default=None, help="only runs whose machine label contains this (e.g. H100)")
    a = ap.parse_args(argv)
    runs = load(a.paths)
    if a.machine:
        runs = [r for r in runs if a.machine in r["machine"]]
    if not runs:
        raise SystemExit(f"report: no benchmark runs found in {a.paths}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # history of the latest run's machine only: timings of different machines do not compare
    same = [r for r in runs if r["machine"] == runs[-1]["machine"]]
    (out / "results.md").write_text(markdown(same))
    files = [out / "results.md", *plots(same, out)]
    print("report: wrote " + ", ".join(map(str, files)) + f" from {len(same)} run(s) on {same[-1]['machine']}")
    return files


if __name__ == "__main__":
    main()
