"""The lesson's figures: small producers (data in, matplotlib Figure out) and the gatherers that make their data.

Producers (`plot_*`) only draw: they take recorded arrays and return a Figure. Gatherers (`gather_*`) run small,
seeded trainings through `impl` on the fixture datasets (or read benchmark results) and return the producer's
keyword arguments, or raise `Unavailable` with the reason. `collect()` runs every FIGURES entry and never raises:
a figure whose inputs are missing comes back with `note = "not available: <reason>"` and no image.

A training gatherer's result is cached under .cache/specreport/ (`data(spec, ctx)`), keyed by the code that made it
(impl/, fixtures/, this file) and the fixture folder, so rebuilding the report, or the meta-tests that assert what
each figure shows (spec/meta/test_report.py), retrain nothing until that code changes.
"""
from __future__ import annotations

import base64
import hashlib
import io
import math
import pickle
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


def plot_biwi(images, targets, preds, err=None, mean_err=None):
    """BIWI head centres: target (green +) and prediction (red x) on a few validation frames (T:L1400-1470); `err`,
    `mean_err`: the mean error in pixels over the whole validation set, and that of predicting the training mean."""
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
    if err is not None and mean_err is not None:
        fig.suptitle(f"validation mean error {err:.0f} px; always predicting the training mean: {mean_err:.0f} px",
                     fontsize=10)
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
    ax.set(xlabel="epoch", ylabel="MSE (log scale)", yscale="log", title="collaborative filtering: train vs valid loss")
    ax.legend(fontsize=7)
    return fig


def plot_emb_vs_onehot(series, unit="s", run=None):
    """Time per forward+backward step against the vocabulary size, one line per method: {method: [(vocab, secs)]};
    `run`: the machine, commit and date it was measured on."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for (m, pts), mk in zip(series.items(), "osd^v"):
        ax.plot(*zip(*sorted(pts)), "-" + mk, label=m)
    ax.set(xscale="log", yscale="log", xlabel="vocabulary size", ylabel=f"time per step ({unit})",
           title="embedding vs one-hot" + (f"\n{run}" if run else ""))
    ax.legend()
    return fig


def plot_bench_history(panels, runs, band=(2, 3)):
    """FP16-6's speedup per run, one panel per model: panels = {arch: {series: [(run index, speedup)]}}, runs = [run
    label] (machine, commit, date), band = the lesson's 2-3x. A speedup is a ratio inside one run (the variants were
    timed interleaved), so runs of different machines share the axis; their per-epoch times would not."""
    n = max(len(panels), 1)
    fig, axs = plt.subplots(1, n, figsize=(4.2 * n, 4.4), squeeze=False, sharey=True)
    for ax, (arch, series) in zip(axs[0], panels.items()):
        ax.axhspan(*band, color="C2", alpha=0.15, label=f"the lesson: {band[0]:g}-{band[1]:g}x")
        ax.axhline(1, c="0.5", lw=0.8)
        for nm, pts in series.items():  # colour: the fp32 baseline; marker: the memory layout
            strict = "strict" in nm
            ax.plot(*zip(*pts), ms=6, label=nm, c="C0" if strict else "C1", ls="-" if strict else "--",
                    marker="s" if "channels_last" in nm else "o")
        ax.set_xticks(range(len(runs)), runs, fontsize=8)
        ax.set_xlim(-0.5, len(runs) - 0.5)
        ax.set_title(arch, fontsize=11)
        ax.tick_params(axis="y", labelsize=9)
    axs[0, 0].set_ylabel("fp32 time / half-precision time per epoch", fontsize=9)
    handles = {lb: h for ax in axs[0] for h, lb in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(len(handles), 3), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("FP16-6: mixed-precision speedup per run (machine, commit, date)", fontsize=11)
    fig.tight_layout(rect=(0, 0.1 + 0.04 * (len(handles) > 3), 1, 1))
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
    """What the gatherers share: the fixture folder (made once), the benchmark result folders, and where training
    gatherers cache their data (None: no cache)."""

    def __init__(self, data_dir=None, bench_dirs=None, cache_dir=ROOT / ".cache" / "specreport"):
        self._data_dir = Path(data_dir) if data_dir else None
        self.bench_dirs = [Path(p) for p in (bench_dirs or (ROOT / "results", ROOT / ".benchmarks"))]
        self.cache_dir = Path(cache_dir) if cache_dir else None

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


def _image_dls(ds, bs, stats=None):
    """impl.data reads, labels and splits; the decoded images are cached as tensors (valid-mode transforms, no
    augmentation) and normalised with `stats` (mean, std per channel: the pretrained body's) or else the training
    set's statistics, so a few epochs take seconds on a CPU."""
    import torch
    (xt, yt), (xv, yv) = _tensors(_no_aug(ds)), _tensors(ds.valid)
    if stats is None:
        m, s = xt.mean((0, 2, 3), keepdim=True), xt.std((0, 2, 3), keepdim=True)
    else:
        m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in stats)
    return _dls((xt - m) / s, yt, bs, ((xv - m) / s, yv))


