"""Model interpretation (T:L26-52): the confusion matrix (rows actual, columns predicted), most_confused, which
data it uses (the validation set, each item once) and the plot. A learner whose model is a fixed lookup table
makes the predictions known in advance; the Pets fixture gives the 37-class case.
"""

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fixtures
from spec.tiny import one_thread  # noqa: F401

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from spec.checks import equal  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

ACTUAL, PREDICTED, ABC = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2], [0, 1, 1, 1, 1, 0, 2, 0, 0, 0], ["a", "b", "c"]


def counts(actual, predicted, n):
    "The confusion matrix by counting (np.add.at): the independent reference."
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(actual, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return cm


@pytest.mark.claim("INT-1")
def test_confusion_matrix_rows_actual_columns_predicted(backend):
    interp = backend.interpretation(backend.lookup_learner(ACTUAL, PREDICTED, ABC))
    cm = np.asarray(interp.confusion_matrix())
    assert cm.tolist() == [[1, 2, 0], [1, 2, 0], [3, 0, 1]], f"{cm.tolist()}"
    assert np.issubdtype(cm.dtype, np.integer), f"dtype {cm.dtype}"
    correct = sum(a == p for a, p in zip(ACTUAL, PREDICTED))
    assert cm.trace() == correct and cm.sum() == len(ACTUAL), f"trace {cm.trace()}, sum {cm.sum()}"


@pytest.mark.claim("INT-2")
def test_most_confused_example(backend):
    interp = backend.interpretation(backend.lookup_learner(ACTUAL, PREDICTED, ABC))
    got = [(a, p, int(n)) for a, p, n in interp.most_confused()]
    assert got == [("c", "a", 3), ("a", "b", 2), ("b", "a", 1)], f"most_confused() {got}"
    got = [(a, p, int(n)) for a, p, n in interp.most_confused(min_val=3)]
    assert got == [("c", "a", 3)], f"most_confused(min_val=3) {got}"


@pytest.mark.claim("INT-1", "INT-2")
@settings(max_examples=8)  # a fastai learner per example (~0.4 s): 8 random tables on every profile
@given(data=st.data())
def test_confusion_counts_and_most_confused_for_any_predictions(backend, data):
    n = data.draw(st.integers(2, 5), label="n classes")
    k = data.draw(st.integers(1, 30), label="n items")
    actual = data.draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k), label="actual")
    predicted = data.draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k), label="predicted")
    min_val = data.draw(st.integers(1, 4), label="min_val")
    vocab = [f"c{i}" for i in range(n)]
    interp = backend.interpretation(backend.lookup_learner(actual, predicted, vocab, bs=3))
    cm, want = np.asarray(interp.confusion_matrix()), counts(actual, predicted, n)
    assert cm.tolist() == want.tolist(), f"{cm.tolist()} != counted {want.tolist()}"
    got = [(a, p, int(c)) for a, p, c in interp.most_confused(min_val)]
    cells = sorted(
        (vocab[i], vocab[j], int(want[i, j])) for i in range(n) for j in range(n) if i != j and want[i, j] >= min_val
    )
    assert sorted(got) == cells, f"most_confused({min_val}) {got}, off-diagonal cells {cells}"
    assert [c for *_, c in got] == sorted((c for *_, c in got), reverse=True), f"not by count: {got}"


@pytest.mark.claim("INT-3", "INT-5")
def test_pets_interpretation_covers_each_validation_item_once(backend, data_dir):
    """On the Pets fixture: 37 breeds, a 37 x 37 matrix whose entries add up to the validation set's size
    (int(0.2 * n) items with RandomSplitter(0.2), batches of 8 that do not divide it)."""
    n = fixtures.truth(data_dir, "oxford-iiit-pet")["n_images"]
    dls = backend.pets_dls(data_dir / "oxford-iiit-pet", bs=8, size=32)
    torch.manual_seed(0)
    learn = backend.vision_learner(dls, backend.tiny_resnet)
    interp = backend.interpretation(learn)
    cm = np.asarray(interp.confusion_matrix())
    n_valid = int(0.2 * n)
    assert len(interp.vocab) == 37 and cm.shape == (37, 37), f"vocab {len(interp.vocab)}, matrix {cm.shape}"
    assert n_valid % 8 and cm.sum() == n_valid, f"matrix sums to {cm.sum()}, validation set has {n_valid}"


@pytest.mark.claim("INT-5")
def test_plot_labels_actual_rows_predicted_columns(backend):
    "plot_confusion_matrix: y axis 'Actual', x axis 'Predicted', ticks labelled with the vocab, counts written in."
    plt.close("all")
    interp = backend.interpretation(backend.lookup_learner(ACTUAL, PREDICTED, ABC))
    interp.plot_confusion_matrix()
    ax = plt.gcf().axes[0]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("Actual", "Predicted"), (
        f"{ax.get_ylabel()}, {ax.get_xlabel()}"
    )
    ticks = ([t.get_text() for t in ax.get_xticklabels()], [t.get_text() for t in ax.get_yticklabels()])
    assert ticks == (ABC, ABC), f"tick labels {ticks}"
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(str(v) for v in [1, 2, 0, 1, 2, 0, 3, 0, 1]), f"cell texts {texts}"
    plt.close("all")


