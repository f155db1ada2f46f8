"""The applications on fastai: vision_learner / create_head, collab_learner / EmbeddingDotBias and the book's
DotProduct / DotProductBias (written on fastai's Module, Embedding and sigmoid_range), ClassificationInterpretation.

`tiny_resnet` is fixtures.pretrained's narrow torchvision ResNet, registered in fastai's `model_meta` as a ResNet
(cut -2, three groups, ImageNet stats) the way a user registers a custom arch; `pretrained=state` passes a body
state dict as fastai's `weights=`. Learners are quiet (no progress bar, no epoch table) and write under a temp path.
"""

import tempfile as _tempfile

import numpy as _np
import torch as _torch
from fastai import collab as _collab
from fastai import interpret as _interp
from fastai.callback.progress import ProgressCallback as _Progress
from fastai.data.core import Datasets as _Datasets
from fastai.data.transforms import Categorize as _Categorize
from fastai.data.transforms import Normalize as _Normalize
from fastai.layers import AdaptiveConcatPool2d as _AdaptiveConcatPool2d
from fastai.layers import Embedding as _Embedding
from fastai.layers import sigmoid_range as _sigmoid_range
from fastai.learner import Learner as _Learner
from fastai.losses import CrossEntropyLossFlat as _CE
from fastai.torch_core import Module as _Module
from fastai.vision import learner as _fv
from fastai.vision import models as _models

from fixtures import pretrained as _pre

resnet18, resnet34, resnet50, resnet101, resnet152 = (
    _models.resnet18,
    _models.resnet34,
    _models.resnet50,
    _models.resnet101,
    _models.resnet152,
)
create_head, create_body, AdaptiveConcatPool2d = _fv.create_head, _fv.create_body, _AdaptiveConcatPool2d
EmbeddingDotBias = _collab.EmbeddingDotBias


def tiny_resnet(weights=None, num_classes=1000):
    "fixtures.pretrained.build(): a narrow torchvision ResNet; `weights` = a body state dict (fc.* may be missing)."
    if isinstance(weights, str):
        raise ValueError(f"tiny_resnet has no {weights!r} weights; pass a state dict")
    m = _pre.build(num_classes)
    if weights is not None:
        missing, unexpected = m.load_state_dict(weights, strict=False)
        if [k for k in missing + unexpected if not k.startswith("fc.")]:
            raise ValueError("state dict does not fit tiny_resnet")
    return m


_fv.model_meta[tiny_resnet] = {**_fv._resnet_meta}


def _quiet(learn):
    learn.remove_cb(_Progress)
    learn.logger = lambda *a, **k: None
    return learn


def vision_learner(dls, arch, n_out=None, pretrained=False, y_range=None, n_in=3, loss_func=None, metrics=(), **kw):
    "fastai's vision_learner; `pretrained`: False, True (ImageNet) or a body state dict (given as `weights=`)."
    weights = None
    if pretrained is not None and not isinstance(pretrained, bool):
        weights, pretrained = pretrained, True
    kw.setdefault("path", _tempfile.mkdtemp(prefix="l6spec-"))
    return _quiet(
        _fv.vision_learner(
            dls,
            arch,
            n_out=n_out,
            pretrained=bool(pretrained),
            weights=weights,
            y_range=y_range,
            n_in=n_in,
            loss_func=loss_func,
            metrics=list(metrics),
            **kw,
        )
    )


def cnn_learner(dls, arch, pretrained=False, **kw):
    "The lesson's name (fastai < 2.6); now an alias of vision_learner that warns."
    kw.setdefault("path", _tempfile.mkdtemp(prefix="l6spec-"))
    return _quiet(_fv.cnn_learner(dls, arch, pretrained=pretrained, **kw))


def arch_meta(arch):
    "{'cut', 'n_groups', 'stats'} fastai's model_meta gives `arch` (its _default_meta for an arch it does not know)."
    m = _fv.model_meta.get(arch, _fv._default_meta)
    return {"cut": m["cut"], "n_groups": 3 if m["split"] is _fv._resnet_split else 2, "stats": m.get("stats")}


def app_groups(learn):
    "The parameter groups, as lists of parameters."
    return [list(g) for g in learn.splitter(learn.model)]


def batch_normalizers(dls):
    "(mean, std) of each Normalize in the DataLoaders' after_batch (REG-8)."
    return [
        (f.mean.flatten().tolist(), f.std.flatten().tolist())
        for f in dls.train.after_batch.fs
        if isinstance(f, _Normalize)
    ]


