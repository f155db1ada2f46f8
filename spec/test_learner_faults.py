"""Fault injection for impl's Learner: a failed call leaves the learner as it was, or says clearly what is wrong.

Every test snapshots the whole training state (parameters, buffers, optimizer state dict with every group's
hyper-parameters, requires_grad, train/eval mode, gradients) and compares it bit for bit after the fault.
IMPL claims: impl's own contract, so these tests use impl directly.
"""

import copy
import math
import os
import re
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from impl import data as idata
from impl import learner as ilearner
from impl.learner import Diverged, NonFiniteStep
from spec.backends import get
from spec.tiny import N_TRAIN_BATCHES, EpochStarts, cnn, data, is_norm, make, mlp, one_thread, split  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
IMPL = get("impl")
OPTS = {
    "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr),
    "sgd_mom": lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
    "adam": lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.0, foreach=True),
}


# ---------------------------------------------------------------- state snapshots
def state(learn, hypers=True):
    "Everything a failed call must leave alone (deep copies); `hypers=False` leaves out the optimizer's groups."
    m, opt = learn.model, learn.opt
    sd = None if opt is None else copy.deepcopy(opt.state_dict())
    if sd is not None and not hypers:
        sd = sd["state"]
    return {
        "params": [p.detach().clone() for p in m.parameters()],
        "buffers": {k: b.detach().clone() for k, b in m.named_buffers()},
        "grads": [None if p.grad is None else p.grad.clone() for p in m.parameters()],
        "requires_grad": [p.requires_grad for p in m.parameters()],
        "training": m.training,
        "opt": sd,
    }


def diff(a, b, path="state"):
    "Where two snapshots differ (a list of paths; empty when bit-identical)."
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ok = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype
        return [] if ok and torch.equal(a, b) else [path]
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path} keys {sorted(map(str, set(a) ^ set(b)))}"]
        return [d for k in a for d in diff(a[k], b[k], f"{path}[{k!r}]")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path} length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b or (a != a and b != b) else [f"{path}: {a!r} != {b!r}"]


def unchanged(learn, before, claim, what, hypers=True):
    d = diff(before, state(learn, hypers))
    assert not d, f"{claim}: {what} changed the learner: {d[:5]}"


def finite(learn):
    return all(torch.isfinite(p).all() for p in learn.model.parameters())


def as_at_start(learn, starts, epoch, claim, what):
    "The learner (all but its train/eval mode, which fit puts back) equals its copy at the start of `epoch`."
    d = diff({k: v for k, v in starts.states[epoch].items() if k != "training"},
             {k: v for k, v in state(learn).items() if k != "training"})
    assert not d, f"{claim}: after {what} the learner is not as at the start of epoch {epoch}: {d[:5]}"


def loaders(n_train=64, n_valid=32, bs=8, drop_last=False, seed=0):
    "torch DataLoaders over spec.tiny's data (train shuffled by a seeded generator)."
    x, y = data(n_train + n_valid, seed=seed)
    g = torch.Generator().manual_seed(seed)
    tr = DataLoader(TensorDataset(x[n_valid:], y[n_valid:]), batch_size=bs, shuffle=True, drop_last=drop_last,
                    generator=g)
    return tr, DataLoader(TensorDataset(x[:n_valid], y[:n_valid]), batch_size=16)


def learner(tr, va, model=None, **kw):
    return IMPL.learner(IMPL.dls_from_loaders(tr, va), mlp() if model is None else model, nn.CrossEntropyLoss(),
                        splitter=split, **kw)


# ---------------------------------------------------------------- load: all or nothing, names the file
def _checkpoint(tmp_path, fault):
    "Save a checkpoint (from another learner) that does not fit tiny.make's learner in one way. Returns its name."
    src, *_ = make(IMPL, model=mlp(n_out=4, seed=1) if fault == "shape" else mlp(seed=1), path=tmp_path,
                   splitter=None if fault == "groups" else split)
    src.fit(1, 1e-2)
    src.save("ck")
    if fault in ("missing", "opt_shape"):
        f = tmp_path / "models" / "ck.pth"
        sd = torch.load(f, weights_only=True)
        if fault == "missing":
            del sd["model"]["6.bias"]
        else:
            k = sorted(sd["opt"]["state"])[-1]
            sd["opt"]["state"][k]["exp_avg"] = torch.zeros(7)
        torch.save(sd, f)
    return "ck"


@pytest.mark.claim("IMPL-31")
@pytest.mark.parametrize("fault", ["shape", "groups", "missing", "opt_shape"])
def test_load_that_does_not_fit_changes_nothing(tmp_path, fault):
    "The head's shape, the optimizer's groups, a missing tensor, an optimizer state's shape: refused before any copy."
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-3)
    before = state(learn)
    name = _checkpoint(tmp_path, fault)
    with pytest.raises(ValueError) as e:
        learn.load(name)
    assert str(tmp_path / "models" / "ck.pth") in str(e.value), f"IMPL-31: the error does not name the file: {e.value}"
    unchanged(learn, before, "IMPL-31", f"a failed load ({fault})")


def _damage(f, kind, frac):
    b = f.read_bytes()
    if kind == "empty":
        f.write_bytes(b"")
    elif kind == "truncated":
        f.write_bytes(b[: max(1, int(len(b) * frac))])
    elif kind == "garbage":
        f.write_bytes(bytes((i * 131 + 7) % 256 for i in range(max(1, int(len(b) * frac)))))
    elif kind == "flipped":  # one byte changed in the middle of the archive
        i = int(len(b) * frac)
        f.write_bytes(b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1 :])
    else:  # a valid torch file that is not a state dict of tensors
        torch.save({"model": {"0.weight": "not a tensor"}}, f)


@pytest.mark.claim("IMPL-31")
@given(kind=st.sampled_from(["empty", "truncated", "garbage", "flipped", "strings"]), frac=st.floats(0.02, 0.98))
def test_damaged_checkpoint_is_refused_naming_the_file(kind, frac):
    "A truncated, empty, garbage or bit-flipped file (or one holding no tensors): ValueError with its path."
    with tempfile.TemporaryDirectory() as d:
        learn, *_ = make(IMPL, path=d)
        learn.fit(1, 1e-3)
        f = learn.save("m")
        _damage(f, kind, frac)
        before = state(learn)
        try:
            learn.load("m")
        except ValueError as e:
            assert str(f) in str(e), f"IMPL-31: the error for a {kind} file does not name it: {e}"
        else:  # a flipped byte inside a stored tensor's data loads fine: it is still a checkpoint of this model
            assert kind == "flipped", f"IMPL-31: a {kind} file ({frac:.2f}) loaded without an error"
            return
        unchanged(learn, before, "IMPL-31", f"loading a {kind} file")


