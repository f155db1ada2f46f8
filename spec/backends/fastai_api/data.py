"""Data on fastai: its DataBlock / Datasets / DataLoader / CollabDataLoaders API, written as the book writes it.

The readers are the book's own code (pd.read_csv, np.genfromtxt, img2pose, get_ctr), since fastai has none of its own.
"""

from functools import lru_cache as _lru_cache
from pathlib import Path as _Path

import fastai.collab as collab
import numpy as np
import pandas as pd
import torch
from fastai import learner
from fastai.data import block, transforms
from fastai.data.core import Datasets  # noqa: F401
from fastai.data.load import DataLoader  # noqa: F401
from fastai.data.transforms import (  # noqa: F401
    Categorize,
    ColReader,
    ColSplitter,
    IndexSplitter,
    RandomSplitter,
    RegexLabeller,
    get_image_files,
)
from fastai.torch_core import TensorImage as _TensorImage
from fastai.torch_core import one_hot_decode  # noqa: F401
from fastai.vision import augment as _aug
from fastai.vision import core
from fastai.vision import data as vdata
from fastcore.basics import (
    first,  # noqa: F401
    using_attr,  # noqa: F401
)


# ---------------------------------------------------------------- generic pipeline
def _workers(device):
    """DataLoader processes for the image loaders: none on the CPU (the fixtures' runs), fastai's default (one per core,
    up to 16) on a GPU (real data). fastai seeds each worker apart and deals batches to workers in turn, so with workers
    the random item transforms (Resize's training crop, RandomResizedCrop) depend on the machine's core count; in the
    test's process they draw from its one seeded stream, and cost 22% less CPU (Pets fixture runs, 2 cores)."""
    return 0 if device is None or torch.device(device).type == "cpu" else None


def datablock_datasets(source, get_x=None, get_y=None, splitter=None):
    "DataBlock(get_x=..., get_y=..., splitter=...).datasets(source) (T:L840-915)."
    return block.DataBlock(get_x=get_x, get_y=get_y, splitter=splitter).datasets(source)


def person_splitter(person="13"):
    "The book's FuncSplitter(lambda o: o.parent.name == '13')."
    return transforms.FuncSplitter(lambda o: o.parent.name == person)


def category_vocab(labels, sort=True, add_na=False):
    "The vocab a CategoryBlock builds from `labels` (a list, or a pandas Series, categorical or not), as a list."
    return list(transforms.CategoryMap(labels, sort=sort, add_na=add_na))


def one_hot_labels(labels, vocab):
    return transforms.OneHotEncode(len(vocab))(transforms.MultiCategorize(vocab=list(vocab))(labels))


def decode_labels(t, vocab):
    return list(transforms.MultiCategorize(vocab=list(vocab)).decode(transforms.OneHotEncode(len(vocab)).decode(t)))


# ---------------------------------------------------------------- images and points
def load_image(f):
    return core.PILImage.create(f)


def image2tensor(img):
    "ImageBlock's path: ToTensor (uint8, channel first), then IntToFloatTensor (/255)."
    return transforms.IntToFloatTensor()(transforms.ToTensor()(img))


def image_shape(img):
    return tuple(img.shape)


def random_resized_crop(img, size, min_scale=0.08, train=True):
    return _aug.RandomResizedCrop(size, min_scale=min_scale)(core.PILImage(img), split_idx=0 if train else 1)


def _blank(size):
    w, h = size
    return core.PILImage.create(np.zeros((h, w, 3), np.uint8))


def scale_points(p, size):
    "PointScaler on (image of size (w, h), point)."
    return core.PointScaler()((_blank(size), core.TensorPoint.create(p, img_size=size)))[1]


def unscale_points(p, size):
    sc = core.PointScaler()
    sc((_blank(size), core.TensorPoint.create(torch.zeros(1, 2), img_size=size)))  # records the size
    return sc.decodes(core.TensorPoint(torch.as_tensor(p, dtype=torch.float32)))


def flip_lr(x, y=None):
    "Flip(p=1) on a batch: the image mirrored, the points too."
    f = _aug.Flip(p=1.0)
    if y is None:
        return f(_TensorImage(x), split_idx=0)
    return f((_TensorImage(x), core.TensorPoint(y)), split_idx=0)


# ---------------------------------------------------------------- readers (the book's code)
_pet_label = using_attr(RegexLabeller(r"(.+)_\d+.jpg$"), "name")  # FB05


def pet_label(f):
    "FB05's using_attr(RegexLabeller(r'(.+)_\\d+.jpg$'), 'name') on f."
    return _pet_label(f)


def read_pascal(path):
    return pd.read_csv(_Path(path) / "train.csv")  # T:L655


def img2pose(f):
    return _Path(f"{str(f)[:-7]}pose.txt")  # T:L1343 (the book names the argument x)


@_lru_cache(maxsize=64)
def _cal(f):
    return np.genfromtxt(f, skip_footer=6)


def read_cal(f):
    return _cal(str(f)).copy()


def get_ctr(f, cal=None):
    "T:L1357: the book reads cal from person 01's rgb.cal; every person's file is the same."
    cal = read_cal(_Path(f).parent / "rgb.cal") if cal is None else cal
    ctr = np.genfromtxt(img2pose(f), skip_header=3)
    c1 = ctr[0] * cal[0][0] / ctr[2] + cal[0][2]
    c2 = ctr[1] * cal[1][1] / ctr[2] + cal[1][2]
    return torch.tensor([c1, c2])


def read_ratings(path):
    return pd.read_csv(
        _Path(path) / "u.data", delimiter="\t", header=None, names=["user", "movie", "rating", "timestamp"]
    )  # T:L1718


