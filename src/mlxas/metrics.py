"""Regression and classification metrics shared by training (the card's metrics) and
evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, R² and mean relative error |pred−true|/|true| (rows with true=0 skipped).

    Units follow the target: MSE in unit², RMSE and MAE in the unit (Å for R).
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    err = y_pred - y_true
    n = len(y_true)
    if n == 0:
        nan = float("nan")
        return {"n": 0, "mse": nan, "rmse": nan, "mae": nan, "r2": nan, "mean_relative_error": nan}
    mse = float(np.mean(err**2))
    var = float(np.var(y_true))
    nz = y_true != 0
    return {
        "n": n,
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(err))),
        # R² is undefined for a target that does not vary (e.g. R of unrelaxed fcc clusters).
        "r2": float(1 - mse / var)
        if var > 1e-12 * max(1.0, float(np.mean(y_true**2)))
        else float("nan"),
        "mean_relative_error": float(np.mean(np.abs(err[nz]) / np.abs(y_true[nz])))
        if nz.any()
        else float("nan"),
    }


def classification_metrics(
    codes: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] | list[str]
) -> dict[str, Any]:
    """Metrics of a class target from true codes ``[n]`` and probabilities ``[n, classes]``.

    ``accuracy`` (top-1), ``top5_accuracy`` (when there are more than 5 classes),
    ``balanced_accuracy`` (mean recall over the classes present), ``macro_f1`` (over the
    classes present in truth or prediction), ``log_loss`` (natural log, probabilities
    clipped at 1e-12), ``per_class`` (support, precision, recall, F1 per class name) and
    ``confusion`` (rows: true class, columns: predicted, in the order of ``classes``).
    Computed with scikit-learn's metric functions.
    """
    from sklearn import metrics as skm

    codes = np.asarray(codes).astype(np.int64).ravel()
    probs = np.asarray(probs, dtype=float)
    labels = np.arange(len(classes))
    n = len(codes)
    if n == 0:
        return {"n": 0, "accuracy": float("nan"), "classes": list(classes)}
    pred = probs.argmax(axis=1)
    present = np.union1d(codes, pred)
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        codes, pred, labels=labels, zero_division=0
    )
    out: dict[str, Any] = {
        "n": n,
        "accuracy": float(skm.accuracy_score(codes, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(codes, pred)),
        "macro_f1": float(
            skm.f1_score(codes, pred, labels=present, average="macro", zero_division=0)
        ),
        "log_loss": float(-np.mean(np.log(np.clip(probs[np.arange(n), codes], 1e-12, None)))),
        "classes": list(classes),
        "per_class": {
            str(c): {
                "support": int(support[i]),
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion": skm.confusion_matrix(codes, pred, labels=labels).tolist(),
    }
    if len(classes) > 5:
        out["top5_accuracy"] = float(skm.top_k_accuracy_score(codes, probs, k=5, labels=labels))
    return out
