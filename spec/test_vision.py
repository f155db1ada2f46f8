"""Transfer learning for vision: the resnet architectures, vision_learner's body and head, parameter groups,
freezing a pretrained body, first-conv adaptation, normalisation, and what a pretrained body buys in training.

The pretrained body is fixtures.pretrained's: a narrow torchvision ResNet trained once on a synthetic source task.
Training claims run on the miniature Pets (64 x 64, tiny_resnet) over several seeds with a stated effect size.
"""

import os
import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import impl.data as D
import impl.vision as V
from fixtures import pretrained as pre_fx
from spec.checks import equal
from spec.tiny import (
    one_thread,  # noqa: F401
    plain,
    record,
    seed_all,
    seeded,
    seeds,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
DEPTH = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101, "resnet152": 152}
N_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}  # ARCH-2, the 1000-class torchvision models
NF = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])




def batch(dl):
    "The first batch of a loader as plain tensors."
    xb, yb = next(iter(dl))
    return plain(xb), plain(yb)


def pets(backend, root, bs=8, **kw):
    return backend.pets_dls(root / "oxford-iiit-pet", bs=bs, size=SIZE, **kw)


@pytest.fixture(scope="session")
def body():
    "The pretrained tiny body (torchvision ResNet keys, no fc.*), trained once and cached under .cache/pretrained."
    return pre_fx.body_state()


_BUILT = {}


def built(arch):
    """arch(weights=None) on the meta device (shapes, no numbers: ARCH-1 and 2 count layers, parameters and activations;
    a resnet152 on the CPU took 1 s to initialise), built once per constructor (fastai's resnets are torchvision's)."""
    if arch not in _BUILT:
        with torch.device("meta"):
            _BUILT[arch] = arch(weights=None)
    return _BUILT[arch]


def describe(m):
    "A module as (type name, its defining numbers): what the lesson's head listing shows."
    t = type(m).__name__
    if isinstance(m, nn.BatchNorm1d):
        return (t, m.num_features)
    if isinstance(m, nn.Dropout):
        return (t, m.p)
    if isinstance(m, nn.Linear):
        return (t, m.in_features, m.out_features, m.bias is not None)
    return (t,)


def fastai_head(nf, n_out):
    return [
        ("AdaptiveConcatPool2d",),
        ("Flatten",),
        ("BatchNorm1d", 2 * nf),
        ("Dropout", 0.25),
        ("Linear", 2 * nf, 512, False),
        ("ReLU",),
        ("BatchNorm1d", 512),
        ("Dropout", 0.5),
        ("Linear", 512, n_out, False),
    ]


def norm_ids(model):
    return {
        id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase) for p in m.parameters(False)
    }


# ---------------------------------------------------------------- ARCH-1..3: the resnet family
@pytest.mark.claim("ARCH-1")
@pytest.mark.parametrize("name", ARCHS)
def test_resnet_number_counts_weighted_layers(backend, name):
    "Conv2d outside the downsample shortcuts + the final Linear = the number in the name (all convs: 20/36/53/104/155)"
    m = built(getattr(backend, name))
    convs = [n for n, x in m.named_modules() if isinstance(x, nn.Conv2d)]
    main = [n for n in convs if "downsample" not in n]
    lins = [x for x in m.modules() if isinstance(x, nn.Linear)]
    got = len(main) + len(lins)
    assert got == DEPTH[name], f"{name} has {len(main)} main-path convs + {len(lins)} linear = {got}"
    assert len(convs) > len(main), f"{name}: no downsample convs found, the count proves nothing"


@pytest.mark.claim("ARCH-2")
def test_bigger_resnets_have_more_parameters(backend):
    "The torchvision parameter counts, strictly increasing with depth."
    got = {n: sum(p.numel() for p in built(getattr(backend, n)).parameters()) for n in ARCHS}
    assert got == N_PARAMS, f"parameter counts {got}, expected {N_PARAMS}"
    assert list(got.values()) == sorted(set(got.values())), f"not strictly increasing: {got}"


def activation_numbers(m, size=SIZE):
    "Numbers produced by every leaf module on one (1, 3, size, size) image: what training must keep in memory."
    n, hooks = [0], []
    for mod in m.modules():
        if not list(mod.children()):
            hooks.append(mod.register_forward_hook(lambda mod, i, o: n.__setitem__(0, n[0] + o.numel())))
    m.eval()
    with torch.no_grad():
        m(torch.zeros(1, 3, size, size, device=next(m.parameters()).device))
    for h in hooks:
        h.remove()
    return n[0]


@pytest.mark.claim("ARCH-2")
def test_bigger_resnets_need_more_activation_memory(backend):
    "Deeper resnets also produce strictly more activations per image (the memory cost of 'bigger models', T:L505)."
    got = {n: activation_numbers(built(getattr(backend, n))) for n in ARCHS}
    assert list(got.values()) == sorted(set(got.values())), f"activations per 64x64 image {got}"


@pytest.mark.claim("ARCH-3")
def test_pretrained_sizes_are_the_published_ones(backend):
    "torchvision has ImageNet weights for resnet18..152, no resnet19/38; the library knows how to cut and split them."
    names = set(torchvision.models.list_models(module=torchvision.models))
    resnets = sorted(n for n in names if n.startswith("resnet"))
    assert resnets == sorted(ARCHS), f"torchvision resnets {resnets}"
    for n in ARCHS:
        w = torchvision.models.get_model_weights(n)
        assert "IMAGENET1K_V1" in w.__members__, f"{n} has no ImageNet weights: {list(w.__members__)}"
        meta = backend.arch_meta(getattr(backend, n))
        assert meta == {"cut": -2, "n_groups": 3, "stats": IMAGENET}, f"{n}: meta {meta}"
    unknown = backend.arch_meta(lambda weights=None: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1)))
    assert unknown == {"cut": None, "n_groups": 2, "stats": None}, f"an unknown arch gets {unknown}"


