"""impl's Learner on the device: no host sync per batch (the fault guard and the Recorder read the losses once per
epoch, with the same results as a per-batch check) and `learn.compile` (torch.compile of the forward passes, the
plain module kept for save/load).

IMPL claims: impl's own contract, so these tests use impl directly. A learner here has no callback with after_batch
(the spec's per-batch log would make the loop check every batch: spec/backends/impl_api/training.py), except the
`_Eager` twin that makes it check each batch on purpose.
"""

import copy
import math
import os
import sys

import pytest
import torch
from torch import nn

from impl.callback import CancelEpochException
from impl.learner import Diverged, Learner, NonFiniteLoss, NonFiniteStep
from spec.backends import get
from spec.checks import close
from spec.tiny import BS, N_TRAIN_BATCHES, N_VALID_BATCHES, EpochStarts, N, data, loaders, mlp, one_thread, split  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
IMPL = get("impl")
IMPL_DIR = os.path.dirname(sys.modules[Learner.__module__].__file__)


class _Eager:
    "A callback with after_batch (not deferred): the loop checks each batch before it runs (a host sync per batch)."

    def after_batch(self, learn):
        pass


def _state(learn):
    return {"model": copy.deepcopy(learn.model.state_dict()),
            "opt": None if learn.opt is None else copy.deepcopy(learn.opt.state_dict())}


def _same(a, b):
    "Bit-identical nested dicts/lists of tensors and numbers."
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    return a == b or (a != a and b != b)


def learner(n=N, opt="adam", loss_func=None, model=None, **kw):
    "impl's Learner over spec.tiny's data (N_TRAIN_BATCHES batches at n=N), 3 groups, no callback."
    tr, va = loaders(*data(n), bs=BS)
    opt_func = {"adam": None, "sgd": lambda ps, lr: torch.optim.SGD(ps, lr=lr)}[opt]
    kw |= {} if opt_func is None else {"opt_func": opt_func}
    return Learner(IMPL.dls_from_loaders(tr, va), mlp() if model is None else model,
                   nn.CrossEntropyLoss() if loss_func is None else loss_func, splitter=split, progress=False, **kw)


def _bad_loss(at, bad=math.nan, exc_at=None):
    "Cross-entropy times `bad` from loss call `at` on (0-based, validation calls counted); RuntimeError at `exc_at`."
    ce, calls = nn.CrossEntropyLoss(), [0]

    def loss(o, y):
        calls[0] += 1
        if exc_at is not None and calls[0] - 1 == exc_at:
            raise RuntimeError("injected")
        return ce(o, y) * (bad if calls[0] - 1 >= at else 1.0)

    return loss


class _InfGrad:
    "The k-th backward pass (0-based) gives one weight an infinite gradient."

    def __init__(self, p, k):
        self.k, self.n = k, 0
        p.register_hook(self)

    def __call__(self, g):
        self.n += 1
        return g * math.inf if self.n - 1 == self.k else None


class _CancelAt:
    "Raise CancelEpochException before training batch `k` of epoch `epoch` (a before_batch callback)."

    def __init__(self, epoch, k):
        self.at = (epoch, k)

    def before_batch(self, learn):
        if (learn.epoch, learn.iter) == self.at:
            raise CancelEpochException


EPOCH1 = N_TRAIN_BATCHES + N_VALID_BATCHES  # loss calls in epoch 0 (training and validation)
FAULTS = {  # name: (learner kwargs, callbacks, fit, the error, its batch in epoch 1 or 0)
    "nan-loss": (lambda: dict(loss_func=_bad_loss(EPOCH1 + 3)), list, (2, 1e-2), NonFiniteLoss, (1, 3)),
    "inf-loss": (lambda: dict(loss_func=_bad_loss(EPOCH1 + 5, math.inf)), list, (2, 1e-2), NonFiniteLoss, (1, 5)),
    "inf-step-mid": (lambda: dict(), None, (2, 1e-2), NonFiniteStep, (1, 3)),
    "inf-step-last": (lambda: dict(), None, (2, 1e-2), NonFiniteStep, (1, N_TRAIN_BATCHES - 1)),
    "diverged": (lambda: dict(opt="sgd"), list, (1, 1e8), Diverged, None),
    "nan-then-error": (lambda: dict(loss_func=_bad_loss(EPOCH1 + 2, exc_at=EPOCH1 + 5)), list, (2, 1e-2),
                       NonFiniteLoss, (1, 2)),
    "nan-then-cancel": (lambda: dict(loss_func=_bad_loss(EPOCH1 + 2)), lambda: [_CancelAt(1, 5)], (2, 1e-2),
                        NonFiniteLoss, (1, 2)),
}


