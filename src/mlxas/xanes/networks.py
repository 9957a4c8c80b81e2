"""Estimators behind :mod:`mlxas.xanes.models`: the random forests and the Keras networks.

Both networks share one trunk: a ``Normalization`` layer (per channel, adapted to the
training inputs and saved in the model), ``Conv1D`` blocks with max-pooling along the
energy axis, then Dense layers.  The regression heads of ``multitask`` end in an inverted
``Normalization`` holding the training mean and variance of their target, so the saved
model returns physical units; their MSE losses are weighted by ``loss_weight / variance``
so that each target counts in units of its own spread.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlxas.xanes.labels import GEOMETRY_CLASSES

__all__ = ["fit_forest", "fit_network"]

REGRESSION = ("cn", "r", "oxidation_state")


def fit_forest(spec: dict[str, Any], x: np.ndarray, y: dict[str, np.ndarray]) -> dict[str, Any]:
    """A balanced random-forest classifier and a multi-output forest regressor."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    flat = x.reshape(len(x), -1)
    p = spec["params"]
    common = {
        "n_estimators": int(p["n_estimators"]),
        "max_features": p["max_features"],
        "min_samples_leaf": int(p["min_samples_leaf"]),
        "random_state": int(spec["seed"]),
        "n_jobs": int(spec.get("threads", 2)),
    }
    clf = RandomForestClassifier(class_weight="balanced", **common)
    clf.fit(flat, y["geometry_index"])
    reg = RandomForestRegressor(**common)
    reg.fit(flat, np.column_stack([y[t] for t in REGRESSION]))
    return {"classifier": clf, "regressor": reg}


def _trunk(inp, x_train: np.ndarray, p: dict[str, Any]):
    import keras

    scale = keras.layers.Normalization(axis=-1, name="input_scaling")
    scale.adapt(x_train)
    x = scale(inp)
    reg = keras.regularizers.L2(float(p["l2"])) if p.get("l2") else None
    for i, f in enumerate(p["filters"]):
        x = keras.layers.Conv1D(
            int(f), int(p["kernel_size"]), padding="same", activation="relu",
            kernel_regularizer=reg, name=f"conv_{i}",
        )(x)  # fmt: skip
        if int(p["pool"]) > 1:
            x = keras.layers.MaxPooling1D(int(p["pool"]), padding="same", name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, n in enumerate(p["dense"]):
        x = keras.layers.Dense(
            int(n), activation="relu", kernel_regularizer=reg, name=f"dense_{i}"
        )(x)
        if float(p["dropout"]) > 0:
            x = keras.layers.Dropout(float(p["dropout"]), name=f"dropout_{i}")(x)
    return x


def _build(spec: dict[str, Any], x_train: np.ndarray, y_train: dict[str, np.ndarray]):
    import keras

    inp = keras.Input(shape=x_train.shape[1:], name="xanes")
    h = _trunk(inp, x_train, spec["params"])
    outputs = {
        "geometry": keras.layers.Dense(
            len(GEOMETRY_CLASSES), activation="softmax", name="geometry"
        )(h)
    }
    losses = {"geometry": keras.losses.SparseCategoricalCrossentropy()}
    weights = {"geometry": float(spec.get("loss_weights", {}).get("geometry", 1.0))}
    if spec["kind"] == "multitask":
        for t in REGRESSION:
            mean, var = float(np.mean(y_train[t])), float(np.var(y_train[t])) or 1.0
            z = keras.layers.Dense(1, name=f"{t}_standardised")(h)
            outputs[t] = keras.layers.Normalization(
                mean=[mean], variance=[var], invert=True, name=t
            )(z)
            losses[t] = keras.losses.MeanSquaredError()
            weights[t] = float(spec["loss_weights"][t]) / var
    model = keras.Model(inp, outputs, name=spec["kind"])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(spec["learning_rate"])),
        loss=losses,
        loss_weights=weights,
    )
    return model


def _targets(spec: dict[str, Any], y: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {"geometry": y["geometry_index"].astype(np.int32)}
    if spec["kind"] == "multitask":
        out.update({t: y[t].astype(np.float32)[:, None] for t in REGRESSION})
    return out


def fit_network(
    spec: dict[str, Any],
    x: np.ndarray,
    y: dict[str, np.ndarray],
    xv: np.ndarray,
    yv: dict[str, np.ndarray],
    sample_weight: np.ndarray,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train a network with early stopping on the validation loss (best epoch kept)."""
    import keras

    keras.utils.set_random_seed(int(spec["seed"]))
    model = _build(spec, x, y)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=int(spec["patience"]), restore_best_weights=True
    )
    t0 = time.time()
    hist = model.fit(
        x,
        _targets(spec, y),
        sample_weight=sample_weight.astype(np.float32),
        validation_data=(xv, _targets(spec, yv)),
        epochs=int(spec["epochs"]),
        batch_size=int(spec["batch_size"]),
        callbacks=[stop],
        verbose=0,
        shuffle=True,
    )
    val = hist.history["val_loss"]
    return {"network": model}, {
        "epochs_run": len(val),
        "best_epoch": int(np.argmin(val)) + 1,
        "best_val_loss": float(np.min(val)),
        "seconds": round(time.time() - t0, 1),
    }
