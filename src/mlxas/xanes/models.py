"""Geometry models on XANES: kinds by name, training with augmentation, saving, loading.

The models read the normalised XANES and its derivative on the feature grid
(``[n, n_grid, 2]``, :meth:`mlxas.xanes.features.XanesFeatures.stacked`) and predict the
coordination class (probabilities over :data:`~mlxas.xanes.labels.GEOMETRY_CLASSES`),
and, where the kind has them, CN, mean bond length R (Å) and oxidation state.

Kinds
-----
``random_forest``  scikit-learn ``RandomForestClassifier`` (balanced class weights) for the
                   class and a multi-output ``RandomForestRegressor`` for CN, R and
                   oxidation state, on the flattened two channels: the baseline.
``cnn1d_class``    1D convolutions along the energy axis, a softmax over the classes.
``multitask``      the same convolutional trunk with four heads: the class softmax and
                   linear CN, R and oxidation-state heads (returned in physical units).

The training set is augmented (:mod:`mlxas.xanes.augment`): ``copies`` augmented copies
of every training spectrum are drawn once, beside the clean one; the validation set gets
one augmented copy beside its clean one.  Classes are weighted inversely to their
frequency (balanced).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.ood import fit_ood, ood_scores
from mlxas.xanes.augment import AugmentSettings, augment
from mlxas.xanes.labels import GEOMETRY_CLASSES

__all__ = ["KIND_DEFAULTS", "REGRESSION_TARGETS", "XanesModel", "fit", "load", "resolve_spec"]

#: Regression targets of the multi-task kinds, with their units.
REGRESSION_TARGETS = {"cn": "", "r": "Å", "oxidation_state": ""}

KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "random_forest": {
        "copies": 10,
        "params": {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1},
    },
    "cnn1d_class": {
        "copies": 10,
        "epochs": 150,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "patience": 20,
        "params": {
            "filters": [16, 32, 64],
            "kernel_size": 5,
            "pool": 2,
            "dense": [64],
            "dropout": 0.3,
            "l2": 1e-4,
        },
    },
}
KIND_DEFAULTS["multitask"] = copy.deepcopy(KIND_DEFAULTS["cnn1d_class"])
KIND_DEFAULTS["multitask"]["loss_weights"] = {
    "geometry": 1.0,
    "cn": 0.3,
    "r": 0.3,
    "oxidation_state": 0.3,
}


def resolve_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A model entry with its kind's defaults filled in (a new dict)."""
    kind = spec.get("kind")
    if kind not in KIND_DEFAULTS:
        raise ValueError(f"xanes models: unknown kind {kind!r} (have: {sorted(KIND_DEFAULTS)})")
    out = copy.deepcopy(KIND_DEFAULTS[kind])
    params = {**out.pop("params"), **(spec.get("params") or {})}
    out.update({k: v for k, v in spec.items() if k != "params"})
    out["params"] = params
    out.setdefault("name", kind)
    out.setdefault("seed", 0)
    return out


