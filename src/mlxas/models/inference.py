"""Running a saved model: batched prediction in physical units, with the ensemble spread."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "class_predictions",
    "output_columns",
    "predict_array",
    "split_targets",
    "value_spread",
]

#: Rows per forward pass.  Large batches amortise the per-call overhead of Keras;
#: 8192 rows of a 400-point input are 13 MB.
BATCH = 8192


def output_columns(card: dict[str, Any]) -> list[str]:
    """Names of the output columns: ``cn``, ``r``, ``rdf[0]``, ... in model order."""
    return list(card["outputs"]["columns"])


def split_targets(card: dict[str, Any], arr: np.ndarray) -> dict[str, np.ndarray]:
    """Cut a ``[N, columns]`` array into one array per target (1D for scalars)."""
    out = {}
    for t, (a, b) in card["outputs"]["slices"].items():
        out[t] = arr[:, a] if b - a == 1 else arr[:, a:b]
    return out


def class_predictions(
    card: dict[str, Any], per_target: dict[str, np.ndarray]
) -> dict[str, tuple[list[str], np.ndarray]]:
    """For every class target of ``card``: (the most probable class name of each row,
    the probabilities ``[N, classes]``) from :func:`split_targets` output."""
    out = {}
    for t, names in card["outputs"].get("classes", {}).items():
        probs = np.asarray(per_target[t], dtype=float).reshape(len(per_target[t]), -1)
        out[t] = ([str(names[i]) for i in probs.argmax(axis=1)], probs)
    return out


def predict_array(
    model, card: dict[str, Any], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Predict raw model inputs ``x`` (as the card's features describe them).

    Returns ``(mean, std)``, each ``[N, columns]`` in physical units (CN, Å, ...).
    ``std`` is the ensemble's spread (sample standard deviation over members) for an
    ensemble and None for a single network.
    """
    x = np.asarray(x, dtype=np.float32)
    shape = tuple(card["preprocessing"]["input_shape"])
    if x.shape[1:] != shape:
        raise ValueError(
            f"model {card['model_id']} expects inputs of shape (N, {', '.join(map(str, shape))}),"
            f" got {x.shape}"
        )
    n_cols = len(output_columns(card))
    members = card["outputs"].get("members")
    if len(x) == 0:
        empty = np.zeros((0, n_cols), dtype=np.float32)
        return empty, (empty.copy() if members else None)
    parts = [np.asarray(model.predict_on_batch(x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
    y = np.concatenate(parts, axis=0)
    if members:
        return y.mean(axis=1), y.std(axis=1, ddof=1)
    return y.reshape(len(x), n_cols), None


def value_spread(
    model, card: dict[str, Any], x: np.ndarray, std: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The spread of each reading's value targets, per target: an ensemble's own ``std``
    (:func:`split_targets` of :func:`predict_array`'s) when it has one; for a random
    forest, which has no members, the spread over its trees of each scalar value target
    (:meth:`mlxas.models.forest.ForestModel.tree_spread`); otherwise ``std`` unchanged.

    The error flag reads it as a feature; it is kept out of the reported ``<target>_std``
    values because a forest's tree spread is not an ensemble's uncertainty."""
    if std or not hasattr(model, "tree_spread"):
        return std
    classes = card["outputs"].get("classes") or {}
    heads = [
        t for t, (a, b) in card["outputs"]["slices"].items() if b - a == 1 and t not in classes
    ]
    x = np.asarray(x, dtype=np.float32)
    return {t: v.reshape(-1) for t, v in model.tree_spread(x, heads).items()}
