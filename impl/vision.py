"""Transfer learning for vision (T:L286-357, T:L1462-1476): a torchvision ResNet body cut before its pooling,
fastai's head on top, three parameter groups, first-conv adaptation for `n_in != 3`, a pretrained body.

`vision_learner(dls, resnet34)` builds `Sequential(body, head)` exactly as fastai 2.8.12 does:
body = `resnet.children()[:-2]` (avgpool and fc thrown away, T:L286), head = `create_head(2*nf, n_out)`, two new
linear layers initialised with kaiming_normal_. A pretrained body is a torchvision ResNet state dict (the `fc.*`
keys may be missing) or a path to one; then the learner starts frozen (T:L354).
"""

import math
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from .layers import SigmoidRange
from .learner import NORM, Learner

imagenet_stats = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
resnet18, resnet34, resnet50 = torchvision.models.resnet18, torchvision.models.resnet34, torchvision.models.resnet50
resnet101, resnet152 = torchvision.models.resnet101, torchvision.models.resnet152


def tiny_resnet(widths=(16, 32, 64, 128), layers=(1, 1, 1, 1), num_classes=1000, weights=None):
    "A torchvision `ResNet` (children conv1 bn1 relu maxpool layer1-4 avgpool fc) with narrow widths: fast on CPU."
    if len(widths) != 4 or len(layers) != 4:
        raise ValueError(f"widths and layers need 4 values, got {widths!r}, {layers!r}")
    m = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
    m.inplanes = widths[0]
    m.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(widths[0])
    for i, (w, n) in enumerate(zip(widths, layers)):
        setattr(m, f"layer{i + 1}", m._make_layer(BasicBlock, w, n, stride=1 if i == 0 else 2))
    m.fc = nn.Linear(widths[-1], num_classes)
    for x in m.modules():  # torchvision's ResNet init
        if isinstance(x, nn.Conv2d):
            nn.init.kaiming_normal_(x.weight, mode="fan_out", nonlinearity="relu")
    if isinstance(weights, str) and weights == "DEFAULT":
        raise ValueError("tiny_resnet has no ImageNet weights; pass a state dict")
    if weights is not None:
        load_body(m, weights)
    return m


# ------------------------------------------------------------ meta: where to cut, how to split (ARCH-3, FT-9)
def _resnet_split(m):
    return [params(m[0][:6]), params(m[0][6:]), params(m[1:])]


def _default_split(m):
    return [params(m[0]), params(m[1:])]


_resnet_meta = {"cut": -2, "split": _resnet_split, "stats": imagenet_stats}
model_meta = {a: dict(_resnet_meta) for a in (resnet18, resnet34, resnet50, resnet101, resnet152, tiny_resnet)}
_default_meta = {"cut": None, "split": _default_split, "stats": None}


def params(m):
    return list(m.parameters())


def _pre(pretrained):
    return pretrained is not None and pretrained is not False


def _has_pool(m):
    return type(m).__name__.endswith(("Pool1d", "Pool2d", "Pool3d")) or any(_has_pool(c) for c in m.children())


# ------------------------------------------------------------ inputs as the pretrained body saw them (REG-8)
class Normalize:
    "A per-batch transform: images (4-D float tensors) of a batch -> (x - mean) / std per channel; `decode` undoes it."

    def __init__(self, mean, std):
        self.mean, self.std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in (mean, std))

    @classmethod
    def from_stats(cls, mean, std):
        return cls(mean, std)

    def _is_img(self, o):
        return isinstance(o, torch.Tensor) and o.ndim == 4 and o.is_floating_point()

    def __call__(self, b):
        return tuple((o - self.mean.to(o)) / self.std.to(o) if self._is_img(o) else o for o in b)

    def decode(self, b):
        return tuple(o * self.std.to(o) + self.mean.to(o) if self._is_img(o) else o for o in b)

    def __repr__(self):
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


def add_norm(dls, stats, pretrained, n_in=3):
    "As fastai: a pretrained body gets its stats' Normalize appended to each loader's after_batch, unless one is there."
    if not _pre(pretrained) or stats is None or n_in != len(stats[0]):
        return
    for dl in getattr(dls, "loaders", [dls.train, dls.valid]):
        fs = getattr(dl, "after_batch", None)
        if fs is not None and not any(isinstance(f, Normalize) for f in fs):
            fs.append(Normalize.from_stats(*stats))


# ------------------------------------------------------------ the head (FT-1)
class AdaptiveConcatPool2d(nn.Module):
    "Max pooling and average pooling side by side: 2*nf features (fastai's order: max first)."

    def __init__(self, size=None):
        super().__init__()
        self.size = size or 1
        self.ap, self.mp = nn.AdaptiveAvgPool2d(self.size), nn.AdaptiveMaxPool2d(self.size)

    def forward(self, x):
        return torch.cat([self.mp(x), self.ap(x)], 1)