@pytest.mark.claim("IMPL-31")
@pytest.mark.parametrize("spoil", [False, True], ids=["clean", "state-changed-in-place"])
def test_load_interrupted_while_copying_puts_everything_back(tmp_path, spoil):
    """A KeyboardInterrupt in the optimizer's load_state_dict (the model already copied), also after it changed the
    optimizer's state tensors in place: the model and the optimizer state are put back."""
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-3)
    learn.save("ck")
    learn.fit(1, 1e-2)
    before, real, calls = state(learn), learn.opt.load_state_dict, []

    def load_state_dict(sd):
        calls.append(sd)
        if len(calls) == 1:
            if spoil:
                for t in (t for st_ in learn.opt.state.values() for t in st_.values() if t.ndim):
                    t.zero_()
            raise KeyboardInterrupt("injected")
        return real(sd)

    learn.opt.load_state_dict = load_state_dict
    with pytest.raises(KeyboardInterrupt, match="injected"):
        learn.load("ck")
    assert len(calls) == 2, f"IMPL-31: the optimizer was loaded {len(calls)} times (the file's, then the old state)"
    unchanged(learn, before, "IMPL-31", "a load interrupted after the model was copied")

# ---------------------------------------------------------------- names stay inside the model folder
@pytest.mark.claim("IMPL-32")
@pytest.mark.parametrize("name", ["../x", "../../x", "sub/../../x", "ABS", ""], ids=["up1", "up2", "sub-up2", "abs",
                                                                                     "empty"])
def test_names_stay_inside_the_model_folder(tmp_path, name):
    "save/load refuse an absolute name or '..' leading out of path/model_dir, before writing anything."
    name = str(tmp_path / "elsewhere" / "x") if name == "ABS" else name
    learn, *_ = make(IMPL, path=tmp_path / "proj")
    learn.fit(1, 1e-3)
    for call in (learn.save, learn.load):
        with pytest.raises(ValueError, match="model folder|name"):
            call(name)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == [], f"IMPL-32: save({name!r}) wrote {left}"


@pytest.mark.claim("IMPL-32")
def test_names_in_sub_folders_work(tmp_path):
    "A name with a sub-folder (or '..' that stays inside) saves under path/model_dir and loads back."
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-3)
    f = learn.save("runs/a/m")
    assert f == tmp_path / "models" / "runs" / "a" / "m.pth" and f.exists(), f"IMPL-32: saved to {f}"
    before = state(learn, hypers=False)
    learn.fit(1, 1e-3)
    learn.load("runs/b/../a/m")
    unchanged(learn, before, "IMPL-32", "save then fit then load('runs/b/../a/m') (should give the saved state)",
              hypers=False)


# ---------------------------------------------------------------- training on nothing
def _calls():
    return {
        "fit": lambda l: l.fit(1, 1e-3),
        "fit_one_cycle": lambda l: l.fit_one_cycle(1, 1e-3),
        "fine_tune": lambda l: l.fine_tune(1),
        "lr_find": lambda l: IMPL.lr_find(l),
    }


@pytest.mark.claim("IMPL-33")
@pytest.mark.parametrize("call", list(_calls()))
@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "trained"])
def test_zero_training_batches_raise_before_any_change(call, warm):
    "64 training items, bs=100 with drop_last (impl's DataLoaders, as fastai's): no batch; raise, change nothing."
    x, y = data(96)
    dls = idata.DataLoaders.from_dsets(TensorDataset(x[32:], y[32:]), TensorDataset(x[:32], y[:32]), bs=100)
    assert len(dls.train) == 0
    learn = IMPL.learner(dls, mlp(), nn.CrossEntropyLoss(), splitter=split)
    if warm:  # an optimizer with state and hyper-parameters already there
        learn.dls = IMPL.dls_from_loaders(*loaders())
        learn.fit(1, 1e-2, wd=0.1)
        learn.dls = dls
    before = state(learn)
    with pytest.raises(ValueError, match=r"no batches.*64 items, bs=100, drop_last=True"):
        _calls()[call](learn)
    unchanged(learn, before, "IMPL-33", f"{call} on zero training batches")


@pytest.mark.claim("IMPL-33")
def test_empty_validation_set_trains_and_warns():
    "No validation batch: the training still happens, valid_loss is nan and a RuntimeWarning says so."
    learn = learner(*loaders(n_valid=0))
    before = state(learn)
    with pytest.warns(RuntimeWarning, match="validation.*no batches.*nan"):
        learn.fit(1, 1e-2)
    v = learn.recorder.values
    assert len(v) == 1 and math.isfinite(v[0][0]) and math.isnan(v[0][1]), f"IMPL-33: recorded {v}"
    assert diff(before["params"], state(learn)["params"]), "IMPL-33: nothing trained"


@pytest.mark.claim("IMPL-33")
def test_validate_on_no_batches_gives_nan_metrics_and_warns_at_the_caller():
    """validate() called directly on an empty validation set with a metric: [nan, nan] (the metric is not called on
    nothing) and one RuntimeWarning saying so, which points at the caller's line, not into impl (stacklevel)."""
    learn = IMPL.learner(IMPL.dls_from_loaders(*loaders(n_valid=0)), mlp(), nn.CrossEntropyLoss(), splitter=split,
                         metrics=[IMPL.accuracy])
    with pytest.warns(RuntimeWarning) as w:
        got = learn.validate()
    assert len(got) == 2 and all(map(math.isnan, got)), f"IMPL-33: validate() on no batches gave {got}"
    w = [x for x in w if issubclass(x.category, RuntimeWarning)]
    assert len(w) == 1 and re.fullmatch(r"the validation DataLoader yielded no batches: valid_loss and metrics are nan "
                                        r"\(fastai records None\)", str(w[0].message)), f"IMPL-33: warned {w}"
    f = Path(w[0].filename).resolve()
    assert f != Path(ilearner.__file__).resolve(), f"IMPL-33: the warning points inside impl: {f}"
    # mutmut (tools/mutate.py) calls impl through a trampoline frame of its own: there the caller is that frame
    assert w[0].filename == __file__ or "mutmut" in f.parts, f"IMPL-33: the warning points at {f}, not the caller"


