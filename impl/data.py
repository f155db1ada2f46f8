"""The data pipeline of Lesson 6: Datasets of transform pipelines, DataLoaders, splitters, categories,
item transforms (resize, crops, flips, point scaling), and ready-made DataLoaders for the four datasets.

An item is a tuple: one element per pipeline (T:L782-815). Item transforms (`ItemTfm`) then see the whole
tuple and whether it is a training item, so a crop or a flip moves the image and its point together.
"""

import functools
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .readers import get_ctr, get_image_files, image_files, img2pose, load_image, pet_label, read_movielens, read_pascal

# fmt: off
__all__ = ["Pipeline", "Datasets", "DataLoader", "DataLoaders", "collate", "first", "summary", "export", "show_path",
           "RandomSplitter", "ColSplitter", "FuncSplitter", "IndexSplitter", "PersonSplitter", "ColReader",
           "RegexLabeller", "using_attr", "CategoryMap", "Categorize", "MultiCategorize", "one_hot_decode",
           "TensorPoint", "ItemTfm", "Resize", "RandomResizedCrop", "Flip", "ToTensor",
           "PointScaler", "image2tensor", "scale_points", "unscale_points", "flip_lr", "pets_datasets", "pets_dls",
           "pascal_datasets", "pascal_dls", "biwi_datasets", "biwi_dls", "collab_dls",
           "get_image_files", "img2pose", "get_ctr", "load_image", "pet_label"]  # the last five from .readers
# fmt: on


# ---------------------------------------------------------------- pipelines and datasets
class Pipeline:
    "Functions applied in order; `decode` undoes those that have a `decode`, last first."

    def __init__(self, fs):
        self.fs = list(fs)

    def __call__(self, o):
        for f in self.fs:
            o = f(o)
        return o

    def decode(self, o):
        for f in reversed(self.fs):
            o = f.decode(o) if hasattr(f, "decode") else o
        return o

    def __repr__(self):
        return f"Pipeline({[getattr(f, '__name__', f) for f in self.fs]})"


def _get(items, i):
    "items[i], by position for a DataFrame (a row as a Series)."
    return items.iloc[i] if isinstance(items, pd.DataFrame) else items[i]


class Datasets:
    """Items through pipelines: `Datasets(a)[0] == (a[0],)`, `Datasets(a, [[f1],[f2]])[0] == (f1(a[0]), f2(a[0]))`,
    `Datasets(a, [[f1, f2]])[0] == (f2(f1(a[0])),)` (T:L782-815). A bare function counts as a one-step pipeline.
    `splits` = (train indices, valid indices, ...); `.train` / `.valid` are the subsets, on which `item_tfms`
    run in training or validation mode."""

    def __init__(self, items, tfms=None, splits=None, item_tfms=None, vocab=None):
        if not hasattr(items, "__len__"):
            items = list(items)
        tfms = [[]] if tfms is None else tfms
        if not isinstance(tfms, (list, tuple)):
            raise TypeError(f"tfms must be a list of pipelines, got {tfms!r}")
        self.items, self.pipes = items, [Pipeline(t if isinstance(t, (list, tuple)) else [t]) for t in tfms]
        self.splits = [list(range(len(items)))] if splits is None else [[int(i) for i in s] for s in splits]
        for s in self.splits:
            if bad := [i for i in s if not 0 <= i < len(items)]:
                raise ValueError(f"splits: index {bad[0]} out of range for {len(items)} items")
        self.item_tfms, self.vocab = list(item_tfms or []), vocab
        self.idxs, self.split_idx = None, None  # the whole set; subsets set these

    def subset(self, i):
        "Split i (0 = train, 1 = valid) as a Datasets view sharing items and transforms."
        if i >= len(self.splits):
            raise IndexError(f"no split {i}: this Datasets has {len(self.splits)} split(s)")
        d = object.__new__(type(self))
        d.__dict__.update(self.__dict__, idxs=self.splits[i], split_idx=i)
        return d

    train, valid = property(lambda s: s.subset(0)), property(lambda s: s.subset(1))
    n_inp = property(lambda s: max(1, len(s.pipes) - 1))

    def __len__(self):
        return len(self.items) if self.idxs is None else len(self.idxs)

    def __getitem__(self, i):
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        o = _get(self.items, i if self.idxs is None else self.idxs[i])
        t = tuple(p(o) for p in self.pipes)
        for f in self.item_tfms:
            t = f(t, train=self.split_idx == 0)
        return t

    def decode(self, t):
        return tuple(p.decode(o) for p, o in zip(self.pipes, t))

    def __repr__(self):
        return f"Datasets({len(self)} items, {len(self.pipes)} pipeline(s), split {self.split_idx})"

    def dataloaders(self, bs=64, device=None, num_workers=0, after_batch=None, **kw):
        "DataLoaders over the splits: train shuffled with drop_last, the others in order and complete (T:L824)."
        dls = [
            DataLoader(
                self.subset(i),
                bs=bs,
                shuffle=i == 0,
                drop_last=i == 0,
                device=device,
                num_workers=num_workers,
                after_batch=after_batch,
            )
            for i in range(len(self.splits))
        ]
        return DataLoaders(*dls, vocab=self.vocab, **kw)


