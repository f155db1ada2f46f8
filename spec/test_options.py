"""Every option of impl.data, impl.transforms, impl.datasets and impl.vision (IMPL-30): each keyword argument, given
a non-default value, has the effect its docstring states, checked against the lesson, an independent formula or
fastai's behaviour.

Options already exercised elsewhere with their effect asserted are not repeated here:
- spec/test_differential_data.py: CategoryMap/Categorize/MultiCategorize (sort, add_na), one_hot_decode (vocab),
  RandomSplitter (valid_pct, seed), IndexSplitter, ColSplitter (col), FuncSplitter, ColReader (pref, suff,
  label_delim, a list of cols), RegexLabeller (match), using_attr, get_image_files (recurse), DataLoader (bs,
  shuffle, drop_last), Resize (size, method, train), RandomResizedCrop (min_scale, ratio, val_xtra, max_scale,
  train), Flip (p), create_head (lin_ftrs, ps, pool, concat_pool, first_bn, bn_final, lin_first, y_range),
  create_body (n_in, pretrained, cut), AdaptiveConcatPool2d (size);
- spec/test_data.py and friends: show_path (base), export (pickle_module), collab_dls (item_name), pets/pascal/biwi
  size and bs, vision_learner (n_out, pretrained, y_range, n_in, loss_func, metrics, head options).
The rest is here, impl only (our contract), with impl's DataLoader defaults (IMPL-54) and IMPL_QUIET=0 (IMPL-38).
"""

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

import fixtures
import impl.data as D
import impl.datasets as DS
import impl.readers as R
import impl.transforms as T
import impl.vision as V
from spec.backends import get
from spec.checks import equal
from spec.tiny import make, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def ints(xs):
    return [int(x) for x in xs]


def letters(n=10):
    return [chr(97 + i) for i in range(n)]


# ---------------------------------------------------------------- Pipeline, Datasets, summary
@pytest.mark.claim("IMPL-30")
def test_datasets_options():
    "A generator as items, a bare function as a pipeline, n_inp, negative indices, decode through the pipelines."
    cat = T.Categorize(["y", "x"])
    ds = D.Datasets((c for c in "abc"), [str.upper, [lambda o: "x" if o < "b" else "y", cat]])
    assert len(ds) == 3 and ds[0] == ("A", torch.tensor(0)) and ds[-1] == ("C", torch.tensor(1)), f"{ds[0]}"
    assert ds.decode(ds[2]) == ("C", "y"), f"decode undoes Categorize only: {ds.decode(ds[2])}"
    equal(D.Datasets(letters(), [[str.upper]] * 3).n_inp, 2, "n_inp = number of pipelines - 1")
    with pytest.raises(IndexError, match="index 3 out of range for 3 items"):
        ds[3]
    with pytest.raises(IndexError, match="no split 1"):
        ds.subset(1)
    with pytest.raises(ValueError, match="splits: index 12 out of range for 10 items"):
        D.Datasets(letters(), splits=[[0], [12]])
    with pytest.raises(ValueError, match="splits: index 10 out of range for 10 items"):  # one past the end
        D.Datasets(letters(), splits=[[0], [10]])
    with pytest.raises(TypeError, match="tfms must be a list of pipelines"):
        D.Datasets(letters(), str.upper)


@pytest.mark.claim("IMPL-30")
def test_item_tfms_know_train_from_valid():
    "item_tfms see whole items, with train=True on the training split only."
    seen = []

    class Spy(T.ItemTfm):
        def __call__(self, t, train=False):
            seen.append(train)
            return (*t, train)

    ds = D.Datasets(letters(4), splits=[[0, 1], [2, 3]], item_tfms=[Spy()])
    assert ds.train[0] == ("a", True) and ds.valid[1] == ("d", False) and ds[0] == ("a", False), f"{seen}"


@pytest.mark.claim("IMPL-30")
def test_dataloaders_options():
    "after_batch maps every batch; device moves it; vocab, c, loss_func, classes reach the DataLoaders; workers."
    ds = D.Datasets(list(range(10)), [[float]], splits=[list(range(6)), list(range(6, 10))], vocab=["p", "q", "r"])
    dls = ds.dataloaders(bs=4, after_batch=[lambda b: tuple(o * 10 for o in b)], loss_func="L", classes={"u": [1]})
    equal(ints(next(iter(dls.valid))[0]), [60, 70, 80, 90], "after_batch was not applied")
    equal((dls.vocab, dls.c, dls.loss_func, dls.classes), (["p", "q", "r"], 3, "L", {"u": [1]}), "kw")
    assert D.Datasets(list(range(4)), [[float]], splits=[[0, 1], [2, 3]]).dataloaders(bs=2, c=7).c == 7, "c wins"
    b = ds.dataloaders(bs=4, device="meta").valid.one_batch()
    assert b[0].device.type == "meta", f"device='meta' left the batch on {b[0].device}"
    dls = ds.dataloaders(bs=4, num_workers=1)
    assert dls.valid.dl.num_workers == 1 and ints(next(iter(dls.valid))[0]) == [6, 7, 8, 9], "num_workers"
    assert dls.to("meta") is dls and dls.valid.one_batch()[0].device.type == "meta", "DataLoaders.to"
    equal((dls.bs, len(dls), dls[1] is dls.valid, dls.device), (4, 2, True, "meta"), "DataLoaders API")