def _body():
    "The pretrained tiny body (fixtures.pretrained, made once and cached) and its input stats."
    try:
        from fixtures import pretrained
    except ImportError as e:
        raise Unavailable(f"fixtures.pretrained is missing ({e})") from None
    return pretrained.body_state(), pretrained.STATS


def _no_aug(ds):
    "The train split with validation-mode item transforms (no random crop)."
    ds = ds.subset(0)
    ds.split_idx = None
    return ds


def _vision_learner(dls, n_out, loss_func, body=None, **kw):
    "A tiny ResNet learner; `body`: a pretrained body state (then frozen, and the batches are already normalised)."
    vision = _need("vision", "vision_learner", "tiny_resnet")
    _seed()
    if body is not None:
        kw = dict(pretrained=body, normalize=False, **kw)
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
    data = _need("datasets", "collab_dls")
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
    """fine_tune(epochs) of a 3-group tiny ResNet with the pretrained body on the pets fixture, every group's LR
    logged: (learner, log, vocab)."""
    def run():
        data, tfm = _need("datasets", "pets_datasets"), _need("transforms", "Resize", "ToTensor")
        ds = data.pets_datasets(ctx.data / "oxford-iiit-pet", seed=SEED,
                                item_tfms=[tfm.Resize(size, "squish"), tfm.ToTensor()])
        body, stats = _body()
        log = _LogHypers()
        learn = _vision_learner(_image_dls(ds, 32, stats), len(ds.vocab), _need("losses", "CrossEntropyLossFlat").
                                CrossEntropyLossFlat(), body=body, cbs=[log])
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


def pascal_like(n, size=64, seed=SEED):
    """n images drawn as the PASCAL fixture draws them (fixtures.pascal: 20 classes = 5 shapes x 4 colours, 1-3
    objects of distinct classes on a dull noisy backdrop), at size x size, in memory: (x in [0, 1], one-hot y)."""
    import torch
    from PIL import Image, ImageDraw
    try:
        from fixtures import common, pascal
    except ImportError as e:
        raise Unavailable(f"the fixtures package is missing ({e})") from None
    r = np.random.default_rng(seed)
    xs, ys = np.zeros((n, size, size, 3), np.float32), np.zeros((n, len(pascal.CLASSES)), np.float32)
    for j in range(n):
        labels = r.choice(len(pascal.CLASSES), int(r.integers(1, 4)), replace=False)
        im = Image.fromarray(np.clip(common.background(r, size, size), 0, 255).astype(np.uint8), "RGB")
        d = ImageDraw.Draw(im)
        for c, box in zip(labels, pascal.place(r, size, size, len(labels))):
            shape, colour = pascal.look(pascal.CLASSES[c])
            pascal.draw_shape(d, shape, box, pascal.COLOURS[colour])
        xs[j] = np.clip(np.asarray(im, np.float32) + r.normal(0, 6, (size, size, 1)), 0, 255) / 255
        ys[j, labels] = 1
    return torch.from_numpy(xs).permute(0, 3, 1, 2), torch.from_numpy(ys)