def _run(name, eager):
    "Fit with fault `name`: (the error, the state, the state at the start of its epoch, the learner)."
    kw, cbs, (n_epoch, lr), _, where = FAULTS[name]
    learn, starts = learner(**kw()), EpochStarts(_state)
    if cbs is None:  # an infinite gradient at batch where[1] of epoch 1
        _InfGrad(learn.model[6].weight, N_TRAIN_BATCHES + where[1])
    cbs = [starts, *(cbs or list)()] + ([_Eager()] if eager else [])
    with pytest.raises(FloatingPointError) as e:
        learn.fit(n_epoch, lr, cbs=cbs)
    return e.value, _state(learn), starts.states[e.value.at[0]], learn


@pytest.mark.claim("IMPL-40", "IMPL-3", "IMPL-35")
@pytest.mark.parametrize("name", list(FAULTS))
def test_checked_once_per_epoch_raises_what_a_per_batch_check_raises(name):
    """A NaN/inf loss, a non-finite step or a diverging loss found at the epoch's end (no callback needs each batch)
    raises the error a per-batch check raises (type, message: epoch and batch of the first fault, e.at) and leaves the
    learner as at the start of that epoch, finite, bit-identical to the per-batch-checked twin; a later exception or a
    cancelled epoch does not hide the earlier fault."""
    e, st, start, learn = _run(name, eager=False)
    e2, st2, *_ = _run(name, eager=True)
    want, where = FAULTS[name][3], FAULTS[name][4]
    assert type(e) is want and type(e2) is want, f"IMPL-40: {name}: got {type(e).__name__} / {type(e2).__name__}"
    assert str(e) == str(e2) and e.at == e2.at, f"IMPL-40: {name}: once per epoch: {e} (at {e.at}); per batch: {e2}"
    if where is not None:
        assert f"found at epoch {where[0]}, batch {where[1]}:" in str(e), f"IMPL-40: {name}: {e}"
    assert f"the weights are those at the start of epoch {e.at[0]}" in str(e), f"IMPL-35: {name}: {e}"
    assert _same(st, start), f"IMPL-35: {name}: the learner is not as at the start of epoch {e.at[0]}"
    assert _same(st, st2), f"IMPL-40: {name}: the state differs from the per-batch-checked twin's"
    assert all(torch.isfinite(p).all() for p in learn.model.parameters()), f"IMPL-3: {name}: a non-finite weight"


class _Reads:
    "Counts reads of tensor values to the host (item, tolist, float, int, bool, index, numpy, cpu) made by impl."

    NAMES = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu")

    def __init__(self):
        self.n, self.orig = 0, {}

    def __enter__(self):
        for k in self.NAMES:
            self.orig[k] = f = getattr(torch.Tensor, k)
            setattr(torch.Tensor, k, self._wrap(f))
        return self

    def _wrap(self, f):
        def g(t, *a, **kw):
            self.n += sys._getframe(1).f_code.co_filename.startswith(IMPL_DIR)
            return f(t, *a, **kw)

        return g

    def __exit__(self, *a):
        for k, f in self.orig.items():
            setattr(torch.Tensor, k, f)


