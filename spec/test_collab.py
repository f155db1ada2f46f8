"""Collaborative filtering models and training (T:L1740-2160): dot products of latent factors, biases, y_range,
fastai's EmbeddingDotBias / collab_learner, and what training does on the MovieLens fixture, whose ratings come
from known latent factors and biases (fixtures/movielens.py): structure recovered, the bias model fits training
better, and with a long enough budget it overfits.
"""


import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import fixtures
from spec.tiny import (
    one_thread,  # noqa: F401
    plain,
    record,
    seeded,
    seeds,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SEEDS = seeds(2)  # (0, 1); shifted by SPEC_SEED_OFFSET (tools/calibrate.py). 3 until stop 20: every verdict
# below is a min over seeds, so 2 of the 3 can only raise the weakest effect, for two thirds of the cost




def dls_for(backend, root, seed=0, bs=64):
    "The fixture's ratings merged with titles, items by title (FB08), every RNG seeded before and after (seeded)."
    return seeded(seed, backend.collab_dls, root / "ml-100k", bs=bs, seed=seed)


def sizes(dls):
    "(n_users, n_items) including '#na#'."
    return tuple(len(v) for v in dls.classes.values())


def valid_ratings(dls):
    return torch.cat([plain(y).float().view(-1) for _, y in dls.valid])


def batch(dls):
    x, y = next(iter(dls.train))
    return plain(x), plain(y)


@pytest.fixture(scope="module")
def truth(data_dir_medium):
    return fixtures.truth(data_dir_medium, "ml-100k")


# ---------------------------------------------------------------- CF-4, CF-13: the spreadsheet, Python classes
def _factor_fit(seed):
    """SGD (lr 0.02, momentum 0.9, 1000 steps) of 30 x 3 and 3 x 30 factors plus a bias on the observed 70 % of a
    rank-3 ratings matrix: (1 - held-out MSE / the mean rating's held-out MSE, observed-cell MSE first / last)."""
    g = torch.Generator().manual_seed(seed)
    true = torch.randn(30, 3, generator=g) @ torch.randn(3, 30, generator=g) + 3
    seen = torch.rand(30, 30, generator=g) < 0.7
    uu = (0.1 * torch.randn(30, 3, generator=g)).requires_grad_()
    mm = (0.1 * torch.randn(3, 30, generator=g)).requires_grad_()
    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([uu, mm, bias], lr=0.02, momentum=0.9)
    losses = []
    for _ in range(1000):
        loss = ((uu @ mm + bias - true)[seen] ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    pred = (uu @ mm + bias).detach()
    held, base = ((pred - true)[~seen] ** 2).mean().item(), ((true[seen].mean() - true)[~seen] ** 2).mean().item()
    return 1 - held / base, losses[0] / losses[-1]


@pytest.mark.claim("CF-4")
def test_matrix_product_of_factors_fits_observed_cells(record_property):
    """(U @ M)[i, j] == U[i] @ M[:, j]; SGD on the MSE over observed cells only lowers that loss and predicts held-out
    cells of a rank-3 ratings matrix better than the mean rating (T:L1787 spreadsheet: 15 x 15; the fit uses 30 x 30,
    70 % observed, 1000 steps: _factor_fit). Effect: the median over 5 seeds (spec.tiny.seeds(5)) of 1 - held-out
    MSE / the mean rating's held-out MSE; passes above 0.5 (the mean rating scores 0). Why the median of 5: single
    seeds are bimodal, 0.997 typically but 0.36-0.75 in 4 of 400 seeds (SGD from a small init sometimes has not left
    the saddle near zero in 1000 steps), so one seed a run gave a margin of 0.33 at calibration offset 14 (stop 18);
    the median of 5 was >= 0.98 in all 80 blocks of those 400 seeds. The observed-cell MSE must fall 20x or more in
    the median seed (>= 1500x in those 80 blocks; 22.5x in the worst single seed)."""
    g = torch.Generator().manual_seed(seeds(1)[0])
    u, m = torch.randn(15, 5, generator=g), torch.randn(5, 15, generator=g)
    i, j = 3, 7
    assert torch.isclose((u @ m)[i, j], u[i] @ m[:, j]), "CF-4: (U@M)[3,7] != U[3] @ M[:,7]"
    runs = np.array([_factor_fit(s) for s in seeds(5)])
    effect, fall = np.median(runs, 0)
    record(record_property, effect, 0.5)
    assert fall > 20, f"CF-4: observed-cell MSE falls (first / last) per seed {runs[:, 1].round(1)}"
    assert effect > 0.5, f"CF-4: 1 - held-out MSE / the mean rating's, per seed {runs[:, 0].round(3)}"


@pytest.mark.claim("CF-13")
def test_example_class():
    class Example:
        def __init__(self, a):
            self.a = a

        def say(self, x):
            return f"Hello {self.a}, {x}."

    got = Example("Sylvain").say("nice to meet you")
    assert got == "Hello Sylvain, nice to meet you.", f"{got!r}"


# ---------------------------------------------------------------- CF-10, CF-14, CF-15, CF-17, CF-18: the models
@pytest.mark.claim("CF-10")
def test_random_factors_one_row_per_vocab_entry(backend, data_dir_medium, truth):
    dls = dls_for(backend, data_dir_medium)
    nu, ni = sizes(dls)
    assert nu == truth["n_users"] + 1, f"{nu} users in the vocab, the fixture has {truth['n_users']} + '#na#'"
    uf, mf = torch.randn(nu, 5), torch.randn(ni, 5)
    assert uf.shape == (nu, 5) and mf.shape == (ni, 5), f"{tuple(uf.shape)}, {tuple(mf.shape)}"
    assert abs(uf.mean()) < 0.3 and abs(uf.std() - 1) < 0.2, f"randn mean {uf.mean():.3f}, std {uf.std():.3f}"


@pytest.mark.claim("CF-14", "CF-15")
def test_dot_product_model(backend, data_dir_medium):
    "m(x) runs forward; both embeddings are registered parameters; out[i] = U[x[i,0]] . M[x[i,1]], shape (bs,)."
    dls = dls_for(backend, data_dir_medium)
    nu, ni = sizes(dls)
    m = backend.DotProduct(nu, ni, 50)
    shapes = sorted(tuple(p.shape) for p in m.parameters())
    assert shapes == sorted([(nu, 50), (ni, 50)]), f"parameters {shapes}"
    x, _ = batch(dls)
    o = m(x)
    assert torch.equal(o, m.forward(x)), "m(x) != m.forward(x)"
    want = (m.user_factors.weight[x[:, 0]] * m.movie_factors.weight[x[:, 1]]).sum(1)
    assert o.shape == (64,) and torch.allclose(o, want), (
        f"shape {tuple(o.shape)}, max error {(o - want).abs().max()}"
    )


@pytest.mark.claim("CF-17")
@given(scale=st.sampled_from([0.01, 1.0, 10.0, 100.0]).map(float), seed=st.integers(0, 2**16))
def test_y_range_keeps_predictions_in_range(backend, scale, seed):
    "With y_range=(0, 5.5) every prediction is sigmoid_range(dot, 0, 5.5), inside [0, 5.5], whatever the weights."
    torch.manual_seed(seed)
    m = backend.DotProduct(30, 20, 8, y_range=(0, 5.5))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale / 0.01)
    x = torch.stack([torch.randint(0, 30, (256,)), torch.randint(0, 20, (256,))], 1)
    o = m(x).detach()
    dot = (m.user_factors.weight[x[:, 0]] * m.movie_factors.weight[x[:, 1]]).sum(1).detach()
    assert o.min() >= 0 and o.max() <= 5.5, f"predictions in [{o.min():.3f}, {o.max():.3f}] at scale {scale}"
    assert torch.allclose(o, torch.sigmoid(dot) * 5.5, atol=1e-5), "not sigmoid(dot) * 5.5"


@pytest.mark.claim("CF-18")
def test_dot_product_bias_model(backend, data_dir_medium):
    "res = (u*m).sum(1, keepdim=True) + user_bias + movie_bias, then sigmoid_range(res, 0, 5.5): shape (bs, 1)."
    dls = dls_for(backend, data_dir_medium)
    m = backend.DotProductBias(*sizes(dls), 50)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)  # visible biases and dot products
    x, _ = batch(dls)
    o = m(x)
    u, i = x[:, 0], x[:, 1]
    res = (m.user_factors.weight[u] * m.movie_factors.weight[i]).sum(1, keepdim=True)
    res = res + m.user_bias.weight[u] + m.movie_bias.weight[i]
    want = torch.sigmoid(res) * 5.5
    assert o.shape == (64, 1), f"output shape {tuple(o.shape)}, expected (64, 1)"
    assert torch.allclose(o, want, atol=1e-5), f"max error {(o - want).abs().max():.3g}"


