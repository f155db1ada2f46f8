"""What a Datasets pipeline or its item transforms apply to an item: column readers and labellers, categories
(CategoryMap, Categorize, MultiCategorize), images and points (TensorPoint, image2tensor, Resize, RandomResizedCrop,
Flip, PointScaler, ToTensor).

Item transforms (`ItemTfm`) see the whole item tuple and whether it is a training item, so a crop or a flip moves
the image and its point together.
"""

import functools
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

# fmt: off
__all__ = ["ColReader", "RegexLabeller", "using_attr", "CategoryMap", "Categorize", "MultiCategorize",
           "one_hot_decode", "TensorPoint", "ItemTfm", "Resize", "RandomResizedCrop", "Flip", "ToTensor",
           "PointScaler", "image2tensor", "scale_points", "unscale_points", "flip_lr"]
# fmt: on


class ColReader:
    """Column `cols` of a row (a list of columns: a list of values), as fastai's ColReader: split on `label_delim`
    ('' gives no label, []); else with `pref` and `suff` around it: a Path under `pref` when `pref` is a Path (a
    folder), else the string pref + value + suff."""

    def __init__(self, cols, pref="", suff="", label_delim=None):
        self.cols, self.pref, self.suff, self.label_delim = cols, pref, suff, label_delim

    def __call__(self, r):
        return [self._one(r, c) for c in self.cols] if isinstance(self.cols, list) else self._one(r, self.cols)

    def _one(self, r, c):
        v = r[c]
        if self.label_delim is not None:
            return v.split(self.label_delim) if len(v) else []
        if isinstance(self.pref, Path):
            return self.pref / f"{v}{self.suff}"
        return f"{self.pref}{v}{self.suff}" if self.pref or self.suff else v


class RegexLabeller:
    "The first group of `pat` in str(o) (searched, or matched from the start with match=True); no match is an error."

    def __init__(self, pat, match=False):
        self.pat, self.match = re.compile(pat), match

    def __call__(self, o):
        m = (self.pat.match if self.match else self.pat.search)(str(o).replace(os.sep, "/"))
        if not m:
            raise ValueError(f"{o}: does not match {self.pat.pattern!r}, so it has no label")
        return m.group(1)


def _using_attr(f, attr, o):
    return f(getattr(o, attr))


def using_attr(f, attr):
    "f of o.attr, picklable: using_attr(RegexLabeller(r'(.+)_\\d+.jpg$'), 'name') labels pets by file name (FB05)."
    return functools.partial(_using_attr, f, attr)


# ---------------------------------------------------------------- categories
class CategoryMap(list):
    """A vocab, as fastai's CategoryMap: a pandas categorical gives its categories in their order (unused ones too);
    other labels give their distinct non-NaN values, sorted (first-seen order with sort=False); add_na puts '#na#'
    first. `o2i` maps a label to its index."""

    def __init__(self, col, sort=True, add_na=False):
        cats = col if isinstance(col, pd.Categorical) else getattr(col, "cat", None)  # a Series of dtype category
        cats = None if cats is None else cats.categories
        items = list(cats) if cats is not None else list(dict.fromkeys(o for o in col if o == o))  # o == o: not NaN
        if cats is None and sort:
            items = sorted(items)
        super().__init__(["#na#", *items] if add_na else items)
        self.o2i = {v: i for i, v in enumerate(self)}


class Categorize:
    """Label -> int64 index into CategoryMap(vocab, sort, add_na); decode back. An unknown label is an error, or
    '#na#' (index 0) with add_na, as fastai."""

    def __init__(self, vocab, sort=True, add_na=False):
        self.vocab, self.add_na = CategoryMap(vocab, sort=sort, add_na=add_na), add_na

    def __call__(self, o):
        if o not in self.vocab.o2i and not self.add_na:
            raise ValueError(f"label {o!r} is not in the vocab of {len(self.vocab)} labels")
        return torch.tensor(self.vocab.o2i.get(o, 0))

    def decode(self, i):
        return self.vocab[int(i)]

    @classmethod
    def from_labels(cls, labels, sort=True, add_na=False):
        return cls(list(labels), sort=sort, add_na=add_na)