@pytest.mark.claim("IMPL-30")
def test_dataloader_options():
    "batch_size is bs; collate_fn replaces collate; a bad bs and an empty loader say what is wrong."
    dl = D.DataLoader(letters(), batch_size=3, collate_fn=lambda b: "".join(b))
    assert (dl.bs, list(dl)) == (3, ["abc", "def", "ghi", "j"]), f"batch_size / collate_fn: {list(dl)}"
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="bs must be a positive int"):
            D.DataLoader(letters(), bs=bad)
    with pytest.raises(ValueError, match=r"no batch: 2 items with bs=3, drop_last=True"):
        D.DataLoader(letters(2), bs=3, drop_last=True).one_batch()
    assert D.first([]) is None and D.first(iter("xy")) == "x", "first"
    dls = D.DataLoaders.from_dsets(list(range(7)), list(range(7, 12)), bs=3, device="meta", vocab=["a"])
    assert [len(b) for b in dls.train] == [3, 3] and [len(b) for b in dls.valid] == [3, 2], "from_dsets(bs=3)"
    assert dls.valid.one_batch().device.type == "meta" and dls.c == 1, "from_dsets(device, vocab)"
    with pytest.raises(ValueError, match="needs a train and a valid DataLoader"):
        D.DataLoaders(dl)


