"""Data on impl: Datasets/DataLoaders, splitters, categories, images and points, readers, the four datasets."""

import pickle as _pickle

import impl.data as _data
import impl.transforms as _tfm
from impl.data import (  # noqa: F401
    ColSplitter,
    DataLoader,
    Datasets,
    IndexSplitter,
    RandomSplitter,
    first,
)
from impl.datasets import (  # noqa: F401
    biwi_datasets,
    biwi_dls,
    collab_dls,
    pascal_datasets,
    pascal_dls,
    pets_datasets,
    pets_dls,
)
from impl.readers import (  # noqa: F401
    get_ctr,
    get_image_files,
    img2pose,
    load_image,
    pet_label,
    read_cal,
    read_movielens,
    read_movies,
    read_pascal,
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
    _data.summary(pascal_datasets(path, item_tfms=[*tfms, _tfm.ToTensor()]), bs=bs, out=lines.append)
    return "\n".join(lines)


def n_outputs(dls):
    "How many activations a model needs for these DataLoaders."
    return dls.c


def show_path(p, base=None):
    return _data.show_path(p, base)
