"""Out-of-distribution score: how far a model input lies from the training inputs.

A model trained on FEFF spectra answers for any input, including noise, another element's
spectrum or a badly normalised one.  The score flags inputs unlike anything in training.

Method: principal components of the training inputs (centred, divided by one global rms
so that the features keep their relative weights).  Two distances, as in multivariate
process monitoring:

- T² (Hotelling): Mahalanobis distance inside the principal subspace, Σ tⱼ²/λⱼ;
- Q (squared prediction error): squared distance from that subspace.

Thresholds are high quantiles of *held-out* training scores (k-fold: each fold is scored
by components fitted on the other folds), because in-sample scores, Q above all, are
optimistic.  The score of an input is max(T²/T²ₜₕ, Q/Qₜₕ): above 1 means out of
distribution.  ``fit_ood`` returns plain JSON (stored in the model card under ``ood``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fit_ood", "model_input_scores", "ood_scores"]

VERSION = 1


def _pca(x: np.ndarray, variance: float, max_components: int) -> tuple[np.ndarray, ...]:
    """Mean, components (k, d) and their variances from rows of x (already scaled)."""
    mean = x.mean(axis=0)
    xc = x - mean
    # Thin SVD: cheaper than the d×d covariance when there are fewer rows than features.
    _, sv, vt = np.linalg.svd(xc, full_matrices=False)
    lam = sv**2 / max(len(x) - 1, 1)
    total = lam.sum()
    if total <= 0:
        return mean, vt[:0], lam[:0]
    frac = np.cumsum(lam) / total
    k = int(np.searchsorted(frac, variance) + 1)
    k = max(0, min(k, max_components, len(x) - 2, len(lam)))
    keep = lam[:k] > 1e-12 * lam[0]
    return mean, vt[:k][keep], lam[:k][keep]


def _t2_q(x: np.ndarray, mean: np.ndarray, comp: np.ndarray, lam: np.ndarray):
    xc = x - mean
    t = xc @ comp.T
    t2 = (t * t / lam).sum(axis=1) if len(lam) else np.zeros(len(x))
    resid = xc - t @ comp
    return t2, (resid * resid).sum(axis=1)


def fit_ood(
    x_train: np.ndarray,
    variance: float = 0.99,
    max_components: int = 32,
    quantile: float = 0.995,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Statistics for :func:`ood_scores` from the training inputs (any shape ``[N, ...]``).

    ``variance``: fraction of the training variance the principal subspace keeps;
    ``quantile``: quantile of held-out training scores used as the threshold.
    """
    x = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    n, d = x.shape
    if n < 3:
        raise ValueError(f"fit_ood needs at least 3 training inputs, got {n}")
    if not np.all(np.isfinite(x)):
        raise ValueError("fit_ood: training inputs contain NaN or infinite values")
    scale = float(np.sqrt(np.mean((x - x.mean(axis=0)) ** 2))) or 1.0
    xs = x / scale

    # Held-out scores: k-fold (leave-one-out for small sets).
    k = min(folds, n)
    order = np.random.default_rng(seed).permutation(n)
    t2_ho, q_ho = np.empty(n), np.empty(n)
    for f in range(k):
        test = order[f::k]
        train = np.setdiff1d(order, test)
        mean, comp, lam = _pca(xs[train], variance, max_components)
        t2_ho[test], q_ho[test] = _t2_q(xs[test], mean, comp, lam)

    mean, comp, lam = _pca(xs, variance, max_components)
    t2_thr = float(np.quantile(t2_ho, quantile)) if len(lam) else 1.0
    q_thr = float(np.quantile(q_ho, quantile))
    # A subspace that holds all the variance leaves Q ~ 0: keep a floor so that round-off
    # alone is not 'out of distribution'.
    q_floor = 1e-6 * float(np.mean(np.sum((xs - mean) ** 2, axis=1))) + 1e-12
    return {
        "version": VERSION,
        "method": "pca-t2-q",
        "n_train": int(n),
        "n_features": int(d),
        "scale": scale,
        "mean": mean.astype(np.float32).tolist(),
        "components": comp.astype(np.float32).tolist(),
        "variances": lam.tolist(),
        "variance_kept": float(lam.sum() / max(np.sum((xs - mean) ** 2) / max(n - 1, 1), 1e-300)),
        "quantile": quantile,
        "folds": int(k),
        "t2_threshold": max(t2_thr, 1e-12),
        "q_threshold": max(q_thr, q_floor),
    }


def ood_scores(x: np.ndarray, stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, flags) of inputs ``x [N, ...]``; a score above 1 is out of distribution.

    Non-finite inputs get an infinite score.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    d = int(stats["n_features"])
    if x.shape[1] != d:
        raise ValueError(f"OOD statistics are for {d} features, the inputs have {x.shape[1]}")
    finite = np.all(np.isfinite(x), axis=1)
    xs = np.where(finite[:, None], x, 0.0) / float(stats["scale"])
    mean = np.asarray(stats["mean"], dtype=np.float64)
    comp = np.asarray(stats["components"], dtype=np.float64).reshape(-1, d)
    lam = np.asarray(stats["variances"], dtype=np.float64)
    t2, q = _t2_q(xs, mean, comp, lam)
    score = np.maximum(t2 / stats["t2_threshold"], q / stats["q_threshold"])
    score = np.where(finite, score, np.inf)
    return score, score > 1.0


def model_input_scores(
    x: np.ndarray, stats: dict[str, Any], card: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ood_scores` of a model's full inputs ``x``: a 1D input is cut to the card's
    ``crop`` first when the statistics were fitted on the cropped input (as training does)."""
    flat = x.reshape(len(x), -1)
    d = int(stats["n_features"])
    crop = card["preprocessing"].get("crop")
    if flat.shape[1] != d and crop and crop[1] - crop[0] == d and x.ndim == 2:
        flat = x[:, crop[0] : crop[1]]
    return ood_scores(flat, stats)