@pytest.mark.claim("IMPL-30")
def test_collate_kinds():
    "numpy arrays stack as tensors, numbers become a tensor, strings a tuple; unequal shapes and PIL images are errors."
    b = D.collate([(np.ones(2, np.float32), 1, "a"), (np.zeros(2, np.float32), 2, "b")])
    assert torch.equal(b[0], torch.tensor([[1.0, 1.0], [0.0, 0.0]])) and ints(b[1]) == [1, 2] and b[2] == ("a", "b")
    with pytest.raises(ValueError, match=r"^cannot collate tensors of shapes \[\(2,\), \(3,\)\]: add an item "
                       r"transform \(Resize, RandomResizedCrop\) so every item has the same size \(T:L1017\)$"):
        D.collate([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(ValueError, match=r"^cannot collate PIL images: add ToTensor\(\) to the item transforms$"):
        D.collate([Image.new("RGB", (2, 2))] * 2)


@pytest.mark.claim("IMPL-30")
def test_summary_bs_and_out(data_dir):
    lines = []
    ds = DS.pascal_datasets(data_dir / "pascal_2007", item_tfms=[T.RandomResizedCrop(32), T.ToTensor()])
    x, y = D.summary(ds, bs=2, out=lines.append)
    assert tuple(x.shape) == (2, 3, 32, 32) and tuple(y.shape) == (2, 20), f"summary(bs=2) collated {x.shape}"
    assert any(re.match(r"collated 2 items", s) for s in lines), f"out= did not get the lines: {lines}"


# ---------------------------------------------------------------- splitters, categories
@pytest.mark.claim("IMPL-30")
def test_splitter_arguments_are_checked():
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="valid_pct must be in"):
            D.RandomSplitter(bad)
    df = pd.DataFrame({"a": [1, 2], "v": [True, False]})
    with pytest.raises(ValueError, match=r"no column 'is_valid'; columns are \['a', 'v'\]"):
        D.ColSplitter()(df)
    with pytest.raises(ValueError, match="no column 5"):
        D.ColSplitter(5)(df)
    equal(ints(D.ColSplitter(-1)(df)[1]), [0], "a negative position counts from the end")
    equal(ints(D.ColSplitter(-2)(df.iloc[:, ::-1])[1]), [0], "-(number of columns) is the first column")
    with pytest.raises(ValueError, match="no column 2"):
        D.ColSplitter(2)(df)  # one past the last column
    with pytest.raises(TypeError, match="ColSplitter needs a DataFrame, got list"):
        D.ColSplitter()([1, 2])
    with pytest.raises(ValueError, match="IndexSplitter: index 4 out of range for 3 items"):
        D.IndexSplitter([4])(letters(3))
    with pytest.raises(ValueError, match="IndexSplitter: index 3 out of range for 3 items"):
        D.IndexSplitter([0, 3])(letters(3))
    rows = D.FuncSplitter(lambda r: r["a"] > 1)(df)  # deliberate: a DataFrame's rows (fastai: its column names)
    assert ints(rows[1]) == [1], f"FuncSplitter on a DataFrame sees rows: {rows}"


@pytest.mark.claim("IMPL-30")
def test_person_splitter_person(data_dir):
    items = R.get_image_files(data_dir / "biwi_head_pose")
    tr, va = D.PersonSplitter(person="02")(items)
    assert [items[i].parent.name for i in va] == ["02"] * len(va) and va, "person='02' is the validation set"
    assert sorted(tr + va) == list(range(len(items))) and "02" not in {items[i].parent.name for i in tr}, (
        "PersonSplitter: the training set is every other frame")
    with pytest.raises(ValueError, match="no frame of person '2'"):
        D.PersonSplitter(2)(items)  # folder names are strings: '02', not 2


@pytest.mark.claim("IMPL-30")
def test_categorize_from_labels_options():
    c = T.Categorize.from_labels(iter(["b", "a", "b"]), sort=False, add_na=True)
    assert list(c.vocab) == ["#na#", "b", "a"] and int(c("?")) == 0 and c.decode(2) == "a", f"{c.vocab}"
    m = T.MultiCategorize.from_labels([["b"], [], ["c", "a"]], add_na=True)
    assert list(m.vocab) == ["#na#", "a", "b", "c"] and m([]).tolist() == [0.0] * 4, f"{m.vocab}"
    with pytest.raises(TypeError, match="needs a list of labels, got the string 'a b'"):
        m("a b")


# ---------------------------------------------------------------- points, images and item transforms
@pytest.mark.claim("IMPL-30")
def test_point_helpers():
    p = torch.tensor([[10.0, 30.0]])
    sc = T.PointScaler()
    _, y = sc((Image.new("RGB", (40, 60)), T.TensorPoint.create(p)))
    assert torch.allclose(y, torch.tensor([[10 * 2 / 40 - 1, 30 * 2 / 60 - 1]])), f"{y}"
    assert torch.allclose(sc.decode(y), p) and torch.allclose(sc.decode(y, size=(80, 120)), 2 * p), (
        "PointScaler.decode(size=...) unscales by the given (w, h)"
    )
    x = torch.arange(6.0).reshape(1, 2, 3)
    assert torch.equal(T.flip_lr(x), x.flip(-1)), "flip_lr without points mirrors the image only"
    with pytest.raises(ValueError, match="PointScaler: the item has no PIL image"):
        sc((T.TensorPoint.create(p),))


@pytest.mark.claim("IMPL-30")
def test_resize_arguments():
    img = Image.new("L", (30, 20))
    assert T.Resize(8)((img,))[0].size == (8, 8) and T.Resize((8, 12))((img,))[0].size == (12, 8), "size"
    with pytest.raises(ValueError, match="method must be 'crop' or 'squish', got 'pad'"):
        T.Resize(8, method="pad")
    with pytest.raises(ValueError, match="need 0 < min_scale <= max_scale <= 1"):
        T.RandomResizedCrop(8, min_scale=0.9, max_scale=0.5)
    with pytest.raises(ValueError, match="the item has no PIL image"):
        T.Resize(8)((torch.zeros(3, 4, 4),))
    t = T.ToTensor()((img, 5))
    assert t[1] == 5 and t[0].shape == (1, 20, 30) and t[0].dtype == torch.float32, "ToTensor keeps L as 1 ch"


# ---------------------------------------------------------------- the dataset builders' options
@pytest.mark.claim("IMPL-30")
def test_pets_builder_options(data_dir):
    pets = data_dir / "oxford-iiit-pet"
    n = fixtures.truth(data_dir, "oxford-iiit-pet")["n_images"]
    ds = DS.pets_datasets(pets, seed=7, valid_pct=0.5, item_tfms=[T.Resize(16), T.ToTensor()])
    g = torch.Generator().manual_seed(7)
    want = torch.randperm(n, generator=g).tolist()[: int(0.5 * n)]
    equal(ds.splits[1], want, "pets_datasets(seed=7, valid_pct=0.5): not randperm after manual_seed(7)")
    assert tuple(ds.valid[0][0].shape) == (3, 16, 16), f"item_tfms not applied: {ds.valid[0][0].shape}"
    dls = DS.pets_dls(pets, bs=4, size=24, seed=7, valid_pct=0.5, min_scale=0.9, device="meta", classes="k")
    rrc = dls.train.dataset.item_tfms[0]
    assert (rrc.min_scale, rrc.size) == (0.9, (24, 24)), f"pets_dls(min_scale=0.9, size=24): {rrc.__dict__}"
    assert len(dls.valid.dataset) == int(0.5 * n) and dls.classes == "k", "valid_pct / **kw"
    equal(dls.valid.one_batch()[0].device.type, "meta", "pets_dls(device='meta')")


@pytest.mark.claim("IMPL-30")
def test_pascal_builder_options(data_dir):
    ds = DS.pascal_datasets(data_dir / "pascal_2007", item_tfms=[T.Resize(8, method="squish"), T.ToTensor()])
    equal(tuple(ds.train[0][0].shape), (3, 8, 8), "pascal_datasets(item_tfms=...)")
    dls = DS.pascal_dls(data_dir / "pascal_2007", bs=2, size=16, min_scale=0.6, device="meta")
    rrc = dls.train.dataset.item_tfms[0]
    assert (rrc.min_scale, rrc.size) == (0.6, (16, 16)) and dls.valid.one_batch()[0].device.type == "meta", (
        f"pascal_dls(size=16, min_scale=0.6, device='meta'): {(rrc.min_scale, rrc.size)}")


@pytest.mark.claim("IMPL-30")
def test_biwi_builder_options(data_dir):
    """valid_person picks the validation folder; augment=False gives deterministic training items whose point is the
    scaled centre; an int size is square; item_tfms reach the items."""
    root, t = data_dir / "biwi_head_pose", fixtures.truth(data_dir, "biwi_head_pose")
    ds = DS.biwi_datasets(root, valid_person="01", item_tfms=[T.PointScaler()])
    equal({ds.items[i].parent.name for i in ds.splits[1]}, {"01"}, "biwi_datasets(valid_person='01')")
    x, y = ds.valid[0]
    w, h = x.size
    ctr = t["frames"][f"01/{ds.items[ds.splits[1][0]].name}"]["ctr"]
    assert torch.allclose(y, torch.tensor([[ctr[0] * 2 / w - 1, ctr[1] * 2 / h - 1]]), atol=1e-4), f"{y}"
    dls = DS.biwi_dls(root, bs=2, size=32, valid_person="02", augment=False)
    x1, y1 = D.collate([dls.train.dataset[i] for i in range(3)])
    x2, y2 = D.collate([dls.train.dataset[i] for i in range(3)])
    assert torch.equal(x1, x2) and torch.equal(y1, y2), "augment=False still changes training items"
    assert tuple(x1.shape) == (3, 3, 32, 32), f"biwi_dls(size=32) gives {tuple(x1.shape)}"
    names = [dls.train.dataset.items[i] for i in dls.train.dataset.idxs[:3]]
    ctrs = torch.tensor([[t["frames"][f"{f.parent.name}/{f.name}"]["ctr"]] for f in names])
    want = ctrs / torch.tensor([320.0, 240.0]) - 1  # x * 2 / 640 - 1, y * 2 / 480 - 1
    assert torch.allclose(y1, want, atol=1e-4), "augment=False: the point is the scaled centre"
    equal({dls.valid.dataset.items[i].parent.name for i in dls.valid.dataset.idxs}, {"02"}, "valid_person")


@pytest.mark.claim("IMPL-30")
def test_collab_builder_options():
    "user_name / item_name / rating_name pick columns by name; seed gives the same split; valid_pct its size."
    df = pd.DataFrame({"stars": [1.0, 2, 3, 4, 5] * 4, "who": list("abcde") * 4, "what": list("xxyyz") * 4})
    dls = DS.collab_dls(df, bs=2, valid_pct=0.25, seed=3, user_name="who", item_name="what", rating_name="stars")
    assert dls.classes == {"who": ["#na#", *"abcde"], "what": ["#na#", "x", "y", "z"]}, f"{dls.classes}"
    equal(len(dls.valid.dataset), 5, "valid_pct=0.25 of 20 rows")
    x, y = D.collate([dls.valid.dataset[i] for i in range(5)])
    rows = df.iloc[dls.valid.dataset.idxs]
    equal(ints(x[:, 0]), [1 + "abcde".index(u) for u in rows.who], "users by name")
    equal(y[:, 0].tolist(), rows.stars.tolist(), "ratings from 'stars'")
    again = DS.collab_dls(df, bs=2, valid_pct=0.25, seed=3, user_name="who", item_name="what", rating_name="stars")
    equal(again.valid.dataset.idxs, dls.valid.dataset.idxs, "seed=3 twice gives two splits")
    with pytest.raises(ValueError, match=r"no column\(s\) \['nobody'"):
        DS.collab_dls(df, user_name="nobody")
    by_position = DS.collab_dls(df[["who", "what", "stars"]], bs=2, device="meta", item_name=None)
    equal(by_position.classes, dls.classes, "item_name=None takes the columns by position (CF-6)")
    equal(by_position.valid.one_batch()[0].device.type, "meta", "collab_dls(device='meta')")


# ---------------------------------------------------------------- vision
@pytest.mark.claim("IMPL-30")
def test_tiny_resnet_options():
    m = V.tiny_resnet(widths=(4, 8, 12, 16), layers=(1, 2, 1, 3), num_classes=5)
    equal([m.conv1.out_channels, m.layer4[-1].conv2.out_channels, m.fc.out_features], [4, 16, 5], "widths")
    equal([len(getattr(m, f"layer{i}")) for i in range(1, 5)], [1, 2, 1, 3], "layers")
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in m.state_dict().items()}
    m2 = V.tiny_resnet(widths=(4, 8, 12, 16), layers=(1, 2, 1, 3), num_classes=5, weights=state)
    assert bool((m2.conv1.weight == 0.5).all()), "weights= a state dict is loaded"
    with pytest.raises(ValueError, match="tiny_resnet has no ImageNet weights"):
        V.tiny_resnet(weights="DEFAULT")
    with pytest.raises(ValueError, match="widths and layers need 4 values"):
        V.tiny_resnet(widths=(4, 8))


