"""How far a model's confidence can be trusted: expected calibration error, the reliability diagram, and
temperature scaling (Guo et al. 2017) fitted on val.

A net's softmax confidence is often higher than its accuracy; one temperature T, fitted on val by minimising
the negative log-likelihood, divides the log-probabilities and leaves every argmax (so accuracy) unchanged.
The log of the (possibly TTA-averaged) probabilities stands in for the logits: softmax(log p / T) is p**(1/T)
renormalised, which is the logits' temperature scaling when there is no TTA.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from fer_lightning.core.figures import fit_width, plt


def log_probabilities(probabilities: np.ndarray) -> torch.Tensor:
    """float64 log-probabilities; a probability that underflowed to 0 becomes the smallest positive float, so
    no -inf reaches a gradient."""
    return torch.from_numpy(np.asarray(probabilities, np.float64)).clamp_min(np.finfo(np.float64).tiny).log()


def reliability_bins(probabilities: np.ndarray, true: np.ndarray, bins: int) -> pd.DataFrame:
    """One row per equal-width confidence bin (lower, upper]: faces, accuracy, mean confidence; the confidence
    is the top class's probability."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == true
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, correct.astype(np.float64), minlength=bins) / count
        mean_confidence = np.bincount(which, confidence.astype(np.float64), minlength=bins) / count
    edges = np.linspace(0, 1, bins + 1)
    return pd.DataFrame(
        {"lower": edges[:-1], "upper": edges[1:], "faces": count, "accuracy": accuracy, "confidence": mean_confidence}
    )


def expected_calibration_error(probabilities: np.ndarray, true: np.ndarray, bins: int) -> float:
    """ECE: the faces-weighted mean over the bins of |accuracy - mean confidence| (Naeini et al. 2015)."""
    table = reliability_bins(probabilities, true, bins)
    filled = table[table["faces"] > 0]
    gap = (filled["accuracy"] - filled["confidence"]).abs()
    return float((filled["faces"] * gap).sum() / max(len(true), 1))


def negative_log_likelihood(probabilities: np.ndarray, true: np.ndarray) -> float:
    """Mean NLL of the true class, the quantity temperature scaling minimises."""
    return float(F.nll_loss(log_probabilities(probabilities), torch.from_numpy(np.asarray(true, np.int64))))


def fit_temperature(probabilities: np.ndarray, true: np.ndarray, max_iter: int) -> float:
    """The T > 0 that minimises the NLL of softmax(log p / T) on these faces (val), by L-BFGS on log T."""
    log_p = log_probabilities(probabilities)
    labels = torch.from_numpy(np.asarray(true, np.int64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(log_p / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), as float32 like the model's own probabilities."""
    return (log_probabilities(probabilities) / temperature).softmax(-1).numpy().astype(np.float32)


def reliability_figure(curves: dict[str, pd.DataFrame], title: str, subtitle: str | None = None) -> Figure:
    """Accuracy against mean confidence per bin, one line per curve (e.g. before and after temperature scaling),
    the diagonal being perfect calibration; bars beneath show how many faces each bin holds."""
    figure, (ax, counts) = plt.subplots(
        2, 1, figsize=(5.4, 5.8), height_ratios=(3, 1), sharex=True, layout="constrained"
    )
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="perfectly calibrated")
    for (label, table), marker in zip(curves.items(), "os^", strict=False):
        filled = table[table["faces"] > 0]
        ax.plot(filled["confidence"], filled["accuracy"], marker=marker, markersize=4, label=label)
    first = next(iter(curves.values()))
    counts.bar(
        first["lower"],
        first["faces"],
        width=first["upper"] - first["lower"],
        align="edge",
        color="tab:blue",
        alpha=0.6,
        edgecolor="white",
    )
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    counts.set(xlabel="confidence (top class probability)", ylabel="faces")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=11, loc="left", pad=6 if subtitle is None else 18)
    if subtitle is not None:
        # Out of the layout: a long run path must not squeeze the axes to nothing; shortened from the left to fit.
        ax.text(
            0,
            1.01,
            fit_width(subtitle, figure, 9),
            transform=ax.transAxes,
            fontsize=9,
            color="dimgray",
            va="bottom",
            in_layout=False,
        )
    return figure
