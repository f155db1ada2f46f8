"""Mixed precision (T:L520-612): to_fp16 / to_bf16 / to_fp32, autocast dtypes, loss scaling, overflow skipping.

The training semantics run on CUDA when there is a GPU. Without one, impl still shows them on the CPU
(torch.autocast('cpu') and GradScaler('cpu')), while fastai's MixedPrecision is CUDA-only (it trains in
float32 on a CPU, FP16-5), so its runs are skipped there with that reason. Speed and memory (FP16-6/7)
are measured by the benchmarks.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from spec.backends import get
from spec.tiny import N_TRAIN_BATCHES, cnn, make, one_thread, params, record, seeds  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
DEV = "cuda" if torch.cuda.is_available() else "cpu"
IMPL = get("impl")  # IMPL-n claims are impl's own contract: tested on impl only


def needs_amp_device(backend):
    if DEV == "cpu" and backend.name == "fastai":
        pytest.skip("needs a CUDA GPU: fastai's MixedPrecision autocasts on CUDA only (on a CPU it trains in float32)")


def watch(model):
    "Record the dtype of the first conv's and the last linear's outputs during training batches."
    seen = {"conv": set(), "linear": set()}

    def hook(name):
        def f(mod, inp, out):  # returns None: the output is left as it is
            if mod.training:
                seen[name].add(out.dtype)

        return f

    for name, m in (("conv", model[0]), ("linear", model[-1])):
        m.register_forward_hook(hook(name))
    return seen


def loss_dtypes():
    "A cross-entropy that records the dtypes of its input and of the loss."
    ce, seen = nn.CrossEntropyLoss(), set()

    def loss(o, y):
        v = ce(o, y)
        seen.add((o.dtype, v.dtype))
        return v

    return loss, seen


# ---------------------------------------------------------------- the API (T:L520)
@pytest.mark.claim("FP16-1")
def test_to_fp16_chains_and_to_fp32_undoes(backend):
    "to_fp16() returns the learner itself (so it chains after the constructor); to_fp32() removes it again."
    learn, *_ = make(backend, cnn())
    assert learn.to_fp16() is learn, "FP16-1: to_fp16() returns the learner"
    assert backend.mixed_precision(learn) == "fp16", "FP16-1: the learner is set to fp16"
    assert learn.to_fp32() is learn and backend.mixed_precision(learn) is None, "FP16-1: to_fp32() undoes it"
    assert learn.to_bf16() is learn and backend.mixed_precision(learn) == "bf16", "FP16-1: to_bf16() chains too"
    learn.to_fp32()


# ---------------------------------------------------------------- what runs in half precision
@pytest.mark.claim("FP16-2")
def test_fp16_forward_in_half_loss_and_weights_in_float(backend):
    "After to_fp16(): conv and linear outputs are float16 in training, the loss is float32, the weights stay float32."
    needs_amp_device(backend)
    loss, seen_loss = loss_dtypes()
    learn, *_ = make(backend, cnn().to(DEV), loss_func=loss)
    seen = watch(learn.model)
    learn.to_fp16().fit(1, 1e-3)
    assert seen == {"conv": {torch.float16}, "linear": {torch.float16}}, f"forward dtypes {seen} on {DEV}"
    assert seen_loss == {(torch.float32, torch.float32)}, f"FP16-2: loss input/output dtypes {seen_loss}"
    dts = {p.dtype for p in learn.model.parameters()}
    assert dts == {torch.float32}, f"FP16-2: parameters are {dts} after fp16 training, expected float32 master weights"


@pytest.mark.claim("FP16-3")
def test_lesson_fp16_converts_the_model_to_half(backend):
    "The lesson's to_fp16: weights (but BatchNorm) converted to float16, dynamic loss scale starting at 2**24."
    needs_amp_device(backend)
    learn, *_ = make(backend, cnn().to(DEV))
    seen = {}
    learn.model[0].register_forward_hook(lambda m, i, o: seen.setdefault("w", m.weight.dtype) and None)
    learn.to_fp16().fit(1, 1e-3)
    assert seen["w"] == torch.float16, f"FP16-3: conv weight is {seen['w']} during the forward pass, expected float16"
    scales = backend.train_log(learn)["scales"]
    assert scales and scales[0] == 2.0**24, f"FP16-3: first loss scale {scales[:1]}, expected 2**24"


@pytest.mark.claim("FP16-3", current=True)
def test_fp16_uses_torch_amp_grad_scaler(backend):
    "Now: native AMP, float32 weights, torch GradScaler defaults: scale 2**16, growth x2 every 2000 steps, backoff 0.5."
    needs_amp_device(backend)
    learn, *_ = make(backend, cnn().to(DEV))
    learn.to_fp16().fit(1, 1e-3)
    log = backend.train_log(learn)
    assert all(log["scaler"]) and log["scales"] == [2.0**16] * N_TRAIN_BATCHES, f"FP16-3: loss scales {log['scales']}"
    assert log["scaler_cfg"] == (2.0, 0.5, 2000), f"FP16-3: (growth, backoff, interval) = {log['scaler_cfg']}"
    assert {p.dtype for p in learn.model.parameters()} == {torch.float32}, "FP16-3: parameters stay float32"


@pytest.mark.claim("FP16-4")
def test_bf16_autocasts_without_a_scaler(backend):
    "to_bf16(): conv and linear outputs are bfloat16, no GradScaler, the weights stay float32."
    needs_amp_device(backend)
    learn, *_ = make(backend, cnn().to(DEV))
    seen = watch(learn.model)
    learn.to_bf16().fit(1, 1e-3)
    assert seen == {"conv": {torch.bfloat16}, "linear": {torch.bfloat16}}, f"FP16-4: forward dtypes {seen} on {DEV}"
    log = backend.train_log(learn)
    assert not any(log["scaler"]), "FP16-4: bfloat16 needs no gradient scaler"
    assert {p.dtype for p in learn.model.parameters()} == {torch.float32}, "FP16-4: parameters stay float32"


@pytest.mark.claim("FP16-4")
@pytest.mark.cuda
def test_bf16_on_a_gpu_without_bf16_raises(backend, monkeypatch):
    "On a CUDA GPU without bfloat16 support, to_bf16() training raises ValueError."
    learn, *_ = make(backend, cnn().to("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match="(?i)bfloat16"):
        learn.to_bf16().fit(1, 1e-3)


@pytest.mark.claim("FP16-5")
def test_fp16_without_cuda_trains_in_float32_with_warnings(backend):
    "Without CUDA, fit after to_fp16() completes in float32 and warns that autocast and GradScaler are disabled."
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    learn, *_ = make(backend, cnn())
    seen = watch(learn.model)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        learn.to_fp16().fit(1, 1e-3)
    assert seen == {"conv": {torch.float32}, "linear": {torch.float32}}, f"FP16-5: forward dtypes {seen} on the CPU"
    msgs = " | ".join(str(x.message) for x in w)
    assert "autocast" in msgs.lower() and "GradScaler" in msgs, f"FP16-5: warnings were: {msgs[:300]}"


# ---------------------------------------------------------------- results (T:L600-612)
@pytest.mark.claim("FP16-8")
@pytest.mark.cuda
def test_fp16_final_loss_no_worse_on_average(backend, record_property):
    """Over 5 seeds (spec.tiny.seeds(5): init, data, shuffling; the same seed for both arms), the mean final
    validation loss with to_fp16() is at most the float32 mean + one standard error of the float32 losses. Effect:
    (float32 mean + se - fp16 mean) / se, in standard errors; passes above 0. The claim is 'not worse' (FP16-8), so
    the effect of a correct fp16 is about 1 (equal means) and a broken one (e.g. no loss scaling) is far below 0."""
    res = {"fp32": [], "fp16": []}
    for seed in seeds(5):
        for mode in res:
            learn, *_ = make(backend, cnn(seed=seed).to("cuda"), seed=seed)
            if mode == "fp16":
                learn.to_fp16()
            learn.fit_one_cycle(3, 1e-2)
            res[mode].append(backend.valid_metrics(learn)[0])
    f32, f16 = np.array(res["fp32"]), np.array(res["fp16"])
    se = f32.std(ddof=1) / np.sqrt(len(f32))
    record(record_property, (f32.mean() + se - f16.mean()) / se, 0)
    assert f16.mean() <= f32.mean() + se, f"FP16-8: fp16 {f16.round(4)} vs fp32 {f32.round(4)} (se {se:.4f})"


# ---------------------------------------------------------------- IMPL contract
@pytest.mark.claim("IMPL-8")
def test_overflowing_step_is_skipped_and_scale_halved():
    "fp16: batch 3's scaled gradients overflow: that step is skipped (weights as after batch 2), the scale halves."
    ce, calls = nn.CrossEntropyLoss(), [0]

    def loss(o, y):
        calls[0] += 1
        return ce(o, y) * (1e38 if calls[0] == 4 else 1.0)  # finite in float32; times the scale 2**16 it is not

    learn, *_ = make(IMPL, cnn().to(DEV), loss_func=loss)
    learn.to_fp16().fit(1, 1e-3)
    log = IMPL.train_log(learn)
    assert log["scales"][:5] == [2.0**16] * 3 + [2.0**15] * 2, f"IMPL-8: loss scales {log['scales']} on {DEV}"
    p = log["params"]
    assert torch.equal(p[3], p[2]), "IMPL-8: the overflowing step changed the weights"
    assert not torch.equal(p[4], p[3]), "IMPL-8: training goes on after the skipped step"
    assert all(torch.isfinite(q).all() for q in p), "IMPL-8: weights stay finite"
    assert learn.amp.skipped == [False] * 3 + [True] + [False] * 4, f"IMPL-8: skipped steps {learn.amp.skipped}"


def _scales_by_rule(n, scale, count, every):
    "torch's GradScaler rule for n finite steps: the scale doubles once `every` finite steps in a row are counted."
    out = []
    for _ in range(n):
        count += 1
        scale, count = (scale * 2, 0) if count == every else (scale, count)
        out.append(scale)
    return out


@pytest.mark.claim("IMPL-3", "IMPL-35")
def test_failed_epoch_puts_the_loss_scale_and_its_growth_count_back():
    """fp16, GradScaler(init_scale=1, growth_interval=5: small scales, no gradient overflows): a NaN loss at the last
    batch of epoch 1 (the scale grew twice in it, then halved) stops the fit and puts the scaler back as at the start
    of epoch 1, its scale and its count of finite steps: the next fit takes the loss scales of a learner that trained
    epoch 0 alone."""
    ce, n = nn.CrossEntropyLoss(), [0]

    def loss(o, y):
        n[0] += o.requires_grad  # training batches
        return ce(o, y) * (math.nan if n[0] == 2 * N_TRAIN_BATCHES else 1.0)

    failed, *_ = make(IMPL, loss_func=loss)
    failed.to_fp16(init_scale=1.0, growth_interval=5)
    with pytest.raises(FloatingPointError, match=f"epoch 1, batch {N_TRAIN_BATCHES - 1}"):
        failed.fit(2, 1e-3)
    ref, *_ = make(IMPL)
    ref.to_fp16(init_scale=1.0, growth_interval=5).fit(1, 1e-3)
    want = _scales_by_rule(N_TRAIN_BATCHES, 1.0, 0, 5)
    assert ref.amp.scales == want, f"IMPL-35: the reference's scales {ref.amp.scales}, by torch's rule {want}"
    got = failed.amp.scaler.get_scale()
    assert got == want[-1], f"IMPL-35: loss scale {got} after the failed epoch, {want[-1]} at its start"
    for learn in (failed, ref):
        learn.fit(1, 1e-3)
    got = failed.amp.scales[-N_TRAIN_BATCHES:]
    assert got == ref.amp.scales[-N_TRAIN_BATCHES:] == _scales_by_rule(N_TRAIN_BATCHES, want[-1], 3, 5), (
        f"IMPL-35: next fit's loss scales {got} after the failed epoch, {ref.amp.scales[-N_TRAIN_BATCHES:]} without it")


@pytest.mark.claim("IMPL-39")
def test_impl_precision_defaults_keep_the_memory_format():
    """to_fp16(), to_bf16() and Amp(dtype, device_type) default to channels_last=False: the conv weights stay in
    the contiguous format (channels_last=True turns them channels-last); to_fp32() on a learner never switched is a
    no-op that returns it."""
    from impl import fp16

    assert fp16.Amp(torch.bfloat16, "cpu").channels_last is False, "Amp's default channels_last"
    for to in (fp16.to_fp16, fp16.to_bf16):
        for cl in (False, True):
            learn, *_ = make(IMPL, cnn())
            assert (to(learn, channels_last=True) if cl else to(learn)) is learn
            w = next(p for p in learn.model.parameters() if p.ndim == 4)
            assert learn.amp.channels_last is cl, f"{to.__name__}: amp.channels_last {learn.amp.channels_last}"
            assert w.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format), (
                f"{to.__name__}(channels_last={cl}): conv weight strides {w.stride()}")
    learn, *_ = make(IMPL, cnn())
    assert fp16.to_fp32(learn) is learn and learn.amp is None, "to_fp32 on a float32 learner"


@pytest.mark.claim("FP16-4")
def test_bf16_check_asks_about_the_learners_gpu(monkeypatch):
    """impl.fp16.to_bf16 raises ValueError('to_bf16: this GPU does not support bfloat16'), the learner left as it
    was, only for a learner on a CUDA device whose GPU lacks bfloat16; on a GPU with it, on the CPU, or with to_fp16
    it sets the learner as asked. Any machine: torch.cuda's answers and the learner's device are patched (these are
    decisions made before anything runs on a device)."""
    from impl import fp16

    cases = [(True, False, "cuda", fp16.to_bf16, True), (True, True, "cuda", fp16.to_bf16, False),
             (True, False, "cpu", fp16.to_bf16, False), (True, False, "cuda", fp16.to_fp16, False),
             (False, False, "cpu", fp16.to_bf16, False)]
    for avail, bf16, dev, to, raises in cases:
        monkeypatch.setattr(torch.cuda, "is_available", lambda avail=avail: avail)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, bf16=bf16, **k: bf16)
        learn, *_ = make(IMPL)
        learn.dls.device = torch.device(dev)
        what = f"{to.__name__} on {dev}, CUDA available {avail}, bfloat16 supported {bf16}"
        if raises:
            with pytest.raises(ValueError, match=r"^to_bf16: this GPU does not support bfloat16$"):
                to(learn)
            assert learn.amp is None, f"FP16-4: {what}: the learner changed before the error"
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GradScaler('cuda') on a machine without CUDA
                assert to(learn) is learn, f"FP16-4: {what}"
            want = torch.float16 if to is fp16.to_fp16 else torch.bfloat16
            assert (learn.amp.dtype, learn.amp.device_type) == (want, dev), f"FP16-4: {what}: {learn.amp.dtype}"


@pytest.mark.claim("IMPL-39")
def test_fp16_scaler_is_the_learners_and_takes_its_options():
    """to_fp16 on a CPU learner: learn.amp.scaler is torch's GradScaler for the CPU (after a fit it takes a CPU tensor
    as its new scale: GradScaler.update(new_scale)); with the GradScaler option enabled=False, a batch that raises
    propagates its own error."""
    learn, *_ = make(IMPL)
    learn.to_fp16().fit(1, 1e-3)
    learn.amp.scaler.update(torch.tensor(1024.0))
    assert learn.amp.scaler.get_scale() == 1024.0, f"IMPL-39: scale {learn.amp.scaler.get_scale()} after update"

    def loss(o, y):
        raise RuntimeError("boom")

    learn, *_ = make(IMPL, loss_func=loss)
    learn.to_fp16(enabled=False)
    with pytest.raises(RuntimeError, match="^boom"):
        learn.fit(1, 1e-3)


@pytest.mark.claim("IMPL-39")
def test_fp16_with_the_scaler_disabled_trains():
    "to_fp16(enabled=False) (a GradScaler option): the fit trains unscaled, every step taken, no scale recorded."
    learn, *_ = make(IMPL)
    w = params(learn.model)
    learn.to_fp16(enabled=False).fit(1, 1e-3)
    losses = IMPL.train_log(learn)["losses"]
    assert len(losses) == N_TRAIN_BATCHES and np.isfinite(losses).all(), f"IMPL-39: losses {losses}"
    assert not any(torch.equal(a, b) for a, b in zip(w, params(learn.model))), "IMPL-39: a parameter did not train"
    assert learn.amp.scales == [] and learn.amp.skipped == [], f"IMPL-39: scales {learn.amp.scales} with no scaler"