@pytest.mark.claim("IMPL-30")
def test_normalize_and_add_norm():
    n = V.Normalize.from_stats([1.0, 2.0], [2.0, 4.0])
    x = torch.ones(1, 2, 1, 1) * 5
    (got, label) = n((x, torch.tensor([3])))
    assert got.flatten().tolist() == [2.0, 0.75] and label.tolist() == [3], "(x - mean) / std on images only"
    assert torch.equal(n.decode((got,))[0], x), "decode undoes it"
    dls = D.DataLoaders.from_dsets([0], [0])
    V.add_norm(dls, V.imagenet_stats, pretrained=False)
    V.add_norm(dls, V.imagenet_stats, pretrained={"w": 1}, n_in=1)
    equal(dls.train.after_batch, [], "no Normalize unpretrained or for n_in != 3 channels")
    V.add_norm(dls, V.imagenet_stats, pretrained={"w": 1})
    V.add_norm(dls, V.imagenet_stats, pretrained={"w": 1})
    equal([type(f) for f in dls.valid.after_batch], [V.Normalize], "added once per loader")


@pytest.mark.claim("IMPL-30")
def test_head_init_body_loading_and_features(tmp_path):
    head = V.init_head(V.create_head(8, 3), init=nn.init.ones_)
    lins, bns = [m for m in head if isinstance(m, nn.Linear)], [m for m in head if isinstance(m, nn.BatchNorm1d)]
    assert all(bool((m.weight == 1).all()) for m in lins), "init_head(init=ones_)"
    assert all(bool((m.bias == 1e-3).all()) for m in bns), "init_head leaves norms alone"
    m = V.tiny_resnet(widths=(4, 4, 4, 4))
    state = {k: v for k, v in m.state_dict().items() if not k.startswith("fc.")}
    torch.save(state, tmp_path / "body.pth")
    m2 = V.load_body(V.tiny_resnet(widths=(4, 4, 4, 4)), str(tmp_path / "body.pth"))
    assert torch.equal(m2.conv1.weight, m.conv1.weight), "load_body from a path"
    with pytest.raises(ValueError, match="does not fit the arch"):
        V.load_body(V.tiny_resnet(widths=(8, 8, 8, 8)), state)
    with pytest.raises(TypeError, match="pretrained must be a state dict or a path"):
        V.load_body(m, 3)
    with pytest.raises(ValueError, match="n_in must be an int >= 1"):
        V.adapt_first_conv(m.conv1, 0, True)
    body = V.create_body(V.tiny_resnet(widths=(4, 4, 4, 6)), n_in=1, pretrained=False).train()
    assert V.n_features(body, n_in=1, size=32) == 6 and body.training, "n_features(n_in=1, size=32)"
    with pytest.raises(TypeError, match="cut must be an int or a function"):
        V.create_body(V.tiny_resnet(widths=(4, 4, 4, 4)), cut="layer2")


