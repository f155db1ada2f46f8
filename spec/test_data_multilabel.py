"""Multi-label data (PASCAL 2007): one-hot float targets over the sorted vocab, decoding, shapes (ML-1..4, ML-9)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fixtures
from spec.checks import equal

# fmt: off
VOC = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
       "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]  # FB06 dsets.train.vocab
# fmt: on


@pytest.fixture(scope="module")
def pascal(data_dir):
    return data_dir / "pascal_2007"


@pytest.fixture(scope="module")
def truth(data_dir):
    t = fixtures.truth(data_dir, "pascal_2007")
    return {r["fname"]: r for r in t["rows"]}


def one_hot(labels):
    "The independent formula: 1.0 at VOC.index(label)."
    t = torch.zeros(len(VOC))
    t[[VOC.index(o) for o in labels]] = 1.0
    return t


@pytest.mark.claim("ML-1", "ML-4")
@given(labels=st.lists(st.sampled_from(VOC), max_size=6, unique=True))
def test_one_hot_encoding(backend, labels):
    y = backend.one_hot_labels(labels, VOC)
    assert y.shape == (20,) and y.dtype == torch.float32, f"{labels} -> shape {tuple(y.shape)}, {y.dtype}"
    assert torch.equal(y.as_subclass(torch.Tensor), one_hot(labels)), f"{labels} -> {y.tolist()}"
    assert sorted(backend.decode_labels(y, VOC)) == sorted(labels), f"decode({y.tolist()}) != {labels}"


@pytest.mark.claim("ML-1")
def test_no_label_is_all_zeros(backend):
    y = backend.one_hot_labels([], VOC)
    assert y.shape == (20,) and not y.any(), f"[] -> {y.tolist()}"


@pytest.mark.claim("ML-2")
def test_vocab_is_sorted_union(backend, pascal, truth):
    ds = backend.pascal_datasets(pascal)
    every = sorted({o for r in truth.values() for o in r["labels"]})
    assert list(ds.vocab) == every == VOC, f"vocab {list(ds.vocab)}"
    equal([list(ds.vocab).index(c) for c in ("car", "dog", "person")], [6, 11, 14], "indices")


@pytest.mark.claim("ML-2", "ML-3", "ML-4", "IMPL-14")
def test_items_recover_their_labels(backend, pascal, truth):
    "x is the RGB image at its native size, y a rank-1 float 0/1 vector; vocab[where(y == 1)] gives the csv labels."
    ds = backend.pascal_datasets(pascal)
    vocab = list(ds.vocab)
    for split, valid in ((ds.train, False), (ds.valid, True)):
        for i in range(len(split)):
            x, y = split[i]
            name = x.filename if hasattr(x, "filename") and x.filename else None
            assert x.mode == "RGB" and y.ndim == 1 and len(y) == 20, f"item {i}: {x.mode}, {tuple(y.shape)}"
            assert y.dtype == torch.float32 and set(y.tolist()) <= {0.0, 1.0}, f"y = {y.tolist()}"
            got = sorted(vocab[j] for j in torch.where(y == 1.0)[0].tolist())
            rows = [
                r
                for r in truth.values()
                if r["is_valid"] == valid
                and r["labels"] == got
                and tuple(r["size"]) == x.size
                and (name is None or name.endswith(r["fname"]))
            ]
            assert rows, f"item {i} ({'valid' if valid else 'train'}) labels {got}, size {x.size}: no such row"
    n_valid = sum(r["is_valid"] for r in truth.values())
    assert (len(ds.train), len(ds.valid)) == (len(truth) - n_valid, n_valid), f"split {len(ds.train)}"


@pytest.mark.claim("ML-3")
def test_first_train_item(backend, pascal, truth):
    "The first training row is 000012.jpg (car), the book's head row 4: its native size and its one-hot target."
    x, y = backend.pascal_datasets(pascal).train[0]
    r = truth["000012.jpg"]
    assert x.size == tuple(r["size"]) and torch.equal(y.as_subclass(torch.Tensor), one_hot(["car"])), (
        f"train[0] = ({x.size}, {y.tolist()}), want ({r['size']}, car)"
    )


@pytest.mark.claim("ML-3", "ML-2")
@pytest.mark.real_data
def test_real_first_train_item(backend, real_data):
    ds = backend.pascal_datasets(real_data / "pascal_2007")
    x, y = ds.train[0]
    assert list(ds.vocab) == VOC, f"vocab {list(ds.vocab)}"
    assert x.size == (500, 375) and x.mode == "RGB" and y.shape == (20,), f"({x.size}, {tuple(y.shape)})"


@pytest.mark.claim("ML-9")
def test_multilabel_loss_default(backend, pascal):
    dls = backend.pascal_dls(pascal, bs=4, size=64)
    x, y = dls.one_batch()
    assert repr(dls.loss_func) == "FlattenedLoss of BCEWithLogitsLoss()", f"loss {dls.loss_func!r}"
    assert tuple(y.shape) == (4, 20) and y.dtype == torch.float32, f"batch y {tuple(y.shape)} {y.dtype}"
    assert backend.n_outputs(dls) == 20, f"ML-2: {backend.n_outputs(dls)} outputs for 20 classes"


@pytest.mark.claim("ML-19")
def test_one_hot_decode_gives_back_the_labels(backend, pascal, truth):
    "Each PASCAL target decodes to its csv labels, in vocab order; all zeros to []; without a vocab, the indices."
    ds = backend.pascal_datasets(pascal)
    for i in range(len(ds.valid)):
        x, y = ds.valid[i]
        got = list(backend.one_hot_decode(y, VOC))
        assert got == sorted(got, key=VOC.index) and got == backend.decode_labels(y, VOC), f"ML-19: item {i}: {got}"
        rows = [r for r in truth.values() if r["is_valid"] and sorted(r["labels"]) == sorted(got)]
        assert rows, f"ML-19: valid item {i} decodes to {got}, which no validation row of train.csv has"
    y = one_hot(["person", "car", "dog"])
    assert list(backend.one_hot_decode(y, VOC)) == ["car", "dog", "person"], "ML-19: labels in vocab order"
    assert list(backend.one_hot_decode(y)) == [6, 11, 14], "ML-19: without a vocab, the indices (ML-2)"
    assert list(backend.one_hot_decode(torch.zeros(20), VOC)) == [] == backend.decode_labels(torch.zeros(20), VOC), (
        "ML-19: no label decodes to []"
    )