@pytest.mark.claim("INT-4")
@pytest.mark.real_data
@pytest.mark.pretrained
@pytest.mark.cuda
@pytest.mark.slow
def test_real_pets_top_confusions_are_look_alikes(backend, real_data):
    "After resnet34 fine_tune(2) on real Pets: pit bull / staffordshire among the top 3 pairs, Ragdoll / Birman top 5."
    from spec.test_vision import real_pets_fine_tune

    learn = real_pets_fine_tune(backend, real_data)[0]
    top = [frozenset((a, p)) for a, p, _ in backend.interpretation(learn).most_confused(min_val=2)]
    pit = frozenset(("american_pit_bull_terrier", "staffordshire_bull_terrier"))
    cat = frozenset(("Ragdoll", "Birman"))
    assert pit in top[:3] and cat in top[:5], f"INT-4: top pairs {[tuple(t) for t in top[:6]]}"


# ---------------------------------------------------------------- impl's options (IMPL-21)


@pytest.mark.claim("IMPL-21")
def test_impl_interpretation_of_another_loader():
    "ClassificationInterpretation(learn, dl) and from_learner(learn, dl) count that loader's items only."
    from impl.data import DataLoader
    from impl.interpret import ClassificationInterpretation
    from spec.backends.impl_api.apps import lookup_learner

    learn = lookup_learner(ACTUAL, PREDICTED, ABC)
    dl = DataLoader(list(zip(range(4), ACTUAL[:4])), bs=3)  # items 0..3: actual a a a b, predicted a b b b
    want = counts(ACTUAL[:4], PREDICTED[:4], 3).tolist()
    for interp in (ClassificationInterpretation(learn, dl), ClassificationInterpretation.from_learner(learn, dl=dl)):
        cm = interp.confusion_matrix()
        assert cm.tolist() == want == [[1, 2, 0], [0, 1, 0], [0, 0, 0]], f"dl= gives {cm.tolist()}"
        equal([(a, p, int(n)) for a, p, n in interp.most_confused()], [("a", "b", 2)], "most_confused")


@pytest.mark.claim("IMPL-21")
def test_impl_plot_confusion_matrix_options():
    "normalize writes row fractions (2 decimals; 0 for a class with no item), title, cmap and figsize are applied."
    from impl.interpret import ClassificationInterpretation
    from spec.backends.impl_api.apps import lookup_learner

    plt.close("all")
    interp = ClassificationInterpretation(lookup_learner(ACTUAL, PREDICTED, ABC + ["d"]))
    fig = interp.plot_confusion_matrix(normalize=True, title="Pets", cmap="Reds", figsize=(3, 4))
    ax = fig.axes[0]
    rows = [[1, 2, 0, 0], [1, 2, 0, 0], [3, 0, 1, 0], [0, 0, 0, 0]]  # class d: no item
    want = sorted(f"{v / max(sum(r), 1):.2f}" for r in rows for v in r)
    assert sorted(t.get_text() for t in ax.texts) == want, f"normalize texts {[t.get_text() for t in ax.texts]}"
    assert ax.get_title() == "Pets" and ax.images[0].get_cmap().name == "Reds", "title/cmap"
    assert tuple(fig.get_size_inches()) == (3.0, 4.0), f"figsize {fig.get_size_inches()}"
    plt.close("all")


