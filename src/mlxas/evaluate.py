"""Metrics, parity plots and model comparison on the test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["evaluate", "per_class_errors", "regression_metrics"]

UNITS = {"cn": "", "r": "Å"}
TITLES = {"cn": "coordination number", "r": "mean first-shell distance R (Å)"}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, R² and mean relative error |pred-true|/|true| (rows with true=0 skipped)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    err = y_pred - y_true
    mse = float(np.mean(err**2))
    var = float(np.var(y_true))
    nz = y_true != 0
    return {
        "n": len(y_true),
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


def per_class_errors(
    cn_true: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, dict]:
    """Errors grouped by the (rounded) true CN class."""
    classes = np.rint(cn_true).astype(int)
    return {
        str(c): regression_metrics(y_true[classes == c], y_pred[classes == c])
        for c in np.unique(classes)
    }


def _parity(ax, y_true: np.ndarray, y_pred: np.ndarray, target: str, title: str) -> None:
    lo = float(min(y_true.min(), y_pred.min()))
    hi = float(max(y_true.max(), y_pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1)
    ax.scatter(y_true, y_pred, s=8, alpha=0.6)
    ax.set_xlabel(f"true {TITLES.get(target, target)}")
    ax.set_ylabel(f"predicted {TITLES.get(target, target)}")
    ax.set_title(title)
    ax.set_aspect("equal")


def evaluate(
    dataset_path: str | Path,
    pointer_files: list[str],
    out_dir: str | Path,
    primary: str | None = None,
) -> dict[str, Any]:
    """Evaluate every model on the test split; write metrics.json, plots and a table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlxas.dataset import open as open_dataset
    from mlxas.models.card import load_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = open_dataset(dataset_path)
    cn_test = ds.labels("cn", "test")
    results: dict[str, Any] = {
        "dataset_hash": ds.hash,
        "split": "test",
        "n_test": len(cn_test),
        "models": {},
    }
    preds = {}
    for pointer in pointer_files:
        model, card = load_model(pointer)
        x = ds.features(card["preprocessing"]["input"], "test")
        pred = np.asarray(model.predict(x, batch_size=4096, verbose=0))
        entry = {"model_id": card["model_id"], "kind": card["kind"], "targets": {}}
        for i, t in enumerate(card["preprocessing"]["targets"]):
            y = ds.labels(t, "test")
            m = regression_metrics(y, pred[:, i])
            m["per_cn_class"] = per_class_errors(cn_test, y, pred[:, i])
            entry["targets"][t] = m
            preds[(card["name"], t)] = (y, pred[:, i])
        results["models"][card["name"]] = entry
    names = list(results["models"])
    primary = primary or names[0]
    if primary not in results["models"]:
        raise ValueError(f"evaluation.primary: no model named {primary!r} (have {names})")
    results["primary"] = primary
    for (name, t), (y, p) in preds.items():
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        m = results["models"][name]["targets"][t]
        _parity(ax, y, p, t, f"{name}: MSE {m['mse']:.4g}, MAE {m['mae']:.4g}")
        fig.tight_layout()
        fig.savefig(out_dir / f"parity_{name}_{t}.png", dpi=120)
        if name == primary:
            fig.savefig(out_dir / f"parity_{t}.png", dpi=120)
        plt.close(fig)
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    lines = [
        "| model | target | MSE | RMSE | MAE | R² | mean rel. error |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["models"].items():
        for t, m in entry["targets"].items():
            lines.append(
                f"| {name} | {t} | {m['mse']:.4g} | {m['rmse']:.4g} | {m['mae']:.4g} | "
                f"{m['r2']:.3f} | {m['mean_relative_error']:.4g} |"
            )
    (out_dir / "comparison.md").write_text("\n".join(lines) + "\n")
    return results
