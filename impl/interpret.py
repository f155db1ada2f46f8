"""Model interpretation (T:L26-52): the confusion matrix (rows actual, columns predicted) and most_confused."""

import numpy as np
import torch


def confusion_matrix(actual, predicted, n):
    "cm[i, j] = how many items of actual class i were predicted as j (T:L33: the diagonal is the correct ones)."
    a, p = (torch.as_tensor(v).reshape(-1).long() for v in (actual, predicted))
    if a.shape != p.shape:
        raise ValueError(f"actual and predicted need as many items, got {len(a)} and {len(p)}")
    for k, v in (("actual", a), ("predicted", p)):
        if len(v) and (v.min() < 0 or v.max() >= n):
            raise ValueError(f"{k} classes must lie in [0, {n}), got {v.min().item()}..{v.max().item()}")
    c = torch.arange(n)
    return ((a == c[:, None, None]) & (p == c[None, :, None])).sum(-1).numpy()  # (n, n, items) -> (n, n)


def most_confused(cm, vocab, min_val=1):
    "Off-diagonal cells with count >= min_val as (actual, predicted, count), biggest first (T:L41)."
    if isinstance(min_val, bool) or not isinstance(min_val, (int, np.integer)) or min_val < 1:
        raise ValueError(f"min_val must be an int >= 1, got {min_val!r}")
    cm = np.array(cm)
    np.fill_diagonal(cm, 0)
    i, j = np.nonzero(cm >= min_val)
    order = np.argsort(-cm[i, j], kind="stable")
    return [(vocab[a], vocab[b], cm[a, b]) for a, b in zip(i[order], j[order])]


class ClassificationInterpretation:
    "Predictions of a learner on its validation set, each item once, as a confusion matrix."

    def __init__(self, learn, dl=None):
        self.learn, self.dl = learn, learn.dls.valid if dl is None else dl
        self.vocab = list(getattr(self.dl, "vocab", None) or learn.dls.vocab)
        _, self.targs, self.decoded = learn.get_preds(dl=self.dl, with_decoded=True)

    @classmethod
    def from_learner(cls, learn, dl=None):
        return cls(learn, dl)

    def confusion_matrix(self):
        return confusion_matrix(self.targs, self.decoded, len(self.vocab))

    def most_confused(self, min_val=1):
        return most_confused(self.confusion_matrix(), self.vocab, min_val)

    def plot_confusion_matrix(self, normalize=False, title="Confusion matrix", cmap="Blues", figsize=None):
        "The matrix as an image: x = Predicted, y = Actual, ticks labelled with the vocab, counts written in."
        import matplotlib.pyplot as plt

        cm = self.confusion_matrix()
        if normalize:
            cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=figsize)
        ax.imshow(cm, interpolation="nearest", cmap=cmap)
        ticks = np.arange(len(self.vocab))
        ax.set_xticks(ticks, [str(v) for v in self.vocab], rotation=90)
        ax.set_yticks(ticks, [str(v) for v in self.vocab])
        for (i, j), v in np.ndenumerate(cm):
            ax.text(
                j,
                i,
                f"{v:.2f}" if normalize else f"{v}",
                ha="center",
                va="center",
                color="white" if v > cm.max() / 2 else "black",
            )
        ax.set(title=title, xlabel="Predicted", ylabel="Actual", ylim=(len(self.vocab) - 0.5, -0.5))
        fig.tight_layout()
        return fig
