"""The spec's per-batch log, shared by both adapters (impl_api/training.py, fastai_api/training.py).

A backend's recorder keeps too little for the claims (fastai's only the last group's LR, LR-7) and each fit resets
it, so `learner(...)` on each backend adds a `BatchLog`: for every training batch of every fit (and LR-finder sweep)
since the learner was made, each group's LR and momentum, the raw loss, the parameters after the step and, with
fp16, the loss scale; and the number of epochs. Each adapter supplies only `read(learn)`: how to get its learner's
(lrs, moms, loss, GradScaler or None). This module is a helper beside the adapter packages, not part of either
backend's API.
"""

import numpy as np
import torch


class BatchLog:
    "The log; `after_batch(learn)` after each training batch and `after_epoch(learn)` after each epoch."

    def __init__(self, read):
        self.read = read
        self.lrs, self.moms, self.losses, self.params, self.scales, self.scaler = [], [], [], [], [], []
        self.epochs, self.scaler_cfg = 0, None

    def after_batch(self, learn):
        lrs, moms, loss, sc = self.read(learn)
        self.lrs.append(lrs)
        self.moms.append(moms)
        self.losses.append(loss)
        self.params.append(torch.cat([p.detach().flatten() for p in learn.model.parameters()]).cpu().clone())
        self.scaler.append(sc is not None and sc.is_enabled())
        if self.scaler[-1]:
            self.scales.append(sc.get_scale())
            self.scaler_cfg = (sc.get_growth_factor(), sc.get_backoff_factor(), sc.get_growth_interval())

    def after_epoch(self, learn):
        self.epochs += 1

    def as_dict(self):
        """`lrs`, `moms` (arrays: batches x groups), raw `losses`, flat `params` after each step, `scaler` (a
        GradScaler was enabled), `scales` (after each scaled step), `scaler_cfg` (growth factor, backoff factor,
        growth interval), `epochs`."""
        return dict(lrs=np.array(self.lrs), moms=np.array(self.moms), losses=np.array(self.losses),
                    params=self.params, scaler=list(self.scaler), scales=list(self.scales),
                    scaler_cfg=self.scaler_cfg, epochs=self.epochs)