@pytest.mark.claim("CF-18", "CF-17")
@given(seed=st.integers(0, 2**16), yr=st.one_of(st.none(), st.tuples(st.floats(-5, 0), st.floats(0.5, 6))))
def test_dot_product_bias_y_range_option(backend, seed, yr):
    "DotProductBias(..., y_range=None) returns the raw dot + biases; another (lo, hi) puts it through sigmoid_range."
    torch.manual_seed(seed)
    m = backend.DotProductBias(30, 20, 8, y_range=yr)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 2.0)
    x = torch.stack([torch.randint(0, 30, (64,)), torch.randint(0, 20, (64,))], 1)
    u, i = x[:, 0], x[:, 1]
    res = (m.user_factors.weight[u] * m.movie_factors.weight[i]).sum(1, keepdim=True)
    res = (res + m.user_bias.weight[u] + m.movie_bias.weight[i]).detach()
    want = res if yr is None else torch.sigmoid(res) * (yr[1] - yr[0]) + yr[0]
    o = m(x).detach()
    assert o.shape == (64, 1) and torch.allclose(o, want, atol=1e-5), f"y_range={yr}: max error " + str(
        (o - want).abs().max().item())
    if yr is None:
        assert (o < 0).any() and (o > 5.5).any(), f"y_range=None still bounds [{o.min()}, {o.max()}]"


