"""The lesson's figures: small producers (data in, matplotlib Figure out) and the gatherers that make their data.

Producers (`plot_*`) only draw: they take recorded arrays and return a Figure. Gatherers (`gather_*`) run small,
seeded trainings through `impl` on the fixture datasets (or read benchmark results) and return the producer's
keyword arguments, or raise `Unavailable` with the reason. `collect()` runs every FIGURES entry and never raises:
a figure whose inputs are missing comes back with `note = "not available: <reason>"` and no image.
"""
from __future__ import annotations

import base64
import io
import math
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 0


class Unavailable(Exception):
    "A figure's inputs are missing (a module not written yet, no benchmark results): shown as a note, not an error."


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    claims: tuple = ()
    png: bytes | None = None
    note: str = ""  # "not available: <reason>" when png is None
    secs: float = 0.0
    wide: bool = False  # spans the page's width

    @property
    def data_uri(self) -> str | None:
        return None if self.png is None else "data:image/png;base64," + base64.b64encode(self.png).decode()


def to_png(fig, dpi=100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


# ====================================================================== producers: data -> Figure
def plot_lr_find(lrs, losses, suggestions=None, skip_end=5):
    "Smoothed loss against LR on a log x axis (T:L148), each suggestion {name: lr} marked on the curve (LR-10, LR-11)."
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    n = max(len(lrs) - skip_end, 2)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs[:n], losses[:n])
    ok = np.isfinite(losses[:n])
    for (nm, lr), c in zip((suggestions or {}).items(), ["C1", "C2", "C3", "C4", "C5"]):
        y = np.interp(np.log(lr), np.log(lrs[:n][ok]), losses[:n][ok])
        ax.plot(lr, y, "o", c=c, ms=8, label=f"{nm}: {lr:.2e}")
    ax.set(xscale="log", xlabel="Learning Rate", ylabel="Loss (smoothed)", title="LR finder")
    if suggestions:
        ax.legend()
    return fig


def _epoch_lines(ax, n_batches, per_epoch):
    for e in range(per_epoch, n_batches, per_epoch or n_batches):
        ax.axvline(e, c="0.85", lw=0.8, zorder=0)


def plot_one_cycle(lrs, moms, per_epoch=None):
    "1cycle: the LR (last group) and the momentum per batch (T:L430-442, OC-1, OC-2); grey lines at epoch ends."
    lr, mom = np.asarray(lrs, float), np.asarray(moms, float)
    lr, mom = (lr[:, -1] if lr.ndim == 2 else lr), (mom[:, -1] if mom.ndim == 2 else mom)
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, v, nm in ((axs[0], lr, "learning rate"), (axs[1], mom, "momentum")):
        ax.plot(v)
        if per_epoch:
            _epoch_lines(ax, len(v), per_epoch)
        ax.set(xlabel="batch", ylabel=nm, title=f"1cycle {nm}")
    return fig


def plot_group_lrs(lrs, phases=None):
    """Discriminative LRs: each parameter group's LR per batch, log y (T:L406, DLR-1). `phases`: [(batch, label)]
    marking e.g. fine_tune's frozen and unfrozen parts."""
    lr = np.asarray(lrs, float)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for g in range(lr.shape[1]):
        ax.plot(lr[:, g], label=f"group {g}" + (" (head)" if g == lr.shape[1] - 1 else ""))
    for b, label in phases or ():
        ax.axvline(b, c="0.6", ls="--", lw=0.8)
        ax.annotate(label, (b, 1), xycoords=("data", "axes fraction"), xytext=(3, -12), textcoords="offset points",
                    fontsize=8, color="0.35")
    ax.set(yscale="log", xlabel="batch", ylabel="learning rate", title="per-group learning rates")
    ax.legend(fontsize=8)
    return fig


