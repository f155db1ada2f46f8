"""Render pytest-benchmark history as markdown and plots, with the lesson's figures beside the measured ratios.

    python -m benches.report [PATH ...] [--out DIR]

PATH: pytest-benchmark JSON files, folders searched recursively for them (a --benchmark-storage folder such as
.benchmarks/, or results/), or the JSON-lines file the benches append to ($BENCH_JSONL) when a run was cut short.
Default PATH: .benchmarks. Writes DIR/results.md (default DIR: results/tmp), DIR/epoch_times.png (median
per-epoch time of each configuration across runs) and DIR/ratios.png (the speedup ratios of the latest run).
Ratios come from medians of one run: the benches interleave the variants they compare, so a ratio within a
run is measured side by side.
"""

from __future__ import annotations

import argparse
import json
import math
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
DIAGNOSTIC = {"impl_lean": "impl without its per-batch host syncs", "plain_item": "plain + loss.item() per batch"}
PEAK_KIND = {"fp16": 0, "bf16": 0, "fp16_cl": 0, "bf16_cl": 0, "fp32": 1, "fp32_strict": 2}
CEILING_KEY = {
    "fp16": "fp16",
    "fp16_cl": "fp16",
    "bf16": "bf16",
    "bf16_cl": "bf16",
    "fp32": "tf32",
    "fp32_strict": "fp32",
}


# ---------------------------------------------------------------- loading
def _files(paths):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(x for x in p.rglob("*.json*") if x.suffix in (".json", ".jsonl"))
        elif p.exists():
            yield p


def machine_label(mi: dict) -> str:
    if mi.get("gpu"):
        return f"{mi['gpu']} (driver {mi.get('driver')}, CUDA {mi.get('cuda')}, torch {mi.get('torch')})"
    cpu = mi.get("cpu") or {}
    n = mi.get("cpu_count") or cpu.get("count", "?")
    return f"CPU {cpu.get('brand_raw', mi.get('processor') or '?')} x{n} ({mi.get('node', '?')})"


def load(paths) -> list[dict]:
    "Runs, oldest first: {file, date, commit, machine, machine_info, rows: [{group, params, median, ..., extra}]}."
    runs = []
    for f in _files(paths):
        try:
            if f.suffix == ".jsonl":
                recs = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
                date = datetime.fromtimestamp(f.stat().st_mtime, timezone.utc).isoformat()
                mi, ci = {}, {}
                rows = [
                    _row(r["group"], r.get("params") or {}, r.get("epoch_s") or [], r, name=r.get("name")) for r in recs
                ]
            else:
                d = json.loads(f.read_text())
                if not isinstance(d, dict) or "benchmarks" not in d:
                    continue
                mi, ci, date = d.get("machine_info", {}), d.get("commit_info", {}), d.get("datetime", "")
                rows = [
                    _row(
                        b.get("group"),
                        b.get("params") or {},
                        b.get("extra_info", {}).get("epoch_s") or (b.get("stats") or {}).get("data") or [],
                        b.get("extra_info", {}),
                        stats=b.get("stats"),
                        name=b.get("name"),
                    )
                    for b in d["benchmarks"]
                ]
        except (OSError, ValueError, KeyError) as e:
            print(f"report: skipping {f}: {e}")
            continue
        rows = [r for r in rows if r["median"] is not None]
        if rows:
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


def _row(group, params, times, extra, stats=None, name=None):
    st = stats or {}
    med = st.get("median", statistics.median(times) if times else None)
    return dict(
        group=group,
        params=dict(params),
        name=name,
        median=med,
        min=st.get("min", min(times) if times else None),
        max=st.get("max", max(times) if times else None),
        rounds=st.get("rounds", len(times)),
        extra=extra,
    )


# ---------------------------------------------------------------- ratios
def find(rows, group, **params):
    "The row of `group` whose params include `params` (None when absent)."
    for r in rows:
        if r["group"] == group and all(r["params"].get(k) == v for k, v in params.items()):
            return r
    return None


def _div(a, b):
    return a["median"] / b["median"] if a and b and b["median"] else None


def peaks_for(gpu: str | None):
    for key, p in PEAKS:
        if gpu and key in gpu:
            return key, p
    return None, None