# ---------------------------------------------------------------- FT-1, FT-2: body and head
@pytest.mark.claim("FT-1")
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_body_is_resnet_without_pool_and_fc_and_head_is_fastais(backend, data_dir, name):
    arch = getattr(backend, name)
    learn = backend.vision_learner(pets(backend, data_dir), arch)
    body, head = learn.model
    ref = list(built(arch).children())
    assert [type(c) for c in body] == [type(c) for c in ref[:-2]], f"FT-1: body {[type(c).__name__ for c in body]}"
    assert [type(c) for c in ref[-2:]] == [nn.AdaptiveAvgPool2d, nn.Linear], "FT-1: torchvision resnet ends pool, fc"
    n_body = sum(p.numel() for p in body.parameters())
    want = N_PARAMS[name] - sum(p.numel() for p in ref[-1].parameters())
    assert n_body == want, f"FT-1: body has {n_body} parameters, the resnet without fc {want}"
    got = [describe(m) for m in head]
    assert got == fastai_head(NF[name], 37), f"FT-1: {name} head\n{got}\nexpected\n{fastai_head(NF[name], 37)}"


@pytest.mark.claim("FT-1")
@pytest.mark.parametrize("nf, n_out", [(512, 37), (2048, 20)])
def test_create_head(backend, nf, n_out):
    "create_head(nf, n_out) is the listed head (concat pooling doubles nf); y_range appends SigmoidRange."
    got = [describe(m) for m in backend.create_head(nf, n_out)]
    assert got == fastai_head(nf, n_out), f"FT-1: create_head({nf}, {n_out})\n{got}"
    last = backend.create_head(nf, n_out, y_range=(-1, 1))[-1]
    assert type(last).__name__ == "SigmoidRange", f"FT-1: with y_range the head ends with {last}"


@pytest.mark.claim("FT-1")
def test_head_weights_are_new_random_kaiming_normal(backend, data_dir):
    "The two new linear layers are kaiming-normal (std sqrt(2/fan_in)), different in two learners; BN at 1, 1e-3."
    dls = pets(backend, data_dir)  # fastai's RandomSplitter(seed=42) reseeds torch: make the data once
    a, b = (backend.vision_learner(dls, backend.resnet34).model[1] for _ in range(2))
    lins = [m for m in a if isinstance(m, nn.Linear)]
    for lin, tol in zip(lins, (0.02, 0.05)):  # 1024*512 and 512*37 draws: sampling error < 0.3% and 1.2%
        w = lin.weight.detach()
        want = (2 / lin.in_features) ** 0.5
        assert abs(w.std().item() / want - 1) < tol, f"FT-1: {lin}: weight std {w.std():.5f}, kaiming {want:.5f}"
        assert abs(w.mean().item()) < 4 * want / w.numel() ** 0.5, f"FT-1: {lin}: weight mean {w.mean():.2e}"
    assert not torch.equal(lins[-1].weight, [m for m in b if isinstance(m, nn.Linear)][-1].weight), "FT-1: not random"
    for bn in (m for m in a if isinstance(m, nn.BatchNorm1d)):  # fastai's BatchNorm init
        assert bool((bn.weight == 1).all() and (bn.bias == 1e-3).all()), f"FT-1: {bn} does not start at 1, 1e-3"


@pytest.mark.claim("FT-2")
@pytest.mark.parametrize("data, n_out", [("pets", 37), ("pascal", 20), ("biwi", 2)])
def test_one_activation_per_target_by_default(backend, data_dir_medium, data, n_out):
    "n_out from the data: 37 breeds, 20 PASCAL classes, 2 coordinates of one BIWI point; model(xb) is (bs, n_out)."
    root = data_dir_medium
    dls = {
        "pets": lambda: pets(backend, root),
        "pascal": lambda: backend.pascal_dls(root / "pascal_2007", bs=8, size=SIZE),
        "biwi": lambda: backend.biwi_dls(root / "biwi_head_pose", bs=8, size=(48, 64)),
    }[data]()
    learn = backend.vision_learner(dls, backend.tiny_resnet)
    xb, _ = batch(dls.train)
    o = learn.model(xb)
    assert tuple(o.shape) == (8, n_out), f"{data}: model(xb).shape {tuple(o.shape)}, expected (8, {n_out})"


# ---------------------------------------------------------------- FT-8, FT-9, FT-12: groups and freezing
@pytest.mark.claim("FT-9")
def test_resnet_split_gives_three_groups(backend, data_dir):
    "Groups: body[:6] (stem, layer1, layer2), body[6:] (layer3, layer4), head; freeze() freezes groups 0 and 1."
    learn = backend.vision_learner(pets(backend, data_dir), backend.resnet18)
    body, head = learn.model
    want = [body[:6], body[6:], head]
    gs = backend.app_groups(learn)
    assert [{id(p) for p in g} for g in gs] == [{id(p) for p in m.parameters()} for m in want], (
        f"group sizes {[len(g) for g in gs]}, expected {[len(list(m.parameters())) for m in want]}"
    )
    learn.freeze()
    norms = norm_ids(learn.model)
    trains = [any(p.requires_grad for p in g if id(p) not in norms) for g in gs]
    assert trains == [False, False, True], f"non-norm parameters training per group {trains}"
    assert trains.index(True) == 2, f"frozen index {trains.index(True)}"