def gather_threshold(ctx, n=2000, size=64, epochs=6):
    """The pretrained tiny body fine-tuned (fine_tune(6, 1e-2)) as a multi-label classifier on n PASCAL-fixture-like
    images (80% train), then accuracy_multi of its validation predictions per threshold, and what predicting no
    label at all scores. The medium fixture's 200 training images teach a tiny CNN the colours only, which never
    beats predicting no label; 1600 teach it the shapes too."""
    import torch
    metrics = _need("metrics", "accuracy_multi")
    body, stats = _body()
    x, y = pascal_like(n, size)
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in stats)
    x, k = (x - m) / s, n * 4 // 5
    learn = _vision_learner(_dls(x[:k], y[:k], 32, (x[k:], y[k:])), y.shape[1],
                            _need("losses", "BCEWithLogitsLossFlat").BCEWithLogitsLossFlat(), body=body)
    learn.fine_tune(epochs, base_lr=1e-2)
    p, t = learn.get_preds(act=torch.sigmoid)
    xs = np.linspace(0.05, 0.95, 29)  # as the lesson (ML-16)
    accs = [float(metrics.accuracy_multi(p, t, thresh=float(th), sigmoid=False)) for th in xs]
    return dict(thresholds=xs, accs=accs, baseline=1 - float(t.float().mean()))


def gather_biwi(ctx, size=(48, 64), n_show=6, epochs=20):
    """Head-centre regression on the BIWI fixture, person 13 as the validation set (as in the lesson): the pretrained
    tiny body, fine_tune(20, 1e-2), y_range=(-1, 1). Also the error of always predicting the training mean."""
    data = _need("datasets", "biwi_datasets")
    tfm = _need("transforms", "PointScaler", "Resize", "ToTensor", "unscale_points")
    tfms = [tfm.PointScaler(), tfm.Resize(size, "squish"), tfm.ToTensor()]
    ds = data.biwi_datasets(ctx.data / "biwi_head_pose", item_tfms=tfms)
    body, stats = _body()
    dls = _image_dls(ds, 16, stats)
    learn = _vision_learner(dls, 2, _need("losses", "MSELossFlat").MSELossFlat(), body=body, y_range=(-1, 1))
    learn.fine_tune(epochs, base_lr=1e-2)
    p, t = learn.get_preds()
    fs = [ds.items[i] for i in ds.splits[1]]
    ims = [np.asarray(_need("readers", "load_image").load_image(f)) for f in fs[:n_show]]
    wh = np.asarray(ims[0].shape[1::-1], float)  # the BIWI frames share one size
    un = lambda v: tfm.unscale_points(np.asarray(v, np.float32).reshape(-1, 2), tuple(wh)).numpy().astype(float)
    mean = np.asarray(dls.train.dataset.tensors[1], float).reshape(-1, 2).mean(0)
    tt, pp = un(t), un(p)
    return dict(images=ims, targets=tt[:n_show], preds=pp[:n_show], err=float(np.hypot(*(pp - tt).T).mean()),
                mean_err=float(np.hypot(*(un(np.broadcast_to(mean, (len(tt), 2))) - tt).T).mean()))


def gather_collab(ctx, epochs=10, lr=1e-2, bs=32):
    """DotProductBias (50 factors) with fit_one_cycle(10, 1e-2) at bs 32, about the book's number of passes scaled to
    the 5000-rating fixture (as spec/test_collab.py's CF-19), then the same with wd=0.1 (the lesson's)."""
    collab = _need("collab", "DotProductBias")
    learner = _need("learner", "Learner")
    losses = _need("losses", "MSELossFlat")
    dls = _need("datasets", "collab_dls").collab_dls(ctx.data / "ml-100k", bs=bs, seed=SEED, item_name="movie")
    nu, ni = (len(v) for v in dls.classes.values())
    out = {}
    for nm, wd in (("DotProductBias", None), ("DotProductBias wd=0.1", 0.1)):
        _seed()
        learn = learner.Learner(dls, collab.DotProductBias(nu, ni, 50), losses.MSELossFlat())
        learn.fit_one_cycle(epochs, lr, wd=wd)
        vals = np.asarray(learn.recorder.values, float)
        out[nm] = {"train": vals[:, 0], "valid": vals[:, 1]}
    return dict(histories=out)