# ---------------------------------------------------------------- CF-20: collab_learner
@pytest.mark.claim("CF-20")
def test_collab_learner_is_embedding_dot_bias(backend, data_dir_medium):
    """Shapes (n, 50) and (n, 1), truncated-normal init (std 0.01, |w| < 0.02), MSE loss, the same values as
    DotProductBias with the same weights (shape (bs,) instead of (bs, 1)), and no y_range by default."""
    dls = dls_for(backend, data_dir_medium)
    nu, ni = sizes(dls)
    learn = backend.collab_learner(dls, n_factors=50, y_range=(0, 5.5))
    uw, iw, ub, ib = backend.collab_embeddings(learn)
    got = [tuple(t.shape) for t in (uw, iw, ub, ib)]
    assert got == [(nu, 50), (ni, 50), (nu,), (ni,)], f"u_weight, i_weight, u_bias, i_bias shapes {got}"
    w = torch.cat([uw.flatten(), iw.flatten()]).detach()
    want = 0.01 * np.fmod(np.random.default_rng(0).standard_normal(10**6), 2).std()  # fastai: normal().fmod_(2)*std
    assert abs(w.std().item() / want - 1) < 0.05 and w.abs().max() < 0.02, (
        f"init std {w.std():.5f} (normal folded into 2 sigma, x 0.01: {want:.5f}), max |w| {w.abs().max():.4f}"
    )
    x, y = batch(dls)
    o = learn.model(x)
    assert torch.isclose(learn.loss_func(o, y), F.mse_loss(o.view(-1), y.float().view(-1))), "loss not MSE"
    with torch.no_grad():
        for p in learn.model.parameters():
            p.normal_(0, 0.5)
    ref = backend.DotProductBias(nu, ni, 50, y_range=(0, 5.5))
    with torch.no_grad():
        for dst, src in zip((ref.user_factors, ref.movie_factors, ref.user_bias, ref.movie_bias), (uw, iw, ub, ib)):
            dst.weight.copy_(src.view(dst.weight.shape))
    o = learn.model(x)
    assert o.shape == (64,) and torch.allclose(o, ref(x)[:, 0], atol=1e-5), "differs from DotProductBias"
    free = backend.collab_learner(dls, n_factors=50)
    with torch.no_grad():
        backend.collab_embeddings(free)[2].fill_(10.0)  # user bias 10: above any y_range the lesson uses
    assert free.model(x).min() > 5.5, f"without y_range the output is still bounded: {free.model(x).min():.3f}"


