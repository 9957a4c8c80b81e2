"""Classification metrics, compound-grouped splits and the confusion-matrix plot.

Metrics are scikit-learn's: accuracy, balanced accuracy (the mean recall over the classes
present in the truth), per-class F1 and the confusion matrix (rows: truth, columns:
prediction, in the order of :data:`~mlxas.xanes.labels.GEOMETRY_CLASSES`).  For the
regression heads: MAE of CN and R (Å), and for the oxidation state the MAE and the share
of sites predicted within ±1 (and exactly, after rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.xanes.labels import GEOMETRY_CLASSES

__all__ = [
    "classification_metrics",
    "grouped_split",
    "leave_one_group_out",
    "plot_confusion",
    "regression_metrics",
]


def classification_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class F1 and support, confusion matrix."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
    )

    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.argmax(np.asarray(prob), axis=1)
    labels = list(range(len(GEOMETRY_CLASSES)))
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    present = sorted(set(y_true.tolist()))
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "f1": {GEOMETRY_CLASSES[i]: float(f1[i]) for i in labels if i in present},
        "support": {GEOMETRY_CLASSES[i]: int(np.sum(y_true == i)) for i in present},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def regression_metrics(truth: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> dict:
    """MAE of ``cn`` and ``r``; MAE, ±1 and exact shares of ``oxidation_state``."""
    out: dict[str, Any] = {}
    for t in ("cn", "r"):
        if t in pred:
            out[f"{t}_mae"] = float(np.mean(np.abs(pred[t] - truth[t])))
    if "oxidation_state" in pred:
        err = pred["oxidation_state"] - truth["oxidation_state"]
        out["oxidation_state_mae"] = float(np.mean(np.abs(err)))
        out["oxidation_state_within_1"] = float(np.mean(np.abs(err) <= 1.0))
        out["oxidation_state_exact"] = float(
            np.mean(np.round(pred["oxidation_state"]) == truth["oxidation_state"])
        )
    return out


def grouped_split(
    classes: np.ndarray, groups: Sequence[str], seed: int, n_folds: int = 5
) -> dict[str, np.ndarray]:
    """Train/validation/test row indices, no group (compound) in two of them.

    scikit-learn's ``StratifiedGroupKFold`` cuts ``n_folds`` folds whose class shares
    follow the whole set; fold 0 is the test split, fold 1 the validation split.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    classes = np.asarray(classes)
    groups = np.asarray(groups)
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    parts = [test for _, test in folds.split(np.zeros(len(classes)), classes, groups)]
    test, val = np.sort(parts[0]), np.sort(parts[1])
    train = np.setdiff1d(np.arange(len(classes)), np.concatenate([test, val]))
    return {"train": train, "val": val, "test": test}


def leave_one_group_out(
    classes: np.ndarray, groups: Sequence[str], held_out: Sequence[str], seed: int
) -> dict[str, dict[str, np.ndarray]]:
    """For each name of ``held_out`` (e.g. a prototype): test = its rows; validation: one
    stratified group fold of the rest (groups = ``groups``, e.g. compounds)."""
    from sklearn.model_selection import StratifiedGroupKFold

    held_out = np.asarray(held_out)
    groups = np.asarray(groups)
    out = {}
    for name in sorted(set(held_out.tolist())):
        test = np.nonzero(held_out == name)[0]
        rest = np.nonzero(held_out != name)[0]
        folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
        _, val_pos = next(folds.split(np.zeros(len(rest)), classes[rest], groups[rest]))
        val = np.sort(rest[val_pos])
        out[name] = {"train": np.setdiff1d(rest, val), "val": val, "test": test}
    return out


def plot_confusion(confusion: Sequence[Sequence[int]], title: str, path: str | Path) -> Path:
    """Row-normalised confusion matrix with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    present = np.nonzero(cm.sum(axis=1) + cm.sum(axis=0))[0]
    cm = cm[np.ix_(present, present)]
    names = [GEOMETRY_CLASSES[i].replace("_", " ") for i in present]
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2, 1.0 * len(names) + 1.5))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            if cm[i, j]:
                color = "white" if frac[i, j] > 0.6 else "black"
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color=color)
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (ChemEnv)")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
