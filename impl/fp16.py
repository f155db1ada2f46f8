"""Mixed precision (T:L520-531) with torch.autocast, and a GradScaler for fp16 only.

Parameters stay float32 (they are the master weights); inside the forward pass autocast runs matmuls and
convolutions in float16/bfloat16; the loss is computed in float32. With fp16 the loss is scaled before
backward; a step whose gradients overflow (inf/NaN) is skipped and the scale halved (`learn.amp.scales`,
`learn.amp.skipped`). bfloat16 has float32's range, so it needs no scaler.
"""

import torch


class Amp:
    "What the Learner needs for one batch: an autocast context and, for fp16, a scaled backward + step."

    def __init__(self, dtype, device_type, channels_last=False, **scaler_kw):
        self.dtype, self.device_type, self.channels_last = dtype, device_type, channels_last
        self.scaler = torch.amp.GradScaler(device_type, **scaler_kw) if dtype == torch.float16 else None
        self._init = self.scaler.get_scale() if self.scaler else None  # init_scale: a host number before step 1
        self._scales = []  # the scale after each fp16 step, kept on the device: reading it would sync every step

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def scales(self) -> list[float]:
        "The scale after each fp16 step (read on demand: one device sync here, none per step)."
        return torch.stack(self._scales).tolist() if self._scales else []

    @property
    def skipped(self) -> list[bool]:
        "Whether each fp16 step was skipped: the scale only drops (backoff) after an inf/NaN gradient."
        s = self.scales
        return [a < b for a, b in zip(s, [self._init] + s)]

    def backward(self, loss):
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, opt):
        "opt.step(); with fp16 through the scaler, which skips it when a gradient is inf/NaN (the weights are kept)."
        if self.scaler is None:
            opt.step()
            return
        self.scaler.step(opt)  # skips opt.step() when a gradient is inf/NaN
        self.scaler.update()  # ... and then halves the scale (backoff_factor 0.5)
        if self.scaler.is_enabled():  # GradScaler(enabled=False) has no scale
            self._scales.append(self.scaler._get_scale_async().detach().clone())

    def abort(self):
        "After a step interrupted between backward and update: forget the half-done unscale, so the next step runs."
        if self.scaler is not None:
            getattr(self.scaler, "_per_optimizer_states", {}).clear()


def _set(learn, dtype, channels_last, **scaler_kw):
    if (
        dtype == torch.bfloat16
        and torch.cuda.is_available()
        and learn.device.type == "cuda"
        and not torch.cuda.is_bf16_supported()
    ):
        raise ValueError("to_bf16: this GPU does not support bfloat16")
    if channels_last:
        learn.model.to(memory_format=torch.channels_last)
    learn.amp = Amp(dtype, torch.device(learn.device).type, channels_last, **scaler_kw)
    return learn


def to_fp16(learn, channels_last=False, **scaler_kw):
    """float16 autocast + GradScaler(**scaler_kw) (torch's defaults: init_scale 2**16, backoff 0.5, growth 2 every
    2000 steps). Returns learn (chainable, as fastai's)."""
    return _set(learn, torch.float16, channels_last, **scaler_kw)


def to_bf16(learn, channels_last=False):
    "bfloat16 autocast, no scaler. Returns learn."
    return _set(learn, torch.bfloat16, channels_last)


def to_fp32(learn):
    "Back to plain float32 training. Returns learn."
    if learn.amp is not None and learn.amp.channels_last:
        learn.model.to(memory_format=torch.contiguous_format)
    learn.amp = None
    return learn