def ratios(run) -> dict:
    "Every ratio the lesson makes a claim about, from one run's medians: {section: [row dicts]}."
    rows, out = run["rows"], {}
    fp = [r for r in rows if r["group"] == "fp16-speedup"]
    archs = sorted({r["params"]["arch"] for r in fp}, key=lambda a: int("".join(c for c in a if c.isdigit()) or 0))
    sp = []
    for a in archs:
        strict, default = (
            find(rows, "fp16-speedup", arch=a, precision="fp32_strict"),
            find(rows, "fp16-speedup", arch=a, precision="fp32"),
        )
        for p in ("fp16", "bf16", "fp16_cl", "bf16_cl"):
            r = find(rows, "fp16-speedup", arch=a, precision=p)
            if r is None:
                continue
            mem = (r["extra"].get("peak_mem_mib"), (default or {}).get("extra", {}).get("peak_mem_mib"))
            sp.append(
                dict(
                    arch=a,
                    precision=p,
                    vs_strict=_div(strict, r),
                    vs_default=_div(default, r),
                    mem_ratio=mem[0] / mem[1] if all(mem) else None,
                )
            )
    out["FP16-6"] = sp
    out["FP16-7"], out["ARCH-5"] = [], []
    for group in ("fp16-speedup", "fp16-e2e"):
        r50h, r34, r34s = (
            find(rows, group, arch="resnet50", precision="fp16"),
            find(rows, group, arch="resnet34", precision="fp32"),
            find(rows, group, arch="resnet34", precision="fp32_strict"),
        )
        if r50h and (r34 or r34s):
            out["FP16-7"].append(dict(group=group, vs_fp32=_div(r50h, r34), vs_strict=_div(r50h, r34s)))
        r50, r50s = (
            find(rows, group, arch="resnet50", precision="fp32"),
            find(rows, group, arch="resnet50", precision="fp32_strict"),
        )
        if (r50 and r34) or (r50s and r34s):
            out["ARCH-5"].append(dict(group=group, fp32=_div(r50, r34), fp32_strict=_div(r50s, r34s)))
    emb = []
    for v in sorted({r["params"]["vocab"] for r in rows if r["group"] == "embedding-vs-onehot"}):
        e, s, o = (
            find(rows, "embedding-vs-onehot", vocab=v, method=m) for m in ("embedding", "embedding_sparse", "onehot")
        )
        emb.append(
            dict(
                vocab=v,
                onehot_over_embedding=_div(o, e),
                onehot_over_sparse=_div(o, s),
                embedding_step_us=e["median"] / e["extra"].get("steps_per_epoch", 1) * 1e6 if e else None,
                bs=(e or {}).get("extra", {}).get("bs"),
            )
        )
    if emb and emb[0]["embedding_step_us"] and emb[-1]["embedding_step_us"]:
        emb[-1]["growth"] = emb[-1]["embedding_step_us"] / emb[0]["embedding_step_us"]
    out["CF-23"] = emb
    lo = []
    lrows = [r for r in rows if r["group"] == "loop-overhead"]
    for key in dict.fromkeys(
        (r["params"].get("task", r["extra"].get("task")), r["params"].get("bs", r["extra"].get("bs"))) for r in lrows
    ):
        base = next((r for r in lrows if _task_bs(r) == key and r["params"]["loop"] == "plain"), None)
        for r in lrows:
            if _task_bs(r) == key and r["params"]["loop"] != "plain":
                lo.append(
                    dict(
                        task=key[0],
                        bs=key[1],
                        loop=r["params"]["loop"],
                        ratio=_div(r, base),
                        img_s=r["extra"].get("img_s"),
                        plain_img_s=(base or {}).get("extra", {}).get("img_s"),
                    )
                )
    out["IMPL-9"] = lo
    i10 = [
        dict(bs=_task_bs(r)[1], loop=r["params"]["loop"], img_s=r["extra"].get("img_s"))
        for r in lrows
        if _task_bs(r)[0] == "resnet50_fp16_cl"
    ]
    out["IMPL-10"] = i10
    # achieved fraction of the GPU's peak (datasheet) and of the ceiling this card measured (group `peak`)
    key, pk = peaks_for(run["machine_info"].get("gpu"))
    ceil = {r["params"]["dtype"]: r["extra"].get("tflops") for r in rows if r["group"] == "peak"}
    frac = []
    for r in fp + [
        r
        for r in lrows
        if r["params"].get("loop") in ("impl", "plain") and r["extra"].get("img_s") and _task_bs(r)[0] != "collab"
    ]:
        prec = r["params"].get("precision") or r["extra"].get("precision")
        g = r["extra"].get("fwd_gflop_per_img")
        if not (g and r["extra"].get("img_s") and prec in PEAK_KIND):
            continue
        tf = r["extra"]["img_s"] * 3 * g / 1e3  # training ~ 3x the forward FLOP
        arch = r["params"].get("arch") or _task_bs(r)[0].split("_")[0]
        frac.append(
            dict(
                what=f"{r['group']} {arch} {prec} bs {r['extra'].get('bs', r['params'].get('bs'))} "
                f"{r['params'].get('loop', 'impl')}",
                tflops=tf,
                peak=pk[PEAK_KIND[prec]] if pk else None,
                of_peak=tf / pk[PEAK_KIND[prec]] if pk else None,
                of_ceiling=tf / ceil[CEILING_KEY[prec]] if ceil.get(CEILING_KEY[prec]) else None,
            )
        )
    out["peak"] = dict(gpu_key=key, peaks=pk, ceilings=ceil, rows=frac)
    return out