# ---------------------------------------------------------------- collaborative filtering (FB08)
class DotProduct(_Module):
    "FB08's DotProduct (y_range optional): (bs,)."

    def __init__(self, n_users, n_movies, n_factors, y_range=None):
        self.user_factors, self.movie_factors = _Embedding(n_users, n_factors), _Embedding(n_movies, n_factors)
        self.y_range = y_range

    def forward(self, x):
        res = (self.user_factors(x[:, 0]) * self.movie_factors(x[:, 1])).sum(dim=1)
        return res if self.y_range is None else _sigmoid_range(res, *self.y_range)


class DotProductBias(_Module):
    "FB08's DotProductBias: (bs, 1)."

    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        self.user_factors, self.movie_factors = _Embedding(n_users, n_factors), _Embedding(n_movies, n_factors)
        self.user_bias, self.movie_bias = _Embedding(n_users, 1), _Embedding(n_movies, 1)
        self.y_range = y_range

    def forward(self, x):
        users, movies = self.user_factors(x[:, 0]), self.movie_factors(x[:, 1])
        res = (users * movies).sum(dim=1, keepdim=True)
        res += self.user_bias(x[:, 0]) + self.movie_bias(x[:, 1])
        return res if self.y_range is None else _sigmoid_range(res, *self.y_range)


def collab_learner(dls, n_factors=50, y_range=None, loss_func=None, **kw):
    kw.setdefault("path", _tempfile.mkdtemp(prefix="l6spec-"))
    return _quiet(_collab.collab_learner(dls, n_factors=n_factors, y_range=y_range, loss_func=loss_func, **kw))


def collab_embeddings(learn):
    "(user factors, item factors, user bias, item bias) of a collab_learner's model."
    m = learn.model
    return m.u_weight.weight, m.i_weight.weight, m.u_bias.weight[:, 0], m.i_bias.weight[:, 0]


# ---------------------------------------------------------------- predictions, metrics, per-epoch values
def valid_preds(learn, act=None):
    "(predictions, targets) on the validation set (learn.get_preds); `act` defaults to the loss's activation."
    dl = None if hasattr(learn.dls.valid, "new") else learn.dls.valid  # plain torch loaders: as they are
    p, t = learn.get_preds(dl=dl, act=act)
    return _torch.as_tensor(p).detach().float().as_subclass(_torch.Tensor), _torch.as_tensor(t).as_subclass(
        _torch.Tensor
    )


def set_metrics(learn, metrics):
    learn.metrics = list(metrics)


def epoch_values(learn):
    "Per epoch of the last fit: [train_loss, valid_loss, *metrics] as an array."
    return _np.array([[float(v) for v in row] for row in learn.recorder.values], dtype=float)


# ---------------------------------------------------------------- interpretation (FB05)
def interpretation(learn):
    return _interp.ClassificationInterpretation.from_learner(learn)


class _Lookup(_Module):
    "Logits for item k are 10 * one_hot(predicted[k])."

    def __init__(self, predicted, n):
        self.register_buffer("table", 10.0 * _torch.eye(n)[_torch.as_tensor(predicted)])
        self.dummy = _torch.nn.Parameter(_torch.zeros(1))

    def forward(self, i):
        return self.table[i.long()] + 0 * self.dummy


def _as_tensor(i):
    return _torch.tensor(i)


def lookup_learner(actual, predicted, vocab, bs=4):
    "A Learner whose validation items have classes `actual` and whose model predicts `predicted`."
    actual, n = [int(a) for a in actual], len(actual)
    idx = list(range(n))

    def label(i):
        return vocab[actual[i]]

    dsets = _Datasets(idx, [[_as_tensor], [label, _Categorize(vocab, sort=False)]], splits=(idx, idx))
    dls = dsets.dataloaders(bs=bs, num_workers=0)  # no worker processes (forked per pass) for 4 items
    return _quiet(
        _Learner(dls, _Lookup(predicted, len(vocab)), loss_func=_CE(), path=_tempfile.mkdtemp(prefix="l6spec-"))
    )


def app_learner(dls, model, loss_func, **kw):
    "A plain, quiet fastai Learner(dls, model, loss_func=...) (no per-batch log)."
    kw.setdefault("path", _tempfile.mkdtemp(prefix="l6spec-"))
    return _quiet(_Learner(dls, model, loss_func=loss_func, **kw))