def plot_threshold_sweep(thresholds, accs, chosen=0.5, baseline=None):
    """accuracy_multi against the threshold on the validation set (T:L760-790, the lesson's `plt.plot(xs, accs)`);
    `baseline`: the accuracy of predicting no label at all (the fraction of 0 targets)."""
    t, a = np.asarray(thresholds, float), np.asarray(accs, float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, a)
    if baseline is not None:
        ax.axhline(baseline, c="C3", ls=":", lw=1, label=f"no label predicted: {baseline:.3f}")
    i = int(a.argmax())
    ax.plot(t[i], a[i], "o", c="C1", label=f"best: thresh {t[i]:.2f}, acc {a[i]:.3f}")
    if chosen is not None:
        ax.axvline(chosen, c="0.6", ls="--", lw=0.8, label=f"default thresh {chosen}")
    ax.set(xlabel="threshold", ylabel="accuracy_multi", title="multi-label threshold sweep")
    ax.legend(fontsize=8)
    return fig


def plot_confusion(cm, vocab, most_confused=(), max_labels=40):
    "Confusion matrix (rows actual, columns predicted) and the most_confused list beside it (T:L488-500)."
    cm = np.asarray(cm)
    n = len(vocab)
    fig = plt.figure(figsize=(10, 6.5))
    ax = fig.add_axes([0.05, 0.1, 0.55, 0.85])
    ax.imshow(cm, cmap="Blues")
    ticks = range(n) if n <= max_labels else []
    ax.set_xticks(list(ticks), [vocab[i] for i in ticks], rotation=90, fontsize=6 if n > 15 else 8)
    ax.set_yticks(list(ticks), [vocab[i] for i in ticks], fontsize=6 if n > 15 else 8)
    if n <= 12:
        for i, j in np.ndindex(cm.shape):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "k")
    ax.set(xlabel="predicted", ylabel="actual", title="confusion matrix")
    tx = fig.add_axes([0.66, 0.1, 0.33, 0.85])
    tx.axis("off")
    lines = [f"{a} \u2192 {p}: {k}" for a, p, k in list(most_confused)[:18]] or ["(no confusions)"]
    tx.text(0, 1, "most_confused (actual \u2192 predicted: count)\n\n" + "\n".join(lines), va="top", fontsize=8,
            family="monospace")
    return fig