def _task_bs(r):
    return r["params"].get("task", r["extra"].get("task")), r["params"].get("bs", r["extra"].get("bs"))


# ---------------------------------------------------------------- markdown
def _f(x, nd=2, unit=""):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}f}{unit}"


def _label(params):
    return " ".join(f"{k}={v}" for k, v in params.items())


def markdown(runs) -> str:
    last = runs[-1]
    R = ratios(last)
    mi = last["machine_info"]
    L = [
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
        "Speedup = t(slower) / t(faster); > 1 means the second configuration is faster.",
        "",
    ]
    L += [
        "## The lesson's figures beside the measured ones",
        "",
        "| claim | the lesson / ledger | measured |",
        "| --- | --- | --- |",
    ]
    for s in R["FP16-6"]:
        L.append(
            f"| FP16-6 | {LESSON['FP16-6']} | {s['arch']} {s['precision']}: {_f(s['vs_strict'])}x vs strict fp32, "
            f"{_f(s['vs_default'])}x vs fp32 (TF32)"
            + (f"; peak memory {_f(s['mem_ratio'])}x fp32's" if s["mem_ratio"] else "")
            + " |"
        )
    for s in R["FP16-7"]:
        L.append(
            f"| FP16-7 | {LESSON['FP16-7']} | {s['group']}: t(r50 fp16)/t(r34 fp32) = {_f(s['vs_fp32'])} "
            f"(vs strict fp32: {_f(s['vs_strict'])}) |"
        )
    for s in R["ARCH-5"]:
        L.append(
            f"| ARCH-5 | {LESSON['ARCH-5']} | {s['group']}: {_f(s['fp32'])} (TF32), {_f(s['fp32_strict'])} (strict) |"
        )
    for s in R["CF-23"]:
        L.append(
            f"| CF-23 | {LESSON['CF-23']} | vocab {s['vocab']:.0e} (batch {s['bs']}): "
            f"one-hot/embedding {_f(s['onehot_over_embedding'], 1)}x, "
            f"one-hot/sparse embedding {_f(s['onehot_over_sparse'], 1)}x; "
            f"embedding step {_f(s['embedding_step_us'], 0)} us"
            + (f", {_f(s['growth'])}x the smallest vocab's" if s.get("growth") else "")
            + " |"
        )
    for s in R["IMPL-9"]:
        L.append(
            f"| IMPL-9 | {LESSON['IMPL-9']} | {s['task']} bs {s['bs']}: {s['loop']}/plain = {_f(s['ratio'], 3)}"
            + (" (diagnostic)" if s["loop"] in DIAGNOSTIC else "")
            + (f" ({_f(s['img_s'], 0)} vs {_f(s['plain_img_s'], 0)} img/s)" if s.get("img_s") else "")
            + " |"
        )
    for s in R["IMPL-10"]:
        L.append(
            f"| IMPL-10 | {LESSON['IMPL-10']} | {s['loop']}{' (diagnostic)' if s['loop'] in DIAGNOSTIC else ''} "
            f"bs {s['bs']}: {_f(s['img_s'], 0)} img/s |"
        )
    P = R["peak"]
    if P["rows"]:
        L += [
            "",
            "## Achieved fraction of the GPU's peak",
            "",
            f"Training FLOP ~ 3 x forward FLOP (2 per multiply-add of every convolution and linear layer, counted). "
            f"Datasheet dense peaks ({P['gpu_key'] or 'GPU not in the table'}): "
            f"fp16/bf16, TF32, fp32 = {P['peaks']} TFLOP/s; "
            f"ceilings this card measured (group `peak`, large matmul): "
            + ", ".join(f"{k} {v:.4g}" for k, v in P["ceilings"].items() if v)
            + " TFLOP/s.",
            "",
            "| configuration | TFLOP/s | of datasheet peak | of measured ceiling |",
            "| --- | --- | --- | --- |",
        ]
        L += [
            f"| {r['what']} | {_f(r['tflops'], 1)} | {_f(r['of_peak'] and 100 * r['of_peak'], 1, '%')} | "
            f"{_f(r['of_ceiling'] and 100 * r['of_ceiling'], 1, '%')} |"
            for r in P["rows"]
        ]
    L += ["", "## Every benchmark of the latest run", ""]
    for g in dict.fromkeys(r["group"] for r in last["rows"]):
        rs = [r for r in last["rows"] if r["group"] == g]
        L += [
            f"### {g}",
            "",
            "| params | median s/epoch | min | max | rounds | img/s | notes |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in rs:
            x = r["extra"]
            notes = ", ".join(
                f"{k} {f'{x[k]:.4g}' if isinstance(x[k], float) else x[k]}"
                for k in ("peak_mem_mib", "ratio_to_plain", "valid_last", "loss_last", "tflops")
                if k in x and x[k]
            )
            L.append(
                f"| {_label(r['params'])} | {_f(r['median'], 4)} | {_f(r['min'], 4)} | {_f(r['max'], 4)} | "
                f"{r['rounds']} | "
                f"{_f(x.get('img_s'), 0)} | {notes} |"
            )
        L.append("")
    if len(runs) > 1:
        L += ["## Runs read", "", "| date | commit | machine | benchmarks |", "| --- | --- | --- | --- |"]
        L += [f"| {r['date']} | {r['commit']} | {r['machine']} | {len(r['rows'])} |" for r in runs]
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- plots
def plots(runs, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    groups = list(dict.fromkeys(r["group"] for run in runs for r in run["rows"]))
    fig, axs = plt.subplots(len(groups), 1, figsize=(11, 3.2 * len(groups)), squeeze=False)
    for ax, g in zip(axs[:, 0], groups):
        series = {}
        for i, run in enumerate(runs):
            for r in run["rows"]:
                if r["group"] == g:
                    series.setdefault(_label(r["params"]), []).append((i, r["median"]))
        for lab, pts in series.items():
            ax.plot(*zip(*pts), "o-", label=lab, ms=3)
        ax.set(title=f"{g}: median per-epoch time per run", ylabel="s / epoch", yscale="log", xlabel="run")
        ax.set_xticks(range(len(runs)), [f"{r['date'][:10]}\n{r['commit'][:7]}" for r in runs], fontsize=6)
        ax.legend(fontsize=5, ncol=3, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    files.append(out / "epoch_times.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    R = ratios(runs[-1])
    fig, axs = plt.subplots(2, 2, figsize=(13, 8))
    ax = axs[0, 0]
    sp = R["FP16-6"]
    if sp:
        xs = range(len(sp))
        ax.bar([x - 0.2 for x in xs], [s["vs_strict"] or 0 for s in sp], 0.4, label="vs strict fp32")
        ax.bar([x + 0.2 for x in xs], [s["vs_default"] or 0 for s in sp], 0.4, label="vs fp32 (TF32)")
        ax.axhspan(2, 3, color="g", alpha=0.15, label="lesson: 2-3x")
        ax.set_xticks(list(xs), [f"{s['arch'][6:]} {s['precision']}" for s in sp], rotation=60, fontsize=7)
    ax.set(title="FP16-6: speedup over fp32 per epoch", ylabel="x")
    ax.legend(fontsize=7)
    ax = axs[0, 1]
    emb = [r for r in runs[-1]["rows"] if r["group"] == "embedding-vs-onehot"]
    for m in dict.fromkeys(r["params"]["method"] for r in emb):
        pts = sorted(
            (r["params"]["vocab"], r["median"] / r["extra"].get("steps_per_epoch", 1) * 1e6)
            for r in emb
            if r["params"]["method"] == m
        )
        ax.plot(*zip(*pts), "o-", label=m)
    ax.set(
        title="CF-23: forward + backward per step vs vocabulary",
        xscale="log",
        yscale="log",
        xlabel="vocab",
        ylabel="us / step",
    )
    ax.legend(fontsize=7)
    ax = axs[1, 0]
    lo = R["IMPL-9"]
    if lo:
        ax.bar(range(len(lo)), [s["ratio"] or 0 for s in lo])
        ax.axhline(1.05, color="r", ls="--", label="IMPL-9: 1.05")
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xticks(range(len(lo)), [f"{s['task']} bs{s['bs']} {s['loop']}" for s in lo], rotation=60, fontsize=7)
        ax.legend(fontsize=7)
    ax.set(title="loop time / plain PyTorch loop time", ylabel="ratio")
    ax = axs[1, 1]
    fr = R["peak"]["rows"]
    if fr:
        xs = range(len(fr))
        ax.bar([x - 0.2 for x in xs], [100 * (r["of_peak"] or 0) for r in fr], 0.4, label="of datasheet peak")
        ax.bar(
            [x + 0.2 for x in xs], [100 * (r["of_ceiling"] or 0) for r in fr], 0.4, label="of measured matmul ceiling"
        )
        ax.set_xticks(list(xs), [r["what"].split(" ", 1)[1] for r in fr], rotation=75, fontsize=5)
        ax.legend(fontsize=7)
    ax.set(title=f"achieved % of peak ({R['peak']['gpu_key'] or 'no datasheet peak for this device'})", ylabel="%")
    fig.suptitle(runs[-1]["machine"], fontsize=9)
    fig.tight_layout()
    files.append(out / "ratios.png")
    fig.savefig(files[-1], dpi=110)
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