def _desc(o):
    if isinstance(o, Image.Image):
        return f"PIL image mode={o.mode} size={o.size[0]}x{o.size[1]}"
    if isinstance(o, torch.Tensor):
        return f"{type(o).__name__} of shape {tuple(o.shape)} {o.dtype}"
    return repr(o)


def summary(ds, bs=4, out=print):
    "Walk the first training item through every step, then collate bs items, saying what each gives (T:L1024)."
    d = ds.train if len(ds.splits) > 1 else ds
    o = _get(d.items, 0 if d.idxs is None else d.idxs[0])
    out(f"{len(ds.items)} items; splits {[len(s) for s in ds.splits]}; first training item: {_desc(o)}")
    t = []
    for k, p in enumerate(d.pipes):
        x = o
        for f in p.fs:
            x = f(x)
            out(f"  pipeline {k}: {getattr(f, '__name__', type(f).__name__)} -> {_desc(x)}")
        t.append(x)
    t = tuple(t)
    for f in d.item_tfms:
        t = f(t, train=True)
        out(f"  item tfm {type(f).__name__} -> ({', '.join(map(_desc, t))})")
    b = collate([t] + [d[i] for i in range(1, min(bs, len(d)))])  # raises with the shapes when items differ
    out(f"collated {min(bs, len(d))} items -> ({', '.join(map(_desc, b))})")
    return b


# ---------------------------------------------------------------- batches
def collate(batch):
    "A list of items -> one batch: tensors stacked, numbers as a tensor, tuples element-wise, strings as a tuple."
    o = batch[0]
    if isinstance(o, torch.Tensor):
        if len({tuple(b.shape) for b in batch}) > 1:
            raise ValueError(
                f"cannot collate tensors of shapes {sorted({tuple(b.shape) for b in batch})}: add an item "
                "transform (Resize, RandomResizedCrop) so every item has the same size (T:L1017)"
            )
        return torch.stack([b.as_subclass(torch.Tensor) for b in batch])
    if isinstance(o, np.ndarray):
        return collate([torch.from_numpy(b) for b in batch])
    if isinstance(o, (bool, int, float, np.number)):
        return torch.tensor(batch)
    if isinstance(o, (tuple, list)) and not isinstance(o, str):
        return tuple(collate(list(b)) for b in zip(*batch))
    if isinstance(o, Image.Image):
        raise ValueError("cannot collate PIL images: add ToTensor() to the item transforms")
    return tuple(batch)