@pytest.mark.claim("IMPL-40")
def test_no_host_read_per_training_batch():
    """impl reads the same number of tensor values to the host in a fit of 8 and of 16 training batches (the losses
    and step flags once per epoch, validation once); a callback with after_batch makes it read per batch."""
    reads = {}
    for eager in (False, True):
        for n in (N, N + 8 * BS):
            learn = learner(n)
            learn.fit(1, 1e-3)  # the optimizer state exists: the timed fit is a steady one
            with _Reads() as r:
                learn.fit(2, 1e-3, cbs=[_Eager()] if eager else [])
            reads[eager, len(learn.dls.train)] = r.n
    few, many = N_TRAIN_BATCHES, N_TRAIN_BATCHES + 8
    assert reads[False, few] == reads[False, many], f"IMPL-40: host reads grow with the batches: {reads}"
    assert reads[True, many] > reads[True, few], f"IMPL-40: the counter missed the per-batch reads: {reads}"


@pytest.mark.claim("IMPL-40")
def test_loss_kept_on_the_device_records_what_a_per_batch_read_records():
    """learn.loss is the batch's loss as a 0-d tensor; the Recorder's batch_losses, smoothed losses and epoch values of
    a fit checked once per epoch are bit-identical to a per-batch-checked twin's."""
    a, b, seen = learner(), learner(), []
    a.fit(2, 1e-2, cbs=[type("Spy", (), {"deferred": True, "after_batch": lambda s, l: seen.append(l.loss)})()])
    b.fit(2, 1e-2, cbs=[_Eager()])
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in seen), f"IMPL-40: learn.loss {seen[:2]}"
    ra, rb = a.recorder, b.recorder
    assert ra.batch_losses == rb.batch_losses and len(ra.batch_losses) == 2 * N_TRAIN_BATCHES, (
        f"IMPL-40: batch losses {ra.batch_losses[:3]} vs {rb.batch_losses[:3]}")
    assert [float(v) for v in seen] == ra.batch_losses, "IMPL-40: learn.loss is not the recorded loss"
    assert ra.losses == rb.losses and ra.values == rb.values, f"IMPL-40: {ra.values} vs {rb.values}"


# ---------------------------------------------------------------- learn.compile
def need_compile(backend):
    "Skip, saying why, unless torch.compile with `backend` runs here (a tiny function compiled and called)."
    try:
        torch.compile(lambda x: x * 2 + 1, backend=backend)(torch.ones(2))
    except Exception as e:  # noqa: BLE001 - any failure means: not on this platform
        pytest.skip(f"torch.compile (backend {backend}) is not available on this platform: {type(e).__name__}: {e}"[
            :400])
    finally:
        torch._dynamo.reset()


def _mlp():
    """spec.tiny's mlp without the biases of the linear layers before a BatchNorm: their gradient is zero up to
    rounding, which Adam scales up to steps of size lr, so two float orders (compiled or not) would drift apart there
    (the training loss does not see those biases, the running means and the validation loss do)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def _twins(tmp_path, **kw):
    "Two learners from the same initial weights and data, the first compiled with `kw`."
    torch._dynamo.reset()
    return learner(path=tmp_path / "a", model=_mlp(), **kw), learner(path=tmp_path / "b", model=_mlp())


def _outputs(learn, x):
    learn.model.eval()
    with torch.no_grad():
        return learn._net()(x)


@pytest.mark.claim("IMPL-41")
def test_compile_keeps_the_module_for_save_and_load(tmp_path, monkeypatch):
    """Learner(compile=...) compiles the model once (torch.compile with the mode and options given, here the 'eager'
    backend: dynamo's graph capture without code generation, fast): it trains to the plain learner's losses, the
    state_dict keys are the module's, and files go both ways between the compiled and the plain learner."""
    need_compile("eager")
    calls, real = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **k: (calls.append((m, k)), real(m, **k))[1])
    a, b = _twins(tmp_path)
    a.compile("default", backend="eager")
    assert len(calls) == 1 and calls[0][0] is a.model and calls[0][1] == dict(mode="default", backend="eager"), (
        f"IMPL-41: torch.compile calls {calls}")
    assert a._net() is not a.model, "IMPL-41: the forward does not run compiled"
    a.fit_one_cycle(2, 1e-2), b.fit_one_cycle(2, 1e-2)
    close(a.recorder.batch_losses, b.recorder.batch_losses, rtol=1e-5, atol=1e-7, what="IMPL-41: batch losses")
    a.save("m")
    assert list(torch.load(a.path / "models" / "m.pth", weights_only=True)["model"]) == list(b.model.state_dict())
    b.path = a.path
    b.load("m")
    assert _same(b.model.state_dict(), a.model.state_dict()), "IMPL-41: compiled -> plain load"
    torch.manual_seed(1)
    b.model[0].weight.data.normal_()
    b.save("p")
    a.load("p")
    x = data(16, seed=3)[0]
    close(_outputs(a, x), _outputs(b, x), rtol=1e-5, atol=1e-6, what="IMPL-41: compiled outputs after a load")
    assert a.compile(False)._net() is a.model, "IMPL-41: compile(False) did not go back to the module"


