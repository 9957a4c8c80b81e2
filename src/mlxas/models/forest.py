"""Random forests (scikit-learn), saved as plain arrays and run in numpy.

``random_forest`` fits one scikit-learn forest per head: a ``RandomForestClassifier``
for a class target, a ``RandomForestRegressor`` for a value target (a vector target is
one multi-output regressor).  The fitted trees are exported to the model folder's array file
(:data:`~mlxas.workflow.layout.MODEL_NPZ_FILE`) of plain
numeric arrays (no pickle: the file is read with ``allow_pickle=False``) and evaluated by
:class:`ForestModel`, which walks every tree of every forest at once in numpy.  Its
output has the columns of a Keras model of the same heads: the class probabilities of a
class head (the mean over trees of each leaf's class fractions, as scikit-learn's
``predict_proba``), the mean over trees of the leaf values of a value head.

The forest reads the raw input cropped to ``input_range`` and flattened; no scaling
(trees split on thresholds, so scaling changes nothing).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mlxas.models.registry import Head, ModelConfigError, ModelKind, register_kind

if TYPE_CHECKING:
    from mlxas.models.spec import ModelSpec
    from mlxas.models.training_data import TrainingData

__all__ = ["ForestModel", "RandomForest", "export_forest"]

#: Version of the arrays layout in the array file; other versions are refused.
NPZ_VERSION = 1


def export_forest(forest, width: int, classes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The trees of a fitted scikit-learn forest as flat arrays.

    Nodes of all trees are concatenated; ``left``/``right`` hold global node indices
    (-1 at a leaf), ``roots`` the first node of each tree.  ``value`` is ``[nodes,
    width]``: the class fractions of a classifier (its ``classes_`` placed among the
    ``width`` class codes 0..width-1) or the outputs of a regressor.
    """
    roots, left, right, feature, threshold, value = [], [], [], [], [], []
    offset = 0
    for est in forest.estimators_:
        t = est.tree_
        n = t.node_count
        leaf = t.children_left < 0
        roots.append(offset)
        left.append(np.where(leaf, -1, t.children_left + offset))
        right.append(np.where(leaf, -1, t.children_right + offset))
        feature.append(np.where(leaf, 0, t.feature))
        threshold.append(t.threshold)
        v = np.asarray(t.value, dtype=np.float64)  # [nodes, outputs, classes or 1]
        if classes is not None:
            frac = v[:, 0, :] / v[:, 0, :].sum(axis=1, keepdims=True)
            full = np.zeros((n, width))
            full[:, np.asarray(classes, dtype=np.int64)] = frac
            value.append(full)
        else:
            value.append(v[:, :, 0])
        offset += n
    return {
        "roots": np.asarray(roots, np.int64),
        "left": np.concatenate(left).astype(np.int64),
        "right": np.concatenate(right).astype(np.int64),
        "feature": np.concatenate(feature).astype(np.int64),
        "threshold": np.concatenate(threshold).astype(np.float64),
        "value": np.concatenate(value).astype(np.float64),
    }