# ---------------------------------------------------------------------- benchmark results (spec.benchclaims reads them)
def _bench_runs(ctx, group):
    "Runs with a `group` benchmark, oldest first (spec.benchclaims.load over ctx.bench_dirs)."
    try:
        from spec import benchclaims
    except ImportError as e:
        raise Unavailable(f"spec.benchclaims is not importable ({e})") from None
    dirs = [d for d in ctx.bench_dirs if Path(d).exists()]
    runs = [r for r in (benchclaims.load(dirs) if dirs else []) if any(b["group"] == group for b in r.benches)]
    if not runs:
        raise Unavailable(f"no '{group}' benchmark results under {', '.join(map(str, ctx.bench_dirs))} "
                          "(run `nox -s bench` or `nox -s bench_gpu`)")
    return runs


def _run_label(r, sep="\n"):
    return f"{r.machine.removeprefix('NVIDIA ')}{sep}{r.short or '?'}{sep}{r.date[:10]}"


def gather_emb_onehot(ctx):
    """The newest run's group embedding-vs-onehot (CF-23 takes its verdict from the same run): seconds per step
    (median epoch / steps) per method and vocab."""
    r = _bench_runs(ctx, "embedding-vs-onehot")[-1]
    series = {}
    for b in r.benches:
        if b["group"] == "embedding-vs-onehot":
            per_step = b["median"] / (b["extra"].get("steps_per_epoch") or 1)
            series.setdefault(b["params"]["method"], []).append((b["params"]["vocab"], per_step))
    return dict(series=series, run=_run_label(r, " "))


SPEEDUPS = (("fp16", "fp32_strict", "fp16 over strict fp32"), ("fp16", "fp32", "fp16 over fp32 (TF32)"),
            ("fp16_cl", "fp32_strict", "fp16 channels_last over strict fp32"),
            ("fp16_cl", "fp32", "fp16 channels_last over fp32 (TF32)"))