def to_device(b, device):
    if device is None:
        return b
    if isinstance(b, torch.Tensor):
        return b.to(device, non_blocking=True)
    return type(b)(to_device(o, device) for o in b) if isinstance(b, (tuple, list)) else b


class DataLoader:
    "Batches of a dataset (anything with len and [i]); `device` moves each batch, `after_batch` maps it."

    def __init__(
        self,
        dataset,
        bs=64,
        shuffle=False,
        drop_last=False,
        device=None,
        num_workers=0,
        after_batch=None,
        batch_size=None,
        collate_fn=collate,
    ):
        bs = batch_size or bs
        if not isinstance(bs, int) or bs < 1:
            raise ValueError(f"bs must be a positive int, got {bs!r}")
        self.dataset, self.bs, self.shuffle, self.drop_last, self.device = dataset, bs, shuffle, drop_last, device
        self.after_batch = list(after_batch or [])
        self.dl = torch.utils.data.DataLoader(  # an empty dataset has nothing to shuffle (torch's sampler would raise)
            dataset,
            batch_size=bs,
            shuffle=shuffle and len(dataset) > 0,
            drop_last=drop_last,
            collate_fn=collate_fn,
            num_workers=num_workers,
        )

    def __len__(self):
        return len(self.dl)

    def __iter__(self):
        for b in self.dl:
            b = to_device(b, self.device)
            for f in self.after_batch:
                b = f(b)
            yield b

    def one_batch(self):
        if len(self) == 0:
            raise ValueError(f"no batch: {len(self.dataset)} items with bs={self.bs}, drop_last={self.drop_last}")
        return next(iter(self))

    def __repr__(self):
        return f"DataLoader({len(self.dataset)} items, bs={self.bs}, shuffle={self.shuffle})"


def first(it):
    return next(iter(it), None)


class DataLoaders:
    "A train and a valid DataLoader (and more), with what a learner needs: vocab, c, loss_func."

    def __init__(self, *loaders, vocab=None, c=None, loss_func=None, classes=None):
        if len(loaders) < 2:
            raise ValueError(f"DataLoaders needs a train and a valid DataLoader, got {len(loaders)}")
        self.loaders, self.vocab, self.loss_func, self.classes = list(loaders), vocab, loss_func, classes
        self.c = c if c is not None else (len(vocab) if vocab is not None else None)

    @classmethod
    def from_dsets(cls, *ds, bs=64, device=None, **kw):
        "One DataLoader per dataset: the first shuffled with drop_last."
        return cls(
            *[DataLoader(d, bs=bs, shuffle=i == 0, drop_last=i == 0, device=device) for i, d in enumerate(ds)], **kw
        )

    train, valid = property(lambda s: s.loaders[0]), property(lambda s: s.loaders[1])
    bs = property(lambda s: s.train.bs)

    def __getitem__(self, i):
        return self.loaders[i]

    def __len__(self):
        return len(self.loaders)

    def one_batch(self):
        return self.train.one_batch()

    @property
    def device(self):
        return self.train.device

    @device.setter
    def device(self, d):
        for dl in self.loaders:
            dl.device = d

    def to(self, device):
        "Move every batch of every loader to `device` from now on (like fastai's dls.to)."
        self.device = device
        return self

    def __repr__(self):
        return f"DataLoaders({', '.join(map(repr, self.loaders))})"


def export(obj, f, pickle_module=pickle):
    "Save obj with torch.save; with plain pickle, lambdas inside cannot be saved (T:L894)."
    torch.save(obj, f, pickle_module=pickle_module)


def show_path(p, base=None):
    "How the lesson displays a path: relative to `base` when under it (fastcore's Path.BASE_PATH, T:L1085)."
    p = Path(p)
    return f"Path({str(p.relative_to(base) if base is not None and p.is_relative_to(base) else p)!r})"