class ForestModel:
    """Forests of several heads, from and to the model's array file; :meth:`predict_on_batch`
    gives ``[N, columns]`` like a Keras model (so :func:`~mlxas.models.predict_array`
    runs it unchanged)."""

    def __init__(self, heads: list[str], forests: dict[str, dict[str, np.ndarray]], crop: slice):
        self.heads = heads
        self.forests = forests
        self.crop = crop

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        x = x[:, self.crop] if x.ndim == 2 else x
        # scikit-learn compares float32 inputs with float64 thresholds; do the same.
        return x.reshape(len(x), -1).astype(np.float32)

    @staticmethod
    def _leaves(f: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """The leaf ``[N, trees]`` each row of ``x`` reaches in every tree of ``f``.

        All (row, tree) pairs descend together, one level per step; pairs that reached a
        leaf leave the working set, so deep, unbalanced trees cost what their paths cost.
        """
        n, trees = len(x), len(f["roots"])
        rows = np.repeat(np.arange(n), trees)
        node = np.tile(f["roots"], n)
        pair = np.arange(n * trees)
        leaf = np.empty(n * trees, dtype=np.int64)
        while pair.size:
            left = f["left"][node]
            done = left < 0
            leaf[pair[done]] = node[done]
            inner = ~done
            pair, node, rows, left = pair[inner], node[inner], rows[inner], left[inner]
            go_left = x[rows, f["feature"][node]] <= f["threshold"][node]
            node = np.where(go_left, left, f["right"][node])
        return leaf.reshape(n, trees)

    @staticmethod
    def _moments(
        f: dict[str, np.ndarray], x: np.ndarray, spread: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean over trees of the leaf values reached by every row of ``x`` and, with
        ``spread``, their standard deviation over the trees (population, ddof 0)."""
        leaf = ForestModel._leaves(f, x)
        total = np.zeros((len(x), f["value"].shape[1]))
        squares = np.zeros_like(total) if spread else None
        for j in range(leaf.shape[1]):  # summed tree by tree, in scikit-learn's order
            v = f["value"][leaf[:, j]]
            total += v
            if squares is not None:
                squares += v * v
        mean = total / leaf.shape[1]
        if squares is None:
            return mean, None
        return mean, np.sqrt(np.maximum(squares / leaf.shape[1] - mean * mean, 0.0))

    def tree_spread(self, x: np.ndarray, heads: list[str] | None = None) -> dict[str, np.ndarray]:
        """Per head (``heads``, default all), the standard deviation over trees of the
        leaf values ``[N, width]``: how much the trees disagree on each row.

        For a value head it is the forest's own analogue of an ensemble's spread, which
        the error flag reads as a feature (:mod:`mlxas.error_flag`); the prediction
        itself stays the mean of :meth:`predict_on_batch`.  It costs one more walk.
        """
        xs = self._inputs(x)
        return {t: self._moments(self.forests[t], xs, spread=True)[1]
                for t in (self.heads if heads is None else heads)}  # fmt: skip

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        xs = self._inputs(x)
        return np.concatenate([self._moments(self.forests[t], xs)[0] for t in self.heads], axis=1)

    def save(self, path: str | Path) -> None:
        arrays = {
            "npz_version": np.asarray(NPZ_VERSION),
            "heads": np.asarray(self.heads, dtype=np.str_),
            "crop": np.asarray([self.crop.start, self.crop.stop], np.int64),
        }
        for i, t in enumerate(self.heads):
            arrays.update({f"h{i}/{k}": v for k, v in self.forests[t].items()})
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> ForestModel:
        """Read the array file without pickle; ValueError naming the file if malformed."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["npz_version"]) != NPZ_VERSION:
                    raise ValueError(f"layout version {int(z['npz_version'])}, not {NPZ_VERSION}")
                heads = [str(h) for h in z["heads"]]
                start, stop = (int(v) for v in z["crop"])
                keys = ("roots", "left", "right", "feature", "threshold", "value")
                forests = {t: {k: z[f"h{i}/{k}"] for k in keys} for i, t in enumerate(heads)}
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: not a mlxas random-forest array file ({err})") from None
        return cls(heads, forests, slice(start, stop))


@register_kind
class RandomForest(ModelKind):
    """scikit-learn random forests, one per head; ``params`` are passed to the forest
    (``n_estimators``, ``max_depth``, ``min_samples_leaf``, ``max_features``,
    ``class_weight`` for classifiers) with ``n_jobs`` from the training threads."""

    name = "random_forest"
    backend = "numpy"
    # epochs, batch size, learning rate and patience mean nothing to a forest; the keys
    # exist so that every kind resolves the same entry fields.
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 1,
        "batch_size": 1,
        "learning_rate": 0.0,
        "patience": 1,
        "optimizer": None,
        "standardize": False,
        "lr_schedule": None,
        "params": {
            "n_estimators": 200,
            "max_depth": None,
            "min_samples_leaf": 1,
            "max_features": "sqrt",
            "class_weight": None,
        },
    }

    def fit_numpy(
        self,
        data: TrainingData,
        spec: ModelSpec,
        heads: dict[str, Head],
        crop: slice,
        threads: int = 1,
    ):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        train = data.splits["train"]
        p = dict(spec.params)
        common = {
            k: p[k] for k in ("n_estimators", "max_depth", "min_samples_leaf", "max_features")
        }
        model = ForestModel(list(heads), {}, crop)
        x = model._inputs(train.x)
        weights = self.sample_weight(train, spec, heads)
        records = []
        for t, h in heads.items():
            t0 = time.perf_counter()
            y = train.y[t]
            w = None if weights is None else weights[t]
            if w is not None and w.ndim > 1:
                raise ModelConfigError(f"models.{spec.name}: a forest takes one weight per example")
            if h.is_class:
                est = RandomForestClassifier(
                    **common,
                    class_weight=p.get("class_weight"),
                    random_state=int(spec.seed),
                    n_jobs=threads,
                )
                est.fit(x, y.ravel(), sample_weight=w)
                model.forests[t] = export_forest(est, h.width, est.classes_)
            else:
                est = RandomForestRegressor(**common, random_state=int(spec.seed), n_jobs=threads)
                est.fit(x, y if y.shape[1] > 1 else y.ravel(), sample_weight=w)
                model.forests[t] = export_forest(est, h.width)
            records.append({
                "target": t,
                "seed": int(spec.seed),
                "trees": len(est.estimators_),
                "nodes": len(model.forests[t]["left"]),
                "epochs_run": 1,
                "best_epoch": None,
                "seconds": time.perf_counter() - t0,
            })  # fmt: skip
        return model, records