@pytest.mark.claim("IMPL-30")
def test_vision_model_and_learner_options(data_dir):
    m = V.create_vision_model(V.tiny_resnet, 4, cut=-3, concat_pool=False)
    assert len(m[0]) == 7 and isinstance(m[1][0], nn.AdaptiveAvgPool2d), "cut=-3, concat_pool=False"
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['colour'\]"):
        V.create_vision_model(V.tiny_resnet, 4, colour=1)
    dls = DS.pets_dls(data_dir / "oxford-iiit-pet", bs=4, size=32)
    learn = V.vision_learner(dls, V.tiny_resnet, pretrained=V.tiny_resnet().state_dict(), normalize=False,
                             splitter=lambda m: [V.params(m[0]), V.params(m[1])])
    assert not any(isinstance(f, V.Normalize) for f in dls.train.after_batch), "normalize=False"
    assert len(learn.groups) == 2, f"splitter= gives {len(learn.groups)} groups, expected 2"
    with pytest.raises(ValueError, match="y_range must be"):
        V.vision_learner(dls, V.tiny_resnet, y_range=(0, float("inf")))
    with pytest.raises(ValueError, match="n_out could not be inferred"):
        V.vision_learner(D.DataLoaders.from_dsets([0], [0], loss_func=nn.MSELoss()), V.tiny_resnet)
    equal(pickle.loads(pickle.dumps(T.RegexLabeller("(a)")))("xa"), "a", "a labeller pickles")


@pytest.mark.claim("IMPL-30")
def test_vision_learner_defaults_and_pass_through(data_dir):
    """vision_learner's defaults: random weights, nothing frozen, a 3-channel first conv; n_out=1 is allowed; metrics,
    cut, lin_first and Learner keywords reach the learner and the model; the default tiny_resnet has one block per
    stage and a 1000-way fc on its last width; lin_bn_drop's defaults are BatchNorm then a bias-free Linear."""
    dls = DS.pets_dls(data_dir / "oxford-iiit-pet", bs=4, size=32)
    learn = V.vision_learner(dls, V.tiny_resnet)
    assert all(p.requires_grad for p in learn.model.parameters()), "not pretrained: nothing frozen"
    assert learn.model[0][0].in_channels == 3, "n_in default 3"
    acc = lambda o, y: (o.argmax(1) == y).float().mean()  # noqa: E731
    learn = V.vision_learner(dls, V.tiny_resnet, n_out=1, loss_func=nn.MSELoss(), metrics=[acc], cut=-3,
                             lin_first=True, wd=0.25)
    assert learn.metrics == [acc] and learn.wd == 0.25, "metrics and Learner keywords pass through"
    assert len(learn.model[0]) == 7 and learn.model[1][-1].out_features == 1, "cut=-3, n_out=1"
    kinds = [type(m).__name__ for m in learn.model[1] if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    assert kinds[:2] == ["Linear", "BatchNorm1d"], f"lin_first=True: the head's layers {kinds}"
    m = V.tiny_resnet()
    equal([len(getattr(m, f"layer{i}")) for i in range(1, 5)] + [m.fc.in_features, m.fc.out_features],
          [1, 1, 1, 1, 128, 1000], "tiny_resnet defaults")
    equal([getattr(m, f"layer{i}")[0].conv1.stride[0] for i in range(1, 5)], [1, 2, 2, 2], "stage strides")
    equal([type(x).__name__ for x in V.lin_bn_drop(4, 2)], ["BatchNorm1d", "Linear"], "lin_bn_drop(4, 2)")
    assert V.lin_bn_drop(4, 2)[1].bias is None, "no bias after a BatchNorm"


# ---------------------------------------------------------------- error branches, reprs (branch coverage, issue 10)
@pytest.mark.claim("IMPL-5")
@pytest.mark.parametrize("call, exc, msg", [
    (lambda: V.create_head(8, 0), ValueError, r"^n_out must be a positive int, got 0$"),
    (lambda: V.create_head(8, None), ValueError, r"^n_out must be a positive int, got None$"),
    (lambda: V.load_body(V.tiny_resnet(), {**V.tiny_resnet().state_dict(), "extra.weight": torch.zeros(1)}),
     ValueError, r"^pretrained state dict does not fit the arch: missing/unexpected \['extra\.weight'\]$"),
    (lambda: V.load_body(V.tiny_resnet(), {k: v for k, v in V.tiny_resnet().state_dict().items()
                                           if k != "conv1.weight"}),
     ValueError, r"^pretrained state dict does not fit the arch: missing/unexpected \['conv1\.weight'\]$"),
    (lambda: V.create_body(nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1)), n_in=2), ValueError,
     r"^first conv has 1 input channels, expected 3$"),
    (lambda: V.create_body(nn.Sequential(nn.Linear(8, 4), nn.AdaptiveAvgPool2d(1)), n_in=1), TypeError,
     r"^n_in=1 needs a Conv2d first layer, got Linear$"),
    (lambda: V.vision_learner(D.DataLoaders.from_dsets([0], [0]), V.tiny_resnet, n_out=2), ValueError,
     r"^loss_func is None and dls has no loss_func; pass loss_func$"),
], ids=["head-n-out-0", "head-n-out-none", "body-unexpected", "body-missing", "conv-1-channel", "no-conv",
        "no-loss-func"])
def test_vision_builders_name_what_is_wrong(call, exc, msg):
    "create_head, load_body, create_body and vision_learner: the error's type and a message naming the argument."
    with pytest.raises(exc, match=msg):
        call()


@pytest.mark.claim("IMPL-30")
def test_default_split_reprs_and_the_identity_item_tfm():
    """An arch without model_meta gets fastai's default_split (body, head); Pipeline, Datasets and Normalize reprs
    show what they hold; ItemTfm itself returns the item as it is."""

    def arch(weights=None):  # not in model_meta: cut before the last pooling child, default_split
        return V.tiny_resnet(widths=(4, 4, 4, 4))

    learn = V.vision_learner(D.DataLoaders.from_dsets([0], [0]), arch, n_out=2, loss_func=nn.MSELoss())
    want = [[id(p) for p in learn.model[0].parameters()], [id(p) for p in learn.model[1].parameters()]]
    assert [[id(p) for p in g] for g in learn.groups] == want, "default_split: [body, head]"
    equal(repr(D.Pipeline([str.upper, str.strip])), "Pipeline(['upper', 'strip'])", "Pipeline repr")
    ds = D.Datasets(letters(5), [[str.upper], [str.lower]], splits=[[0, 1, 2], [3, 4]])
    equal([repr(ds), repr(ds.valid)], ["Datasets(5 items, 2 pipeline(s), split None)",
                                       "Datasets(2 items, 2 pipeline(s), split 1)"], "Datasets repr")
    equal(repr(V.Normalize([1.0, 2.0], [2.0, 4.0])), "Normalize(mean=[1.0, 2.0], std=[2.0, 4.0])", "Normalize repr")
    t = ("a", 1)
    assert T.ItemTfm()(t) is t and T.ItemTfm()(t, train=True) is t, "ItemTfm is the identity"


