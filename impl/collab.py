"""Collaborative filtering (T:L1740-2160): latent factors for users and items, their dot product, biases, y_range.

Every model takes a `(bs, 2)` long tensor of (user index, item index) rows, as the collab DataLoaders yield.
Embeddings start as fastai's: truncated normal, std 0.01 (impl.layers.Embedding).
"""

from torch import nn

from .layers import Embedding, _bounds, sigmoid_range
from .learner import Learner
from .losses import MSELossFlat


def _sizes(**kw):
    for k, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} must be an int >= 1, got {v!r}")


def _range(y_range):
    "None, or (lo, hi) with lo < hi: checked when the model is made, not at its first batch."
    if y_range is None:
        return None
    if not hasattr(y_range, "__len__") or len(y_range) != 2:
        raise ValueError(f"y_range must be (lo, hi), got {y_range!r}")
    return _bounds(*y_range)


def _check_x(x):
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must be (bs, 2) rows of (user, item), got shape {tuple(x.shape)}")
    return x[:, 0], x[:, 1]


class DotProduct(nn.Module):
    "Each user's factors dotted with each movie's (T:L2050): shape (bs,); through sigmoid_range when y_range (T:L2104)."

    def __init__(self, n_users, n_movies, n_factors, y_range=None):
        super().__init__()
        _sizes(n_users=n_users, n_movies=n_movies, n_factors=n_factors)
        self.user_factors, self.movie_factors = Embedding(n_users, n_factors), Embedding(n_movies, n_factors)
        self.y_range = _range(y_range)

    def forward(self, x):
        u, m = _check_x(x)
        res = (self.user_factors(u) * self.movie_factors(m)).sum(dim=1)
        return res if self.y_range is None else sigmoid_range(res, *self.y_range)


class DotProductBias(DotProduct):
    "Plus a bias per user and per movie (T:L2121): (bs, 1), then sigmoid_range(res, *y_range) (CF-18)."

    def __init__(self, n_users, n_movies, n_factors, y_range=(0, 5.5)):
        super().__init__(n_users, n_movies, n_factors, y_range)
        self.user_bias, self.movie_bias = Embedding(n_users, 1), Embedding(n_movies, 1)

    def forward(self, x):
        u, m = _check_x(x)
        res = (self.user_factors(u) * self.movie_factors(m)).sum(dim=1, keepdim=True)
        res = res + self.user_bias(u) + self.movie_bias(m)
        return res if self.y_range is None else sigmoid_range(res, *self.y_range)


class EmbeddingDotBias(nn.Module):
    "fastai's collab model (CF-20): u_weight, i_weight, u_bias, i_bias; dot.sum(1) + biases, shape (bs,)."

    def __init__(self, n_factors, n_users, n_items, y_range=None):
        super().__init__()
        _sizes(n_factors=n_factors, n_users=n_users, n_items=n_items)
        self.u_weight, self.i_weight = Embedding(n_users, n_factors), Embedding(n_items, n_factors)
        self.u_bias, self.i_bias = Embedding(n_users, 1), Embedding(n_items, 1)
        self.y_range = _range(y_range)

    def forward(self, x):
        u, i = _check_x(x)
        res = (self.u_weight(u) * self.i_weight(i)).sum(1) + self.u_bias(u)[:, 0] + self.i_bias(i)[:, 0]
        return res if self.y_range is None else sigmoid_range(res, *self.y_range)


def _n_classes(dls):
    "(n_users, n_items) from dls.classes, a dict {user column: vocab, item column: vocab} in that order."
    cl = getattr(dls, "classes", None)
    if not isinstance(cl, dict) or len(cl) < 2:
        raise ValueError(f"dls.classes must map the user and item columns to their vocabs, got {cl!r}")
    return tuple(len(v) for v in list(cl.values())[:2])


def collab_learner(dls, n_factors=50, y_range=None, loss_func=None, **learner_kw):
    "A Learner on EmbeddingDotBias sized from dls.classes; loss MSELossFlat by default; no y_range by default (CF-20)."
    nu, ni = _n_classes(dls)
    model = EmbeddingDotBias(n_factors, nu, ni, y_range=y_range)
    return Learner(dls, model, MSELossFlat() if loss_func is None else loss_func, **learner_kw)
