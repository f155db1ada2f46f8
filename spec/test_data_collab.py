"""Collaborative-filtering data (MovieLens 100k): u.data and u.item, the merge, the crosstab's gaps, CollabDataLoaders
batches and classes (CF-1, CF-5..9)."""

import numpy as np
import pandas as pd
import pytest
import torch

import fixtures
from spec.checks import equal

BOOK_ITEMS = ["Toy Story (1995)", "GoldenEye (1995)", "Four Rooms (1995)", "Get Shorty (1995)", "Copycat (1995)"]
BOOK_FIRST_TITLE = "'Til There Was You (1997)"  # FB08 dls.classes['title'][1]
NAMES = ["user", "movie", "rating", "timestamp"]


def lesson_ratings(path):
    "The lesson's own reading code (T:L1718, T:L1830)."
    r = pd.read_csv(path / "u.data", delimiter="\t", header=None, names=NAMES)
    m = pd.read_csv(
        path / "u.item", delimiter="|", encoding="latin-1", usecols=(0, 1), names=("movie", "title"), header=None
    )
    return r, m


def split(n, valid_pct=0.2, seed=42):
    "RandomSplitter's rows (torch.manual_seed(seed); randperm): (train, valid)."
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return idx[int(valid_pct * n) :], idx[: int(valid_pct * n)]


@pytest.fixture(scope="module")
def ml(data_dir):
    return data_dir / "ml-100k"


@pytest.fixture(scope="module")
def truth(data_dir):
    return fixtures.truth(data_dir, "ml-100k")


@pytest.fixture(scope="module")
def merged(ml):
    r, m = lesson_ratings(ml)
    return r.merge(m)


# ---------------------------------------------------------------- CF-1, CF-5: files, merge, crosstab
@pytest.mark.claim("CF-1", "IMPL-14")
def test_u_data(backend, ml, truth):
    r = backend.read_ratings(ml)
    want, _ = lesson_ratings(ml)
    pd.testing.assert_frame_equal(r.reset_index(drop=True), want, check_dtype=False, obj="read_ratings")
    assert list(r.columns) == NAMES and len(r) == truth["n_ratings"], f"{list(r.columns)}, {len(r)} rows"
    equal((r.user.nunique(), r.movie.nunique()), (truth["n_users"], truth["n_items"]), "counts")
    assert set(r.rating) <= {1, 2, 3, 4, 5} and r.groupby("user").size().min() >= 20, "ratings or per-user"
    u, i = r.user.to_numpy() - 1, r.movie.to_numpy() - 1
    f = lambda k: np.asarray(truth[k])  # noqa: E731
    clean = truth["mu"] + f("user_bias")[u] + f("item_bias")[i] + (f("user_factors")[u] * f("item_factors")[i]).sum(1)
    assert np.corrcoef(clean, r.rating)[0, 1] > 0.8, "IMPL-14: ratings do not follow the generating factors"
    assert np.abs(np.clip(clean, 1, 5) - r.rating).mean() < 0.5, "IMPL-14: ratings far from the generating model"


@pytest.mark.claim("CF-1", "CF-5")
@pytest.mark.real_data
def test_real_u_data_and_merge(backend, real_data):
    p = real_data / "ml-100k"
    r = backend.read_ratings(p)
    assert (len(r), r.user.nunique(), r.movie.nunique()) == (100000, 943, 1682), f"{len(r)} rows"
    head = [
        (196, 242, 3, 881250949),
        (186, 302, 3, 891717742),
        (22, 377, 1, 878887116),
        (244, 51, 2, 880606923),
        (166, 346, 1, 886397596),
    ]
    assert list(r.head().itertuples(index=False, name=None)) == head, f"head {r.head()}"
    m = backend.read_movielens(p)
    assert tuple(m.iloc[0]) == (196, 242, 3, 881250949, "Kolya (1996)"), f"first merged row {tuple(m.iloc[0])}"
    equal(backend.read_movies(p).title.nunique(), 1664, "unique titles")


@pytest.mark.claim("CF-5")
def test_u_item_and_merge(backend, ml, truth, merged):
    m = backend.read_movies(ml)
    _, want = lesson_ratings(ml)
    pd.testing.assert_frame_equal(m.reset_index(drop=True), want, check_dtype=False, obj="read_movies")
    assert m.title.head().tolist() == BOOK_ITEMS, f"head {m.title.head().tolist()}"
    titles = dict(zip(m.movie, m.title))
    na, dup = truth["non_ascii"], truth["duplicate"]
    assert titles[na["id"]] == na["title"] and not na["title"].isascii(), f"latin-1 title {titles[na['id']]!r}"
    equal([titles[i] for i in dup["ids"]], [dup["title"]] * 2, "the shared title")
    got = backend.read_movielens(ml)
    assert list(got.columns) == NAMES + ["title"] and len(got) == truth["n_ratings"], f"{list(got.columns)}"
    assert all(got.title == got.movie.map(lambda i: truth["titles"][str(i)])), "merged titles disagree"
    pd.testing.assert_frame_equal(got.reset_index(drop=True), merged, check_dtype=False, obj="merge")


@pytest.mark.claim("CF-1")
def test_crosstab_has_gaps(backend, ml):
    r, _ = lesson_ratings(ml)
    ct = backend.top_crosstab(r, 15, 15)
    assert ct.shape == (15, 15), f"shape {ct.shape}"
    top_u = r.user.value_counts()
    assert set(ct.index) == set(top_u.index[:15]) or top_u.iloc[14] == top_u.iloc[15], "not the top users"
    seen = {(u, i): v for u, i, v in zip(r.user, r.movie, r.rating)}
    for u in ct.index:
        for i in ct.columns:
            v = ct.loc[u, i]
            assert (np.isnan(v) and (u, i) not in seen) or v == seen.get((u, i)), f"cell ({u}, {i}) = {v}"
    assert ct.isna().any().any(), "no empty spots"


