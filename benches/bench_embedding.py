"""Embedding lookup vs one-hot matmul, forward + backward, against vocabulary size (T:L1797-1811: "an embedding
is a computational shortcut for multiplying by a one-hot-encoded matrix", with the speed of an array lookup).

Group `embedding-vs-onehot`, params `vocab` and `method`: `embedding` (dense weight gradient), `embedding_sparse`
(sparse gradient), `onehot` (one_hot(idx).float() @ W). One step = forward, a scalar loss, backward; an "epoch"
here is `steps` such steps. The three must agree: same outputs, same weight gradient.
"""

import pytest
import torch
import torch.nn.functional as F

from benches import _timing as T

BS, D = 1024, 50  # CF-23: a batch of 1024 indices, k = 50 factors
S = T.sized(
    gpu=dict(vocabs=[10**3, 10**4, 10**5, 10**6], steps=20, rounds=4, warmup=1),
    cpu=dict(vocabs=[10**3, 10**4, 10**5], steps=2, rounds=2, warmup=1),
    smoke=dict(vocabs=[10**3, 10**4], steps=1, rounds=1, warmup=0),
    sim=dict(vocabs=[10**3, 10**4, 10**5, 10**6], steps=1, rounds=1, warmup=0),
)
METHODS = ["embedding", "embedding_sparse", "onehot"]


def forward(method, idx, w):
    if method == "onehot":
        return F.one_hot(idx, w.shape[0]).to(w.dtype) @ w
    return F.embedding(idx, w, sparse=method == "embedding_sparse")


def measure(vocab):
    dev = T.device()
    g = torch.Generator(device="cpu").manual_seed(vocab)
    w0 = torch.randn(vocab, D, generator=g).to(dev)
    idxs = [torch.randint(vocab, (BS,), generator=g).to(dev) for _ in range(4)]
    gout = torch.randn(BS, D, generator=g).to(dev)  # d loss / d output: a random direction
    ws = {m: w0.clone().requires_grad_() for m in METHODS}

    def step(m, idx):
        w = ws[m]
        w.grad = None
        (forward(m, idx, w) * gout).sum().backward()

    # Correctness first: the same function and the same gradient (one-hot matmul in strict fp32 is exact).
    with T.tf32(False):
        ref_o, ref_g = None, None
        for m in METHODS:
            step(m, idxs[0])
            o, gr = forward(m, idxs[0], ws[m]).detach(), ws[m].grad
            gr = gr.to_dense() if gr.is_sparse else gr
            if ref_o is None:
                ref_o, ref_g = o, gr
            torch.testing.assert_close(
                o, ref_o, msg=lambda s, m=m: f"EMB: {m} output != embedding lookup, vocab {vocab}: {s}"
            )
            torch.testing.assert_close(
                gr, ref_g, msg=lambda s, m=m: f"EMB: {m} weight grad != embedding's, vocab {vocab}: {s}"
            )
        assert torch.equal(ref_o, w0[idxs[0]]), "embedding output is not row lookup"

        def epoch(m):
            return lambda: [step(m, idxs[i % len(idxs)]) for i in range(S["steps"])]

        return T.Group({m: epoch(m) for m in METHODS}, S["rounds"], S["warmup"], dev, ctx=lambda: T.tf32(False))


@pytest.mark.claim("CF-12", "CF-23")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("vocab", S["vocabs"])
@pytest.mark.benchmark(group="embedding-vs-onehot")
def test_embedding_vs_onehot(benchmark, vocab, method):
    step_us = lambda i: [round(t / S["steps"] * 1e6, 2) for t in i["epoch_s"]]
    group = T.once(("emb", vocab), lambda: measure(vocab))
    T.record(benchmark, group, method, steps_per_epoch=S["steps"], bs=BS, n_factors=D, step_us=step_us)