# ---------------------------------------------------------------- splitters
def RandomSplitter(valid_pct=0.2, seed=None):
    "Random (train, valid) indices, `int(valid_pct*n)` valid; a seed gives fastai's split: randperm after manual_seed."
    if not 0 <= valid_pct < 1:
        raise ValueError(f"valid_pct must be in [0, 1), got {valid_pct!r}")

    def _inner(o):
        g = None if seed is None else torch.Generator().manual_seed(seed)  # same stream as torch.manual_seed(seed)
        idx = torch.randperm(len(o), generator=g).tolist()
        cut = int(valid_pct * len(o))
        return idx[cut:], idx[:cut]

    return _inner


def _by_mask(mask):
    m = np.asarray(mask, dtype=bool)
    return np.flatnonzero(~m).tolist(), np.flatnonzero(m).tolist()


def ColSplitter(col="is_valid"):
    "Rows whose column `col` (a name, or an int position) is true go to the validation set (T:L973)."

    def _inner(df):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"ColSplitter needs a DataFrame, got {type(df).__name__}")
        if not (col in df if not isinstance(col, int) else -df.shape[1] <= col < df.shape[1]):
            raise ValueError(f"ColSplitter: no column {col!r}; columns are {list(df.columns)}")
        return _by_mask((df.iloc[:, col] if isinstance(col, int) else df[col]).astype(bool).values)

    return _inner


def IndexSplitter(valid_idx):
    "Items at `valid_idx` (in that order) are validation, the others training in order."
    v = [int(i) for i in valid_idx]

    def _inner(o):
        if bad := [i for i in v if not 0 <= i < len(o)]:
            raise ValueError(f"IndexSplitter: index {bad[0]} out of range for {len(o)} items")
        s = set(v)
        return [i for i in range(len(o)) if i not in s], v

    return _inner


def FuncSplitter(f):
    "Items for which f(item) is true go to the validation set."
    return lambda o: _by_mask([bool(f(_get(o, i))) for i in range(len(o))])


class PersonSplitter:
    "BIWI: every frame of person `person` (its folder name) is validation, the rest training (T:L1373)."

    def __init__(self, person="13"):
        self.person = str(person)

    def __call__(self, items):
        mask = [Path(o).parent.name == self.person for o in items]
        if not any(mask):
            raise ValueError(f"PersonSplitter: no frame of person {self.person!r} among {len(items)} items")
        return _by_mask(mask)


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


# ---------------------------------------------------------------- the four datasets
def _loss(name):
    from . import losses  # written alongside; imported late so data works on its own

    return getattr(losses, name)()


def pets_datasets(path, seed=42, valid_pct=0.2, item_tfms=None):
    "Oxford-IIIT Pet: (image, breed index); label from the file name (FB05 regex), random split (seed 42: FB05)."
    path = Path(path)
    items = image_files(path / "images" if (path / "images").is_dir() else path)
    cat = Categorize.from_labels(pet_label(f) for f in items)
    splits = RandomSplitter(valid_pct, seed)(items)
    return Datasets(items, [[load_image], [pet_label, cat]], splits=splits, item_tfms=item_tfms, vocab=cat.vocab)


def pets_dls(path, bs=64, size=224, seed=42, valid_pct=0.2, device=None, min_scale=0.75, **kw):
    "Pets DataLoaders: training items get a random crop of >= min_scale of the area and a flip; loss cross entropy."
    tfms = [RandomResizedCrop(size, min_scale=min_scale), Flip(), ToTensor()]
    ds = pets_datasets(path, seed=seed, valid_pct=valid_pct, item_tfms=tfms)
    return ds.dataloaders(bs=bs, device=device, loss_func=_loss("CrossEntropyLossFlat"), **kw)


def pascal_datasets(path, item_tfms=None):
    "PASCAL 2007: (image train/<fname>, one-hot of the space-separated labels), split by is_valid (T:L973)."
    path = Path(path)
    df = read_pascal(path)
    cat = MultiCategorize.from_labels(s.split(" ") for s in df.labels)
    tfms = [[ColReader("fname", pref=path / "train"), load_image], [ColReader("labels", label_delim=" "), cat]]
    return Datasets(df, tfms, splits=ColSplitter("is_valid")(df), item_tfms=item_tfms, vocab=cat.vocab)