@pytest.mark.claim("IMPL-33")
def test_batch_of_one_through_batchnorm_is_a_clear_error():
    "bs=1 with BatchNorm1d: ValueError naming the batch size and BatchNorm, before the first step changes anything."
    learn = learner(*loaders())
    learn.fit(1, 1e-3)
    learn.dls = IMPL.dls_from_loaders(*loaders(bs=1))
    before = state(learn)
    with pytest.raises(ValueError, match=r"batch of 1 item.*BatchNorm.*bs >= 2"):
        learn.fit(1, 1e-3)
    unchanged(learn, before, "IMPL-33", "a fit whose first batch has one item")


@pytest.mark.claim("IMPL-33")
def test_last_batch_of_one_through_batchnorm_puts_back_the_epoch():
    """65 items, bs=8, no drop_last: the last batch has one item; the error names it and the learner is as at the
    start of that epoch (the 8 batches before it undone too: IMPL-36)."""
    learn, starts = learner(*loaders()), EpochStarts(state)
    learn.fit(1, 1e-3)
    learn.dls = IMPL.dls_from_loaders(*loaders(n_train=65))
    learn.model.eval()
    with pytest.raises(ValueError, match=r"batch of 1 item.*BatchNorm.*drop_last=True") as e:
        learn.fit(2, 1e-3, cbs=starts)
    log = IMPL.train_log(learn)
    assert len(log["params"]) == 16, f"IMPL-33: {len(log['params'])} batches trained before the batch of one"
    as_at_start(learn, starts, 0, "IMPL-33", "a batch of one")
    assert not learn.model.training, "IMPL-33: the model was left in train mode"
    assert "at the start of epoch 0" in "".join(getattr(e.value, "__notes__", [])), f"IMPL-33: {e.value!r}"


# ---------------------------------------------------------------- bad arguments
POS = st.floats(1e-6, 1.0)
BAD_LR = st.one_of(
    st.floats(-10.0, 0.0),  # zero or negative
    POS.map(lambda v: slice(-v)),  # slice(hi) with hi < 0
    st.tuples(st.floats(-1.0, 0.0), POS).map(lambda t: slice(*t)),  # a slice whose lower bound is <= 0
    st.tuples(POS, POS).filter(lambda t: t[0] > t[1] * 1.001).map(lambda t: slice(*t)),  # reversed
    st.tuples(POS, st.floats(-1.0, 0.0), POS).map(list),  # one group's LR <= 0
)
BAD_WD = st.one_of(st.floats(-10.0, -1e-9), st.sampled_from([math.nan, math.inf]))
BAD_MOMS = st.one_of(
    st.tuples(st.floats(0, 0.99), st.floats(0, 0.99)),  # two values
    st.tuples(st.floats(0, 0.99), st.floats(0, 0.99), st.floats(0, 0.99), st.floats(0, 0.99)),  # four
    st.tuples(st.sampled_from([-0.5, 1.0, 2.0, math.nan]), st.integers(0, 2)).map(
        lambda t: tuple(t[0] if i == t[1] else 0.9 for i in range(3))),  # one value outside [0, 1)
)


@st.composite
def bad_call(draw):
    "(method, kwargs, the argument the error must name) with exactly one bad argument."
    how = draw(st.sampled_from(["fit", "fit_one_cycle", "fine_tune"]), label="method")
    kinds = {"fit": ["lr", "wd"], "fit_one_cycle": ["lr_max", "wd", "moms", "div", "div_final"],
             "fine_tune": ["base_lr", "wd", "moms", "div", "div_final", "lr_mult", "unknown"]}[how]
    kind = draw(st.sampled_from(kinds), label="argument")
    if kind == "unknown":
        k = draw(st.sampled_from(["lr_max", "pct_start_", "foo", "n_epoch"]), label="keyword")
        return how, {k: 1e-3}, k
    bad = {"lr": BAD_LR, "lr_max": BAD_LR, "wd": BAD_WD, "moms": BAD_MOMS, "base_lr": st.floats(-10.0, 0.0),
           "div": st.floats(-10.0, 0.0), "div_final": st.floats(-10.0, 0.0), "lr_mult": st.floats(-10.0, 0.0)}[kind]
    return how, {kind: draw(bad, label=kind)}, kind


@pytest.mark.claim("IMPL-34")
@given(call=bad_call(), warm=st.booleans())
def test_bad_arguments_raise_before_any_change(call, warm):
    "One bad argument among the kinds the issue found: ValueError/TypeError naming it; the learner is unchanged."
    how, kw, arg = call
    learn, tr, _ = make(IMPL)
    if warm:
        learn.fit(1, 1e-2, wd=0.1)
    before, seen = state(learn), tr.batches
    with pytest.raises((ValueError, TypeError)) as e:
        getattr(learn, how)(1, **kw)
    assert arg.rstrip("_") in str(e.value), f"IMPL-34: {how}(1, **{kw}) raised without naming {arg}: {e.value!r}"
    assert tr.batches == seen, f"IMPL-34: {how}(1, **{kw}) trained before raising"
    unchanged(learn, before, "IMPL-34", f"{how}(1, **{kw})")


@pytest.mark.claim("IMPL-4", "IMPL-34")
@pytest.mark.parametrize("kw, msg", [
    (dict(div=0), r"div must lie in \(0\.0, inf\), got 0"),
    (dict(div_final=-1.0), r"div_final must lie in \(0\.0, inf\), got -1\.0"),
    (dict(pct_start=1.5), r"pct_start must lie in \(0\.0, 1\.0\), got 1\.5"),
], ids=["div", "div_final", "pct_start"])
def test_one_cycle_shape_errors_name_the_argument_and_range(kw, msg):
    "fit_one_cycle's div, div_final and pct_start out of range: the message begins with the argument's own name."
    learn, tr, _ = make(IMPL)
    with pytest.raises(ValueError, match=f"^{msg}$"):
        learn.fit_one_cycle(1, 1e-3, **kw)
    assert tr.batches == 0, "IMPL-34: fit_one_cycle trained before raising"