def one_hot_decode(x, vocab=None):
    "The indices where the one-hot (or bool) vector x is 1, or the vocab entries at them (fastai's one_hot_decode)."
    i = torch.where(torch.as_tensor(x) == 1)[0].tolist()
    return i if vocab is None else [vocab[k] for k in i]


class MultiCategorize(Categorize):
    """A list of labels -> float32 one-hot over the vocab (kept in its order), all zeros for no label (ML-1, ML-4);
    decode: the labels where it is 1. An unknown label is always an error (fastai's MultiCategorize + OneHotEncode)."""

    def __init__(self, vocab, add_na=False):
        super().__init__(vocab, sort=False, add_na=add_na)

    def __call__(self, labels):
        if isinstance(labels, str):
            raise TypeError(f"MultiCategorize needs a list of labels, got the string {labels!r}")
        if bad := [o for o in labels if o not in self.vocab.o2i]:
            raise ValueError(f"label {bad[0]!r} is not in the vocab of {len(self.vocab)} labels")
        t = torch.zeros(len(self.vocab))
        t[[self.vocab.o2i[o] for o in labels]] = 1.0
        return t

    def decode(self, t):
        return one_hot_decode(t, self.vocab)

    @classmethod
    def from_labels(cls, lists, add_na=False):
        return cls(sorted({o for ls in lists for o in ls}), add_na=add_na)


# ---------------------------------------------------------------- images and points
class TensorPoint(torch.Tensor):
    "Points as an (n, 2) float tensor of (x, y): pixels when read, [-1, 1] after PointScaler (REG-6)."

    @classmethod
    def create(cls, t):
        return torch.as_tensor(t, dtype=torch.float32).reshape(-1, 2).as_subclass(cls)


def image2tensor(img):
    """PIL image (w, h) -> tensor (c, h, w), channel first, rows by columns (T:L1349), as fastai: the image's own
    channels (L and P 1, RGB 3, RGBA 4) and dtype (uint8; 16-bit as float32)."""
    a = np.array(img)
    a = a.astype(np.float32) if a.dtype == np.uint16 else a
    return torch.from_numpy(a[..., None] if a.ndim == 2 else a).permute(2, 0, 1)


def _to_float(img):
    "image2tensor(img).float() / 255, in numpy (no thread-pool overhead)."
    a = np.asarray(img, dtype=np.float32)
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1) / 255))


def scale_points(p, size):
    "Pixel (x, y) -> [-1, 1]: x*2/w - 1, y*2/h - 1; size = (w, h) (T:L1440)."
    return torch.as_tensor(p, dtype=torch.float32) * 2 / torch.tensor(size, dtype=torch.float32) - 1


def unscale_points(p, size):
    "[-1, 1] -> pixel (x, y): (p + 1) * (w, h) / 2."
    return (torch.as_tensor(p, dtype=torch.float32) + 1) * torch.tensor(size, dtype=torch.float32) / 2


def flip_lr(x, y=None):
    "Mirror images (..., h, w) left-right and move their [-1, 1] points with them: x -> -x (REG-11)."
    x = x.flip(-1)
    return x if y is None else (x, y * torch.tensor([-1.0, 1.0], device=y.device))