def _pascal_csv(tmp_path, text):
    d = tmp_path / "pascal"
    d.mkdir()
    (d / "train.csv").write_text(text)
    return d


def _pose(tmp_path, tz):
    "A BIWI frame name whose pose file puts the head centre at depth tz (the image itself is not read)."
    (tmp_path / "frame_00001_pose.txt").write_text(f"1 0 0 \n0 1 0 \n0 0 1 \n\n10 20 {tz} \n\n")
    return tmp_path / "frame_00001_rgb.jpg"


CAL = [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]


@pytest.mark.claim("IMPL-6")
@pytest.mark.parametrize("call, exc, msg", [
    (lambda d: R.read_pascal(d), FileNotFoundError, r"^{d}/train\.csv: no such csv file$"),
    (lambda d: R.read_cal(d / "rgb.cal"), FileNotFoundError, r"^{d}/rgb\.cal: no such calibration file$"),
    (lambda d: R.read_pose(d / "frame_00001_pose.txt"), FileNotFoundError,
     r"^{d}/frame_00001_pose\.txt: no such file$"),
    (lambda d: R.read_ratings(d), FileNotFoundError, r"^{d}/u\.data: no such file$"),
    (lambda d: R.read_movies(d / "u.item"), FileNotFoundError, r"^{d}/u\.item: no such file$"),
    (lambda d: R.read_pascal(_pascal_csv(d, 'fname,labels,is_valid\na.jpg,dog,False\n"b.jpg"x,cat,True\n')),
     ValueError, r"^{d}/pascal/train\.csv:3: not a readable csv \("),
    (lambda d: R.read_pascal(_pascal_csv(d, "fname,labels,is_valid\na.jpg,dog,False\n,cat,False\n")), ValueError,
     r"^{d}/pascal/train\.csv:3: empty fname$"),
    (lambda d: R.get_ctr(_pose(d, 0), cal=CAL), ValueError,
     r"^{d}/frame_00001_pose\.txt: head depth tz must be > 0, got 0\.0$"),
    (lambda d: R.get_ctr(_pose(d, -800), cal=CAL), ValueError,
     r"^{d}/frame_00001_pose\.txt: head depth tz must be > 0, got -800\.0$"),
], ids=["no-train-csv", "no-rgb-cal", "no-pose", "no-u-data", "no-u-item", "csv-bad-quote", "empty-fname", "tz-0",
        "tz-negative"])
def test_readers_name_the_missing_or_bad_file(tmp_path, call, exc, msg):
    "A missing file is a FileNotFoundError naming it; an unreadable csv line, an empty fname, tz <= 0: ValueError."
    with pytest.raises(exc, match=msg.replace("{d}", re.escape(str(tmp_path)))):
        call(tmp_path)
    ok = tmp_path / "ok"
    ok.mkdir()
    assert R.get_ctr(_pose(ok, 1000), cal=CAL).tolist() == [325.0, 250.0], "x = 10 * 500 / 1000 + 320, y = 20 * ..."


# ---------------------------------------------------------------- summary's text, reprs, the builders' defaults
class Tag:
    "A callable object without a __name__: summary and Pipeline's repr name it by its class or repr."

    def __call__(self, o):
        return o.upper()

    def __repr__(self):
        return "Tag()"


class TrainFlag(T.ItemTfm):
    "Appends the train flag the item transform was called with."

    def __call__(self, t, train=False):
        return (*t, train)


def _small_image(o):
    return Image.new("L", (3, 2))  # 3 wide, 2 high


@pytest.mark.claim("IMPL-43")
def test_summary_text_names_each_step():
    "Every line of summary: the first training item, each pipeline function, each item transform, the batch."
    ds = D.Datasets(letters(8), [[_small_image], [Tag(), str.lower]], splits=[[2, 3, 4, 5, 6, 7], [0, 1]],
                    item_tfms=[T.ToTensor(), TrainFlag()])
    lines = []
    b = D.summary(ds, out=lines.append)
    img = "Tensor of shape (1, 2, 3) torch.float32"
    equal(lines, ["8 items; splits [6, 2]; first training item: 'c'",
                  "  pipeline 0: _small_image -> PIL image mode=L size=3x2",
                  "  pipeline 1: Tag -> 'C'",
                  "  pipeline 1: lower -> 'c'",
                  f"  item tfm ToTensor -> ({img}, 'c')",
                  f"  item tfm TrainFlag -> ({img}, 'c', True)",
                  "collated 4 items -> (Tensor of shape (4, 1, 2, 3) torch.float32, ('c', 'd', 'e', 'f'), "
                  "Tensor of shape (4,) torch.bool)"], "summary's lines (bs=4 by default)")
    equal(b[2].tolist(), [True] * 4, "the training items' item transforms run in training mode")
    unsplit = D.Datasets(letters(5), [[str.upper]], item_tfms=[TrainFlag()])
    lines = []
    b = D.summary(unsplit, bs=3, out=lines.append)
    equal(lines[0], "5 items; splits [5]; first training item: 'a'", "one split: item 0 of the whole set")
    equal((b[0], b[1].tolist()), (("A", "B", "C"), [True, False, False]),
          "one split: the walked item in training mode, the others as the set gives them (ds[i]: not training)")