@pytest.mark.claim("CF-20")
def test_collab_learner_options(backend, data_dir):
    "n_factors sizes the factors, y_range bounds the output, loss_func replaces MSE, other keywords reach the Learner."
    dls = dls_for(backend, data_dir, bs=16)
    nu, ni = sizes(dls)
    loss = backend.MSELossFlat(reduction="sum")
    learn = backend.collab_learner(dls, n_factors=7, y_range=(1.0, 2.0), loss_func=loss, lr=0.05)
    got = [tuple(t.shape) for t in backend.collab_embeddings(learn)]
    assert got == [(nu, 7), (ni, 7), (nu,), (ni,)], f"n_factors=7 gives shapes {got}"
    assert learn.loss_func is loss and learn.lr == 0.05, f"loss_func {learn.loss_func}, lr {learn.lr}"
    with torch.no_grad():
        for p in learn.model.parameters():
            p.normal_(0, 3.0)
    x, y = batch(dls)
    o = learn.model(x).detach()
    assert o.min() >= 1.0 and o.max() <= 2.0 and o.std() > 0, f"y_range=(1, 2): [{o.min()}, {o.max()}]"
    want = ((o - y.float().view(-1)) ** 2).sum()
    assert torch.isclose(plain(learn.loss_func(o, y)), want), "the given loss_func (sum) is not used"


# ---------------------------------------------------------------- training on the fixture (statistical)
_RUNS = {}


def run(backend, root, what, seed, bs=64, epochs=5, lr=5e-3):
    "Per-epoch [train, valid] of one fit_one_cycle; the learner too. Cached."
    key = (backend.name, what, seed, bs, epochs, lr)
    if key not in _RUNS:
        dls = dls_for(backend, root, seed, bs)
        nu, ni = sizes(dls)
        if what == "collab":
            learn = backend.collab_learner(dls, n_factors=50, y_range=(0, 5.5))
        else:
            m = {
                "dot": lambda: backend.DotProduct(nu, ni, 50),
                "dot_y": lambda: backend.DotProduct(nu, ni, 50, (0, 5.5)),
                "bias": lambda: backend.DotProductBias(nu, ni, 50),
            }[what]()
            learn = backend.app_learner(dls, m, backend.MSELossFlat())
        learn.fit_one_cycle(epochs, lr)
        _RUNS[key] = (backend.epoch_values(learn)[:, :2], learn, valid_ratings(dls).var().item())
    return _RUNS[key]


@pytest.mark.claim("CF-16")
def test_plain_learner_on_dot_product_trains(backend, data_dir_medium, record_property):
    """Learner(dls, DotProduct(n_users, n_movies, 50), MSELossFlat()).fit_one_cycle(5, 5e-3): train loss falls every
    epoch and the final valid MSE is below the valid ratings' variance, in each seed of SEEDS. Effect: the smallest
    relative epoch-to-epoch fall of the training loss over seeds and epochs; passes above 0."""
    rows = []
    runs = [run(backend, data_dir_medium, "dot", s) for s in SEEDS]
    record(record_property, min((-np.diff(v[:, 0]) / v[:-1, 0]).min() for v, _, _ in runs), 0)
    for v, _, var in runs:
        rows.append((np.round(v[:, 0], 3).tolist(), round(v[-1, 1], 3), round(var, 3)))
        assert (np.diff(v[:, 0]) < 0).all() and v[-1, 1] < var, f"CF-16: (train losses, final valid, var) {rows[-1]}"


