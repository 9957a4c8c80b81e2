"""Regression metrics shared by training (the card's metrics) and evaluation."""

from __future__ import annotations

import numpy as np

__all__ = ["regression_metrics"]


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