# ---------------------------------------------------------------- CF-6 .. CF-9: CollabDataLoaders
@pytest.mark.claim("CF-6")
def test_columns_found_by_name(backend, merged):
    "The lesson: columns named user / item / rating are found by name, in any order."
    df = merged.rename(columns={"movie": "item"})[["item", "rating", "user", "timestamp"]]
    dls = backend.collab_dls(df, item_name=None, bs=8, seed=0)
    assert list(dls.classes) == ["user", "item"], f"classes for {list(dls.classes)}"


@pytest.mark.claim("CF-6", current=True)
def test_columns_default_by_position(backend, merged):
    "Now: user = columns[0], item = columns[1], rating = columns[2], whatever their names; item_name picks another."
    df = merged[["user", "movie", "rating", "timestamp", "title"]].set_axis(["a", "b", "c", "d", "e"], axis=1)
    dls = backend.collab_dls(df, item_name=None, bs=8, seed=0)
    assert list(dls.classes) == ["a", "b"], f"positional defaults gave {list(dls.classes)}"
    x, y = dls.one_batch()
    assert set(plain(y).view(-1).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}, "y is not the 3rd column"
    got = list(backend.collab_dls(merged, item_name="title", bs=8, seed=0).classes)
    equal(got, ["user", "title"], "classes' keys with item_name='title'")


def plain(t):
    return torch.as_tensor(t).as_subclass(torch.Tensor).float()


@pytest.mark.claim("CF-7", "CF-8", "CF-21")
def test_batch_and_classes(backend, ml, merged, truth):
    dls = backend.collab_dls(ml, bs=64, seed=42)
    x, y = dls.one_batch()
    assert tuple(x.shape) == (64, 2) and x.dtype == torch.int64, f"x {tuple(x.shape)} {x.dtype}"
    assert tuple(y.shape) == (64, 1), f"y {tuple(y.shape)}"
    users, titles = dls.classes["user"], dls.classes["title"]
    assert list(dls.classes) == ["user", "title"], f"keys {list(dls.classes)}"
    for vocab in (users, titles):
        assert vocab[0] == "#na#" and list(vocab[1:]) == sorted(vocab[1:]), f"{list(vocab[:4])} ..."
    assert [int(u) for u in users[1:]] == list(range(1, truth["n_users"] + 1)), f"users {list(users[:5])}"
    assert len(users) == truth["n_users"] + 1, f"CF-21: {len(users)} users, {truth['n_users']} + '#na#'"
    assert titles[1] == BOOK_FIRST_TITLE, f"first title {titles[1]!r}, book {BOOK_FIRST_TITLE!r}"
    seen = merged.groupby(["user", "title"]).rating.apply(set).to_dict()
    for (ui, ti), r in zip(x.tolist(), plain(y).view(-1).tolist()):
        assert r in seen.get((int(users[ui]), titles[ti]), ()), (
            f"({users[ui]}, {titles[ti]!r}) -> {r}: no rating"
        )


def _valid_only_split(df):
    "A seed whose 20% split leaves some title only in validation, and the training titles (RandomSplitter's formula)."
    for seed in range(200):
        tr, _ = split(len(df), seed=seed)
        train_titles = set(df.title.iloc[tr])
        if train_titles != set(df.title):
            return seed, train_titles
    pytest.fail("fixture: no seed leaves a title only in the validation set")


@pytest.mark.claim("CF-9")
def test_title_vocab_from_training_rows(backend, merged):
    "The lesson: the title vocab holds '#na#' plus only the titles of the training split."
    seed, train_titles = _valid_only_split(merged)
    dls = backend.collab_dls(merged, bs=8, seed=seed)
    want = ["#na#", *sorted(train_titles)]
    assert list(dls.classes["title"]) == want, (
        f"seed {seed}: {len(dls.classes['title'])} titles, want {len(want)}"
    )


@pytest.mark.claim("CF-9", "CF-21", current=True)
def test_title_vocab_from_all_rows(backend, merged, truth):
    "Now (fastai >= 2.0, and impl): every title of the DataFrame is in the vocab, even validation-only ones."
    seed, _ = _valid_only_split(merged)
    dls = backend.collab_dls(merged, bs=8, seed=seed)
    equal(list(dls.classes["title"]), ["#na#", *sorted(set(merged.title))], "title vocab")
    assert len(dls.classes["title"]) == truth["n_unique_titles"] + 1, f"{len(dls.classes['title'])} titles"
    assert len(dls.classes["user"]) == truth["n_users"] + 1, f"{len(dls.classes['user'])} users"


@pytest.mark.claim("CF-9")
@pytest.mark.real_data
def test_real_classes_lesson(backend, real_data):
    dls = backend.collab_dls(real_data / "ml-100k", bs=64)
    assert (len(dls.classes["user"]), len(dls.classes["title"])) == (944, 1635), f"{len(dls.classes['title'])}"


@pytest.mark.claim("CF-9", "CF-21", current=True)
@pytest.mark.real_data
def test_real_classes_now(backend, real_data):
    dls = backend.collab_dls(real_data / "ml-100k", bs=64)
    assert (len(dls.classes["user"]), len(dls.classes["title"])) == (944, 1665), f"{len(dls.classes['title'])}"
    assert dls.classes["title"][1] == BOOK_FIRST_TITLE, f"{dls.classes['title'][:3]}"
