"""Both backend adapters serve the same names with the same signatures (spec/backends/, CONTRIBUTING).

A test written once for `backend.X(...)` passes the same arguments on impl and on fastai, so every name both
adapters serve takes the same parameters: names, kinds and defaults, in order. Allowed differences are the libraries'
own objects served as they are, each with a one-line reason (whose object it is, or the ledger claim documenting the
difference). A new difference, an entry that is no longer a difference, or a name one backend alone serves without a
reason here fails. The last tests check that options the fastai adapter gained for this (biwi_dls' augment,
collab_dls' column names) reach the library on both backends, by their effect.
"""

import inspect
import random
import re
from pathlib import Path

import pandas as pd
import pytest
import tomllib
import torch

from spec import backends

LEDGER = Path(__file__).resolve().parents[1] / "claims.toml"
CLAIM_ID = re.compile(r"\b[A-Z][A-Z0-9]*-\d+\b")

# name -> why the two adapters' parameter lists may differ
ALLOWED = {
    # functions
    "ColSplitter": "the libraries' own: fastai's also takes `on` (a value to match); impl's: a bool column (DATA-18)",
    "first": "the libraries' own: fastcore's first(x, f, negate, **kwargs); impl's first(it) of the book's use",
    "get_image_files": "the libraries' own: fastai's also takes `folders` (a list of sub-folders to search)",
    "one_hot": "the libraries' own: fastai's one_hot(x, c), impl's one_hot(i, n) (IMPL-18: same values, impl checks)",
    "rmse": "the libraries' own: fastai's AccumMetric (preds, targs), impl's rmse(inp, targ) (IMPL-19, REG-18)",
    "sigmoid_range": "the bounds are lo, hi in impl (as the book) and low, high in fastai: IMPL-18",
    # classes (fastai's Transform signatures include `self`; it is dropped before comparing)
    "BCEWithLogitsLossFlat": "the libraries' own: fastai's has *args, weight, pos_weight, floatify (IMPL-19)",
    "CrossEntropyLossFlat": "the libraries' own: fastai's has *args, weight, ignore_index, floatify, is_2d (IMPL-19)",
    "MSELossFlat": "the libraries' own: fastai's has *args and floatify (IMPL-19)",
    "SigmoidRange": "the bounds are lo, hi in impl (as the book) and low, high in fastai: IMPL-18",
    "Categorize": "the libraries' own: fastai's vocab defaults to None (set up from the data), impl's is required",
    "DataLoader": "the libraries' own: fastai's DataLoader (fastcore's many hooks) vs impl's compact one",
    "Datasets": "the libraries' own: fastai's Datasets(items, tfms, tls, n_inp, dl_type, ...) vs impl's",
    "SuggestionMethod": "the libraries' own enum of lr_find suggestions: fastai's Enum of functions takes *args",
}
# name -> (the one backend that serves it, why the other does not)
ONLY = {
    "cnn_learner": ("fastai", "fastai's deprecated alias of vision_learner (FT-13); impl has only vision_learner"),
}


def _both():
    try:
        return backends.get("impl"), backends.get("fastai")
    except backends.BackendUnavailable as e:
        pytest.skip(str(e))


def params(o):
    "[(name, kind, default)] of o's signature (a class's without a leading self), or a string saying why none."
    if not callable(o):
        return f"not callable: {type(o).__name__}"
    try:
        ps = list(inspect.signature(o).parameters.values())
    except (TypeError, ValueError) as e:
        return f"no signature: {e}"
    if inspect.isclass(o) and ps and ps[0].name == "self":
        ps = ps[1:]
    return [(p.name, p.kind.name, p.default) for p in ps]


def same(a, b):
    "Two params() results are equal: names and kinds, and defaults equal or the same object."
    if isinstance(a, str) or isinstance(b, str) or len(a) != len(b):
        return a == b
    for (n, k, d), (m, j, e) in zip(a, b):
        if (n, k) != (m, j):
            return False
        try:
            if not (d is e or (type(d) is type(e) and bool(d == e))):
                return False
        except Exception:  # a default whose == is not a plain bool (e.g. a tensor): only the same object is the same
            return False
    return True


def differences():
    "{name: (impl's params, fastai's params)} for every name both adapters serve whose parameter lists differ."
    a, b = _both()
    out = {}
    for k in sorted(set(a._api) & set(b._api)):
        x, y = params(a._api[k][1]), params(b._api[k][1])
        if not same(x, y):
            out[k] = (x, y)
    return out