@pytest.mark.claim("FT-8")
def test_pretrained_body_comes_frozen(backend, data_dir, body):
    "Right after vision_learner with a pretrained body: body non-BN weights frozen, BN and head train; else all train."
    learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, pretrained=body)
    b, h = learn.model
    norms = norm_ids(learn.model)
    frozen = [n for n, p in b.named_parameters() if p.requires_grad and id(p) not in norms]
    assert not frozen, f"body parameters still training after vision_learner(pretrained=...): {frozen[:4]}"
    assert all(p.requires_grad for p in h.parameters()), "head not trainable"
    assert all(p.requires_grad for p in b.parameters() if id(p) in norms), "body BatchNorm frozen (train_bn)"
    learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, pretrained=False)
    assert all(p.requires_grad for p in learn.model.parameters()), "pretrained=False froze something"


@pytest.mark.claim("FT-12", "FT-8")
def test_a_frozen_step_changes_only_head_and_batchnorm(backend, data_dir, body):
    "One epoch on the frozen pretrained learner: body convs bit-identical, body BatchNorm and head weights moved."
    seed_all(0)
    learn = backend.vision_learner(pets(backend, data_dir, bs=16), backend.tiny_resnet, pretrained=body)
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    learn.fit(1, 1e-3)
    norms = {n for n, p in learn.model.named_parameters() if id(p) in norm_ids(learn.model)}
    moved = {n for n, p in learn.model.named_parameters() if not torch.equal(p.detach(), before[n])}
    body_w = {n for n in before if n.startswith("0.") and n not in norms}
    assert not moved & body_w, f"frozen body weights changed: {sorted(moved & body_w)[:4]}"
    head_lin = {n for n in before if n.startswith("1.") and n not in norms}
    assert head_lin <= moved, f"head weights unchanged: {sorted(head_lin - moved)}"
    assert {n for n in norms if n.startswith("0.")} <= moved, "body BatchNorm did not train (train_bn)"


# ---------------------------------------------------------------- REG-15, REG-8, REG-17: inputs and outputs
@pytest.mark.claim("REG-15")
@pytest.mark.parametrize("k", [1, 2, 4, 5])
def test_first_conv_adapted_to_n_in(backend, data_dir, body, k):
    "n_in=k: Conv2d(k, ...) like the RGB one; pretrained: k=1 sum, k=2 first two x1.5, k>3 RGB then zeros."
    w = body["conv1.weight"]
    want = {1: w.sum(1, keepdim=True), 2: w[:, :2] * 1.5}.get(k)
    if want is None:
        want = torch.cat([w, torch.zeros(w.shape[0], k - 3, *w.shape[2:])], 1)
    for pretrained in (body, False):
        learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, n_in=k, pretrained=pretrained)
        conv = learn.model[0][0]
        geometry = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.bias)
        assert geometry == (k, 16, (7, 7), (2, 2), (3, 3), None), f"n_in={k}: first conv {conv}"
        assert learn.model(torch.randn(2, k, SIZE, SIZE)).shape == (2, 37), f"n_in={k}: forward failed"
    learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, n_in=k, pretrained=body)
    got = learn.model[0][0].weight.detach()
    assert torch.allclose(got, want, atol=1e-6), f"n_in={k}: max |w - expected| {(got - want).abs().max():.3g}"


@pytest.mark.claim("REG-15")
def test_three_channels_keep_the_pretrained_conv(backend, data_dir, body):
    learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, pretrained=body)
    assert torch.equal(learn.model[0][0].weight.detach(), body["conv1.weight"]), "n_in=3 changed the weights"


@pytest.mark.claim("REG-8")
def test_pretrained_adds_imagenet_normalisation(backend, data_dir, body):
    "A pretrained body appends Normalize(ImageNet stats) once; the batches equal normalising by hand; not when random."
    dls = pets(backend, data_dir)
    x0, _ = batch(dls.valid)
    equal(backend.batch_normalizers(dls), [], "normalisation before any learner")
    backend.vision_learner(dls, backend.tiny_resnet, pretrained=False)
    assert backend.batch_normalizers(dls) == [], f"pretrained=False added {backend.batch_normalizers(dls)}"
    for _ in range(2):  # a second learner on the same DataLoaders does not add a second one
        backend.vision_learner(dls, backend.tiny_resnet, pretrained=body)
    got = [tuple(np.round(v, 6).tolist() for v in s) for s in backend.batch_normalizers(dls)]
    assert got == [tuple(IMAGENET)], f"Normalize transforms {got}, expected one with {IMAGENET}"
    x1, _ = batch(dls.valid)
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    assert torch.allclose(x1, (x0 - m) / s, atol=1e-5), "batches differ from (x - mean) / std by hand"


@pytest.mark.claim("REG-17")
@given(scale=st.sampled_from([1e-3, 1.0, 1e2, 1e4]).map(float), seed=st.integers(0, 2**16))
def test_y_range_bounds_every_output(backend, scale, seed):
    "y_range=(-1, 1): the head ends with SigmoidRange(-1, 1) and every output lies in [-1, 1], for any input."
    learn = _y_range_learner(backend)
    assert type(learn.model[1][-1]).__name__ == "SigmoidRange", f"head ends with {learn.model[1][-1]}"
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        o = learn.model.eval()(scale * torch.randn(4, 3, 32, 32, generator=g))
    assert o.min() >= -1 and o.max() <= 1, f"outputs in [{o.min():.4f}, {o.max():.4f}] for input scale {scale}"


_YR = {}