def batchnorm1d(n):
    "fastai's BatchNorm: weight 1, bias 1e-3."
    bn = nn.BatchNorm1d(n)
    nn.init.constant_(bn.bias, 1e-3)
    return bn


def lin_bn_drop(ni, no, bn=True, p=0.0, act=None, lin_first=False):
    "fastai's LinBnDrop as a list: [BN, dropout p, linear (with bias when no BN), act]; lin_first: linear, act first."
    norm = [batchnorm1d(no if lin_first else ni)] if bn else []
    drop = [nn.Dropout(p)] if p != 0 else []
    lin = [nn.Linear(ni, no, bias=not bn)] + ([act] if act is not None else [])
    return lin + norm + drop if lin_first else norm + drop + lin


def create_head(
    nf,
    n_out,
    lin_ftrs=None,
    ps=0.5,
    pool=True,
    concat_pool=True,
    first_bn=True,
    bn_final=False,
    lin_first=False,
    y_range=None,
):
    """fastai's head: [concat pool (2nf features) or average pool, flatten], then per linear layer of nf -> *lin_ftrs
    (default [512]) -> n_out: [BN, dropout, linear, ReLU], the last without ReLU; dropout ps (one value: ps/2 for
    all but the last) (FT-1). first_bn=False drops the first BN; lin_first puts each linear before its BN and dropout
    (then a dropout comes first and a plain linear last); bn_final appends BN(n_out); y_range a SigmoidRange."""
    if n_out is None or n_out < 1:
        raise ValueError(f"n_out must be a positive int, got {n_out!r}")
    nf = 2 * nf if pool and concat_pool else nf
    ftrs = [nf, *(lin_ftrs if lin_ftrs is not None else [512]), n_out]
    ps = list(ps) if isinstance(ps, (list, tuple)) else [ps]
    ps = [ps[0] / 2] * (len(ftrs) - 2) + ps if len(ps) == 1 else ps
    acts = [nn.ReLU(inplace=True)] * (len(ftrs) - 2) + [None]
    layers = [AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1), nn.Flatten()] if pool else []
    if lin_first:
        layers.append(nn.Dropout(ps.pop(0)))
    for ni, no, bn, p, act in zip(ftrs[:-1], ftrs[1:], [first_bn] + [True] * len(ftrs), ps, acts):
        layers += lin_bn_drop(ni, no, bn=bn, p=p, act=act, lin_first=lin_first)
    if lin_first:
        layers.append(nn.Linear(ftrs[-2], n_out))
    if bn_final:
        layers.append(nn.BatchNorm1d(ftrs[-1], momentum=0.01))
    if y_range is not None:
        layers.append(SigmoidRange(*y_range))  # T:L1452
    return nn.Sequential(*layers)


def init_head(head, init=nn.init.kaiming_normal_):
    "fastai's apply_init: every non-norm layer with a weight gets `init`, its bias 0 (the head's new random weights)."
    for m in head.modules():
        if isinstance(m, NORM) or not any(True for _ in m.parameters(recurse=False)):
            continue
        if getattr(m, "weight", None) is not None:
            init(m.weight)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    return head


# ------------------------------------------------------------ the body (REG-15)
def load_body(model, state):
    "Load a body state dict (or a path to one) into a freshly built arch; only `fc.*` may be missing."
    if isinstance(state, (str, Path)):
        state = torch.load(state, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"pretrained must be a state dict or a path, got {type(state).__name__}")
    own = model.state_dict()
    if bad := [k for k, v in state.items() if k in own and v.shape != own[k].shape and not k.startswith("fc.")]:
        k = bad[0]
        raise ValueError(
            f"pretrained state dict does not fit the arch: {k} is {tuple(state[k].shape)}, the arch's "
            f"{tuple(own[k].shape)}"
        )
    state = {k: v for k, v in state.items() if k not in own or v.shape == own[k].shape}  # a head of another size
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("fc.")] + [k for k in unexpected if not k.startswith("fc.")]
    if bad:
        raise ValueError(f"pretrained state dict does not fit the arch: missing/unexpected {bad[:5]}")
    return model


def adapt_first_conv(conv, n_in, pretrained):
    "A Conv2d(n_in, ...) like `conv`; from pretrained RGB kernels: n_in=1 their sum, 2 the first two x1.5, >3 RGB, 0s."
    if not isinstance(n_in, int) or n_in < 1:
        raise ValueError(f"n_in must be an int >= 1, got {n_in!r}")
    if n_in == 3:
        return conv
    if conv.in_channels != 3:
        raise ValueError(f"first conv has {conv.in_channels} input channels, expected 3")
    new = nn.Conv2d(
        n_in,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        conv.padding_mode,
    )
    if pretrained:
        w = conv.weight.data
        with torch.no_grad():
            if n_in == 1:
                new.weight.copy_(w.sum(1, keepdim=True))
            elif n_in == 2:
                new.weight.copy_(w[:, :2] * 1.5)
            else:
                new.weight[:, :3], new.weight[:, 3:] = w, 0
    return new


