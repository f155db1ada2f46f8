"""The data pipeline of Lesson 6: Datasets of transform pipelines, DataLoaders and their batches, splitters.

An item is a tuple: one element per pipeline (T:L782-815). What the pipelines and the item transforms apply to an
item (labellers, categories, image and point transforms) is in impl.transforms; the lesson's four datasets, built
from these, in impl.datasets.
"""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

# fmt: off
__all__ = ["Pipeline", "Datasets", "DataLoader", "DataLoaders", "collate", "first", "summary", "export", "show_path",
           "RandomSplitter", "ColSplitter", "FuncSplitter", "IndexSplitter", "PersonSplitter"]
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


def to_device(b, device, non_blocking=False):
    """Every tensor in `b` (nested tuples, lists, dicts) moved to `device`; other items kept; device None: `b` as it
    is. As fastai's to_device, a dict comes back a dict; unlike it, a namedtuple stays one (fastai: TypeError).
    Blocking by default, as fastai's: a non-blocking copy from a GPU to the host may be read before it has landed."""
    if device is None:
        return b
    if isinstance(b, torch.Tensor):
        return b.to(device, non_blocking=non_blocking)
    if isinstance(b, dict):
        return {k: to_device(v, device, non_blocking) for k, v in b.items()}
    if not isinstance(b, (tuple, list)):
        return b
    o = [to_device(v, device, non_blocking) for v in b]
    return type(b)(*o) if hasattr(b, "_fields") else type(b)(o)


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
            b = to_device(b, self.device, non_blocking=True)  # host to device: later kernels wait for it
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