@pytest.mark.claim("IMPL-43")
def test_dataloaders_and_pipeline_reprs():
    dls = D.DataLoaders.from_dsets(list(range(6)), list(range(6, 10)), bs=4)
    equal(repr(dls), "DataLoaders(DataLoader(6 items, bs=4, shuffle=True), DataLoader(4 items, bs=4, shuffle=False))",
          "DataLoaders repr")
    equal(repr(D.Pipeline([str.upper, Tag()])), "Pipeline(['upper', Tag()])", "an object without __name__ as itself")


def _randperm_valid(n, seed, pct=0.2):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()[: int(pct * n)]


@pytest.mark.claim("IMPL-44")
def test_from_dsets_and_splitter_defaults():
    torch.manual_seed(0)
    dls = D.DataLoaders.from_dsets(list(range(100)), list(range(100, 150)))
    train, valid = [b.tolist() for b in dls.train], [x for b in dls.valid for x in b.tolist()]
    equal([len(b) for b in train], [64], "from_dsets: bs 64, the first loader drops the last partial batch")
    assert train[0] != list(range(64)) and set(train[0]) <= set(range(100)), "from_dsets: the first loader shuffles"
    equal(valid, list(range(100, 150)), "from_dsets: the second loader in order and complete")
    items = [Path("01/frame_00001_rgb.jpg"), Path("13/frame_00002_rgb.jpg"), Path("13/frame_00003_rgb.jpg")]
    equal(tuple(D.PersonSplitter()(items)), ([0], [1, 2]), "PersonSplitter(): person '13' is validation")


class _Pids:
    "A dataset whose items are the id of the process that loads them."

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return os.getpid()


@pytest.mark.claim("IMPL-54")
def test_dataloader_defaults_bs_64_in_this_process():
    dl = D.DataLoader(list(range(130)))
    equal([len(b) for b in dl], [64, 64, 2], "DataLoader(ds): batches of 64 (fastai's TfmdDL default), in order")
    equal(ints(D.DataLoader(_Pids()).one_batch()), [os.getpid()] * 3, "DataLoader(ds): items loaded in this process")
    dls = D.Datasets(_Pids(), splits=[[0, 1], [2]]).dataloaders(bs=1)
    equal([ints(b[0]) for dl in dls for b in dl], [[os.getpid()]] * 3, "dataloaders(): items loaded in this process")


@pytest.mark.claim("IMPL-54")
@pytest.mark.parametrize("n", [1, 2, 7])
def test_shuffled_dataloader_is_torchs(n):
    "Seeded, a shuffled DataLoader gives torch's DataLoader(shuffle=True) order and leaves torch's RNG as it does."
    def epoch(dl):
        torch.manual_seed(3)
        return [int(x) for b in dl for x in b], torch.rand(1).item()

    got = epoch(D.DataLoader(list(range(n)), bs=3, shuffle=True))
    want = epoch(torch.utils.data.DataLoader(list(range(n)), batch_size=3, shuffle=True))
    equal(got, want, f"{n} items: (order, the next torch.rand) differ from torch's shuffled DataLoader")
    torch.manual_seed(3)
    assert list(D.DataLoader([], shuffle=True)) == [], "an empty dataset: no batch"


@pytest.mark.claim("IMPL-38")
@pytest.mark.parametrize("value", ["0", ""])
def test_impl_quiet_0_or_empty_prints(value, capsys, monkeypatch):
    "IMPL_QUIET set to '0' or '' is not quiet: a fit prints its epoch table, as without IMPL_QUIET."
    monkeypatch.setenv("IMPL_QUIET", value)
    learn, *_ = make(get("impl"), progress=None)
    learn.fit(1, 1e-2)
    out = capsys.readouterr().out
    assert out.split()[:3] == ["epoch", "train_loss", "valid_loss"] and len(out.splitlines()) == 2, (
        f"IMPL_QUIET={value!r}: a one-epoch fit printed {out!r}, not the header and one row")


@pytest.mark.claim("IMPL-44")
def test_pets_defaults(data_dir, tmp_path):
    pets = data_dir / "oxford-iiit-pet"
    n = fixtures.truth(data_dir, "oxford-iiit-pet")["n_images"]
    equal(DS.pets_datasets(pets).splits[1], _randperm_valid(n, 42), "pets_datasets: seed 42, valid_pct 0.2")
    dls = DS.pets_dls(pets)
    equal(dls.valid.dataset.idxs, _randperm_valid(n, 42), "pets_dls: seed 42, valid_pct 0.2")
    equal((dls.bs, tuple(dls.valid.dataset[0][0].shape)), (64, (3, 224, 224)), "pets_dls: bs 64, size 224")
    equal(DS.pets_dls(pets, bs=4, seed=7).valid.dataset.idxs, _randperm_valid(n, 7), "pets_dls(seed=7)")
    root = tmp_path / "pets"  # the real layout: images/ and annotations/trimaps/*.png (not items)
    (root / "images").mkdir(parents=True)
    names = sorted(f.name for f in (pets / "images").iterdir() if f.suffix == ".jpg")[:6]
    for f in names:
        (root / "images" / f).write_bytes((pets / "images" / f).read_bytes())
    (root / "annotations" / "trimaps").mkdir(parents=True)
    Image.new("L", (4, 4)).save(root / "annotations" / "trimaps" / names[0].replace(".jpg", ".png"))
    equal(sorted(f.name for f in DS.pets_datasets(root).items), names, "pets_datasets(root): the images/ folder")


def _tag(b):
    return (*b, "after_batch")


