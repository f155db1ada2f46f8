"""Image regression on the BIWI head-pose fixture (T:L1322-1540): the learner vision_learner builds for points
(MSE, no metric, y_range through SigmoidRange), and what fine-tuning does: it learns where the head is, and a
classification-pretrained body does it with a clearly lower error than random weights.

Training uses the fixture's frames decoded once (48 x 64, ImageNet-normalised) with targets from its ground-truth
JSON, scaled to [-1, 1] as PointScaler does, and the person-13 split; the data pipeline itself is spec/test_data_*.
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

import fixtures
from fixtures import pretrained as pre_fx
from spec.tiny import (
    one_thread,  # noqa: F401
    plain,
    record,
    seed_all,
    seeds,
)

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 48, 64
SEEDS = seeds(3)  # (0, 1, 2); shifted by SPEC_SEED_OFFSET (tools/calibrate.py). 4 until stop 22 (calibration.md)


@pytest.fixture(scope="module")
def body():
    return pre_fx.body_state()


@pytest.fixture(scope="module")
def frames(data_dir_medium):
    "(x_train, y_train, x_valid, y_valid): frames at 48 x 64, normalised; centres in [-1, 1] from the ground truth."
    root = data_dir_medium / "biwi_head_pose"
    t = fixtures.truth(data_dir_medium, "biwi_head_pose")
    names = sorted(t["frames"])
    load = lambda f: np.asarray(Image.open(root / f).convert("RGB").resize((W, H), Image.BILINEAR), np.float32)  # noqa
    x = torch.from_numpy(np.stack([load(f) for f in names]) / 255).permute(0, 3, 1, 2).float()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in pre_fx.STATS)
    x = (x - mean) / std
    y = torch.tensor([t["frames"][f]["ctr"] for f in names]) * 2 / torch.tensor(t["image_size"]) - 1  # PointScaler
    valid = torch.tensor([t["frames"][f]["person"] == t["valid_person"] for f in names])
    assert 0 < valid.sum() < len(names), "the fixture needs frames of person 13 and of others"
    return x[~valid], y[~valid, None], x[valid], y[valid, None]


def frame_dls(backend, frames, bs=16):
    xt, yt, xv, yv = frames
    tr = DataLoader(TensorDataset(xt, yt), batch_size=bs, shuffle=True, drop_last=True)
    return backend.dls_from_loaders(tr, DataLoader(TensorDataset(xv, yv), batch_size=64))


# ---------------------------------------------------------------- REG-13, REG-12: what vision_learner builds
@pytest.mark.claim("REG-13")
def test_point_learner_uses_mse_and_no_metric(backend, data_dir):
    "vision_learner on (image, point) data, no loss_func: MSE over flattened (bs, 2) vs (bs, 1, 2); no metric."
    dls = backend.biwi_dls(data_dir / "biwi_head_pose", bs=4, size=(H, W))
    learn = backend.vision_learner(dls, backend.tiny_resnet, y_range=(-1, 1))
    xb, yb = next(iter(dls.train))
    o = learn.model(xb)
    assert tuple(o.shape) == (4, 2) and tuple(yb.shape) == (4, 1, 2), f"{tuple(o.shape)}, {tuple(yb.shape)}"
    got, want = float(learn.loss_func(o, yb)), float(F.mse_loss(plain(o).view(-1), plain(yb).view(-1)))
    assert abs(got - want) < 1e-6, f"loss {got} vs MSE over flattened values {want}"
    assert len(learn.metrics) == 0, f"metrics {learn.metrics}"


@pytest.mark.claim("REG-12")
def test_y_range_is_the_last_layer(backend, data_dir):
    "y_range=(-1, 1) appends SigmoidRange(-1, 1) to the head: outputs are sigmoid(logits) * 2 - 1."
    dls = backend.biwi_dls(data_dir / "biwi_head_pose", bs=4, size=(H, W))
    learn = backend.vision_learner(dls, backend.tiny_resnet, y_range=(-1, 1))
    head = learn.model[1]
    assert type(head[-1]).__name__ == "SigmoidRange", f"head ends with {head[-1]}"
    xb, _ = next(iter(dls.valid))
    m = learn.model.eval()
    with torch.no_grad():
        logits = head[:-1](m[0](xb))
        o = m(xb)
    assert torch.allclose(plain(o), torch.sigmoid(plain(logits)) * 2 - 1, atol=1e-6), "not sigmoid*2-1"
    assert o.min() >= -1 and o.max() <= 1, f"outputs in [{o.min():.3f}, {o.max():.3f}]"


# ---------------------------------------------------------------- REG-16: fine-tuning for point regression
_RUNS = {}


def biwi_run(backend, frames, body, seed, pretrained):
    """fine_tune(5, base_lr=1e-2) of tiny_resnet with y_range=(-1, 1) at bs 16 and a linear head (lin_ftrs=[], ps=0:
    pooled features -> BatchNorm -> Linear, so the comparison is between the bodies' features, not a hidden layer's):
    valid MSE and mean absolute error per axis in pixels of the 640 x 480 frame. Cached per run.

    Why this recipe: on the fixture's easy bright-blob frames the default head (a 512-unit hidden layer with dropout
    0.25/0.5) is what limits both arms, and with fine_tune(20) random weights catch up: the pretrained/random MSE ratio
    per seed ranged 0.5-1.1 between machines (issue 10). With the linear head the pretrained body's features give
    about half the random body's MSE after 6 epochs (a ridge probe on them alone reaches MSE 0.002)."""
    key = (backend.name, seed, pretrained)
    if key not in _RUNS:
        dls = frame_dls(backend, frames)
        seed_all(seed)
        learn = backend.vision_learner(
            dls,
            backend.tiny_resnet,
            n_out=2,
            y_range=(-1, 1),
            normalize=False,
            pretrained=body if pretrained else False,
            loss_func=backend.MSELossFlat(),
            lin_ftrs=[],
            ps=0,
        )
        learn.fine_tune(5, base_lr=1e-2)
        p, y = backend.valid_preds(learn)
        err = (p.view(-1, 2) - y.view(-1, 2)).abs().mean(0) * torch.tensor([320.0, 240.0])
        _RUNS[key] = (float(((p.view(-1, 2) - y.view(-1, 2)) ** 2).mean()), err.numpy())
    return _RUNS[key]