def _y_range_learner(backend):
    if backend.name not in _YR:
        from spec.tiny import loaders

        x, y = torch.zeros(16, 3, 32, 32), torch.zeros(16, 2)
        dls = backend.dls_from_loaders(*loaders(x, y, n_valid=8))
        _YR[backend.name] = backend.vision_learner(
            dls, backend.tiny_resnet, n_out=2, y_range=(-1, 1), loss_func=nn.MSELoss()
        )
    return _YR[backend.name]


# ---------------------------------------------------------------- FT-13: the name
@pytest.mark.claim("FT-13")
def test_cnn_learner_is_the_name(backend, data_dir):
    "The lesson's cnn_learner(dls, arch) builds the learner without a deprecation warning."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.cnn_learner(pets(backend, data_dir), backend.tiny_resnet)


@pytest.mark.claim("FT-13", current=True)
def test_vision_learner_is_the_name_now(backend, data_dir):
    "Now the function is vision_learner; fastai keeps cnn_learner as an alias that warns it was renamed."
    backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet)
    if backend.name == "impl":
        assert "cnn_learner" not in backend, "FT-13: impl has a cnn_learner"
        return
    with pytest.warns(UserWarning, match="renamed to `vision_learner`"):
        backend.cnn_learner(pets(backend, data_dir), backend.tiny_resnet)


# ---------------------------------------------------------------- training with a pretrained body (statistical)
SEEDS = seeds(2)  # (0, 1); shifted by SPEC_SEED_OFFSET (tools/calibrate.py). 3 until stop 22 (results/calibration.md)
_RUNS = {}


def initial_drop(backend, learn, num_it=20, start=5):
    """The LR finder's fall of the smoothed loss from its value at point `start` to its minimum over the first 80% of
    the sweep. The debiased smoothed loss at point 5 is about the mean of the first 6 batch losses, at LRs up to
    1e-7 * 2.5**5 = 1e-5 (nothing has trained yet): a start 2.4x less noisy than the first batch's loss alone."""
    backend.lr_find(learn, num_it=num_it)
    s = backend.finder_curve(learn)[1]
    return float(s[start] - s[start : int(0.8 * len(s))].min())


def pets_run(backend, root, body, seed, pretrained=True):
    """The lesson's manual recipe on the medium Pets (tiny_resnet, 64 px, bs 32): fit_one_cycle(3, 3e-3) on the learner
    as vision_learner makes it (frozen when pretrained), then unfreeze(). Errors per epoch; for the pretrained body also
    the LR finder's initial drop before training and after unfreezing (T:L358-378). Cached per run."""
    key = (backend.name, seed, pretrained)
    if key not in _RUNS:
        dls = seeded(seed, pets, backend, root, bs=32)
        learn = backend.vision_learner(
            dls, backend.tiny_resnet, pretrained=body if pretrained else False, metrics=[backend.error_rate]
        )
        before = initial_drop(backend, learn) if pretrained else None
        learn.fit_one_cycle(3, 3e-3)
        errors = backend.epoch_values(learn)[:, 2]
        learn.unfreeze()
        _RUNS[key] = dict(errors=errors, drop=(before, initial_drop(backend, learn)) if pretrained else None)
    return _RUNS[key]


@pytest.mark.slow
@pytest.mark.statistical
@pytest.mark.claim("FT-1")
def test_pretrained_body_beats_random_init(backend, data_dir_medium, body, record_property):
    """Keeping the pretrained body and replacing only the head is what makes transfer learning work: with the same
    budget (fit_one_cycle(3, 3e-3) on the new learner) the mean error from the pretrained body over the 2 seeds of
    SEEDS is below 0.5 and at most 0.6x the error from a random init at the first seed (the same seed, split and head
    init; 37 breeds: chance 0.97; per seed about 0.1-0.35 vs 0.55-0.95). Effect: the factor by which the mean
    pretrained error is under its bound, min(0.5, 0.6 x random) / mean pretrained; passes above 1. Design: a first
    version wanted every seed under its bound; in calibration (stop 19, offsets 0..19 at 1 and 2 threads) its weakest
    seed left impl a margin of 0.317 (one seed's pretrained error of 0.34 against the bound 0.5). The mean over seeds
    is the stronger statistic for the same runs: one unlucky split no longer decides the verdict. Up to stop 20 the
    random arm was 3 runs paired with the pretrained ones; one run (the first seed's) costs a third as much, and on the
    40 calibration runs of stop 20 (impl) it lowers the weakest effect only from 1.96 to 1.84."""
    rows = np.array([pets_run(backend, data_dir_medium, body, s)["errors"][-1] for s in SEEDS])
    p, r = rows.mean(), pets_run(backend, data_dir_medium, body, SEEDS[0], pretrained=False)["errors"][-1]
    record_property("errors", {"pretrained": np.round(rows, 4).tolist(), "random": round(float(r), 4)})
    record(record_property, min(0.5, 0.6 * r) / max(p, 1e-9), 1)
    assert p < 0.5 and p <= 0.6 * r, f"FT-1: mean final error {p:.3f} pretrained (per seed {np.round(rows, 3)}), " \
        f"{r:.3f} random init"


