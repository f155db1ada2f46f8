"""Data on impl: Datasets/DataLoaders, splitters, categories, images and points, readers, the four datasets.

The readers and dataset builders take the parameters fastai's adapter takes (spec/meta/test_adapters.py checks it);
impl's own extra options (item_tfms, **kw, pet_label's pat, read_pascal's classes, read_movies' n_fields) are tested
against impl directly (spec/test_options*.py).
"""

import pickle as _pickle

import impl.data as _data
import impl.datasets as _ds
import impl.readers as _rd
import impl.transforms as _tfm
from impl.data import (  # noqa: F401
    ColSplitter,
    DataLoader,
    Datasets,
    IndexSplitter,
    RandomSplitter,
    first,
)
from impl.readers import (  # noqa: F401
    get_ctr,
    get_image_files,
    img2pose,
    load_image,
    read_cal,
    read_movielens,
    read_ratings,
    top_crosstab,
)
from impl.transforms import (  # noqa: F401
    Categorize,
    ColReader,
    RegexLabeller,
    flip_lr,
    one_hot_decode,
    scale_points,
    unscale_points,
)


# ---------------------------------------------------------------- readers and the four datasets (fastai's parameters)
def pet_label(f):
    return _rd.pet_label(f)


def read_pascal(path):
    return _rd.read_pascal(path)


def read_movies(path):
    return _rd.read_movies(path)


def pets_datasets(path, seed=42, valid_pct=0.2):
    return _ds.pets_datasets(path, seed=seed, valid_pct=valid_pct)


def pets_dls(path, bs=64, size=224, seed=42, valid_pct=0.2, device=None, min_scale=0.75):
    return _ds.pets_dls(path, bs=bs, size=size, seed=seed, valid_pct=valid_pct, device=device, min_scale=min_scale)


def pascal_datasets(path):
    return _ds.pascal_datasets(path)


def pascal_dls(path, bs=64, size=128, device=None, min_scale=0.35):
    return _ds.pascal_dls(path, bs=bs, size=size, device=device, min_scale=min_scale)


def biwi_datasets(path, valid_person="13"):
    return _ds.biwi_datasets(path, valid_person=valid_person)


def biwi_dls(path, bs=64, size=(240, 320), valid_person="13", device=None, augment=True):
    return _ds.biwi_dls(path, bs=bs, size=size, valid_person=valid_person, device=device, augment=augment)


def collab_dls(
    ratings, bs=64, valid_pct=0.2, seed=None, item_name="title", user_name=None, rating_name=None, device=None
):
    return _ds.collab_dls(
        ratings,
        bs=bs,
        valid_pct=valid_pct,
        seed=seed,
        item_name=item_name,
        user_name=user_name,
        rating_name=rating_name,
        device=device,
    )


# ---------------------------------------------------------------- the generic pipeline, images, labels
def datablock_datasets(source, get_x=None, get_y=None, splitter=None):
    "What an (empty) DataBlock makes: (get_x(o), get_y(o)) items, each the item itself by default, split randomly."
    same = lambda o: o  # noqa: E731
    return Datasets(source, [[get_x or same], [get_y or same]], splits=(splitter or RandomSplitter())(source))


def person_splitter(person="13"):
    return _data.PersonSplitter(person)


def using_attr(f, attr):
    return _tfm.using_attr(f, attr)


def category_vocab(labels, sort=True, add_na=False):
    "The vocab a CategoryBlock builds from `labels` (a list, or a pandas Series, categorical or not), as a list."
    return list(_tfm.CategoryMap(labels, sort=sort, add_na=add_na))


def image2tensor(img):
    "ImageBlock's path: channel-first float32, uint8 / 255."
    return _tfm.ToTensor()((img,))[0]


def one_hot_labels(labels, vocab):
    return _tfm.MultiCategorize(vocab)(labels)


def decode_labels(t, vocab):
    return _tfm.MultiCategorize(vocab).decode(t)


def image_shape(img):
    "(rows, columns) of a loaded image."
    return (img.height, img.width)


def random_resized_crop(img, size, min_scale=0.08, train=True):
    return _tfm.RandomResizedCrop(size, min_scale=min_scale)((img,), train=train)[0]


def export_data(dls, f, pickle_module=None):
    "Save DataLoaders (what a learner export holds); impl saves with plain pickle unless told otherwise."
    _data.export(dls, f, pickle_module=pickle_module or _pickle)


def pascal_summary(path, bs=4, size=128):
    "The text of summary() on PASCAL items, cropped to size (no crop when size is None); raises if items don't collate."
    tfms = [_tfm.RandomResizedCrop(size, min_scale=0.35)] if size else []
    lines = []
    _data.summary(_ds.pascal_datasets(path, item_tfms=[*tfms, _tfm.ToTensor()]), bs=bs, out=lines.append)
    return "\n".join(lines)


def n_outputs(dls):
    "How many activations a model needs for these DataLoaders."
    return dls.c


def show_path(p, base=None):
    return _data.show_path(p, base)