def pascal_dls(path, bs=64, size=128, device=None, min_scale=0.35, **kw):
    "PASCAL DataLoaders: RandomResizedCrop(size, min_scale) so items collate (T:L1017); loss BCE with logits."
    ds = pascal_datasets(path, item_tfms=[RandomResizedCrop(size, min_scale=min_scale), ToTensor()])
    return ds.dataloaders(bs=bs, device=device, loss_func=_loss("BCEWithLogitsLossFlat"), **kw)


def biwi_datasets(path, valid_person="13", item_tfms=None):
    "BIWI head pose: (frame, head centre as a (1, 2) TensorPoint in pixels); person `valid_person` is validation."
    items = image_files(path)
    splits = PersonSplitter(valid_person)(items)
    ctr = {f: get_ctr(f) for f in items}  # every pose file read now: a bad one names itself here, not mid-fit
    return Datasets(items, [[load_image], [ctr.__getitem__, TensorPoint.create]], splits=splits, item_tfms=item_tfms)


def biwi_dls(path, bs=64, size=(240, 320), valid_person="13", device=None, augment=True, **kw):
    """BIWI DataLoaders: points scaled to [-1, 1], frames resized to size (h, w); training items get a random
    zoom (a crop of >= 80% of the area) and a flip that move the point with the pixels (REG-11); loss MSE."""
    r = size[1] / size[0] if isinstance(size, tuple) else 1.0
    zoom = RandomResizedCrop(size, min_scale=0.8, ratio=(r * 0.95, r * 1.05), val_xtra=0)  # valid: a plain resize
    tfms = [
        PointScaler(),
        zoom if augment else Resize(size, method="squish"),
        *([Flip()] if augment else []),
        ToTensor(),
    ]
    ds = biwi_datasets(path, valid_person=valid_person, item_tfms=tfms)
    return ds.dataloaders(bs=bs, device=device, c=2, loss_func=_loss("MSELossFlat"), **kw)


def collab_dls(
    ratings, bs=64, valid_pct=0.2, seed=None, item_name="title", user_name=None, rating_name=None, device=None, **kw
):
    """Collaborative filtering batches: x = (user index, item index) int64 (bs, 2), y = rating float (bs, 1).
    `ratings`: a DataFrame or the ml-100k folder (u.data merged with u.item). Columns default by position: user =
    the 1st, item = the 2nd, rating = the 3rd (CF-6). Each vocab comes from all rows: '#na#' first, then the sorted
    values, or a categorical column's categories in their order (CategoryMap, as fastai's Categorify)."""
    df = read_movielens(ratings) if isinstance(ratings, (str, Path)) else ratings
    cols = list(df.columns)
    u, i, r = user_name or cols[0], item_name or cols[1], rating_name or cols[2]
    if missing := [c for c in (u, i, r) if c not in df]:
        raise ValueError(f"collab_dls: no column(s) {missing} in {cols}")
    vocabs = {c: CategoryMap(df[c], add_na=True) for c in (u, i)}  # a categorical column keeps its categories' order
    classes = {c: list(v) for c, v in vocabs.items()}
    codes = [df[c].astype(object).map(vocabs[c].o2i).to_numpy() for c in (u, i)]
    x = torch.from_numpy(np.stack(codes, 1).astype(np.int64))
    y = torch.tensor(df[r].to_numpy(), dtype=torch.float32)[:, None]
    ds = Datasets(range(len(df)), [[x.__getitem__], [y.__getitem__]], splits=RandomSplitter(valid_pct, seed)(df))
    return ds.dataloaders(bs=bs, device=device, c=1, classes=classes, loss_func=_loss("MSELossFlat"), **kw)
