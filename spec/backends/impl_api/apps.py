"""The applications on impl: vision_learner (ResNet body + fastai head), collaborative filtering, interpretation.

Pretrained bodies are state dicts (fixtures.pretrained.body_state() or torchvision's): `pretrained=state`.
"""

import numpy as _np
import torch as _torch

import impl.collab as _collab
import impl.interpret as _interp
import impl.vision as _vision

resnet18, resnet34, resnet50, resnet101, resnet152 = (
    _vision.resnet18,
    _vision.resnet34,
    _vision.resnet50,
    _vision.resnet101,
    _vision.resnet152,
)


def tiny_resnet(weights=None, num_classes=1000):
    "impl.vision.tiny_resnet at fixtures.pretrained's widths; registered in model_meta as a ResNet, as fastai's is."
    return _vision.tiny_resnet(num_classes=num_classes, weights=weights)


_vision.model_meta[tiny_resnet] = dict(_vision.model_meta[_vision.tiny_resnet])
create_head, create_body, AdaptiveConcatPool2d = _vision.create_head, _vision.create_body, _vision.AdaptiveConcatPool2d
DotProduct, DotProductBias, EmbeddingDotBias = _collab.DotProduct, _collab.DotProductBias, _collab.EmbeddingDotBias


def vision_learner(dls, arch, n_out=None, pretrained=False, y_range=None, n_in=3, loss_func=None, metrics=(), **kw):
    "impl.vision.vision_learner; `pretrained`: False or a body state dict (frozen then, FT-8)."
    return _vision.vision_learner(
        dls,
        arch,
        n_out=n_out,
        pretrained=pretrained,
        y_range=y_range,
        n_in=n_in,
        loss_func=loss_func,
        metrics=list(metrics),
        **kw,
    )


def arch_meta(arch):
    "{'cut', 'n_groups', 'stats'} the library uses for `arch` (its default for an arch it does not know)."
    m = _vision.model_meta.get(arch, _vision._default_meta)
    return {"cut": m["cut"], "n_groups": 3 if m["split"] is _vision._resnet_split else 2, "stats": m["stats"]}


def app_groups(learn):
    "The parameter groups, as lists of parameters."
    return learn.groups


def batch_normalizers(dls):
    "(mean, std) of each Normalize in the DataLoaders' per-batch transforms (REG-8)."
    return [
        (list(f.mean.flatten().tolist()), list(f.std.flatten().tolist()))
        for f in getattr(dls.train, "after_batch", [])
        if isinstance(f, _vision.Normalize)
    ]


def collab_learner(dls, n_factors=50, y_range=None, loss_func=None, **kw):
    return _collab.collab_learner(dls, n_factors=n_factors, y_range=y_range, loss_func=loss_func, **kw)


def collab_embeddings(learn):
    "(user factors, item factors, user bias, item bias) of a collab_learner's model, as tensors."
    m = learn.model
    return m.u_weight.weight, m.i_weight.weight, m.u_bias.weight[:, 0], m.i_bias.weight[:, 0]


def valid_preds(learn, act=None):
    "(predictions, targets) on the validation set, each item once; `act` defaults to the loss's activation."
    p, t = learn.get_preds(act=act)
    return p.detach().float(), t.detach()


def set_metrics(learn, metrics):
    learn.metrics = list(metrics)


def epoch_values(learn):
    "Per epoch of the last fit: [train_loss, valid_loss, *metrics] as an array."
    return _np.array(learn.recorder.values, dtype=float)


def interpretation(learn):
    "ClassificationInterpretation.from_learner(learn): the validation set, each item once."
    return _interp.ClassificationInterpretation.from_learner(learn)


class _Lookup(_torch.nn.Module):
    "A model whose logits for item k are 10 * one_hot(predicted[k]): its predictions are a fixed table."

    def __init__(self, predicted, n):
        super().__init__()
        self.register_buffer("table", 10.0 * _torch.eye(n)[_torch.as_tensor(predicted)])
        self.dummy = _torch.nn.Parameter(_torch.zeros(1))

    def forward(self, i):
        return self.table[i] + 0 * self.dummy


def lookup_learner(actual, predicted, vocab, bs=4):
    "A classification learner whose validation items have classes `actual` and whose model predicts `predicted`."
    from impl.data import DataLoader, DataLoaders
    from impl.learner import Learner
    from impl.losses import CrossEntropyLossFlat

    items = list(zip(range(len(actual)), [int(a) for a in actual]))
    dl = DataLoader(items, bs=bs)
    dls = DataLoaders(DataLoader(items, bs=bs, shuffle=True, drop_last=True), dl, vocab=list(vocab))
    return Learner(dls, _Lookup(predicted, len(vocab)), CrossEntropyLossFlat())


def app_learner(dls, model, loss_func, **kw):
    "A plain Learner (no per-batch log): Learner(dls, model, loss_func=...)."
    from impl.learner import Learner

    return Learner(dls, model, loss_func, **kw)