@pytest.mark.slow
@pytest.mark.claim("FT-11")
def test_finder_after_unfreezing_has_no_rapid_drop(backend, data_dir_medium, body, record_property):
    """After 3 epochs of the head and unfreeze() (already pretty good) the LR finder's smoothed loss falls less than a
    third as far over the first 80% of the sweep as on the same learner before training (the lesson: no rapid drop, 'a
    very gentle little gradient'): 20-batch sweeps, the fall measured from the smoothed loss at the 6th point
    (initial_drop), averaged over the seeds of SEEDS. Effect: mean drop before / mean drop after; passes above 3 (a
    learner that is not yet good gives about 1). Design: measured from the first point (one batch's loss: +-0.4 on
    fastai's augmented Pets at bs 32) the effect fell to 4.6 on impl and 3.2 on fastai in 3-seed blocks of seeds 0-11,
    against a threshold of 4. From a later start the drop before training stays 0.6-1.1 while the fall after is mostly
    the noise of the start: from the 4th point the weakest block gave 8.6 (impl) and 6.4 (fastai), the 6th point lowers
    the fall after by another 10-30%; the gentle gradient itself is real (a fall of 0.07-0.23 in single seeds), so the
    threshold is 3, not 4."""
    rows = np.array([pets_run(backend, data_dir_medium, body, s)["drop"] for s in SEEDS])
    before, after = rows.mean(0)
    record_property("drops", {"before": rows[:, 0].round(4).tolist(), "after": rows[:, 1].round(4).tolist()})
    record(record_property, before / max(after, 1e-12), 3)
    assert after < before / 3, f"FT-11: mean drop {before:.3f} before, {after:.3f} after; per seed {rows.round(3)}"


# ---------------------------------------------------------------- the book's numbers on the real Pets (GPU, ImageNet)
def real(f):
    "Real Pets, ImageNet weights, a GPU; long."
    for m in (pytest.mark.real_data, pytest.mark.pretrained, pytest.mark.cuda, pytest.mark.slow):
        f = m(f)
    return f


_REAL = {}


def real_pets_fine_tune(backend, real_data, arch="resnet34", fp16=False, epochs=2, freeze_epochs=1):
    "(learner, final error) of vision_learner(real Pets, arch, pretrained=True).fine_tune(epochs); cached."
    key = (backend.name, arch, fp16, epochs, freeze_epochs)
    if key not in _REAL:
        torch.manual_seed(42)
        dls = backend.pets_dls(real_data / "oxford-iiit-pet", bs=64, size=224, seed=42, device="cuda")
        learn = backend.vision_learner(
            dls, getattr(torchvision.models, arch), pretrained=True, metrics=[backend.error_rate]
        )
        if fp16:
            learn.to_fp16()
        learn.fine_tune(epochs, freeze_epochs=freeze_epochs)
        _REAL[key] = (learn, backend.valid_metrics(learn)[1])
    return _REAL[key]


@pytest.mark.claim("PET-4")
@real
def test_real_pets_baseline(backend, real_data):
    "resnet34, fine_tune(2) with the default LR: final error < 0.10 after 3 epochs (book 0.080514 = 119/1478)."
    _, err = real_pets_fine_tune(backend, real_data)
    assert err < 0.10, f"PET-4: final error {err:.4f}, book 0.0805"


@pytest.mark.claim("ARCH-4")
@real
def test_real_resnet50_not_clearly_better(backend, real_data):
    "resnet50 + to_fp16(), fine_tune(6, freeze_epochs=3) vs resnet34 with the same recipe: errors within 0.015."
    _, e50 = real_pets_fine_tune(backend, real_data, "resnet50", fp16=True, epochs=6, freeze_epochs=3)
    _, e34 = real_pets_fine_tune(backend, real_data, "resnet34", epochs=6, freeze_epochs=3)
    assert abs(e50 - e34) < 0.015, f"ARCH-4: resnet50 {e50:.4f} vs resnet34 {e34:.4f} (book 0.0548 vs 0.0514-0.0541)"


# ---------------------------------------------------------------- FT-14: the head's and the body's options
def head_listing(nf, n_out, hidden=(512,), ps=0.5, concat_pool=True, first_bn=True, lin_first=False, bn_final=False):
    "The head fastai's create_head docs describe, written out independently (a single ps: ps/2 but for the last)."
    sizes = [2 * nf if concat_pool else nf, *hidden, n_out]
    drops = [ps / 2] * (len(sizes) - 2) + [ps]
    out = [("AdaptiveConcatPool2d",) if concat_pool else ("AdaptiveAvgPool2d",), ("Flatten",)]
    if lin_first:  # a dropout first; each block linear, ReLU, BN, dropout; then a plain linear
        out.append(("Dropout", drops[0]))
        for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1])):
            bn = first_bn or i > 0
            out += [("Linear", a, b, not bn), ("ReLU",), *([("BatchNorm1d", b)] if bn else [])]
            out.append(("Dropout", drops[i + 1]))
        out.append(("Linear", sizes[-2], n_out, True))
    else:
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            bn = first_bn or i > 0
            out += [*([("BatchNorm1d", a)] if bn else []), ("Dropout", drops[i]), ("Linear", a, b, not bn)]
            out += [("ReLU",)] if i < len(sizes) - 2 else []
    return out + ([("BatchNorm1d", n_out)] if bn_final else [])


@pytest.mark.claim("FT-14")
@pytest.mark.parametrize(
    "kw",
    [
        dict(concat_pool=False),
        dict(lin_ftrs=[256, 64], ps=0.4),
        dict(first_bn=False),
        dict(lin_first=True),
        dict(bn_final=True),
        dict(concat_pool=False, lin_ftrs=[32], ps=0.2, first_bn=False, lin_first=True, bn_final=True),
    ],
    ids=lambda kw: ",".join(kw),
)
def test_create_head_options(backend, kw):
    want = head_listing(
        64, 5, hidden=tuple(kw.get("lin_ftrs", [512])), **{k: v for k, v in kw.items() if k != "lin_ftrs"}
    )
    head = backend.create_head(64, 5, **kw)
    got = [describe(m) for m in head]
    assert got == want, f"FT-14: create_head(64, 5, **{kw})\n{got}\nexpected\n{want}"
    if kw.get("bn_final"):
        assert head[-1].momentum == 0.01, f"FT-14: bn_final's BatchNorm has momentum {head[-1].momentum}"
    assert head.eval()(torch.randn(4, 64, 3, 3)).shape == (4, 5), f"FT-14: {kw}: a (4, 64, 3, 3) input"