def gather_bench_history(ctx, group="fp16-speedup"):
    """FP16-6's speedups of every run, one panel per arch: the CUDA runs (the claim needs a tensor-core GPU; the
    committed results/ and any GPU run in .benchmarks/), or the CPU runs (bf16) when no GPU run exists."""
    runs = _bench_runs(ctx, group)
    gpu = [r for r in runs if r.device == "cuda"]
    runs, pairs = (gpu, SPEEDUPS) if gpu else (runs, [(h.replace("fp16", "bf16"), f, nm.replace("fp16", "bf16"))
                                                      for h, f, nm in SPEEDUPS])
    archs = sorted({b["params"]["arch"] for r in runs for b in r.benches if b["group"] == group},
                   key=lambda a: int("".join(c for c in a if c.isdigit()) or 0))
    panels = {}
    for a in archs:
        for i, r in enumerate(runs):
            for half, full, nm in pairs:
                h, f = r.find(group, arch=a, precision=half), r.find(group, arch=a, precision=full)
                if h and f:
                    panels.setdefault(a, {}).setdefault(nm, []).append((i, f["median"] / h["median"]))
    if not panels:
        raise Unavailable(f"no run of '{group}' has a half-precision and an fp32 configuration of one arch")
    return dict(panels=panels, runs=[_run_label(r) for r in runs], band=(2, 3))


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
    cache: bool = True  # a training gatherer: its data is cached (benchmark figures read files: never cached)


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
         "fine_tune(3, base_lr=1e-2) of a 3-group tiny ResNet with a pretrained body (pets fixture): every group's "
         "LR per batch; the frozen epoch, then half the LR spread from body to head (100x apart).",
         ("DLR-1", "FT-3", "FT-4", "FT-5"), gather_group_lrs, plot_group_lrs),
    Spec("threshold", "Multi-label threshold",
         "accuracy_multi against the threshold for a tiny ResNet with a pretrained body, fine_tune(6, 1e-2) on 1600 "
         "images drawn like the PASCAL fixture (400 validation); the dotted line is what predicting no label at all "
         "scores. As in the lesson the curve peaks in the middle, above that line. (The fixture's 200 training "
         "images teach a tiny CNN the colours only, which never beats predicting no label.)",
         ("ML-11", "ML-16"), gather_threshold, plot_threshold_sweep),
    Spec("confusion", "Confusion matrix",
         "The pets classifier above on its validation set: confusion matrix and most_confused (impl.interpret).",
         ("INT-1", "INT-2"), gather_confusion, plot_confusion, wide=True),
    Spec("biwi", "Head pose regression",
         "A tiny ResNet with a pretrained body, fine_tune(20, 1e-2), 48 x 64 inputs, y_range=(-1, 1), on the BIWI "
         "fixture; validation person 13: target head centre (green +) and prediction (red x), and the mean error "
         "against always predicting the training mean.",
         ("REG-5", "REG-10", "REG-16", "REG-17"), gather_biwi, plot_biwi, wide=True),
    Spec("collab", "Collaborative filtering: train vs valid",
         "MSE per epoch on the MovieLens fixture: DotProductBias (50 factors), fit_one_cycle(10, 1e-2) at bs 32. As "
         "in the lesson the bias model overfits (valid turns up while train keeps falling); weight decay (wd=0.1) "
         "holds it back.",
         ("CF-16", "CF-19"), gather_collab, plot_collab_losses),
    Spec("emb_onehot", "Embedding vs one-hot",
         "Forward + backward time per step of an embedding lookup and of the one-hot matrix product against the "
         "vocabulary size (benches/bench_embedding.py, the newest run in results/ or .benchmarks/): the one-hot "
         "product grows with the vocabulary, the lookup barely.",
         ("CF-12", "CF-23"), gather_emb_onehot, plot_emb_vs_onehot, cache=False),
    Spec("bench_history", "Mixed-precision speedup per run",
         "benches/bench_vision.py: fp32 time / fp16 time per epoch of each arch (compute-only batches), per run "
         "(machine, commit, date; the committed GPU runs in results/ and GPU runs in .benchmarks/), against the "
         "lesson's 2-3x band: against strict fp32 as GPUs of 2020 computed it, and against fp32 with TF32.",
         ("FP16-6",), gather_bench_history, plot_bench_history, wide=True, cache=False),
]


def _key(spec: Spec, ctx: Ctx) -> str:
    "What a training figure's data depends on: impl/, fixtures/, this file, the fixture folder, torch's version."
    import torch
    h = hashlib.sha1(f"{spec.name}\0{ctx.data.resolve()}\0{torch.__version__}".encode())
    for f in [*sorted((ROOT / "impl").rglob("*.py")), *sorted((ROOT / "fixtures").rglob("*.py")), Path(__file__)]:
        h.update(str(f.resolve().relative_to(ROOT)).encode() + f.read_bytes())
    return h.hexdigest()[:16]


def data(spec: Spec, ctx: Ctx):
    """The producer's keyword arguments: spec.gather(ctx), or the cached result of the same code on the same fixture
    folder (ctx.cache_dir; a damaged entry is remade, older entries of the figure removed)."""
    if not spec.cache or ctx.cache_dir is None:
        return spec.gather(ctx)
    f = ctx.cache_dir / f"{spec.name}-{_key(spec, ctx)}.pkl"
    if f.is_file():
        try:
            return pickle.loads(f.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass
    kw = spec.gather(ctx)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    for old in ctx.cache_dir.glob(f"{spec.name}-*.pkl"):
        old.unlink(missing_ok=True)
    tmp = f.with_name(f"{f.name}.{id(kw)}.tmp")
    tmp.write_bytes(pickle.dumps(kw))
    tmp.replace(f)
    return kw


def make(spec: Spec, ctx: Ctx, verbose=False) -> Figure:
    "One figure; never raises: a missing input or an error becomes the note."
    t0 = time.perf_counter()
    f = Figure(spec.name, spec.title, spec.caption, spec.claims, wide=spec.wide)
    try:
        f.png = to_png(spec.plot(**data(spec, ctx)))
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