def _first_conv(m):
    "(parent, attribute name) of the module holding the first parameter, as fastai's _get_first_layer."
    path = next(m.named_parameters())[0].split(".")[:-1]
    parent = m
    for n in path[:-1]:
        parent = getattr(parent, n)
    return parent, path[-1]


def create_body(model, n_in=3, pretrained=True, cut=None):
    """Adapt the first conv to `n_in` channels (from its weights when pretrained), then cut: keep the children before
    the int `cut` (default: before the last child holding a pooling layer), or return `cut(model)` for a callable."""
    parent, name = _first_conv(model)
    conv = getattr(parent, name)
    if n_in != 3 and not isinstance(conv, nn.Conv2d):
        raise TypeError(f"n_in={n_in} needs a Conv2d first layer, got {type(conv).__name__}")
    setattr(parent, name, adapt_first_conv(conv, n_in, pretrained))
    if callable(cut):
        return cut(model)
    ch = list(model.children())
    if cut is None:
        cut = max(i for i, c in enumerate(ch) if _has_pool(c))
    if not isinstance(cut, int):
        raise TypeError(f"cut must be an int or a function, got {cut!r}")
    return nn.Sequential(*ch[:cut])


def n_features(body, n_in=3, size=64):
    "Channels the body outputs (traced with a dummy batch)."
    was = body.training
    body.eval()
    with torch.no_grad():
        n = body(torch.zeros(2, n_in, size, size)).shape[1]
    body.train(was)
    return n


def create_vision_model(arch, n_out, pretrained=False, n_in=3, y_range=None, cut=None, **head_kw):
    """Sequential(body, head); `pretrained`: False, True (ImageNet) or a body state dict / path (then n_in adapts);
    head_kw: create_head's lin_ftrs, ps, pool, concat_pool, first_bn, bn_final, lin_first."""
    meta = model_meta.get(arch, _default_meta)
    model = arch(weights="DEFAULT") if pretrained is True else arch()  # True: torchvision's ImageNet weights
    if _pre(pretrained) and pretrained is not True:
        load_body(model, pretrained)
    body = create_body(model, n_in, _pre(pretrained), meta["cut"] if cut is None else cut)
    if bad := set(head_kw) - {"lin_ftrs", "ps", "pool", "concat_pool", "first_bn", "bn_final", "lin_first"}:
        raise TypeError(f"unexpected keyword argument(s) {sorted(bad)}")
    return nn.Sequential(body, init_head(create_head(n_features(body, n_in), n_out, y_range=y_range, **head_kw)))


def vision_learner(
    dls,
    arch,
    n_out=None,
    pretrained=False,
    y_range=None,
    n_in=3,
    loss_func=None,
    metrics=(),
    normalize=True,
    splitter=None,
    cut=None,
    lin_ftrs=None,
    ps=0.5,
    concat_pool=True,
    first_bn=True,
    bn_final=False,
    lin_first=False,
    **learner_kw,
):
    """A Learner for `arch` on `dls`: n_out defaults to dls.c, the loss to dls.loss_func; a pretrained body freezes
    the model (FT-8) and, with `normalize`, normalises the batches with the arch's stats (REG-8). lin_ftrs, ps,
    concat_pool, first_bn, bn_final and lin_first shape the head (create_head)."""
    n_out = getattr(dls, "c", None) if n_out is None else n_out
    if not isinstance(n_out, int) or n_out < 1:
        raise ValueError(f"n_out could not be inferred from dls.c; pass n_out (got {n_out!r})")
    loss_func = getattr(dls, "loss_func", None) if loss_func is None else loss_func
    if loss_func is None:
        raise ValueError("loss_func is None and dls has no loss_func; pass loss_func")
    if y_range is not None and (len(y_range) != 2 or not all(map(math.isfinite, y_range))):
        raise ValueError(f"y_range must be (lo, hi), got {y_range!r}")
    meta = model_meta.get(arch, _default_meta)
    if normalize:
        add_norm(dls, meta["stats"], pretrained, n_in)
    head_kw = dict(lin_ftrs=lin_ftrs, ps=ps, concat_pool=concat_pool, first_bn=first_bn, bn_final=bn_final)
    model = create_vision_model(arch, n_out, pretrained, n_in, y_range, cut, lin_first=lin_first, **head_kw)
    split = splitter or meta["split"]
    learn = Learner(dls, model, loss_func, splitter=split, metrics=metrics, **learner_kw)
    if _pre(pretrained):
        learn.freeze()  # T:L354 "by default freeze the model for us"
    return learn