@pytest.mark.claim("FT-14")
def test_create_body_cut_options(backend):
    m = torchvision.models.resnet18(weights=None)
    kids = list(m.children())
    assert [type(c) for c in backend.create_body(m, pretrained=False, cut=4)] == [type(c) for c in kids[:4]], (
        "FT-14: an int cut keeps children[:cut]"
    )
    body = backend.create_body(m, pretrained=False, cut=lambda model: model.layer1)
    assert body is m.layer1, "FT-14: a callable cut returns cut(model)"
    body = backend.create_body(m, pretrained=False)
    assert [type(c) for c in body] == [type(c) for c in kids[:-2]], "FT-14: default: before the last pooling child"


@pytest.mark.claim("FT-14")
def test_vision_learner_passes_head_options(backend, data_dir):
    kw = dict(concat_pool=False, ps=0.3, first_bn=False, bn_final=True)
    learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, lin_ftrs=[64], **kw)
    nf = learn.model[0].eval()(torch.zeros(2, 3, SIZE, SIZE)).shape[1]
    got, want = [describe(m) for m in learn.model[1]], head_listing(nf, 37, hidden=(64,), **kw)
    assert got == want, f"FT-14: vision_learner(..., lin_ftrs=[64], **{kw}) head\n{got}\nexpected\n{want}"


# ---------------------------------------------------------------- mutation survivors (issue 10): body, head, loading
def _pool_model(pool):
    "conv, MaxPool2d, conv, `pool` (inside a Sequential), flatten, linear: the default cut is before `pool`'s child."
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.Sequential(pool), nn.Flatten(),
                         nn.Linear(4, 2))


@pytest.mark.claim("FT-14")
@pytest.mark.parametrize("pool", [nn.AdaptiveAvgPool1d(1), nn.MaxPool1d(2), nn.AdaptiveMaxPool3d(1), nn.AvgPool3d(2)],
                         ids=lambda p: type(p).__name__)
def test_create_body_default_cut_sees_1d_and_3d_pooling(backend, pool):
    "The default cut is before the last child holding any pooling layer (fastai: a class name ending Pool1d/2d/3d)."
    body = backend.create_body(_pool_model(pool), pretrained=False)
    assert [type(c).__name__ for c in body] == ["Conv2d", "MaxPool2d", "Conv2d"], f"default cut with {pool}: {body}"