def read_movies(path):
    return pd.read_csv(
        _Path(path) / "u.item", delimiter="|", encoding="latin-1", usecols=(0, 1), names=("movie", "title"), header=None
    )  # T:L1830


def read_movielens(path):
    return read_ratings(path).merge(read_movies(path))  # T:L1836


def top_crosstab(ratings, n_users=15, n_items=15, item="movie"):
    u = ratings.user.value_counts().index[:n_users]
    i = ratings[item].value_counts().index[:n_items]
    sub = ratings[ratings.user.isin(u) & ratings[item].isin(i)]
    return pd.crosstab(sub.user, sub[item], values=sub.rating, aggfunc="mean").reindex(index=u, columns=i)


# ---------------------------------------------------------------- the four datasets (FB05, FB06, FB08)
def _pets_block(seed, valid_pct, **kw):
    return block.DataBlock(
        blocks=(vdata.ImageBlock, block.CategoryBlock),
        get_items=get_image_files,
        splitter=RandomSplitter(valid_pct, seed=seed),
        get_y=pet_label,
        **kw,
    )


def _images(path):
    p = _Path(path)
    return p / "images" if (p / "images").is_dir() else p


def pets_datasets(path, seed=42, valid_pct=0.2):
    return _pets_block(seed, valid_pct).datasets(_images(path))


def pets_dls(path, bs=64, size=224, seed=42, valid_pct=0.2, device=None, min_scale=0.75):
    "FB05: presize with Resize(460) for 224 (scaled for other sizes), then aug_transforms(size, min_scale=0.75)."
    blk = _pets_block(
        seed,
        valid_pct,
        item_tfms=_aug.Resize(round(size * 460 / 224)),
        batch_tfms=_aug.aug_transforms(size=size, min_scale=min_scale),
    )
    return blk.dataloaders(_images(path), bs=bs, device=device, num_workers=_workers(device))


def _pascal_block(path, **kw):
    path = _Path(path)
    return block.DataBlock(
        blocks=(vdata.ImageBlock, block.MultiCategoryBlock),
        splitter=ColSplitter(),
        get_x=ColReader("fname", pref=path / "train"),
        get_y=ColReader("labels", label_delim=" "),
        **kw,
    )


def pascal_datasets(path):
    return _pascal_block(path).datasets(read_pascal(path))


def pascal_dls(path, bs=64, size=128, device=None, min_scale=0.35):
    "FB06: item_tfms=RandomResizedCrop(128, min_scale=0.35)."
    blk = _pascal_block(path, item_tfms=_aug.RandomResizedCrop(size, min_scale=min_scale))
    return blk.dataloaders(read_pascal(path), bs=bs, device=device, num_workers=_workers(device))


def _biwi_block(valid_person, **kw):
    return block.DataBlock(
        blocks=(vdata.ImageBlock, vdata.PointBlock),
        get_items=get_image_files,
        get_y=get_ctr,
        splitter=person_splitter(valid_person),
        **kw,
    )


def biwi_datasets(path, valid_person="13"):
    return _biwi_block(valid_person).datasets(_Path(path))


def biwi_dls(path, bs=64, size=(240, 320), valid_person="13", device=None, augment=True):
    "FB06: batch_tfms=aug_transforms(size=(240,320)); augment=False: item_tfms=Resize(size, method='squish') instead."
    plain = {"item_tfms": _aug.Resize(size, method="squish")}
    tfms = {"batch_tfms": _aug.aug_transforms(size=size)} if augment else plain
    blk = _biwi_block(valid_person, **tfms)
    return blk.dataloaders(_Path(path), bs=bs, device=device, num_workers=_workers(device))


def collab_dls(
    ratings, bs=64, valid_pct=0.2, seed=None, item_name="title", user_name=None, rating_name=None, device=None
):
    """FB08: CollabDataLoaders.from_df(ratings, item_name='title', bs=64); a folder is read and merged first. A column
    name left None is the 1st (user), 2nd (item) or 3rd (rating) column, as from_df does."""
    df = read_movielens(ratings) if isinstance(ratings, (str, _Path)) else ratings
    return collab.CollabDataLoaders.from_df(
        df,
        valid_pct=valid_pct,
        user_name=user_name,
        item_name=item_name,
        rating_name=rating_name,
        seed=seed,
        bs=bs,
        device=device,
    )


def export_data(dls, f, pickle_module=None):
    "What Learner.export saves (the DataLoaders inside a learner), with fastai's default pickle module."
    learn = learner.Learner(dls, torch.nn.Linear(1, 1), loss_func=torch.nn.MSELoss())
    kw = {} if pickle_module is None else {"pickle_module": pickle_module}
    learn.export(_Path(f).absolute(), **kw)


def pascal_summary(path, bs=4, size=128):
    "The text DataBlock.summary prints for PASCAL, cropped to size (no crop when size is None)."
    import contextlib
    import io

    kw = {"item_tfms": _aug.RandomResizedCrop(size, min_scale=0.35)} if size else {}
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        _pascal_block(path, **kw).summary(read_pascal(path), bs=bs)
    return buf.getvalue()


def n_outputs(dls):
    return transforms.get_c(dls)


def show_path(p, base=None):
    "repr(p) with Path.BASE_PATH = base (fastcore), restored afterwards."
    had, old = hasattr(_Path, "BASE_PATH"), getattr(_Path, "BASE_PATH", None)
    _Path.BASE_PATH = base
    try:
        return repr(_Path(p))
    finally:
        if had:
            _Path.BASE_PATH = old
        else:
            del _Path.BASE_PATH