@pytest.mark.statistical
@pytest.mark.claim("CF-20", "CF-17")
def test_collab_learner_recovers_the_known_structure(backend, data_dir_medium, truth, record_property):
    """collab_learner(y_range=(0, 5.5)).fit_one_cycle(5, 5e-3) recovers the fixture's known structure in every seed:
    it explains more than 30% of the valid ratings' variance (R2 = 1 - valid MSE / variance > 0.3) and its learned user
    and item biases correlate with the fixture's true biases (r > 0.55). Effect: the smallest factor by which a seed
    meets its bounds, min(R2 / 0.3, r users / 0.55, r items / 0.55); passes above 1. A model that learns nothing scores
    R2 <= 0 and r near 0 (biases left at their random init). Design: both effects are measured from that null, so a
    third of the weakest as margin puts the bounds at two thirds of it. Over calibration offsets 0..19 (stop 19) the
    weakest seed had R2 0.51 and r 0.87 (both backends); an earlier version wanted MSE < 0.6 x variance and r > 0.8 and
    held a margin of only 0.08. The biases cannot come much closer to the truth at this scale: with 40 training
    ratings per user, twice the epochs or lr raised impl's median r users only from 0.918 to 0.92 (12 seeds), and no
    bound above r = 0.67 can leave a third of any r <= 1 as margin."""
    ids = {v: int(k) for k, v in truth["titles"].items()}
    dup = {v for v in ids if list(truth["titles"].values()).count(v) > 1}
    rows = []
    for s in SEEDS:
        v, learn, var = run(backend, data_dir_medium, "collab", s)
        _, _, ub, ib = (t.detach().numpy() for t in backend.collab_embeddings(learn))
        users, titles = (list(c) for c in learn.dls.classes.values())
        iu = [(ub[k], truth["user_bias"][int(u) - 1]) for k, u in enumerate(users) if u != "#na#"]
        ii = [
            (ib[k], truth["item_bias"][ids[t] - 1])
            for k, t in enumerate(titles)
            if t in ids and t not in dup and ids[t] not in truth["rare_items"]
        ]
        r_u, r_i = (np.corrcoef(np.array(p).T)[0, 1] for p in (iu, ii))
        rows.append((round(v[-1, 1], 3), round(var, 3), round(r_u, 3), round(r_i, 3)))
    record(record_property, min(min((1 - mse / var) / 0.3, ru / 0.55, ri / 0.55) for mse, var, ru, ri in rows), 1)
    ok = all(1 - mse / var > 0.3 and min(ru, ri) > 0.55 for mse, var, ru, ri in rows)
    assert ok, f"CF-20: (valid MSE, ratings variance, r users, r items) per seed {rows}"


@pytest.mark.statistical
@pytest.mark.claim("CF-18", "CF-17")
def test_bias_model_fits_training_better(backend, data_dir_medium, record_property):
    """Same budget (fit_one_cycle(5, 5e-3)): DotProductBias ends with a lower training loss than DotProduct with
    y_range, in every seed. Effect: the smallest relative gain, 1 - DotProductBias's loss / DotProduct's; passes above 0
    (the claim is the direction, not a size)."""
    rows = [
        (run(backend, data_dir_medium, "bias", s)[0][-1, 0], run(backend, data_dir_medium, "dot_y", s)[0][-1, 0])
        for s in SEEDS
    ]
    record(record_property, min(1 - b / d for b, d in rows), 0)
    assert all(b < d for b, d in rows), f"final train loss (with biases, without) {np.round(rows, 3).tolist()}"