@pytest.mark.claim("REG-15")
def test_create_body_first_conv_keeps_bias_and_padding_mode(backend):
    """n_in=1: the new first conv keeps the old one's bias and padding mode (fastai copies every Conv2d option);
    create_body's default is pretrained=True: the new kernel is the sum of the RGB kernels."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=True, padding_mode="reflect"), nn.AdaptiveAvgPool2d(1))
    w = m[0].weight.detach().clone()
    conv = backend.create_body(m, n_in=1)[0]
    assert conv.in_channels == 1 and conv.bias is not None, f"n_in=1 from a conv with a bias: {conv}"
    assert conv.padding_mode == "reflect", f"n_in=1 from a reflect-padded conv: {conv.padding_mode}"
    assert torch.allclose(conv.weight.detach(), w.sum(1, keepdim=True)), "pretrained default: not the RGB sum"


@pytest.mark.claim("IMPL-5")
def test_impl_create_body_needs_a_conv_only_when_n_in_changes():
    "A first layer that is not a Conv2d is fine for n_in=3 (nothing to adapt) and a TypeError naming it for n_in=4."

    m = nn.Sequential(nn.Linear(8, 4), nn.AdaptiveAvgPool1d(1), nn.Linear(1, 1))
    assert len(V.create_body(m, pretrained=False)) == 1, "n_in=3 with a Linear first layer"
    with pytest.raises(TypeError, match=r"^n_in=4 needs a Conv2d first layer, got Linear$"):
        V.create_body(m, n_in=4, pretrained=False)


@pytest.mark.claim("IMPL-29")
@pytest.mark.parametrize("kw", [{}, dict(lin_ftrs=[32, 16]), dict(lin_first=True)], ids=["default", "two", "first"])
def test_impl_head_relus_are_in_place_as_fastais(kw):
    "The head's ReLUs are ReLU(inplace=True), as fastai's (what print(learn.model) shows)."
    from fastai.vision.learner import create_head as fastai_create_head

    want = [m.inplace for m in fastai_create_head(64, 5, **kw) if isinstance(m, nn.ReLU)]
    got = [m.inplace for m in V.create_head(64, 5, **kw) if isinstance(m, nn.ReLU)]
    assert got == want and all(want), f"create_head(64, 5, **{kw}) ReLU inplace {got}, fastai {want}"


@pytest.mark.claim("FT-14", "FT-1")
@pytest.mark.parametrize("kw", [dict(first_bn=False), dict(lin_first=True)], ids=["no-first-bn", "lin-first"])
def test_head_linear_biases_start_at_zero(backend, data_dir, kw):
    "A head linear with a bias (first_bn=False, lin_first's last linear) starts with bias 0 (fastai's init_default)."
    learn = backend.vision_learner(pets(backend, data_dir), backend.tiny_resnet, **kw)
    biases = [m.bias for m in learn.model[1] if isinstance(m, nn.Linear) and m.bias is not None]
    assert biases, f"{kw}: no head linear has a bias"
    assert all(bool((b == 0).all()) for b in biases), f"{kw}: head biases {[b.abs().max().item() for b in biases]}"


@pytest.mark.claim("IMPL-30")
def test_impl_init_head_leaves_layers_without_weight_alone():
    "init_head inits weights and zeroes biases; a custom layer with other parameters (a learnt scale) is left as it is."

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.g = nn.Parameter(torch.full((3,), 2.0))

        def forward(self, x):
            return x * self.g

    head = V.init_head(nn.Sequential(nn.Linear(4, 3), Scale()), init=nn.init.ones_)
    assert bool((head[0].weight == 1).all() and (head[0].bias == 0).all()), "Linear: init on weight, bias 0"
    assert torch.equal(head[1].g.detach(), torch.full((3,), 2.0)), "a layer without weight or bias changed"


def _tiny_state(**kw):

    torch.manual_seed(0)
    return V.tiny_resnet(widths=(4, 4, 4, 4), **kw).state_dict()


@pytest.mark.claim("IMPL-48")
def test_impl_load_body_skips_and_ignores_fc_keys():
    "A state dict with a head of another size, or a head of other layers (fc.0.*), loads: only the body matters."

    state = _tiny_state(num_classes=10)
    m = V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), state)
    assert torch.equal(m.conv1.weight, state["conv1.weight"]) and m.fc.out_features == 1000, "fc of 10 into 1000"
    body = {k: v for k, v in state.items() if not k.startswith("fc.")}
    other = {**body, "fc.0.weight": torch.zeros(3, 4), "fc.0.bias": torch.zeros(3)}
    m = V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), other)
    assert torch.equal(m.layer1[0].conv1.weight, state["layer1.0.conv1.weight"]), "unexpected fc.* keys"


@pytest.mark.claim("IMPL-48")
def test_impl_load_body_errors_name_what_does_not_fit():

    state = _tiny_state()
    bad = {**state, "conv1.weight": torch.zeros(4, 3, 5, 5)}
    with pytest.raises(ValueError, match=r"conv1\.weight is \(4, 3, 5, 5\), the arch's \(4, 3, 7, 7\)$"):
        V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), bad)
    with pytest.raises(ValueError, match=r"missing/unexpected \[('[a-z0-9_.]+', ){4}'[a-z0-9_.]+'\]$"):
        V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), {"layer1.0.conv1.weight": state["layer1.0.conv1.weight"]})
    with pytest.raises(TypeError, match=r"^pretrained must be a state dict or a path, got list$"):
        V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), [state])


@pytest.mark.claim("IMPL-48", "IMPL-7")
def test_impl_load_body_from_a_path(tmp_path, monkeypatch):
    """A str path loads (tiny_resnet(weights=path)); a file saved on a GPU loads on the CPU; a file holding a pickled
    object raises and never runs it, also when TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD asks torch to unpickle freely."""

    state = _tiny_state()
    torch.save(state, tmp_path / "body.pth")
    m = V.tiny_resnet(widths=(4, 4, 4, 4), weights=str(tmp_path / "body.pth"))
    assert torch.equal(m.conv1.weight, state["conv1.weight"]), "tiny_resnet(weights=str path)"
    if not torch.cuda.is_available():  # as torch.save writes a CUDA tensor's storage
        with monkeypatch.context() as mp:
            mp.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
            torch.save(state, tmp_path / "gpu.pth")
        m = V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), tmp_path / "gpu.pth")
        assert m.conv1.weight.device.type == "cpu" and torch.equal(m.conv1.weight, state["conv1.weight"]), "gpu"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(tmp_path / "ran"),)

    torch.save({**state, "conv1.weight": Payload()}, tmp_path / "evil.pth")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(pickle.UnpicklingError):
        V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), tmp_path / "evil.pth")
    assert not (tmp_path / "ran").exists(), "the pickled payload ran"


# ---------------------------------------------------------------- create_vision_model, vision_learner, add_norm (impl)
@pytest.mark.claim("IMPL-30")
def test_impl_create_vision_model_options(monkeypatch, body):
    """Defaults: 3 input channels; an arch registered in model_meta is cut where its meta says; pretrained=True asks
    the arch for weights='DEFAULT' (torchvision's best weights) and keeps them; pool=False is a head option."""

    m = V.create_vision_model(V.tiny_resnet, 5)
    assert m.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 5), "create_vision_model(arch, 5) on RGB images"
    calls = []

    def arch(weights=None):
        calls.append(weights)
        return V.tiny_resnet(weights=body if weights == "DEFAULT" else None)

    monkeypatch.setitem(V.model_meta, arch, {"cut": 5, "split": V._default_split, "stats": None})
    m = V.create_vision_model(arch, 5)
    assert len(m[0]) == 5, f"model_meta cut=5: a body of {len(m[0])} children"
    m = V.create_vision_model(arch, 5, pretrained=True)
    assert calls == [None, "DEFAULT"], f"arch called with weights {calls}"
    assert torch.equal(m[0][0].weight, body["conv1.weight"]), "pretrained=True: the arch's DEFAULT weights dropped"
    with pytest.raises(ValueError, match="^tiny_resnet has no ImageNet weights; pass a state dict$"):
        V.create_vision_model(V.tiny_resnet, 5, pretrained=True)
    head = V.create_vision_model(V.tiny_resnet, 5, pool=False)[1]
    assert not any(isinstance(x, (nn.Flatten, V.AdaptiveConcatPool2d)) for x in head), "pool=False"