@pytest.mark.claim("IMPL-21")
def test_impl_interpret_errors():
    "min_val < 1 (fastai would list the zeroed diagonal), classes out of range, unequal lengths: a ValueError."
    from impl.interpret import confusion_matrix, most_confused

    cm = confusion_matrix(ACTUAL, PREDICTED, 3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"min_val must be an int >= 1"):
            most_confused(cm, ABC, bad)
    with pytest.raises(ValueError, match=r"predicted classes must lie in \[0, 3\), got 0..3"):
        confusion_matrix([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match=r"^actual classes must lie in \[0, 3\), got -1..1"):
        confusion_matrix([-1, 1], [0, 2], 3)
    with pytest.raises(ValueError, match=r"actual and predicted need as many items, got 2 and 1"):
        confusion_matrix([0, 1], [0], 3)
    equal(confusion_matrix([], [], 2).tolist(), [[0, 0], [0, 0]], "no item")


def cells(ax):
    "The cell texts of a confusion-matrix plot by cell: {(row, col): (text, rgba, ha, va)} (text at x=col, y=row)."
    from matplotlib.colors import to_rgba

    out = {}
    for t in ax.texts:
        x, y = t.get_position()
        out[int(y), int(x)] = (t.get_text(), to_rgba(t.get_color()), t.get_ha(), t.get_va())
    return out


@pytest.mark.claim("IMPL-21")
def test_impl_plot_confusion_matrix_draws_like_fastai():
    """As fastai 2.8 draws it (interpret.py): title 'Confusion matrix', x tick labels at 90 degrees, y at 0,
    'nearest' interpolation, centred cell texts, white where the value is above half the maximum (not at it),
    black elsewhere, y limits (n - 0.5, -0.5) (row 0 at the top)."""
    from matplotlib.colors import to_rgba

    from impl.interpret import ClassificationInterpretation
    from spec.backends.impl_api.apps import lookup_learner

    plt.close("all")
    actual, predicted = [0] * 6 + [1] * 3 + [2] * 2, [0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 2]
    rows = [[4, 2, 0], [1, 2, 0], [0, 1, 1]]  # max 4: only the 4 is above half of it; the 2s are at it
    ax = ClassificationInterpretation(lookup_learner(actual, predicted, ABC)).plot_confusion_matrix().axes[0]
    equal(ax.get_title(), "Confusion matrix", "default title")
    equal([t.get_rotation() for t in ax.get_xticklabels()], [90.0] * 3, "x tick label rotation")
    equal([t.get_rotation() for t in ax.get_yticklabels()], [0.0] * 3, "y tick label rotation")
    equal(ax.images[0].get_interpolation(), "nearest", "interpolation")
    equal(tuple(float(v) for v in ax.get_ylim()), (2.5, -0.5), "ylim")
    white, black = to_rgba("white"), to_rgba("black")
    want = {(i, j): (str(v), white if 2 * v > 4 else black, "center", "center")
            for i, r in enumerate(rows) for j, v in enumerate(r)}
    equal(cells(ax), want, "cell (text, colour, ha, va)")
    plt.close("all")


@pytest.mark.claim("IMPL-21")
def test_impl_plot_confusion_matrix_normalizes_by_row_sums():
    "normalize=True: each count over its row's sum (a row of one item gives 1.00), white above half the new max."
    from matplotlib.colors import to_rgba

    from impl.interpret import ClassificationInterpretation
    from spec.backends.impl_api.apps import lookup_learner

    plt.close("all")
    interp = ClassificationInterpretation(lookup_learner(ACTUAL + [3], PREDICTED + [3], ABC + ["d"]))
    ax = interp.plot_confusion_matrix(normalize=True).axes[0]
    rows = [[1, 2, 0, 0], [1, 2, 0, 0], [3, 0, 1, 0], [0, 0, 0, 1]]  # row sums 3, 3, 4, 1: max fraction 1
    want = {(i, j): (f"{v / sum(r):.2f}", to_rgba("white" if v / sum(r) > 0.5 else "black"), "center", "center")
            for i, r in enumerate(rows) for j, v in enumerate(r)}
    equal(cells(ax), want, "normalized cell (text, colour, ha, va)")
    equal(tuple(float(v) for v in ax.get_ylim()), (3.5, -0.5), "ylim")
    plt.close("all")


@pytest.mark.claim("IMPL-21")
def test_impl_interpretation_default_loader_and_loader_vocab():
    "Without dl the validation loader is interpreted (interp.dl); a loader with its own vocab names the classes."
    from impl.data import DataLoader
    from impl.interpret import ClassificationInterpretation
    from spec.backends.impl_api.apps import lookup_learner

    learn = lookup_learner(ACTUAL, PREDICTED, ABC)
    interp = ClassificationInterpretation(learn)
    assert interp.dl is learn.dls.valid, f"interp.dl is {interp.dl!r}, not dls.valid"
    equal(interp.vocab, ABC, "vocab of the learner's dls")
    dl = DataLoader(list(zip(range(4), ACTUAL[:4])), bs=3)  # items 0..3: actual 0 0 0 1, predicted 0 1 1 1
    dl.vocab = ["x", "y", "z"]  # a loader that carries its vocab, as fastai's do
    interp = ClassificationInterpretation(learn, dl)
    assert interp.dl is dl, f"interp.dl is {interp.dl!r}, not the dl given"
    equal(interp.vocab, ["x", "y", "z"], "vocab of the dl given")
    equal([(a, p, int(n)) for a, p, n in interp.most_confused()], [("x", "y", 2)], "most_confused names")


@pytest.mark.claim("IMPL-21")
def test_impl_most_confused_default_min_val_and_ties_row_major():
    "most_confused(cm, vocab) lists every off-diagonal count >= 1; equal counts in row-major order, as fastai does."
    from impl.interpret import confusion_matrix, most_confused

    cm = confusion_matrix(ACTUAL, PREDICTED, 3)
    equal([(a, p, int(n)) for a, p, n in most_confused(cm, ABC)], [("c", "a", 3), ("a", "b", 2), ("b", "a", 1)],
          "most_confused(cm, vocab) (min_val 1)")
    cm = np.array([[0, 1, 2, 1, 2], [2, 0, 1, 2, 1], [1, 2, 0, 1, 2], [2, 1, 2, 0, 1], [1, 2, 1, 2, 0]])
    v = list("abcde")
    row_major = [(v[i], v[j], int(cm[i, j])) for i in range(5) for j in range(5) if i != j]
    want = sorted(row_major, key=lambda r: -r[2])  # Python's sort is stable: ties stay in row-major order
    equal([(a, p, int(n)) for a, p, n in most_confused(cm, v)], want, "order: count descending, ties row-major")