def plot_biwi(images, targets, preds):
    "BIWI head centres: target (green +) and prediction (red x) on a few validation frames (T:L1400-1470)."
    n = len(images)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axs = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.7 * rows), squeeze=False)
    for ax in axs.flat:
        ax.axis("off")
    for ax, im, t, p in zip(axs.flat, images, np.asarray(targets, float), np.asarray(preds, float)):
        ax.imshow(im)
        ax.plot(*t, "+", c="lime", ms=14, mew=2.5, label="target")
        ax.plot(*p, "x", c="red", ms=11, mew=2.5, label="prediction")
        ax.set_title(f"error {np.hypot(*(p - t)):.0f} px", fontsize=9)
    axs.flat[0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig


def plot_collab_losses(histories):
    """Train and valid loss per epoch per collab model: {name: {"train": [...], "valid": [...]}}. The lesson's bias
    model overfits: valid turns up while train keeps falling (T:L1950-1990). Each valid curve's minimum is marked."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (nm, h), c in zip(histories.items(), ["C0", "C1", "C2", "C3", "C4"]):
        ep = np.arange(1, len(h["train"]) + 1)
        ax.plot(ep, h["train"], "--", c=c, label=f"{nm} train")
        k = int(np.argmin(h["valid"]))
        ax.plot(ep, h["valid"], "-o", c=c, ms=4, label=f"{nm} valid (lowest at epoch {k + 1}/{len(ep)})")
        ax.plot(ep[k], h["valid"][k], "*", c=c, ms=13)
    ax.set(xlabel="epoch", ylabel="MSE", title="collaborative filtering: train vs valid loss")
    ax.legend(fontsize=7)
    return fig


def plot_emb_vs_onehot(series, unit="s"):
    "Time per forward+backward step against the vocabulary size, one line per method: {method: [(vocab, secs)]}."
    fig, ax = plt.subplots(figsize=(6, 4))
    for (m, pts), mk in zip(series.items(), "osd^v"):
        ax.plot(*zip(*sorted(pts)), "-" + mk, label=m)
    ax.set(xscale="log", yscale="log", xlabel="vocabulary size", ylabel=f"time per step ({unit})",
           title="embedding vs one-hot")
    ax.legend()
    return fig


def plot_bench_history(runs, speedups=None, machine=None):
    """Per-epoch time of each benchmark across runs: runs = [(label, {bench: seconds})]; speedups =
    {pair: [(label, fp32/fp16)]} drawn beside it (FP16-1: 2-3x on a tensor-core GPU)."""
    names = sorted({b for _, d in runs for b in d})
    fig, axs = plt.subplots(1, 2 if speedups else 1, figsize=(11 if speedups else 6.5, 4), squeeze=False)
    ax = axs[0, 0]
    x = np.arange(len(runs))
    for nm in names:
        ax.plot(x, [d.get(nm, np.nan) for _, d in runs], "-o", ms=4, label=nm)
    ax.set_xticks(x, [lb for lb, _ in runs], rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="seconds per epoch", title="per-epoch time across runs")
    ax.legend(fontsize=6)
    if speedups:
        sx = axs[0, 1]
        for nm, pts in speedups.items():
            sx.plot([lb for lb, _ in pts], [v for _, v in pts], "-o", ms=4, label=nm)
        sx.axhspan(2, 3, color="C2", alpha=0.12, label="the lesson's 2-3x")
        sx.axhline(1, c="0.5", lw=0.8)
        sx.set(ylabel="fp32 time / half-precision time", title="mixed-precision speedup")
        sx.tick_params(axis="x", rotation=30, labelsize=7)
        sx.legend(fontsize=6)
    if machine:
        fig.suptitle(machine, fontsize=8)
    fig.tight_layout()
    return fig


# ====================================================================== gathering helpers
def _need(mod, *names):
    "Import impl.<mod> (and check it has `names`), or raise Unavailable naming what is missing."
    import importlib
    try:
        m = importlib.import_module(f"impl.{mod}")
    except ModuleNotFoundError as e:
        raise Unavailable(f"impl.{mod} is not written yet ({e.name} missing)") from None
    if missing := [n for n in names if not hasattr(m, n)]:
        raise Unavailable(f"impl.{mod} has no {', '.join(missing)} yet")
    return m


def _seed(s=SEED):
    import random

    import torch
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


class Ctx:
    "What the gatherers share: the fixture folder (made once) and the benchmark result folders."

    def __init__(self, data_dir=None, bench_dirs=None):
        self._data_dir = Path(data_dir) if data_dir else None
        self.bench_dirs = [Path(p) for p in (bench_dirs or (ROOT / ".benchmarks", ROOT / "results"))]

    @property
    def data(self) -> Path:
        if self._data_dir is None:
            try:
                import fixtures
            except ImportError as e:
                raise Unavailable(f"the fixtures package is missing ({e})") from None
            self._data_dir = Path(fixtures.make(ROOT / ".cache" / "fixtures" / "medium", seed=0, size="medium"))
        return self._data_dir


def _dls(x, y, bs, valid, seed=SEED):
    "Seeded DataLoaders over tensors (train shuffled, drop_last as fastai) and a valid loader; valid = (x, y)."
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    g = torch.Generator().manual_seed(seed)
    return SimpleNamespace(train=DataLoader(TensorDataset(x, y), bs, shuffle=True, drop_last=True, generator=g),
                           valid=DataLoader(TensorDataset(*valid), bs * 2))


def _tensors(ds):
    "Every item of an impl.data Datasets split (validation-mode transforms), stacked: (x, y)."
    import torch
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs), torch.stack([torch.as_tensor(y).as_subclass(torch.Tensor) for y in ys])


_memo: dict = {}


def _memo_get(key, f):
    if key not in _memo:
        _memo[key] = f()
    return _memo[key]


def _image_dls(ds, bs):
    """impl.data reads, labels and splits; the decoded images are cached as tensors (valid-mode transforms, no
    augmentation) and normalised with the training set's statistics, so a few epochs take seconds on a CPU."""
    (xt, yt), (xv, yv) = _tensors(_no_aug(ds)), _tensors(ds.valid)
    m, s = xt.mean((0, 2, 3), keepdim=True), xt.std((0, 2, 3), keepdim=True)
    return _dls((xt - m) / s, yt, bs, ((xv - m) / s, yv))


def _no_aug(ds):
    "The train split with validation-mode item transforms (no random crop)."
    ds = ds.subset(0)
    ds.split_idx = None
    return ds


def _vision_learner(dls, n_out, loss_func, **kw):
    vision = _need("vision", "vision_learner", "tiny_resnet")
    _seed()
    return vision.vision_learner(dls, vision.tiny_resnet, n_out=n_out, loss_func=loss_func, **kw)


class _LogHypers:
    "A Learner callback keeping every group's LR per batch across several fits (the recorder resets per fit)."

    def __init__(self):
        self.lrs, self.starts = [], []

    def before_fit(self, learn):
        self.starts.append(len(self.lrs))

    def after_batch(self, learn):
        self.lrs.append(learn.hypers("lr"))


# ====================================================================== gatherers: Ctx -> producer kwargs
def _collab_dls(ctx):
    data = _need("data", "collab_dls")
    return _memo_get(("ml", str(ctx.data)), lambda: data.collab_dls(ctx.data / "ml-100k", bs=64, seed=SEED,
                                                                     item_name="movie"))


def _collab_mlp(n_users, n_items, nf=8):
    "A small 3-group model on the ratings (embeddings | hidden layer | output) for the training-loop figures."
    import torch
    from torch import nn
    layers = _need("layers", "sigmoid_range")

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.u, self.i = nn.Embedding(n_users, nf), nn.Embedding(n_items, nf)
            self.hidden = nn.Sequential(nn.Linear(2 * nf, 32), nn.ReLU())
            self.out = nn.Linear(32, 1)

        def forward(self, x):
            h = self.hidden(torch.cat([self.u(x[:, 0]), self.i(x[:, 1])], 1))
            return layers.sigmoid_range(self.out(h).squeeze(-1), 0, 5.5)

    return M()


def _ratings_learner(ctx, **kw):
    learner = _need("learner", "Learner")
    losses = _need("losses", "MSELossFlat")
    dls = _collab_dls(ctx)
    _seed()
    m = _collab_mlp(*(len(v) for v in dls.classes.values()))
    split = lambda m: [[*m.u.parameters(), *m.i.parameters()], list(m.hidden.parameters()), list(m.out.parameters())]
    return learner.Learner(dls, m, losses.MSELossFlat(), splitter=split, **kw)


def gather_lr_find(ctx):
    lf = _need("lr_find", "lr_find", "valley", "slide", "minimum", "steep")
    learn = _ratings_learner(ctx)
    sug = learn.lr_find(num_it=100, show_plot=False, suggest_funcs=(lf.valley, lf.slide, lf.minimum, lf.steep))
    rec = learn.recorder
    return dict(lrs=[g[-1] for g in rec.lrs], losses=rec.losses, suggestions=dict(sug._asdict()))


def gather_one_cycle(ctx):
    learn = _ratings_learner(ctx)
    learn.fit_one_cycle(3, 5e-3)
    rec = learn.recorder
    return dict(lrs=rec.lrs, moms=rec.moms, per_epoch=len(learn.dls.train))


def _pets_run(ctx, size=48, epochs=3):
    "fine_tune(epochs) of a 3-group tiny ResNet on the pets fixture, every group's LR logged: (learner, log, vocab)."
    def run():
        data = _need("data", "pets_datasets", "Resize", "ToTensor")
        ds = data.pets_datasets(ctx.data / "oxford-iiit-pet", seed=SEED,
                                item_tfms=[data.Resize(size, "squish"), data.ToTensor()])
        log = _LogHypers()
        learn = _vision_learner(_image_dls(ds, 32), len(ds.vocab), _need("losses", "CrossEntropyLossFlat").
                                CrossEntropyLossFlat(), cbs=[log])
        learn.fine_tune(epochs, base_lr=1e-2, freeze_epochs=1)
        return learn, log, list(ds.vocab)
    return _memo_get(("pets", str(ctx.data), size, epochs), run)


def gather_group_lrs(ctx):
    "fine_tune: the frozen epoch at slice(base_lr), then half of base_lr spread over the groups (FT-3, DLR-1)."
    _, log, _ = _pets_run(ctx)
    return dict(lrs=log.lrs, phases=list(zip(log.starts, ["frozen", "unfrozen: slice(base_lr/2/100, base_lr/2)"])))


def gather_confusion(ctx):
    interp = _need("interpret", "confusion_matrix", "most_confused")
    learn, _, vocab = _pets_run(ctx)
    p, t = learn.get_preds()
    cm = interp.confusion_matrix(t, p.argmax(-1), len(vocab))  # rows actual, columns predicted
    return dict(cm=np.asarray(cm), vocab=vocab, most_confused=interp.most_confused(cm, vocab, min_val=1))


def gather_threshold(ctx, size=64, epochs=15):
    "A multi-label tiny ResNet on the PASCAL fixture; accuracy_multi of its validation predictions per threshold."
    import torch
    data = _need("data", "pascal_datasets", "Resize", "ToTensor")
    metrics = _need("metrics", "accuracy_multi")
    ds = data.pascal_datasets(ctx.data / "pascal_2007", item_tfms=[data.Resize(size, "squish"), data.ToTensor()])
    learn = _vision_learner(_image_dls(ds, 32), len(ds.vocab), _need("losses", "BCEWithLogitsLossFlat").
                            BCEWithLogitsLossFlat())
    learn.fit_one_cycle(epochs, 1e-2)
    p, t = learn.get_preds(act=torch.sigmoid)
    xs = np.linspace(0.05, 0.95, 29)  # as the lesson (ML-16)
    accs = [float(metrics.accuracy_multi(p, t, thresh=float(th), sigmoid=False)) for th in xs]
    return dict(thresholds=xs, accs=accs, baseline=1 - float(t.float().mean()))


def gather_biwi(ctx, size=(96, 128), n_show=6, epochs=25):
    "Head-centre regression on the BIWI fixture, person 13 as the validation set (as in the lesson)."
    data = _need("data", "biwi_datasets", "PointScaler", "Resize", "ToTensor", "unscale_points")
    tfms = [data.PointScaler(), data.Resize(size, "squish"), data.ToTensor()]
    ds = data.biwi_datasets(ctx.data / "biwi_head_pose", item_tfms=tfms)
    dls = _image_dls(ds, 16)
    learn = _vision_learner(dls, 2, _need("losses", "MSELossFlat").MSELossFlat(), y_range=(-1, 1))
    learn.fit_one_cycle(epochs, 1e-2)
    p, t = learn.get_preds()
    fs = [ds.items[i] for i in ds.splits[1][:n_show]]
    ims = [np.asarray(data.load_image(f)) for f in fs]
    wh = [im.shape[1::-1] for im in ims]
    un = lambda v: np.stack([data.unscale_points(v[i].reshape(2), wh[i]).numpy() for i in range(len(ims))])
    return dict(images=ims, targets=un(t), preds=un(p))


def gather_collab(ctx, epochs=5):
    "DotProduct (y_range 0-5.5) and DotProductBias as in the lesson (50 factors, fit_one_cycle(5, 5e-3)), then wd=0.1."
    collab = _need("collab", "DotProduct", "DotProductBias")
    learner = _need("learner", "Learner")
    losses = _need("losses", "MSELossFlat")
    dls = _collab_dls(ctx)
    nu, ni = (len(v) for v in dls.classes.values())
    out = {}
    for nm, mk, wd in (("DotProduct", lambda: collab.DotProduct(nu, ni, 50, y_range=(0, 5.5)), None),
                       ("DotProductBias", lambda: collab.DotProductBias(nu, ni, 50), None),
                       ("DotProductBias wd=0.1", lambda: collab.DotProductBias(nu, ni, 50), 0.1)):
        _seed()
        learn = learner.Learner(dls, mk(), losses.MSELossFlat())
        learn.fit_one_cycle(epochs, 5e-3, wd=wd)
        vals = np.asarray(learn.recorder.values, float)
        out[nm] = {"train": vals[:, 0], "valid": vals[:, 1]}
    return dict(histories=out)


# ---------------------------------------------------------------------- benchmark results (benches.report reads them)
def _bench_runs(ctx, group):
    "Runs with a `group` benchmark, oldest first, on the latest such run's machine (timings of two machines differ)."
    try:
        from benches import report
    except ImportError as e:
        raise Unavailable(f"benches.report is not importable ({e})") from None
    dirs = [d for d in ctx.bench_dirs if Path(d).exists()]
    runs = [r for r in (report.load(dirs) if dirs else []) if any(g["group"] == group for g in r["rows"])]
    if not runs:
        raise Unavailable(f"no '{group}' benchmark results under {', '.join(map(str, ctx.bench_dirs))} "
                          "(run `nox -s bench` or `nox -s bench_gpu`)")
    return report, [r for r in runs if r["machine"] == runs[-1]["machine"]]


def gather_emb_onehot(ctx):
    "The latest run's group embedding-vs-onehot: seconds per step (median epoch / steps) per method and vocab."
    _, runs = _bench_runs(ctx, "embedding-vs-onehot")
    series = {}
    for r in runs[-1]["rows"]:
        if r["group"] == "embedding-vs-onehot":
            per_step = r["median"] / (r["extra"].get("steps_per_epoch") or 1)
            series.setdefault(r["params"]["method"], []).append((r["params"]["vocab"], per_step))
    return dict(series=series)


def gather_bench_history(ctx, group="fp16-speedup"):
    "Median per-epoch time of every configuration of `group` per run, and FP16-6's fp32 (TF32) / half ratios."
    report, runs = _bench_runs(ctx, group)
    label = lambda r: f"{r['date'][:10]} {r['commit'][:7]}"
    conf = lambda g: " ".join(map(str, g["params"].values()))
    hist = [(label(r), {conf(g): g["median"] for g in r["rows"] if g["group"] == group}) for r in runs]
    speed = {}
    for r in runs:
        for s in report.ratios(r)["FP16-6"]:
            if s["vs_default"]:
                speed.setdefault(f"{s['arch']} fp32/{s['precision']}", []).append((label(r), s["vs_default"]))
    return dict(runs=hist, speedups=speed or None, machine=runs[-1]["machine"])


# ====================================================================== the list, and collect()
@dataclass
class Spec:
    name: str
    title: str
    caption: str
    claims: tuple
    gather: object
    plot: object
    wide: bool = False


FIGURES = [
    Spec("lr_find", "LR finder",
         "Smoothed loss against an exponentially growing LR, one batch each, with fastai's four suggestions: "
         "impl.lr_find on a small ratings model (MovieLens fixture).",
         ("LR-3", "LR-7", "LR-10", "LR-11", "LR-15"), gather_lr_find, plot_lr_find),
    Spec("one_cycle", "1cycle schedules",
         "Learner.fit_one_cycle(3, 5e-3): the LR warms up then anneals (cosine) and the momentum mirrors it; "
         "the recorder's per-batch values.",
         ("OC-1", "OC-2", "OC-5"), gather_one_cycle, plot_one_cycle),
    Spec("group_lrs", "Discriminative learning rates",
         "fine_tune(3, base_lr=1e-2) of a 3-group tiny ResNet (pets fixture): every group's LR per batch; the "
         "frozen epoch, then half the LR spread from body to head.",
         ("DLR-1", "FT-3", "FT-4", "FT-5"), gather_group_lrs, plot_group_lrs),
    Spec("threshold", "Multi-label threshold",
         "accuracy_multi of a multi-label tiny ResNet trained from scratch on the PASCAL fixture (about 200 "
         "training images), against the threshold; the dotted line is what predicting no label at all scores.",
         ("ML-11", "ML-16"), gather_threshold, plot_threshold_sweep),
    Spec("confusion", "Confusion matrix",
         "The pets classifier above on its validation set: confusion matrix and most_confused (impl.interpret).",
         ("INT-1", "INT-2"), gather_confusion, plot_confusion, wide=True),
    Spec("biwi", "Head pose regression",
         "A tiny ResNet trained from scratch (fit_one_cycle(25, 1e-2), 96 x 128 inputs, y_range=(-1, 1)) on the "
         "BIWI fixture; validation person 13: target head centre (green +) and prediction (red x).",
         ("REG-5", "REG-10", "REG-17"), gather_biwi, plot_biwi, wide=True),
    Spec("collab", "Collaborative filtering: train vs valid",
         "MSE per epoch on the MovieLens fixture, the lesson's settings (50 factors, fit_one_cycle(5, 5e-3)); the "
         "lesson's bias model overfits (valid turns up while train falls), weight decay holds it back.",
         ("CF-16", "CF-19"), gather_collab, plot_collab_losses),
    Spec("emb_onehot", "Embedding vs one-hot",
         "Forward + backward time per step of an embedding lookup and of the one-hot matrix product against the "
         "vocabulary size (benches/bench_embedding.py, latest run).",
         ("CF-12", "CF-23"), gather_emb_onehot, plot_emb_vs_onehot),
    Spec("bench_history", "Per-epoch time and fp16 speedup",
         "benches/bench_vision.py across saved runs of one machine (.benchmarks/, results/): median seconds per "
         "epoch of each arch and precision, and the fp32 (TF32) / half-precision time ratio.",
         ("FP16-6", "FP16-7", "ARCH-5", "IMPL-9"), gather_bench_history, plot_bench_history),
]


def make(spec: Spec, ctx: Ctx, verbose=False) -> Figure:
    "One figure; never raises: a missing input or an error becomes the note."
    t0 = time.perf_counter()
    f = Figure(spec.name, spec.title, spec.caption, spec.claims, wide=spec.wide)
    try:
        f.png = to_png(spec.plot(**spec.gather(ctx)))
    except Unavailable as e:
        f.note = f"not available: {e}"
    except Exception as e:  # noqa: BLE001 - a broken producer must not take the whole report down
        f.note = f"not available: {type(e).__name__}: {e}"
        if verbose:
            traceback.print_exc(file=sys.stderr)
    finally:
        plt.close("all")
    f.secs = time.perf_counter() - t0
    return f


def collect(ctx: Ctx | None = None, only=None, verbose=False) -> list[Figure]:
    "Every figure in FIGURES (or those named in `only`), in order."
    import torch
    ctx, out, threads = ctx or Ctx(), [], torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is as fast, and never spins when the CPUs are shared
    try:
        for s in FIGURES:
            if only is None or s.name in only:
                out.append(make(s, ctx, verbose))
                if verbose:
                    f = out[-1]
                    print(f"specreport: figure {f.name}: {f.note or 'ok'} ({f.secs:.1f} s)", file=sys.stderr)
    finally:
        torch.set_num_threads(threads)
    return out
