"""Per-epoch training time of resnet18/34/50 by precision, through impl's Learner (T:L520-531: to_fp16 gives "a 2
to 3 times speed up"; resnet50 in fp16 "from 25 seconds to 26 seconds" against resnet34 in fp32).

Group `fp16-speedup`, params `arch`, `precision`: compute-only (random batches already on the device, 224 px,
bs 64 on a GPU; an epoch = `batches` training steps, no validation), all precisions of one arch interleaved.
Precisions: fp32_strict (TF32 off), fp32 (TF32 on: PyTorch's convolution default), fp16 / bf16 (autocast; fp16
with a GradScaler), fp16_cl / bf16_cl (the same in channels_last). extra_info: img/s, peak GPU memory of an
epoch (max_memory_allocated above what was allocated before it: activations, gradients, autocast copies),
forward GFLOP per image (counted), the pets epoch this throughput implies.
Group `fp16-e2e`, params `arch`, `precision`: end-to-end, the pets fixture through impl's data pipeline and
vision_learner (JPEG decoding, random crops, transfer, validation included), fp32 vs fp16.
Correctness: every precision computes the same initial loss as strict fp32 (within autocast's tolerance),
losses stay finite and fall.
"""

import math
import os

import pytest
import torch
import torch.nn.functional as F
import torchvision

from benches import _loops as L
from benches import _timing as T

ARCHS = {a: getattr(torchvision.models, a) for a in ("resnet18", "resnet34", "resnet50")}
PETS_TRAIN = 5912  # real Oxford-IIIT Pet: 7390 images, valid_pct 0.2 -> 5912 training images (book epochs)
ALL = list(L.PRECISIONS)
# fmt: off
E2E_GPU = dict(archs=list(ARCHS), precisions=["fp32", "fp16"], fixture="medium", px=224, bs=64, rounds=2, warmup=1,
               workers=min(8, os.cpu_count() or 1))
SMOKE = dict(archs=["resnet18"], precisions=["fp32", "bf16", "bf16_cl"], px=32, bs=4, batches=3, rounds=1, warmup=0,
             e2e=dict(archs=["resnet18"], precisions=["fp32"], fixture="small", px=32, bs=16, rounds=1, warmup=0,
                      workers=0, max_batches=2))
S = T.sized(
    gpu=dict(archs=list(ARCHS), precisions=ALL, px=224, bs=64, batches=16, rounds=4, warmup=1, e2e=E2E_GPU),
    cpu=dict(archs=["resnet18"], precisions=["fp32_strict", "fp32", "bf16", "bf16_cl"], px=64, bs=8, batches=2,
             rounds=1, warmup=1, e2e=dict(archs=["resnet18"], precisions=["fp32"], fixture="small", px=64, bs=16,
                                          rounds=1, warmup=1, workers=0, max_batches=4)),
    smoke=SMOKE,
    sim=dict(SMOKE, archs=list(ARCHS), precisions=ALL,
             e2e=dict(SMOKE["e2e"], archs=list(ARCHS), precisions=["fp32", "fp16"])),
)
# fmt: on
N_CLASSES = 37
LR = 1e-3


def fwd_gflop(model, px) -> float:
    "Forward FLOP per image (2 per multiply-add) of the convolutions and linear layers, counted with hooks."
    macs = []

    def hook(m, i, o):
        k = m.weight[0].numel()  # in/groups * kh * kw for a conv; in_features for a linear
        macs.append(o.numel() // o.shape[0] * k)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, px, px, device=next(model.parameters()).device))
    model.train(was)
    for h in hs:
        h.remove()
    return 2 * sum(macs) / 1e9


def batches(n_distinct, bs, px, dev, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(bs, 3, px, px, generator=g).to(dev), torch.randint(N_CLASSES, (bs,), generator=g).to(dev))
        for _ in range(n_distinct)
    ]


def precision_ctx(precision):
    return T.tf32(precision != "fp32_strict")


def compute_only(arch, variants, bs, n_batches, size, seed=0):
    """Interleaved epochs (T.Group) of each variant (name -> (precision, loop maker as in benches._loops.LOOPS)) on one
    model init and the same device batches; `size`: px, rounds, warmup. Checked: each variant computes the first's
    logits at init and lowers the loss. info per variant: peak memory of an epoch, forward GFLOP, losses."""
    dev, names, px = T.device(), list(variants), size["px"]
    torch.manual_seed(seed)
    m0 = ARCHS[arch](num_classes=N_CLASSES).to(dev)
    xys = batches(2, bs, px, dev, seed)
    data = L.Data(L.Batches(xys, n_batches), L.Batches([], 0), dev)
    init, gflop = {k: v.clone() for k, v in m0.state_dict().items()}, fwd_gflop(m0, px)
    del m0
    runs, models, peak, first, err, ref = {}, {}, {k: 0 for k in names}, {}, {}, None
    autotune = lambda: T.cudnn_benchmark(dev.type == "cuda")
    with autotune():
        for k, (p, make) in variants.items():
            models[k] = ARCHS[arch](num_classes=N_CLASSES).to(dev)
            models[k].load_state_dict(init)
            runs[k] = make(data, models[k], F.cross_entropy, LR, p)
            # the same function: each configuration's logits at init, in eval mode (well conditioned, unlike
            # BatchNorm over a small batch), against the first configuration's: ||o - ref|| / ||ref||
            dt = L.PRECISIONS[p]
            with (
                precision_ctx(p),
                torch.no_grad(),
                torch.autocast(dev.type, dtype=dt or torch.float32, enabled=bool(dt)),
            ):
                x0 = xys[0][0].contiguous(memory_format=torch.channels_last) if p.endswith("_cl") else xys[0][0]
                o = models[k].eval()(x0).float()
                models[k].train()
            ref = o if ref is None else ref
            err[k] = ((o - ref).norm() / ref.norm()).item()
            assert err[k] <= 0.05, f"FP16-6: {arch} {k} logits differ from {names[0]}'s by {err[k]:.2e} (> 5%)"
            first[k] = L.check_loss(models[k], xys[:n_batches], F.cross_entropy, train_mode=True)

        def epoch(k):
            def f():  # peak memory: the epoch's high-water mark above what was allocated before it (all models)
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(dev)
                    before = torch.cuda.memory_allocated(dev)
                with precision_ctx(variants[k][0]):
                    runs[k]()
                if dev.type == "cuda":
                    peak[k] = max(peak[k], torch.cuda.max_memory_allocated(dev) - before)

            return f

        group = T.Group({k: epoch(k) for k in names}, size["rounds"], size["warmup"], dev, ctx=autotune)
        last = {k: L.check_loss(models[k], xys[:n_batches], F.cross_entropy, train_mode=True) for k in names}
    steps = (size["rounds"] + size["warmup"]) * n_batches
    for k in names:  # fp16's GradScaler skips steps until its scale (2**16 at first) stops overflowing
        need = 20 if L.PRECISIONS[variants[k][0]] == torch.float16 else 3
        assert math.isfinite(last[k]) and (steps < need or last[k] < first[k]), (
            f"{arch} {k}: the loss on the training batches did not fall ({first[k]:.4f} -> {last[k]:.4f})"
        )
        group.info[k] = dict(
            peak_mem_mib=lambda i, k=k: round(peak[k] / 2**20, 1),  # read when recorded: the test's epoch counts
            fwd_gflop_per_img=round(gflop, 3),
            loss_first=first[k],
            logits_rel_err=err[k],
            loss_last=last[k],
        )
    return group