@pytest.mark.claim("IMPL-34")
@pytest.mark.parametrize("how, kw, arg", [
    ("fit", dict(lr=slice(-1e-3)), "lr"),
    ("fit", dict(lr=slice(1e-2, 1e-5)), "lr"),
    ("fit", dict(lr=-1, wd=0.5), "lr"),
    ("fit_one_cycle", dict(moms=(2, 0.5, 0.9)), "moms"),
    ("fit", dict(wd=-1), "wd"),
    ("fine_tune", dict(moms=(0.9, 0.8)), "moms"),
], ids=["slice-neg", "slice-reversed", "lr-neg-wd", "moms-2", "wd-neg", "ft-moms-len2"])
def test_the_issues_bad_arguments(how, kw, arg):
    "The issue's examples, one by one, on a trained learner with weight decay 0.1."
    learn, *_ = make(IMPL)
    learn.fit(1, 1e-2, wd=0.1)
    before = state(learn)
    with pytest.raises(ValueError, match=arg):
        getattr(learn, how)(1, **kw)
    unchanged(learn, before, "IMPL-34", f"{how}(1, **{kw})")

# ---------------------------------------------------------------- bad learner arguments, empty loaders, missing files
class _NoBatches:
    "A loader that says it has batches (len 2) but yields none (a wrong __len__, e.g. over an IterableDataset)."

    def __len__(self):
        return 2

    def __iter__(self):
        return iter(())


def _torch_file(learn, name, obj):
    "Write `obj` with torch.save as path/model_dir/name.pth (what learn.load(name) reads); returns the path."
    f = learn.path / learn.model_dir / f"{name}.pth"
    f.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, f)
    return f


def _claimed(claim, *a, id):
    return pytest.param(*a, id=id, marks=pytest.mark.claim(claim))


def _new(l, loss_func=None, dls=None, **kw):
    "Another learner on l's model (and data), in l's folder."
    loss_func = nn.CrossEntropyLoss() if loss_func is None else loss_func
    return IMPL.learner(l.dls if dls is None else dls, l.model, loss_func, path=l.path, **kw)


# (how to fail on a trained learner `l`, the error's type, a regex its message must match), each citing its claim; the
# test also checks that `l` is unchanged (the Learner(...) cases build another learner on l's model and data).
LEARNER_FAULTS = [
    _claimed("IMPL-4", lambda l: _new(l, dls=types.SimpleNamespace(train=[])), TypeError,
             r"^dls must have \.train and \.valid, got SimpleNamespace without \.valid$", id="dls-no-valid"),
    _claimed("IMPL-4", lambda l: _new(l, loss_func="mse"), TypeError, r"^loss_func must be callable, got 'mse'$",
             id="loss-func-str"),
    _claimed("IMPL-4", lambda l: _new(l, splitter=lambda m: [list(m[:3].parameters()), []]), ValueError,
             r"^splitter gave an empty parameter group: sizes \[4, 0\]$", id="split-empty-group"),
    _claimed("IMPL-4", lambda l: _new(l, splitter=lambda m: []), ValueError,
             r"^splitter gave an empty parameter group: sizes \[\]$", id="split-no-group"),
    _claimed("IMPL-4", lambda l: _new(l, splitter=lambda m: [list(m.parameters()), list(m[6].parameters())]),
             ValueError, r"^splitter put a parameter in two groups$", id="split-twice"),
    _claimed("IMPL-4", lambda l: l.set_hyper("mom", [0.9, 0.8]), ValueError,
             r"^mom has 2 values but there are 3 parameter groups$", id="set-hyper-2-of-3"),
    _claimed("IMPL-34", lambda l: l.fit(1, np.float32(0.0)), ValueError,
             r"^lr: every LR must be > 0 .*got np\.float32\(0\.0\)$", id="lr-numpy-zero"),
    _claimed("IMPL-34", lambda l: l.fit_one_cycle(1, [1e-3, np.float64(0), 1e-3]), ValueError,
             r"^lr_max: every LR must be > 0 .*got \[0\.001, np\.float64\(0\.0\), 0\.001\]$", id="lr-list-zero"),
    _claimed("IMPL-4", lambda l: _new(l).freeze(), ValueError,
             r"^freeze needs at least 2 parameter groups, got 1; pass a splitter$", id="freeze-one-group"),
    _claimed("IMPL-4", lambda l: _new(l).fine_tune(1), ValueError,
             r"^freeze needs at least 2 parameter groups, got 1; pass a splitter$", id="fine-tune-one-group"),
    _claimed("IMPL-33", lambda l: l.get_preds(dl=DataLoader(TensorDataset(torch.zeros(0, 8), torch.zeros(0)))),
             ValueError, r"^get_preds: the DataLoader yielded no batches$", id="get-preds-empty"),
    _claimed("IMPL-33", lambda l: (setattr(l, "dls", IMPL.dls_from_loaders(_NoBatches(), l.dls.valid)),
                                   IMPL.lr_find(l)), ValueError, r"^lr_find: dls.train yielded no batches$",
             id="lr-find-no-batches"),
    _claimed("IMPL-31", lambda l: l.load("nothing-here"), FileNotFoundError,
             r"^no saved model .*models/nothing-here\.pth$", id="load-missing"),
    _claimed("IMPL-31", lambda l: l.load(_torch_file(l, "no-groups", {"model": l.model.state_dict(),
                                                                       "opt": {"state": {}}}).stem),
             ValueError, r"models/no-groups\.pth: 'opt' is not an optimizer state dict \(KeyError", id="opt-no-groups"),
    _claimed("IMPL-31", lambda l: l.load(_torch_file(l, "opt-list", {"model": l.model.state_dict(),
                                                                      "opt": [1, 2]}).stem),
             ValueError, r"models/opt-list\.pth: 'opt' is not an optimizer state dict \(TypeError", id="opt-a-list"),
]


def _edited(l, name, edit):
    "l's checkpoint (l.save), changed by edit(dict) and written back; returns its name for l.load."
    f = l.save(name)
    sd = torch.load(f, weights_only=True)
    edit(sd)
    torch.save(sd, f)
    return name


def _set(d, k, v):
    d[k] = v


def _grown(sd):
    "The model state dict with every float tensor one row longer (16 of them mis-shaped)."
    return {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if v.is_floating_point() else v for k, v in sd.items()}