def test_shared_names_have_the_same_parameters():
    diff = differences()
    new = {k: v for k, v in diff.items() if k not in ALLOWED}
    assert not new, "the adapters serve these names with different parameters (make them agree, or add a reason to "
    "ALLOWED):\n" + "\n".join(f"  {k}: impl {x}\n  {' ' * len(k)}  fastai {y}" for k, (x, y) in new.items())


def test_allowed_differences_are_still_differences():
    stale = sorted(set(ALLOWED) - set(differences()))
    assert not stale, f"ALLOWED lists names whose parameters now agree (or that one backend lost): remove {stale}"


def test_names_served_by_one_backend_only_are_listed():
    a, b = _both()
    got = {k: "impl" for k in set(a._api) - set(b._api)} | {k: "fastai" for k in set(b._api) - set(a._api)}
    want = {k: who for k, (who, _) in ONLY.items()}
    assert got == want, f"names served by one backend only: {got}, listed in ONLY: {want}"


def test_every_reason_is_given_and_cites_real_claims():
    ids = {c["id"] for c in tomllib.loads(LEDGER.read_text())["claim"]}
    reasons = {**ALLOWED, **{k: why for k, (_, why) in ONLY.items()}}
    for k, why in reasons.items():
        assert why.strip() and "\n" not in why, f"{k}: the reason must be one non-empty line"
        assert "libraries' own" in why or CLAIM_ID.search(why), f"{k}: say whose object it is, or cite a claim"
        if bad := [c for c in CLAIM_ID.findall(why) if c not in ids]:
            raise AssertionError(f"{k}: the reason cites {bad}, not in {LEDGER.name}")


def test_a_new_difference_is_caught():
    "The check itself: a changed name, default or kind is a difference; the same parameters are not."

    def f(path, bs=64, *, seed=None): ...

    def g(path, bs=64, *, seed=None): ...

    def h(path, bs=32, *, seed=None): ...

    def i(path, size=64, *, seed=None): ...

    def j(path, bs=64, seed=None): ...

    assert same(params(f), params(g))
    assert not any(same(params(f), params(o)) for o in (h, i, j)), "a changed default, name or kind went unnoticed"


# ---------------------------------------------------------------- the shared options take effect on both backends
def epoch_targets(dls):
    "Every training target of one epoch, as sorted tuples (the order is shuffled, the items are not)."
    return sorted(tuple(r) for _, y in dls.train for r in y.as_subclass(torch.Tensor).reshape(len(y), -1).tolist())


def test_biwi_dls_augment(backend, data_dir):
    "augment=False: frames resized to size, each training point the same every epoch; augment=True: the points move."
    random.seed(0), torch.manual_seed(0)
    plain = backend.biwi_dls(data_dir / "biwi_head_pose", bs=1, size=(24, 32), augment=False)
    assert tuple(plain.train.one_batch()[0].shape) == (1, 3, 24, 32), "augment=False: frames not resized to size"
    assert epoch_targets(plain) == epoch_targets(plain), "augment=False: the training points moved between epochs"
    aug = backend.biwi_dls(data_dir / "biwi_head_pose", bs=1, size=(24, 32))
    assert epoch_targets(aug) != epoch_targets(aug), "augment=True: the training points never moved"


def test_collab_dls_column_names(backend):
    "user_name, item_name and rating_name pick the columns by name, in any order."
    who, what = list("aabbccdd"), list("xyxyxyxy")
    # user before item: fastai 2.8.12's from_df fails (a negative-stride numpy array) when the item column comes first
    df = pd.DataFrame({"stars": [1.0, 2, 3, 4, 5, 1, 2, 3], "who": who, "what": what})
    stars = {(u, i): r for u, i, r in zip(who, what, df.stars)}
    dls = backend.collab_dls(df, bs=2, valid_pct=0.25, seed=0, user_name="who", item_name="what", rating_name="stars")
    classes = {k: list(v) for k, v in dls.classes.items()}
    assert classes == {"who": ["#na#", "a", "b", "c", "d"], "what": ["#na#", "x", "y"]}, f"classes {classes}"
    for dl in (dls.train, dls.valid):
        for x, y in dl:
            for (u, i), r in zip(x.tolist(), y.as_subclass(torch.Tensor).view(-1).tolist()):
                assert stars[classes["who"][u], classes["what"][i]] == r, f"({u}, {i}) -> {r}: not that pair's stars"