@dataclass
class XanesModel:
    """A trained model and what it needs to predict; ``card`` is plain JSON."""

    kind: str
    card: dict[str, Any]
    estimators: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``x``: ``[n, n_grid, 2]``.  Returns ``probabilities`` ``[n, n_classes]`` and,
        for kinds that have them, ``cn``, ``r``, ``oxidation_state`` ``[n]``."""
        x = np.asarray(x, dtype=np.float32)
        if self.kind == "random_forest":
            flat = x.reshape(len(x), -1)
            clf = self.estimators["classifier"]
            prob = np.zeros((len(x), len(GEOMETRY_CLASSES)))
            prob[:, clf.classes_] = clf.predict_proba(flat)
            reg = self.estimators["regressor"].predict(flat)
            out = {"probabilities": prob}
            out.update({t: reg[:, i] for i, t in enumerate(REGRESSION_TARGETS)})
            return out
        net = self.estimators["network"]
        pred = net.predict(x, verbose=0, batch_size=1024)
        if not isinstance(pred, dict):  # Keras returns a dict only for dict-output models
            pred = dict(
                zip(net.output_names, pred if isinstance(pred, list) else [pred], strict=True)
            )
        out = {"probabilities": np.asarray(pred["geometry"])}
        if self.kind == "multitask":
            out.update({t: np.asarray(pred[t])[:, 0] for t in REGRESSION_TARGETS})
        return out

    def ood(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-distribution scores and flags (score > 1) of inputs ``[n, n_grid, 2]``."""
        return ood_scores(np.asarray(x, dtype=float)[..., 0], self.card["ood"])

    def save(self, folder: str | Path) -> Path:
        """Write the model and ``card.json`` into ``folder``; returns the card path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        card = dict(self.card)
        if self.kind == "random_forest":
            import joblib

            path = folder / "model.joblib"
            joblib.dump(self.estimators, path, compress=3)
        else:
            path = folder / "model.keras"
            self.estimators["network"].save(path)
        card["file"] = path.name
        card["sha256"] = _sha256(path)
        out = folder / "card.json"
        out.write_text(json.dumps(card, indent=1, default=_json_default))
        return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(folder: str | Path) -> XanesModel:
    """Load a saved model.  The model file must have the SHA-256 its card records:
    a scikit-learn model is a pickle, and unpickling a file that was changed after it
    was written would run whatever it holds.  Keras models load in safe mode."""
    folder = Path(folder)
    card_path = folder / "card.json"
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{card_path}: cannot read the model card ({err})") from err
    path = folder / card.get("file", "")
    if not path.is_file():
        raise ValueError(f"{folder}: model file {card.get('file')!r} named by card.json is missing")
    if _sha256(path) != card.get("sha256"):
        raise ValueError(f"{path}: SHA-256 differs from card.json; refusing to load it")
    if card["kind"] == "random_forest":
        import joblib

        return XanesModel(card["kind"], card, joblib.load(path))
    import keras

    return XanesModel(
        card["kind"], card, {"network": keras.models.load_model(path, safe_mode=True)}
    )


# --- training -----------------------------------------------------------------------------


def _inputs(norm: np.ndarray, de: float) -> np.ndarray:
    deriv = np.gradient(norm, de, axis=1)
    return np.stack([norm, deriv], axis=-1).astype(np.float32)


def _expanded(norm, labels, grid, copies, aug, rng):
    """The clean rows and ``copies`` augmented copies, inputs and repeated labels."""
    parts = [np.asarray(norm, float)]
    parts += [augment(norm, grid, aug, rng) for _ in range(copies)]
    x = _inputs(np.concatenate(parts), float(grid[1] - grid[0]))
    y = {k: np.concatenate([v] * (copies + 1)) for k, v in labels.items()}
    return x, y


def _class_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=len(GEOMETRY_CLASSES)).astype(float)
    w = np.where(counts > 0, len(y) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return w[y]


def fit(
    spec: dict[str, Any],
    train: tuple[np.ndarray, dict[str, np.ndarray]],
    val: tuple[np.ndarray, dict[str, np.ndarray]],
    grid: np.ndarray,
    aug: AugmentSettings,
) -> XanesModel:
    """Train one model entry.  ``train``/``val``: normalised mu ``[n, n_grid]`` and labels
    ``geometry_index`` (int), ``cn``, ``r``, ``oxidation_state``."""
    spec = resolve_spec(spec)
    rng = np.random.default_rng(spec["seed"])
    xt, yt = _expanded(*train, grid, spec["copies"], aug, rng)
    xv, yv = _expanded(*val, grid, 1, aug, rng)
    card = {
        "kind": spec["kind"],
        "spec": spec,
        "classes": list(GEOMETRY_CLASSES),
        "grid": [float(grid[0]), float(grid[-1]), float(grid[1] - grid[0])],
        "input": "normalised XANES and d/dE on E - E0 (eV), [n, n_grid, 2]",
        "augment": aug.__dict__,
        "n_train": len(train[0]),
        "n_val": len(val[0]),
        # Out-of-distribution statistics of the (augmented) normalised training spectra.
        "ood": fit_ood(np.ascontiguousarray(xt[..., 0])),
    }
    if spec["kind"] == "random_forest":
        from mlxas.xanes.networks import fit_forest

        est = fit_forest(spec, xt, yt)
    else:
        from mlxas.xanes.networks import fit_network

        est, history = fit_network(spec, xt, yt, xv, yv, _class_weights(yt["geometry_index"]))
        card["training"] = history
    return XanesModel(spec["kind"], card, est)