@pytest.mark.claim("FP16-6", "FP16-7", "ARCH-5")
@pytest.mark.parametrize("precision", S["precisions"])
@pytest.mark.parametrize("arch", S["archs"])
@pytest.mark.benchmark(group="fp16-speedup")
def test_fp16_speedup(benchmark, arch, precision):
    variants = {p: (p, L.impl_epoch) for p in S["precisions"]}
    group = T.once(("fp16", arch), lambda: compute_only(arch, variants, S["bs"], S["batches"], S))
    T.record(
        benchmark,
        group,
        precision,
        S["bs"] * S["batches"],
        loop="impl",
        bs=S["bs"],
        px=S["px"],
        batches=S["batches"],
        pets_epoch_s=lambda i: PETS_TRAIN / i["img_s"],
        tf32=precision != "fp32_strict",
        channels_last=precision.endswith("_cl"),
    )


# ---------------------------------------------------------------- end to end: the pets fixture through impl's pipeline
class Limit:
    "At most `n` batches of a DataLoader (smoke and sim sizes)."

    def __init__(self, dl, n):
        self.dl, self.n = dl, n

    device = property(lambda s: s.dl.device)

    def __len__(self):
        return min(len(self.dl), self.n)

    def __iter__(self):
        return (b for _, b in zip(range(self.n), self.dl))


def e2e(arch):
    import fixtures
    from impl.datasets import pets_dls
    from impl.vision import vision_learner

    E, dev = S["e2e"], T.device()
    pets = fixtures.make_one(
        T.ROOT / ".cache" / "fixtures" / E["fixture"], "oxford-iiit-pet", seed=0, size=E["fixture"]
    )
    runs, first, losses = {}, {}, {}
    autotune = lambda: T.cudnn_benchmark(dev.type == "cuda")
    with autotune():
        for k in E["precisions"]:
            torch.manual_seed(0)
            dls = pets_dls(pets, bs=E["bs"], size=E["px"], seed=42, device=dev, num_workers=E["workers"])
            if "max_batches" in E:
                dls.loaders = [Limit(d, E["max_batches"]) for d in dls.loaders]
            learn = vision_learner(dls, ARCHS[arch], pretrained=False)
            learn.model.to(dev)
            if k == "fp16":
                learn.to_fp16()
            first[k] = learn.validate()[0]
            losses[k] = []

            def f(learn=learn, k=k):
                learn.fit(1)
                losses[k].append(learn.recorder.values[-1])

            runs[k] = f
        group = T.Group(runs, E["rounds"], E["warmup"], dev, ctx=autotune)
    n_train = len(dls.train) * E["bs"]  # the training DataLoader drops the last partial batch
    for k in E["precisions"]:
        tl, vl = [v[0] for v in losses[k]], [v[1] for v in losses[k]]
        assert all(map(math.isfinite, tl + vl)), f"{arch} {k}: non-finite losses {losses[k]}"
        assert len(tl) < 3 or tl[-1] < tl[0], f"{arch} {k}: the training loss did not fall over {len(tl)} epochs: {tl}"
        group.info[k] = dict(  # read when recorded: the test's epoch counts
            n_train=n_train,
            valid_first=first[k],
            valid_last=lambda i, k=k: losses[k][-1][1],
            train_losses=lambda i, k=k: [v[0] for v in losses[k]],
        )
    return group


@pytest.mark.claim("FP16-6", "FP16-7")
@pytest.mark.parametrize("precision", S["e2e"]["precisions"])
@pytest.mark.parametrize("arch", S["e2e"]["archs"])
@pytest.mark.benchmark(group="fp16-e2e")
def test_fp16_e2e(benchmark, arch, precision):
    E, group = S["e2e"], T.once(("e2e", arch), lambda: e2e(arch))
    n = group.info[precision]["n_train"]
    T.record(
        benchmark, group, precision, n, loop="impl", bs=E["bs"], px=E["px"], fixture=E["fixture"], workers=E["workers"]
    )