@pytest.mark.slow
@pytest.mark.claim("REG-16")
def test_pretrained_body_learns_the_head_centre(backend, frames, body, record_property):
    """The pretrained body learns where the head is. Effect: 1 - (mean absolute error / that of predicting the
    training mean) on the worse axis, the errors averaged over the 3 seeds of SEEDS; the test passes when the effect
    is above 0.15 (error under 0.85x the mean predictor's on both axes; a model that ignores the image scores <= 0).
    Measured about 0.3-0.45 on impl, 0.4-0.45 on fastai (results/calibration.md)."""
    xt, yt, xv, yv = frames
    base = (yv.view(-1, 2) - yt.view(-1, 2).mean(0)).abs().mean(0).numpy() * [320, 240]
    errs = np.array([biwi_run(backend, frames, body, s, True)[1] for s in SEEDS])
    effect = 1 - (errs.mean(0) / base).max()
    record_property("errors_px", errs.round(2).tolist())
    record(record_property, effect, 0.15)
    assert effect > 0.15, f"REG-16: mean abs error (x, y) px {errs.round(1)}; mean predictor {base}"


@pytest.mark.slow
@pytest.mark.claim("REG-16")
def test_pretrained_body_beats_random_weights(backend, frames, body, record_property):
    """Same budget and head (biwi_run), 3 paired seeds (the same seed for both arms: head init, batch order). Effect:
    1 - the geometric mean over the seeds of MSE(pretrained) / MSE(random), i.e. the typical relative reduction of
    the validation MSE; passes when above 0.2 (pretrained at most 0.8x random). Measured about 0.5 on impl and 0.6
    on fastai (per-seed ratios 0.33-0.76); per-seed ratios are not required below 1, since single seeds vary too
    much between machines. A null experiment (random vs random, or the arms swapped) gives an effect <= 0."""
    rows = np.array([[biwi_run(backend, frames, body, s, p)[0] for p in (True, False)] for s in SEEDS])
    effect = 1 - np.exp(np.log(rows[:, 0] / rows[:, 1]).mean())
    record_property("mse", np.round(rows, 5).tolist())
    record(record_property, effect, 0.2)
    assert effect > 0.2, (
        f"REG-16: valid MSE (pretrained, random) per seed {np.round(rows, 4).tolist()}; "
        f"geometric-mean ratio {1 - effect:.3f}, at most 0.8 expected"
    )


# ---------------------------------------------------------------- real BIWI with ImageNet weights (GPU)
def real(f):
    for m in (pytest.mark.real_data, pytest.mark.pretrained, pytest.mark.cuda, pytest.mark.slow):
        f = m(f)
    return f


_REAL = {}


def real_biwi(backend, real_data, pretrained):
    "OR06: resnet18, y_range=(-1, 1), fine_tune(3, 1e-2) at (240, 320): final valid MSE; cached."
    if (backend.name, pretrained) not in _REAL:
        from torchvision.models import resnet18

        torch.manual_seed(42)
        dls = backend.biwi_dls(real_data / "biwi_head_pose", bs=64, size=(240, 320), device="cuda")
        learn = backend.vision_learner(dls, resnet18, y_range=(-1, 1), pretrained=pretrained)
        learn.fine_tune(3, 1e-2)
        _REAL[backend.name, pretrained] = backend.valid_metrics(learn)[0]
    return _REAL[backend.name, pretrained]


@pytest.mark.claim("REG-14")
@real
def test_real_biwi_reaches_low_mse(backend, real_data):
    "Final valid MSE < 2e-3 in [-1, 1] units (book 1e-4: RMSE 0.01, 3.2 px across 640)."
    mse = real_biwi(backend, real_data, True)
    assert mse < 2e-3, f"REG-14: valid MSE {mse:.5f} (RMSE {mse**0.5 * 320:.1f} px horizontally)"


@pytest.mark.claim("REG-16")
@real
def test_real_biwi_imagenet_body_beats_random_weights(backend, real_data):
    "The same recipe from random weights ends with at least twice the validation MSE."
    pre, rnd = real_biwi(backend, real_data, True), real_biwi(backend, real_data, False)
    assert pre <= 0.5 * rnd, f"REG-16: valid MSE {pre:.5f} pretrained vs {rnd:.5f} random"