@pytest.mark.claim("CF-19")
def test_bias_model_overfits(backend, data_dir_medium, record_property):
    """DotProductBias, fit_one_cycle(15, 1e-2) at bs 64 (the 5000-rating fixture needs more passes than the book's 5
    over 100k ratings to overfit): the validation MSE is lowest before the last three epochs and ends at least 3%
    above that minimum while the training loss ends below its value at that epoch, in every seed of SEEDS (the book:
    3.7%, 0.861 -> 0.893). Effect: the smallest per-seed rise of the final validation MSE above its minimum
    (va[-1] / va.min() - 1); passes above 0.03. Design: at fit_one_cycle(10, 1e-2), bs 32 fastai's rise was
    2.8-3.6% against 2% (margin 0.31). 15 epochs at bs 64 (fewer steps in all) raised it: over calibration offsets
    0..15 the weakest rise was 6.3% on fastai and 14% on impl (impl's default optimizer has no weight decay), the
    minimum at epoch 3-5. A first version also wanted the training loss to fall in every epoch and a 5% rise: in 4 of
    18 fastai runs the annealed last epoch's smoothed loss ticked up by 0.001, and 6.3% left a margin of 0.2."""
    rows = []
    runs = [run(backend, data_dir_medium, "bias", s, bs=64, epochs=15, lr=1e-2)[0] for s in SEEDS]
    record(record_property, min(v[-1, 1] / v[:, 1].min() - 1 for v in runs), 0.03)
    for s, v in zip(SEEDS, runs):
        tr, va = v[:, 0], v[:, 1]
        rows.append((np.round(tr, 3).tolist(), np.round(va, 3).tolist()))
        ok = va.argmin() < len(va) - 3 and va[-1] > 1.03 * va.min() and tr[-1] < tr[va.argmin()]
        assert ok, f"CF-19: seed {s}: train {rows[-1][0]}, valid {rows[-1][1]}"


# ---------------------------------------------------------------- impl's collab models: sizes, y_range, x, dls
@pytest.mark.claim("IMPL-18")
def test_impl_collab_models_reject_bad_sizes():
    "Every size of DotProduct, DotProductBias and EmbeddingDotBias is an int >= 1; the error names it; 1 is fine."
    import impl.collab as C

    makers = [(C.DotProduct, ("n_users", "n_movies", "n_factors")), (C.DotProductBias, ("n_users", "n_movies",
              "n_factors")), (C.EmbeddingDotBias, ("n_factors", "n_users", "n_items"))]
    for make, names in makers:
        for k, name in enumerate(names):
            for bad in (0, -1, True, 2.0, "3"):
                args = [3, 4, 5]
                args[k] = bad
                with pytest.raises(ValueError, match=rf"^{name} must be an int >= 1, got {re.escape(repr(bad))}$"):
                    make(*args)
        m = make(1, 1, 1)
        assert m(torch.zeros(2, 2, dtype=torch.long)).shape[0] == 2, f"{make.__name__}(1, 1, 1) works"


@pytest.mark.claim("IMPL-18")
def test_impl_collab_y_range_and_x_errors():
    "y_range must be (lo, hi) with lo < hi (a list or a 2-element tensor too); x must be (bs, 2); errors say so."
    import impl.collab as C

    for make in (C.DotProduct, C.DotProductBias, lambda a, b, c, y_range: C.EmbeddingDotBias(c, a, b, y_range)):
        for bad, msg in [((1,), r"^y_range must be \(lo, hi\), got \(1,\)$"),
                         (5.5, r"^y_range must be \(lo, hi\), got 5.5$"),
                         ([0, 1, 2], r"^y_range must be \(lo, hi\), got \[0, 1, 2\]$"),
                         ((2, 1), r"^sigmoid_range needs lo < hi, got lo=2, hi=1$")]:
            with pytest.raises(ValueError, match=msg):
                make(3, 4, 5, y_range=bad)
        for yr in ([1.0, 3.0], torch.tensor([1.0, 3.0])):
            m = make(3, 4, 5, y_range=yr)
            with torch.no_grad():
                for p in m.parameters():
                    p.fill_(1.0)  # dot = 5 factors * 1 * 1 = 5 (+ 2 biases of 1 where the model has them)
            res = 7.0 if hasattr(m, "u_bias") or hasattr(m, "user_bias") else 5.0
            o = m(torch.tensor([[0, 1], [2, 3]]))
            want = 1 / (1 + math.exp(-res)) * 2 + 1  # sigmoid(res) * (3 - 1) + 1
            assert torch.allclose(o.flatten(), torch.full((2,), want), rtol=1e-6), f"y_range={yr}: {o}, want {want}"
        m = make(3, 4, 5, y_range=None)
        for x in (torch.zeros(4, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long),
                  torch.zeros(2, 2, 2, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long)):
            with pytest.raises(ValueError, match=rf"^x must be \(bs, 2\) rows of \(user, item\), got shape "
                                                 rf"{re.escape(str(tuple(x.shape)))}$"):
                m(x)