_GROWN = "; ".join(f"{k}: {(n + 1, *rest)} in the file, {(n, *rest)} in the model"
                   for k, n, rest in [("0.weight", 16, (8,)), ("0.bias", 16, ()), ("1.weight", 16, ()),
                                      ("1.bias", 16, ()), ("1.running_mean", 16, ())])


def _raw(l, name, data):
    "`data` (bytes) as path/model_dir/name.pth; returns the name."
    f = l.path / l.model_dir / f"{name}.pth"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    return name


_FT_LR = r"^lr_max: every LR must be > 0 \(0 trains nothing, < 0 climbs the loss\), got "

# fine_tune's arguments, each error naming the argument (the message as fit_one_cycle's checks word it), and the
# load checks' messages: at most five names or shapes each, an optimizer state of a parameter that does not exist.
LEARNER_FAULTS += [
    _claimed("IMPL-34", lambda l: l.fine_tune(0), ValueError, r"^epochs must be an int >= 1, got 0$", id="ft-epochs0"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, freeze_epochs=-1), ValueError,
             r"^freeze_epochs must be an int >= 0, got -1$", id="ft-freeze-epochs-neg"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, div=0), ValueError, r"^div must lie in \(0\.0, inf\), got 0$",
             id="ft-div0"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, base_lr=-1e-3), ValueError,
             r"^base_lr must lie in \(0\.0, inf\), got -0\.001$", id="ft-base-lr-neg"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, lr_mult=0.5), ValueError,
             r"^lr_mult must lie in \[1\.0, inf\), got 0\.5$", id="ft-lr-mult-half"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, lr_mult=0), ValueError,
             r"^lr_mult must lie in \[1\.0, inf\), got 0$", id="ft-lr-mult0"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, pct_start=0), ValueError,
             r"^pct_start must lie in \(0\.0, 1\.0\), got 0$", id="ft-pct0"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, lr_max=1e-3), TypeError,
             r"^fine_tune got unexpected keyword argument\(s\) \['lr_max'\]; it passes only div_final, wd and moms "
             r"on to fit_one_cycle$", id="ft-unknown-kw"),
    # group LRs that round to 0: slice(1e-323)'s body groups get 1e-324 (the frozen phase), slice(1e-300 / 2 / 4e23,
    # 1e-300 / 2)'s first group 1.25e-324 (the unfrozen phase): refused before fine_tune freezes or trains anything
    _claimed("IMPL-34", lambda l: l.fine_tune(1, base_lr=1e-323, lr_mult=1), ValueError,
             _FT_LR + r"slice\(None, 1e-323, None\)$", id="ft-frozen-lr-underflows"),
    _claimed("IMPL-34", lambda l: l.fine_tune(1, base_lr=1e-300, lr_mult=4e23), ValueError,
             _FT_LR + r"slice\(0\.0, 5e-301, None\)$", id="ft-unfrozen-lr-underflows"),
    _claimed("IMPL-31", lambda l: l.load(_torch_file(l, "floats", {"model": dict.fromkeys(l.model.state_dict(), 1.0)}
                                                     ).stem),
             ValueError, r"models/floats\.pth: 'model' is not a state dict of tensors$", id="model-of-floats"),
    _claimed("IMPL-31", lambda l: l.load(_torch_file(l, "other", {f"x{i}": torch.zeros(1) for i in range(7)}).stem),
             ValueError, r"models/other\.pth does not fit the model: missing \['0\.bias', '0\.weight', '1\.bias', "
             r"'1\.num_batches_tracked', '1\.running_mean'\], unexpected \['x0', 'x1', 'x2', 'x3', 'x4'\]$",
             id="five-names-each"),
    _claimed("IMPL-31", lambda l: l.load(_torch_file(l, "grown", _grown(l.model.state_dict())).stem), ValueError,
             r"models/grown\.pth does not fit the model: " + re.escape(_GROWN) + "$", id="five-shapes"),
    _claimed("IMPL-31", lambda l: l.load(_edited(l, "opt0", lambda sd: _set(sd["opt"]["state"][0], "exp_avg",
                                                                             torch.zeros(7)))),
             ValueError, r"models/opt0\.pth: optimizer state 'exp_avg' of parameter 0 has shape \(7,\), the "
             r"parameter \(16, 8\)$", id="opt-state-of-param-0"),
    _claimed("IMPL-31", lambda l: l.load(_edited(l, "opt10", lambda sd: _set(sd["opt"]["state"], 10,
                                                                              {"exp_avg": torch.zeros(3)}))),
             ValueError, r"models/opt10\.pth: optimizer state 'exp_avg' of parameter 10 has shape \(3,\), the "
             r"parameter does not exist$", id="opt-state-of-no-param"),
    _claimed("IMPL-31", lambda l: l.load(_raw(l, "empty", b"")), ValueError,
             r"models/empty\.pth \(truncated, empty or not a checkpoint\?\): EOFError", id="empty-file-says-eof"),
]


@pytest.mark.parametrize("call, exc, msg", LEARNER_FAULTS)
def test_bad_learner_arguments_and_empty_inputs_raise_before_any_change(tmp_path, call, exc, msg):
    """Learner(...) with a bad dls, loss_func or splitter; set_hyper with too few values; an LR of 0 as a numpy
    number; freeze or fine_tune on one parameter group; get_preds or lr_find over a loader that yields nothing; load
    of a missing file or of an 'opt' that is no optimizer state: the error and its message, and nothing changed."""
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, wd=0.1)  # at learn.lr: lr_find's fit sets the groups' LR to learn.lr before its snapshot, as fastai
    learn.model.eval()
    before, dls = state(learn), learn.dls
    with pytest.raises(exc, match=msg):
        call(learn)
    learn.dls = dls
    unchanged(learn, before, "IMPL-4/31/33/34", f"a call raising {exc.__name__}: {msg}")


@pytest.mark.claim("IMPL-4")
@pytest.mark.parametrize("n", [3, 5])
def test_freeze_to_past_the_last_group_warns_and_freezes_everything(n):
    """freeze_to(3) or (5) on 3 groups: a warning saying so, pointing at the caller's line rather than inside impl,
    and only the BatchNorms (train_bn) still train."""
    learn, *_ = make(IMPL)
    with pytest.warns(UserWarning, match=rf"^freezing {n} groups; model has 3; whole model is frozen$") as w:
        learn.freeze_to(n)
    assert not w[0].filename.endswith("learner.py"), f"IMPL-4: the warning points inside impl: {w[0].filename}"
    got = [p.requires_grad for p in learn.model.parameters()]
    assert got == is_norm(learn.model), f"IMPL-4: requires_grad after freeze_to({n}): {got}"