@pytest.mark.claim("IMPL-41")
def test_bad_compile_argument_raises_before_anything():
    "Learner(compile=3): TypeError naming compile; an unknown mode: torch.compile's error, the learner unchanged."
    with pytest.raises(TypeError, match="compile"):
        learner(compile=3)
    learn = learner()
    with pytest.raises(RuntimeError, match="mode"):
        learn.compile("fastest")
    assert learn._net() is learn.model, f"IMPL-41: a failed compile left {learn._net()!r}"


@pytest.mark.claim("IMPL-41")
def test_learner_compile_argument_picks_the_mode(monkeypatch):
    """Learner(compile=True) calls torch.compile(model, mode=None) once (the default mode), compile='reduce-overhead'
    passes that mode, compile=False or None compiles nothing; compile='fastest' raises torch.compile's error naming the
    mode. No forward pass runs, so nothing is actually compiled (fast)."""
    calls, real = [], torch.compile
    try:
        real(nn.Linear(1, 1))
    except Exception as e:  # noqa: BLE001 - any failure means: not on this platform
        pytest.skip(f"torch.compile is not available on this platform: {type(e).__name__}: {e}"[:400])
    monkeypatch.setattr(torch, "compile", lambda m, **k: (calls.append((m, k)), real(m, **k))[1])
    ro = "reduce-overhead"
    for arg, want in [(False, []), (None, []), (True, [dict(mode=None)]), (ro, [dict(mode=ro)])]:
        calls.clear()
        learn = learner(compile=arg)
        assert [k for _, k in calls] == want and all(m is learn.model for m, _ in calls), (
            f"IMPL-41: Learner(compile={arg!r}) made torch.compile calls {calls}")
        assert (learn._net() is learn.model) == (not want), f"IMPL-41: compile={arg!r} runs {learn._net()!r}"
    with pytest.raises(RuntimeError, match="mode=fastest"):
        learner(compile="fastest")


@pytest.mark.slow
@pytest.mark.claim("IMPL-41")
def test_compiled_with_inductor_trains_as_plain(tmp_path):
    """torch.compile's default backend (inductor: generated C++ on a CPU, tens of seconds): the compiled learner's
    batch and validation losses over a 2-epoch 1cycle fit match the plain learner's within 1e-4, and a save/load
    round trip gives the same weights and outputs."""
    need_compile("inductor")
    a, b = _twins(tmp_path, compile=True)
    a.fit_one_cycle(2, 1e-2), b.fit_one_cycle(2, 1e-2)
    close(a.recorder.batch_losses, b.recorder.batch_losses, rtol=1e-4, atol=1e-6, what="IMPL-41: batch losses")
    close([v[1] for v in a.recorder.values], [v[1] for v in b.recorder.values], rtol=1e-4, atol=1e-6,
          what="IMPL-41: valid losses")
    a.save("m")
    b.path = a.path
    b.load("m")
    x = data(16, seed=3)[0]
    close(_outputs(a, x), _outputs(b, x), rtol=1e-4, atol=1e-5, what="IMPL-41: outputs after a load")