def _hw(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def _uniform(a=0.0, b=1.0):
    return a + (b - a) * torch.rand(()).item()  # torch's RNG: torch.manual_seed governs all


def _randint(a, b):
    return int(torch.randint(a, b + 1, ()).item())


class ItemTfm:
    "Transforms a whole item tuple, knowing whether it is a training item (random) or not (deterministic)."

    def __call__(self, t, train=False):
        return t


class PointScaler(ItemTfm):
    "Scale the item's TensorPoints to [-1, 1] using the size of its image, recorded in `.size` (w, h)."

    def __call__(self, t, train=False):
        img = next((o for o in t if isinstance(o, Image.Image)), None)
        if img is None:
            raise ValueError("PointScaler: the item has no PIL image to take the size from")
        self.size = img.size
        return tuple(TensorPoint.create(scale_points(o, img.size)) if isinstance(o, TensorPoint) else o for o in t)

    def decode(self, p, size=None):
        return unscale_points(p, size or self.size)


def _crop(t, tl, cp, out):
    "Crop box (top-left tl, size cp, both (x, y) in pixels) then resize to out (w, h); points follow in [-1, 1]."
    (x0, y0), (cw, ch), (w, h) = tl, cp, _img_size(t)
    res = []
    for o in t:
        if isinstance(o, Image.Image):
            o = o.crop((x0, y0, x0 + cw, y0 + ch)).resize(out, Image.BILINEAR)
        elif isinstance(o, TensorPoint):
            orig, c = torch.tensor([w, h], dtype=torch.float32), torch.tensor([cw, ch], dtype=torch.float32)
            o = TensorPoint.create((o + 1) * orig / c - torch.tensor([x0, y0]) * 2 / c - 1)
        res.append(o)
    return tuple(res)


def _img_size(t):
    img = next((o for o in t if isinstance(o, Image.Image)), None)
    if img is None:
        raise ValueError("the item has no PIL image to resize or crop (put ToTensor last)")
    return img.size


class Resize(ItemTfm):
    "Resize to size (h, w): 'squish' stretches; 'crop' keeps the aspect ratio, cropping randomly (train) or centred."

    def __init__(self, size, method="crop"):
        if method not in ("crop", "squish"):
            raise ValueError(f"method must be 'crop' or 'squish', got {method!r}")
        self.size, self.method = _hw(size), method

    def __call__(self, t, train=False):
        (w, h), (oh, ow) = _img_size(t), self.size
        if self.method == "squish":
            return _crop(t, (0, 0), (w, h), (ow, oh))
        m = min(w / ow, h / oh)
        cw, ch = int(m * ow), int(m * oh)
        px, py = (_uniform(), _uniform()) if train else (0.5, 0.5)
        return _crop(t, (int(px * (w - cw)), int(py * (h - ch))), (cw, ch), (ow, oh))


class RandomResizedCrop(ItemTfm):
    """Train: a random crop of min_scale..1 of the area, aspect ratio in `ratio`, resized to size (h, w).
    Valid: squish to size + val_xtra margin, then a centre crop; no randomness (fastai's algorithm, T:L1017)."""

    def __init__(self, size, min_scale=0.08, ratio=(3 / 4, 4 / 3), val_xtra=0.14, max_scale=1.0):
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}")
        self.size, self.ratio, self.val_xtra = _hw(size), ratio, val_xtra
        self.min_scale, self.max_scale = min_scale, max_scale

    def __call__(self, t, train=False):
        (w, h), (oh, ow) = _img_size(t), self.size
        if not train:
            xtra = int(np.ceil(max(oh, ow) * self.val_xtra / 8) * 8)
            t = _crop(t, (0, 0), (w, h), (ow + xtra, oh + xtra))
            return _crop(t, (xtra // 2, xtra // 2), (ow, oh), (ow, oh))
        for _ in range(10):
            area = _uniform(self.min_scale, self.max_scale) * w * h
            r = np.exp(_uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            cw, ch = int(round(np.sqrt(area * r))), int(round(np.sqrt(area / r)))
            if cw <= w and ch <= h:
                return _crop(t, (_randint(0, w - cw), _randint(0, h - ch)), (cw, ch), (ow, oh))
        cw, ch = w, h  # no random crop fitted: the largest centred crop with an aspect ratio in range
        if w / h < self.ratio[0]:
            ch = int(w / self.ratio[0])
        elif w / h > self.ratio[1]:
            cw = int(h * self.ratio[1])
        return _crop(t, ((w - cw) // 2, (h - ch) // 2), (cw, ch), (ow, oh))


def _flip(o):
    if isinstance(o, Image.Image):
        return o.transpose(Image.FLIP_LEFT_RIGHT)
    return TensorPoint.create(o * torch.tensor([-1.0, 1.0])) if isinstance(o, TensorPoint) else o


class Flip(ItemTfm):
    "Training items: mirror left-right with probability p; points' x changes sign (REG-11)."

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, t, train=False):
        return tuple(map(_flip, t)) if train and _uniform() < self.p else t


class ToTensor(ItemTfm):
    "PIL images of the item -> float32 tensors (c, h, w): image2tensor / 255, in [0, 1] for 8-bit images (DATA-15)."

    def __call__(self, t, train=False):
        return tuple(_to_float(o) if isinstance(o, Image.Image) else o for o in t)