@pytest.mark.claim("IMPL-31")
def test_load_of_a_bare_model_state_dict(tmp_path):
    "A file holding only a model's state_dict (plain PyTorch's torch.save) loads as the weights; the optimizer stays."
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-2)
    other = mlp(seed=5)
    other.train()(data(16)[0])  # BatchNorm statistics other than the defaults
    _torch_file(learn, "bare", other.state_dict())
    opt = copy.deepcopy(learn.opt.state_dict())
    assert diff(state(learn)["params"], [p.detach() for p in other.parameters()]), "the weights differ to begin with"
    learn.load("bare")
    want = {k: v.detach().clone() for k, v in other.state_dict().items()}
    assert not diff(want, dict(learn.model.state_dict())), "IMPL-31: the bare state dict was not loaded"
    assert not diff(opt, learn.opt.state_dict()), "IMPL-31: loading a file without 'opt' changed the optimizer"


# ---------------------------------------------------------------- non-finite and diverging steps
class _InfGrad:
    "A gradient hook: the `k`-th backward pass (0-based, after `arm`) gets an infinite gradient on one weight."

    def __init__(self, p, k):
        self.k, self.n = k, None
        p.register_hook(self)

    def arm(self):
        self.n = 0

    def __call__(self, g):
        if self.n is None:
            return None
        self.n += 1
        return g * math.inf if self.n - 1 == self.k else None


@pytest.mark.claim("IMPL-35")
@pytest.mark.parametrize("opt", ["sgd_mom", "adam"])
@pytest.mark.parametrize("k", [3, 7], ids=["mid", "last"])
def test_step_that_makes_a_weight_infinite_puts_back_the_epoch(opt, k):
    """An infinite gradient at batch k of epoch 1 of a 1cycle fit (batch 7, the last: found at the epoch's end):
    NonFiniteStep; parameters, buffers, optimizer state and hyper-parameters as at the start of epoch 1."""
    learn, *_ = make(IMPL, opt_func=OPTS[opt])
    learn.fit(1, 1e-2)
    hook, starts = _InfGrad(learn.model[6].weight, N_TRAIN_BATCHES + k), EpochStarts(state)
    hook.arm()
    with pytest.raises(NonFiniteStep, match=rf"^the step made a parameter NaN or infinite; found at epoch 1, "
                       rf"batch {k}: fit stopped, the weights are those at the start of epoch 1$") as e:
        learn.fit_one_cycle(2, 1e-2, cbs=starts)
    assert e.value.at == (1, 0), f"IMPL-35: e.at is {e.value.at}"
    assert finite(learn), "IMPL-35: a NaN/inf weight was left"
    as_at_start(learn, starts, 1, "IMPL-35", f"a non-finite step at batch {k} of epoch 1")
    hook.n = None
    before = state(learn)["params"]
    learn.fit(1, 1e-2)  # usable: trains on
    assert finite(learn) and all(map(math.isfinite, learn.recorder.batch_losses)), "IMPL-35: the next fit is not sane"
    assert diff(before, state(learn)["params"]), "IMPL-35: the next fit trained nothing"


@pytest.mark.claim("IMPL-35")
@pytest.mark.parametrize("opt, lr", [("sgd", 1e8), ("adam", 1e6)])
def test_diverging_fit_is_undone_and_the_learner_stays_usable(opt, lr):
    """SGD at 1e8, Adam at 1e6: Diverged (a FloatingPointError) and the learner as before that fit; the next fit at
    1e-2 gives the same losses as a twin learner that never ran the diverging fit."""
    a, tr_a, _ = make(IMPL, opt_func=OPTS[opt])
    b, tr_b, _ = make(IMPL, opt_func=OPTS[opt])
    a.fit(1, 1e-2), b.fit(1, 1e-2)
    before = state(a, hypers=False)
    with pytest.raises(Diverged, match="learning rate is too high") as e:
        a.fit(1, lr)
    assert "the weights are those at the start of epoch 0" in str(e.value), f"IMPL-35: {e.value}"
    unchanged(a, before, "IMPL-35", f"a diverging fit at lr={lr:g}", hypers=False)
    next(iter(tr_b))  # the failed fit drew one shuffle from a's loader: draw the same on b's
    a.fit(1, 1e-2), b.fit(1, 1e-2)
    la, lb = a.recorder.batch_losses, b.recorder.batch_losses
    assert la == lb, f"IMPL-35: after the undone fit, losses {la[:3]} differ from a clean learner's {lb[:3]}"


def _scripted(values):
    "A loss taking `values` in turn (then 1.0) with zero gradients: every step leaves the weights as they are."
    it = iter(values)
    return lambda o, y: o.sum() * 0 + next(it, 1.0)


@pytest.mark.claim("IMPL-35")
@pytest.mark.parametrize("losses, at", [
    ([1.0, 2e6, 2e6], 2),  # two in a row over 1e6 x 1: the second stops the fit
    ([1.0, 2e6, 1.0, 2e6], None),  # over twice, not in a row
    ([0.01, 2e4, 2e4], 2),  # the limit scales with the first loss: 1e6 x 0.01 = 1e4
    ([10.0, 1e6, 1e6], None),  # 1e6 x 10 = 1e7: 1e6 is under it
    ([0.0, 2.0, 2.0], 2),  # a first loss under 1e-6 counts as 1e-6: the limit is 1
    ([1e-7, 2.0, 2.0], 2),
    ([1.0, 2e6, 1e6, 2e6], None),  # exactly at the limit (1e6) is not above it, and breaks the row
    ([1.0, 1e6, 2e6], None),
], ids=["twice", "not-in-a-row", "first-0.01", "first-10", "first-0", "first-1e-7", "at-limit-breaks",
        "at-limit-first"])