@pytest.mark.claim("IMPL-5")
def test_impl_vision_learner_without_c_or_loss_func():
    "A dls with only train and valid: no dls.c and no n_out, or no loss_func anywhere, is a ValueError saying so."

    dls = SimpleNamespace(**dict(zip(("train", "valid"), D.DataLoaders.from_dsets([0], [0]).loaders)))
    with pytest.raises(ValueError, match=r"^n_out could not be inferred from dls.c; pass n_out \(got None\)$"):
        V.vision_learner(dls, V.tiny_resnet)
    with pytest.raises(ValueError, match="^loss_func is None and dls has no loss_func; pass loss_func$"):
        V.vision_learner(dls, V.tiny_resnet, n_out=2)


@pytest.mark.claim("REG-8")
def test_pretrained_with_other_channel_count_adds_no_normalisation(backend, data_dir, body):
    "n_in=1 with a pretrained body: 3-channel ImageNet stats do not fit: no Normalize is added (fastai's _add_norm)."
    dls = pets(backend, data_dir)
    backend.vision_learner(dls, backend.tiny_resnet, n_in=1, pretrained=body)
    assert backend.batch_normalizers(dls) == [], f"n_in=1 added {backend.batch_normalizers(dls)}"


@pytest.mark.claim("IMPL-30")
def test_impl_add_norm_reaches_every_loader():
    """add_norm appends Normalize to every loader (a third one too), to train and valid of a dls without .loaders, and
    skips loaders without after_batch."""

    dls = D.DataLoaders.from_dsets([0], [0], [0])
    V.add_norm(dls, V.imagenet_stats, pretrained=True)
    assert [[type(f) for f in dl.after_batch] for dl in dls.loaders] == [[V.Normalize]] * 3, "three loaders"
    ns = SimpleNamespace(**dict(zip(("train", "valid"), D.DataLoaders.from_dsets([0], [0]).loaders)))
    V.add_norm(ns, V.imagenet_stats, pretrained=True)
    assert [len(dl.after_batch) for dl in (ns.train, ns.valid)] == [1, 1], "a dls without .loaders"
    plain_dls = D.DataLoaders([(torch.zeros(1, 3, 2, 2),)], [(torch.zeros(1, 3, 2, 2),)])
    V.add_norm(plain_dls, V.imagenet_stats, pretrained=True)
    assert not any(hasattr(dl, "after_batch") for dl in plain_dls.loaders), "loaders without after_batch"


@pytest.mark.claim("IMPL-49")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_impl_normalize_only_images_in_their_dtype(dtype):

    n = V.Normalize([0.5, 0.25, 0.0], [0.25, 0.5, 2.0])
    x = torch.tensor([1.0, 0.5, 4.0], dtype=dtype).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    pts, lbl, vol = torch.tensor([[0.5, -0.5]]), torch.tensor([3]), torch.ones(3, 2, 2)
    o = n((x, pts, lbl, vol, "name"))
    assert o[0].dtype == dtype and torch.equal(o[0][0, :, 0, 0].double(), torch.tensor([2.0, 0.5, 2.0]).double()), (
        f"{dtype}: {o[0][0, :, 0, 0]}"
    )
    assert o[1] is pts and o[2] is lbl and o[3] is vol and o[4] == "name", "a non-image item changed"
    d = n.decode(o)
    assert d[0].dtype == dtype and torch.equal(d[0], x), f"{dtype}: decode gives {d[0][0, :, 0, 0]}"
    assert d[1] is pts and d[2] is lbl and d[3] is vol and d[4] == "name", "decode changed a non-image item"


# ---------------------------------------------------------------- tiny_resnet, n_features, lin_bn_drop (impl)
@pytest.mark.claim("IMPL-50")
def test_impl_tiny_resnet_is_a_resnet(tmp_path):

    torch.manual_seed(0)
    m = V.tiny_resnet()
    assert m.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 1000), "tiny_resnet(): 1000 ImageNet classes"
    assert V.tiny_resnet(num_classes=7).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 7), "num_classes=7"
    ref = nn.Sequential(*list(built(torchvision.models.resnet18).children())[:-2]).eval()
    body = nn.Sequential(*list(m.children())[:-2])
    for s in (32, 45, 64):
        with torch.no_grad():
            got, want = body(torch.zeros(1, 3, s, s)).shape[-2:], ref(torch.zeros(1, 3, s, s, device="meta")).shape[-2:]
        assert got == want, f"{s} x {s} input: tiny body output {tuple(got)}, resnet18's {tuple(want)}"
    for conv, tol in ((m.conv1, 0.05), (m.layer4[0].conv1, 0.02), (m.layer4[0].conv2, 0.02)):
        want = (2 / (conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1])) ** 0.5
        got = conv.weight.std().item()
        assert abs(got / want - 1) < tol, f"{conv}: weight std {got:.4f}, kaiming fan_out {want:.4f}"
    with pytest.raises(ValueError, match="^tiny_resnet has no ImageNet weights; pass a state dict$"):
        V.tiny_resnet(weights="DEFAULT")


@pytest.mark.claim("IMPL-30")
def test_impl_n_features_and_lin_bn_drop_defaults():
    "n_features traces an RGB batch at a size a space-to-depth stem accepts; lin_bn_drop's defaults as fastai's."
    from fastai.layers import LinBnDrop

    assert V.n_features(V.create_body(V.tiny_resnet(widths=(4, 4, 4, 6)), pretrained=False)) == 6, "RGB by default"
    assert V.n_features(nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(12, 5, 3))) == 5, "a space-to-depth stem"
    got, want = [describe(x) for x in V.lin_bn_drop(4, 2)], [describe(x) for x in LinBnDrop(4, 2)]
    assert got == want, f"lin_bn_drop(4, 2) {got}, fastai's LinBnDrop(4, 2) {want}"