@pytest.mark.claim("IMPL-44")
def test_pascal_defaults_and_keywords(data_dir):
    pascal = data_dir / "pascal_2007"
    dls = DS.pascal_dls(pascal)
    equal((dls.bs, tuple(dls.valid.dataset[0][0].shape)), (64, (3, 128, 128)), "pascal_dls: bs 64, size 128")
    b = DS.pascal_dls(pascal, bs=2, after_batch=[_tag]).valid.one_batch()
    equal((len(b[0]), b[-1]), (2, "after_batch"), "pascal_dls(after_batch=...) reaches the DataLoaders")


@pytest.mark.claim("IMPL-44")
def test_collab_defaults_and_keywords():
    df = pd.DataFrame({"user": [1, 2, 3, 4, 5] * 4, "movie": [10, 10, 20, 20, 30] * 4,
                       "rating": [1.0, 2, 3, 4, 5] * 4, "title": ["Up (2009)", "Up (2009)", "Heat (1995)",
                                                                  "Heat (1995)", "Big (1988)"] * 4})
    dls = DS.collab_dls(df)
    equal(dls.classes, {"user": ["#na#", 1, 2, 3, 4, 5], "title": ["#na#", "Big (1988)", "Heat (1995)", "Up (2009)"]},
          "collab_dls: the item column is 'title' by default")
    equal((dls.bs, dls.c, repr(dls.loss_func)), (64, 1, "FlattenedLoss of MSELoss()"), "collab_dls: bs, c, loss")
    b = DS.collab_dls(df, bs=2, after_batch=[_tag]).train.one_batch()
    equal((tuple(b[0].shape), tuple(b[1].shape), b[-1]), ((2, 2), (2, 1), "after_batch"), "collab_dls(bs=2, **kw)")


def _gradient_biwi(data_dir, tmp_path):
    "The BIWI fixture with every frame replaced by a gradient: red = x / (w - 1), green = y / (h - 1)."
    root = tmp_path / "biwi"
    for f in (data_dir / "biwi_head_pose").rglob("*"):
        dst = root / f.relative_to(data_dir / "biwi_head_pose")
        if f.is_dir():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if f.name.endswith("_rgb.jpg"):
            w, h = Image.open(f).size
            xs, ys = np.meshgrid(np.arange(w) * 255 / (w - 1), np.arange(h) * 255 / (h - 1))
            Image.fromarray(np.stack([xs, ys, 0 * xs], -1).round().astype(np.uint8)).save(dst, quality=95)
        else:
            dst.write_bytes(f.read_bytes())
    return root, (w, h)


def _crop_box(x, frame, k=10):
    """(crop width, crop height) in frame pixels and whether it is mirrored, read from a gradient frame's item x
    (3, H, W): the red difference between columns k and W-1-k spans (W-1-2k) output pixels (edges left out)."""
    (w, h), (H, W) = frame, x.shape[1:]
    sx = (x[0, :, W - 1 - k] - x[0, :, k]).mean().item() * (w - 1) / (W - 1 - 2 * k)  # frame pixels per column
    sy = (x[1, H - 1 - k] - x[1, k]).mean().item() * (h - 1) / (H - 1 - 2 * k)
    return abs(sx) * W, sy * H, sx < 0


@pytest.mark.claim("IMPL-44", "IMPL-45")
def test_biwi_defaults_and_augmentation(data_dir, tmp_path):
    """Default biwi_dls on frames whose colours give the position: training items are random crops of >= 80% of
    the frame with the (240, 320) target's aspect ratio +-5%, half of them mirrored; validation items are the whole
    frame (person 13); an int size crops squares; device and other keywords reach the DataLoaders."""
    root, frame = _gradient_biwi(data_dir, tmp_path)
    torch.manual_seed(0)
    dls = DS.biwi_dls(root)
    equal(dls.bs, 64, "biwi_dls: bs 64")
    equal({dls.valid.dataset.items[i].parent.name for i in dls.valid.dataset.idxs}, {"13"}, "valid_person '13'")
    d = dls.train.dataset
    boxes = [_crop_box(d[i][0], frame) for _ in range(4) for i in range(len(d))]
    ratios, areas = [cw / ch for cw, ch, _ in boxes], [cw * ch / (frame[0] * frame[1]) for cw, ch, _ in boxes]
    r = 320 / 240
    assert min(areas) > 0.78 and max(areas) < 1.01, f"crop areas {min(areas):.3f}..{max(areas):.3f}, want 0.8..1"
    assert r * 0.95 - 0.01 < min(ratios) and max(ratios) < r * 1.05 + 0.01, (
        f"crop ratios {min(ratios):.3f}..{max(ratios):.3f}, want {r * 0.95:.3f}..{r * 1.05:.3f}")
    assert min(ratios) < r * 0.975 and max(ratios) > r * 1.025, f"ratios {sorted(ratios)} do not spread over the range"
    flips = sum(f for *_, f in boxes)
    assert 0.2 < flips / len(boxes) < 0.8, f"{flips} of {len(boxes)} training items mirrored, want about half"
    for i in range(2):
        x, _ = dls.valid.dataset[i]
        cw, ch, flip = _crop_box(x, frame)
        assert tuple(x.shape) == (3, 240, 320) and abs(cw / frame[0] - 1) < 0.01 and abs(ch / frame[1] - 1) < 0.01, (
            f"validation item {i}: a {cw:.1f} x {ch:.1f} crop of the {frame} frame, want all of it")
        assert not flip, "a validation item was mirrored"
    dls = DS.biwi_dls(root, bs=2, size=64, device="meta", after_batch=[_tag])
    cw, ch, _ = _crop_box(dls.train.dataset[0][0], frame)
    assert abs(cw / ch - 1) < 0.06, f"size=64: a {cw:.1f} x {ch:.1f} crop, want a square one (+-5%)"
    b = dls.train.one_batch()
    equal((b[0].device.type, b[-1]), ("meta", "after_batch"), "biwi_dls(device='meta', after_batch=...)")