def test_diverged_is_two_losses_in_a_row_above_1e6_times_the_first(losses, at):
    """Scripted batch losses (zero gradients; the limits and the losses at them exact in float32): Diverged exactly
    when two in a row lie strictly above 1e6 x max(the fit's first loss, 1e-6), at the second of them; otherwise the
    fit runs to its end."""
    learn = IMPL.learner(IMPL.dls_from_loaders(*loaders()), mlp(), _scripted(losses), splitter=split)
    if at is None:
        learn.fit(1, 1e-3)
        got = learn.recorder.batch_losses[:len(losses)]
        assert got == [float(np.float32(v)) for v in losses], f"IMPL-35: batch losses {got}, scripted {losses}"
        return
    with pytest.raises(Diverged, match=rf"^the learning rate is too high.*found at epoch 0, batch {at}: ") as e:
        learn.fit(1, 1e-3)
    assert e.value.at == (0, 0), f"IMPL-35: e.at is {e.value.at}"


@pytest.mark.claim("IMPL-35")
def test_train_batch_alone_after_a_fit_has_no_divergence_limit():
    """Divergence is measured against a fit's first loss: train_batch called alone after a fit, as on a new learner,
    trains through two losses in a row 2e6 times the first (no Diverged from a finished fit's stale limit)."""
    vals = [1.0, 2e6, 2e6]
    loss = lambda o, y: o.sum() * 0 + (vals.pop(0) if vals else 1.0)  # noqa: E731
    learn = IMPL.learner(IMPL.dls_from_loaders(*loaders()), mlp(), loss, splitter=split)
    learn.create_opt()
    b = next(iter(learn.dls.train))
    got = [float(learn.train_batch(b)) for _ in range(3)]
    assert got == [1.0, 2e6, 2e6], f"IMPL-35: train_batch alone on a new learner gave {got}"
    learn.fit(1, 1e-3)
    vals += [1.0, 2e6, 2e6]
    got = [float(learn.train_batch(b)) for _ in range(3)]
    assert got == [1.0, 2e6, 2e6], f"IMPL-35: train_batch alone after a fit gave {got}"


@pytest.mark.claim("IMPL-35")
def test_fp16_skipped_step_is_not_an_error():
    "fp16: an infinite gradient at batch 3 is the GradScaler's to skip; fit completes and the step left the weights."
    learn, *_ = make(IMPL, cnn())
    learn.to_fp16()
    hook = _InfGrad(learn.model[8].weight, 3)
    hook.arm()
    learn.fit(1, 1e-3)
    log = IMPL.train_log(learn)
    assert learn.amp.skipped[:5] == [False, False, False, True, False], f"IMPL-35: skipped {learn.amp.skipped}"
    assert torch.equal(log["params"][3], log["params"][2]), "IMPL-35: the skipped step changed the weights"
    assert finite(learn) and len(log["params"]) == N_TRAIN_BATCHES, "IMPL-35: fit did not complete with finite weights"


# ---------------------------------------------------------------- interrupted batches
class _Boom:
    """Raise `exc` at one point of the next training batch: forward (mid-model), loss, backward, or the step; with
    `at=(epoch, batch)`, only once that batch of a fit begins (a callback arms it)."""

    def __init__(self, learn, where, exc, at=None):
        self.where, self.exc, self.on, self.at = where, exc, at is None, at
        m = learn.model
        if where == "forward":  # after the first BatchNorm updated its statistics
            m[3].register_forward_hook(self.fire)
        elif where == "loss":
            lf = learn.loss_func
            learn.loss_func = lambda o, y: (self.fire(), lf(o, y))[1]
        elif where == "backward":
            m[0].weight.register_hook(self.fire)
        else:  # the whole step taken, then the exception (the worst case)
            step = learn.opt.step

            def stepped(*a, **k):
                out = step(*a, **k)
                self.fire()
                return out

            learn.opt.step = stepped

    def before_batch(self, learn):
        self.on = self.on or (learn.epoch, learn.iter) == self.at

    def fire(self, *a):
        if self.on:
            self.on = False
            raise self.exc("injected")


@pytest.mark.claim("IMPL-36")
@given(where=st.sampled_from(["forward", "loss", "backward", "step"]),
       exc=st.sampled_from([KeyboardInterrupt, RuntimeError, ValueError]), k=st.integers(0, 7), epoch=st.integers(0, 1))
def test_interrupted_fit_puts_back_the_epoch(where, exc, k, epoch):
    """An exception anywhere in batch k of an epoch of a 1cycle fit (epoch 0 of a new learner: no optimizer state
    yet): it propagates, saying which state it left; no gradient; parameters, buffers, optimizer state and
    hyper-parameters as at the start of that epoch; train/eval mode as before the fit."""
    learn, *_ = make(IMPL)
    learn.fit(1, 1e-2) if epoch else learn.create_opt()  # epoch 0: an optimizer without state
    learn.model.eval()
    boom, starts = _Boom(learn, where, exc, at=(epoch, k)), EpochStarts(state)
    with pytest.raises(exc, match="injected") as e:
        learn.fit_one_cycle(2, 1e-2, cbs=[boom, starts])
    assert e.value.at == (epoch, 0), f"IMPL-36: e.at is {e.value.at}"
    assert f"at the start of epoch {epoch}" in e.value.__notes__[0], f"IMPL-36: notes {e.value.__notes__}"
    assert all(p.grad is None for p in learn.model.parameters()), "IMPL-36: gradients left"
    as_at_start(learn, starts, epoch, "IMPL-36", f"{exc.__name__} in {where} at batch {k} of epoch {epoch}")
    assert not learn.model.training, "IMPL-36: the model was left in train mode"


@pytest.mark.claim("IMPL-36")
@given(where=st.sampled_from(["forward", "loss", "backward", "step"]),
       exc=st.sampled_from([KeyboardInterrupt, RuntimeError, ValueError]), before_steps=st.integers(0, 2))
def test_interrupted_batch_changes_nothing(where, exc, before_steps):
    "train_batch called alone (outside a fit): an exception anywhere leaves no gradient and the learner as before."
    learn, tr, _ = make(IMPL)
    learn.fit(1, 1e-2)
    bs = list(tr.dl)
    learn.model.train()
    for b in bs[:before_steps]:  # the step before is still being checked (no host sync) when the fault comes
        learn.train_batch(b)
    before = state(learn)
    _Boom(learn, where, exc)
    with pytest.raises(exc, match="injected"):
        learn.train_batch(bs[before_steps])
    unchanged(learn, before, "IMPL-36", f"{exc.__name__} in {where}")


