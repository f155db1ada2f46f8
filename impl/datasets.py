"""The lesson's four datasets as Datasets and DataLoaders: Oxford-IIIT Pet (FB05), PASCAL 2007 and BIWI head pose
(FB06), MovieLens 100k (FB08); read by impl.readers, put together with impl.data and impl.transforms.
"""

from pathlib import Path

import numpy as np
import torch

from .data import ColSplitter, Datasets, PersonSplitter, RandomSplitter
from .losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat
from .readers import get_ctr, image_files, load_image, pet_label, read_movielens, read_pascal
from .transforms import (
    Categorize,
    CategoryMap,
    ColReader,
    Flip,
    MultiCategorize,
    PointScaler,
    RandomResizedCrop,
    Resize,
    TensorPoint,
    ToTensor,
)

__all__ = ["pets_datasets", "pets_dls", "pascal_datasets", "pascal_dls", "biwi_datasets", "biwi_dls", "collab_dls"]


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
    return ds.dataloaders(bs=bs, device=device, loss_func=CrossEntropyLossFlat(), **kw)


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
    return ds.dataloaders(bs=bs, device=device, loss_func=BCEWithLogitsLossFlat(), **kw)


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
    return ds.dataloaders(bs=bs, device=device, c=2, loss_func=MSELossFlat(), **kw)


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
    return ds.dataloaders(bs=bs, device=device, c=1, classes=classes, loss_func=MSELossFlat(), **kw)