@pytest.mark.claim("IMPL-18")
def test_impl_collab_model_values_without_y_range():
    "With y_range=None the outputs are the raw dot products (plus biases): written out on weights we set."
    import impl.collab as C

    x = torch.tensor([[0, 1], [1, 0], [1, 1]])
    uw, iw = torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([[0.5, 0.5], [2.0, 1.0]])
    ub, ib = torch.tensor([[0.25], [-1.0]]), torch.tensor([[10.0], [20.0]])
    dot = [1 * 2 + 2 * 1, 3 * 0.5 - 1 * 0.5, 3 * 2 - 1 * 1]  # U[u] . I[i] for each row
    bias = [0.25 + 20, -1 + 10, -1 + 20]
    m = C.EmbeddingDotBias(2, 2, 2)
    dp, dpb = C.DotProduct(2, 2, 2), C.DotProductBias(2, 2, 2, y_range=None)
    with torch.no_grad():
        for w, v in [(m.u_weight, uw), (m.i_weight, iw), (m.u_bias, ub), (m.i_bias, ib), (dp.user_factors, uw),
                     (dp.movie_factors, iw), (dpb.user_factors, uw), (dpb.movie_factors, iw), (dpb.user_bias, ub),
                     (dpb.movie_bias, ib)]:
            w.weight.copy_(v)
    want = [d + b for d, b in zip(dot, bias)]
    assert m(x).tolist() == want and m.y_range is None, f"EmbeddingDotBias: {m(x).tolist()}, want {want}"
    assert dpb(x).tolist() == [[v] for v in want], f"DotProductBias(y_range=None): {dpb(x).tolist()}"
    assert dp(x).tolist() == dot and dp.y_range is None, f"DotProduct: {dp(x).tolist()}, want {dot}"


@pytest.mark.claim("IMPL-18")
def test_impl_collab_learner_sizes_from_dls_classes():
    """collab_learner reads (n_users, n_items) from the first two vocabs of dls.classes; n_factors 50 by default (as
    fastai); anything else as dls.classes is an error naming it."""
    from types import SimpleNamespace

    import impl.collab as C

    vocabs = {"user": ["#na#", "a", "b"], "title": ["#na#", "x", "y", "z"], "extra": list("pqrstu")}
    learn = C.collab_learner(SimpleNamespace(train=[], valid=[], classes=vocabs))
    got = [tuple(e.weight.shape) for e in (learn.model.u_weight, learn.model.i_weight, learn.model.u_bias)]
    assert got == [(3, 50), (4, 50), (3, 1)], f"from 3 users and 4 items, n_factors 50 by default: {got}"
    assert learn.model.y_range is None, f"no y_range by default: {learn.model.y_range}"
    for bad in (None, {"user": ["a"]}, [["a"], ["b"]]):
        with pytest.raises(ValueError, match=rf"^dls.classes must map the user and item columns to their vocabs, "
                                             rf"got {re.escape(repr(bad))}$"):
            C.collab_learner(SimpleNamespace(train=[], valid=[], classes=bad))
    with pytest.raises(ValueError, match=r"^dls.classes must map .* got None$"):
        C.collab_learner(SimpleNamespace(train=[], valid=[]))