@pytest.mark.claim("IMPL-36")
@pytest.mark.parametrize("where", ["loss", "step"])
def test_keyboard_interrupt_in_fit_then_fit_as_a_clean_learner(where):
    """The issue: Ctrl-C inside fit. Gradients none, eval mode back, and the next fit gives the losses of a twin
    learner that was never interrupted."""
    a, tr_a, _ = make(IMPL)
    b, tr_b, _ = make(IMPL)
    a.fit(1, 1e-2), b.fit(1, 1e-2)
    a.model.eval(), b.model.eval()
    before = state(b)
    boom = _Boom(a, where, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        a.fit(1, 1e-3)
    assert all(p.grad is None for p in a.model.parameters()), "IMPL-36: gradients left after the interrupt"
    b.set_hyper("lr", 1e-3)  # what the interrupted fit did before its first batch
    unchanged(a, state(b), "IMPL-36", f"KeyboardInterrupt in {where} (compared with the twin)")
    assert not a.model.training and before["training"] is False, "IMPL-36: the model was left in train mode"
    boom.on = False
    next(iter(tr_b))  # a's loader drew one shuffle in the interrupted fit
    a.fit(1, 1e-3), b.fit(1, 1e-3)
    la, lb = a.recorder.batch_losses, b.recorder.batch_losses
    assert la == lb, f"IMPL-36: the fit after the interrupt {la[:3]} differs from a clean learner's {lb[:3]}"


# ---------------------------------------------------------------- messages and files of single calls
@pytest.mark.claim("IMPL-33")
def test_batch_of_one_without_a_sized_target_is_still_a_clear_error():
    """A batch (x1, x2, y) of one item whose target is a 0-d tensor (its size unknown) through BatchNorm: the same
    ValueError, with '?' for the batch size."""

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.bn = nn.Linear(4, 3), nn.BatchNorm1d(3)

        def forward(self, a, b):
            return self.bn(self.lin(a + b))

    learn = IMPL.learner(IMPL.dls_from_loaders(*loaders()), Two(), lambda o, y: o.sum())
    learn.create_opt()
    before = state(learn)
    with pytest.raises(ValueError, match=r"^a training batch of \? item\(s\) reached a BatchNorm layer"):
        learn.train_batch((torch.randn(1, 4), torch.randn(1, 4), torch.tensor(0)))
    unchanged(learn, before, "IMPL-33", "a batch of one item with a 0-d target")


@pytest.mark.claim("IMPL-36")
def test_train_batch_alone_notes_the_weights_are_those_before_it():
    "train_batch outside a fit: an exception in the loss propagates, noting 'the weights are those before this batch'."
    learn, tr, _ = make(IMPL)
    learn.fit(1, 1e-2)
    b = next(iter(tr.dl))
    learn.loss_func = lambda o, y: (_ for _ in ()).throw(RuntimeError("injected"))
    with pytest.raises(RuntimeError, match="^injected") as e:
        learn.train_batch(b)
    assert e.value.__notes__ == ["impl.Learner: the weights are those before this batch"], (
        f"IMPL-36: notes {e.value.__notes__}")


@pytest.mark.claim("IMPL-12")
def test_save_writes_a_hidden_temporary_next_to_the_checkpoint(tmp_path, monkeypatch):
    """While save writes, the model folder holds one hidden temporary named after the checkpoint, ending .tmp (on the
    same file system, so the rename is atomic; never a *.pth a reader could take); then only m.pth."""
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-2)
    d, real, seen = tmp_path / "models", torch.save, []

    def spy(obj, f, *a, **k):
        seen.append(sorted(p.name for p in d.iterdir()))
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", spy)
    learn.save("m")
    assert len(seen) == 1 and len(seen[0]) == 1 and re.fullmatch(r"\.m\.pth\..+\.tmp", seen[0][0]), (
        f"IMPL-12: the model folder while saving: {seen}")
    assert sorted(p.name for p in d.iterdir()) == ["m.pth"], f"IMPL-12: left {sorted(d.iterdir())}"


@pytest.mark.claim("IMPL-12")
def test_interrupt_right_after_the_rename_propagates_as_itself(tmp_path, monkeypatch):
    "A KeyboardInterrupt arriving just after save's rename: it propagates as itself; m.pth is the complete checkpoint."
    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-2)
    real = os.replace

    def replace(a, b):
        real(a, b)
        raise KeyboardInterrupt("injected")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt, match="^injected$"):
        learn.save("m")
    monkeypatch.undo()
    sd = torch.load(tmp_path / "models" / "m.pth", weights_only=True)["model"]
    assert not diff(sd, dict(learn.model.state_dict())), "IMPL-12: m.pth is not the model's checkpoint"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m.pth"], "IMPL-12: a temporary was left"


@pytest.mark.claim("IMPL-39")
@pytest.mark.parametrize("to", ["to_fp16", "to_bf16"])
def test_mixed_precision_keeps_the_memory_format_unless_asked(to):
    "to_fp16() and to_bf16() leave conv weights contiguous; channels_last=True makes them channels_last."
    for cl in (False, True):
        learn, *_ = make(IMPL, model=cnn())
        getattr(learn, to)(**({"channels_last": True} if cl else {}))
        ws = [p for p in learn.model.parameters() if p.ndim == 4]
        got = [w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in ws]
        assert got == [cl] * len(ws), f"IMPL-39: {to}(channels_last={cl}): channels_last weights {got}"


@pytest.mark.claim("IMPL-31")
def test_checkpoint_saved_on_a_gpu_loads_on_the_cpu(tmp_path, monkeypatch):
    """A checkpoint whose tensors were saved from cuda:0 (written here by tagging the CPU storages cuda:0 while saving)
    loads into a learner on the CPU, on a machine without a GPU too: the weights and optimizer state land there."""
    import torch.serialization as ts

    learn, *_ = make(IMPL, path=tmp_path)
    learn.fit(1, 1e-2)
    monkeypatch.setattr(ts, "_package_registry", list(ts._package_registry))
    ts.register_package(0, lambda s: "cuda:0" if s.device.type == "cpu" else None, lambda s, loc: None)
    learn.save("gpu")
    monkeypatch.undo()
    saved = state(learn)
    learn.fit(1, 1e-2)
    learn.load("gpu")
    assert not diff({k: v for k, v in saved.items() if k != "training"},
                    {k: v for k, v in state(learn).items() if k != "training"}), "IMPL-31: the GPU checkpoint"
