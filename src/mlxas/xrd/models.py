"""Classifier kinds for powder patterns, by name, in the style of
``mlxas.models.registry``: defaults per kind and a builder from input shape and heads
(head name -> number of classes) to an uncompiled Keras model with one softmax output
per head, named ``<head>``.

Kinds
-----
``npcnn``     no-pooling CNN (the anchor, after Salgado et al. 2023): strided Conv1D
              layers and no pooling, so the flattened features keep where the peaks
              are; dropout, one Dense layer, the heads.
``cnn_pool``  the same layers with stride-1 convolutions, each followed by max-pooling
              by the same factor as the NPCNN's stride.
``logq_cnn``  peak-position aware: the pattern is resampled (a fixed, non-trainable
              Dense layer holding the interpolation matrix) onto a grid uniform in
              ln Q.  On that grid an isotropic change of the lattice (composition,
              strain, alloying) shifts every peak by the same amount, so strided
              convolutions followed by global max- and average-pooling see the
              *ratios* of peak positions that fix the lattice type and extinctions,
              whatever the cell size.

Only built-in Keras layers are used (no ``Lambda``), so saved models load with
``safe_mode`` on.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

__all__ = ["CLASSIFIER_DEFAULTS", "build_classifier", "log_q_matrix", "resolve_classifier"]


#: Training settings shared by the kinds (epochs are few: one pass over 40,000 patterns
#: costs minutes on a 2-core CPU).
_TRAINING = {"epochs": 12, "batch_size": 128, "learning_rate": 1e-3, "patience": 4}

CLASSIFIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "npcnn": {
        **_TRAINING,
        "params": {
            "filters": [16, 32, 32, 64, 64],
            "kernels": [16, 9, 7, 5, 5],
            "strides": [4, 2, 2, 2, 2],
            "dense": 256,
            "dropout": 0.3,
        },
    },
    "cnn_pool": {
        **_TRAINING,
        "params": {
            "filters": [16, 32, 32, 64, 64],
            "kernels": [16, 9, 7, 5, 5],
            "pools": [4, 2, 2, 2, 2],
            "dense": 256,
            "dropout": 0.3,
        },
    },
    "logq_cnn": {
        **_TRAINING,
        "params": {
            "n_log_q": 1024,
            "filters": [16, 32, 64, 64, 64],
            "kernels": [16, 9, 7, 5, 5],
            "strides": [4, 2, 2, 1, 1],
            # Dilated last layers: the receptive field spans ~860 of the 1024 ln Q points,
            # so peaks far apart (ratios up to ~5 in Q) are seen together.
            "dilations": [1, 1, 1, 4, 8],
            "dense": 256,
            "dropout": 0.3,
        },
    },
}


def resolve_classifier(kind: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The kind's defaults with ``overrides`` (training keys or ``params``) merged in."""
    from mlxas.models.registry import ModelConfigError

    if kind not in CLASSIFIER_DEFAULTS:
        raise ModelConfigError(
            f"xrd: unknown classifier kind {kind!r} (have: {sorted(CLASSIFIER_DEFAULTS)})"
        )
    spec = copy.deepcopy(CLASSIFIER_DEFAULTS[kind])
    overrides = dict(overrides or {})
    spec["params"].update(overrides.pop("params", {}) or {})
    spec.update({k: v for k, v in overrides.items() if v is not None})
    spec["kind"] = kind
    return spec


def log_q_matrix(
    axis: np.ndarray, unit: str, wavelength: float | None, n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolation matrix [len(axis), n_out] from the pattern's grid (2θ in deg
    at ``wavelength`` Å, or Q in Å⁻¹) to ``n_out`` points uniform in ln Q over the same
    range, and that ln Q grid."""
    axis = np.asarray(axis, dtype=float)
    q = 4 * math.pi * np.sin(np.radians(axis / 2)) / wavelength if unit == "deg" else axis
    lnq = np.log(q)
    target = np.linspace(lnq[0], lnq[-1], n_out)
    j = np.clip(np.searchsorted(lnq, target) - 1, 0, len(lnq) - 2)
    t = (target - lnq[j]) / (lnq[j + 1] - lnq[j])
    m = np.zeros((len(axis), n_out), dtype=np.float32)
    m[j, np.arange(n_out)] = 1.0 - t
    m[j + 1, np.arange(n_out)] += t
    return m, target


def _heads(x, heads: dict[str, int]):
    import keras

    return [keras.layers.Dense(n, activation="softmax", name=h)(x) for h, n in heads.items()]


def _dense_top(x, p: dict[str, Any]):
    import keras

    x = keras.layers.Dropout(p["dropout"], name="dropout_0")(x)
    x = keras.layers.Dense(p["dense"], activation="relu", name="dense_0")(x)
    return keras.layers.Dropout(p["dropout"], name="dropout_1")(x)


def _npcnn(input_shape, heads, p, extras):
    import keras

    inp = keras.Input(shape=input_shape, name="intensity")
    x = keras.layers.Reshape((input_shape[0], 1), name="channels")(inp)
    for i, (f, k, s) in enumerate(zip(p["filters"], p["kernels"], p["strides"], strict=True)):
        x = keras.layers.Conv1D(
            f, k, strides=s, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inp, _heads(_dense_top(x, p), heads), name="npcnn")


def _cnn_pool(input_shape, heads, p, extras):
    import keras

    inp = keras.Input(shape=input_shape, name="intensity")
    x = keras.layers.Reshape((input_shape[0], 1), name="channels")(inp)
    for i, (f, k, m) in enumerate(zip(p["filters"], p["kernels"], p["pools"], strict=True)):
        x = keras.layers.Conv1D(f, k, padding="same", activation="relu", name=f"conv_{i}")(x)
        x = keras.layers.MaxPooling1D(m, padding="same", name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inp, _heads(_dense_top(x, p), heads), name="cnn_pool")


def _logq_cnn(input_shape, heads, p, extras):
    import keras

    matrix = extras.get("log_q_matrix")
    if matrix is None:
        raise ValueError("logq_cnn needs extras['log_q_matrix'] (see log_q_matrix)")
    inp = keras.Input(shape=input_shape, name="intensity")
    resample = keras.layers.Dense(matrix.shape[1], use_bias=False, trainable=False, name="log_q")
    x = resample(inp)
    resample.set_weights([matrix])
    x = keras.layers.Reshape((matrix.shape[1], 1), name="channels")(x)
    layers = zip(p["filters"], p["kernels"], p["strides"], p["dilations"], strict=True)
    for i, (f, k, s, d) in enumerate(layers):
        x = keras.layers.Conv1D(
            f, k, strides=s, dilation_rate=d, padding="same", activation="relu", name=f"conv_{i}"
        )(x)
    pooled = [
        keras.layers.GlobalMaxPooling1D(name="global_max")(x),
        keras.layers.GlobalAveragePooling1D(name="global_mean")(x),
    ]
    x = keras.layers.Concatenate(name="pooled")(pooled)
    return keras.Model(inp, _heads(_dense_top(x, p), heads), name="logq_cnn")


BUILDERS = {"npcnn": _npcnn, "cnn_pool": _cnn_pool, "logq_cnn": _logq_cnn}


def build_classifier(
    kind: str,
    input_shape: tuple[int, ...],
    heads: dict[str, int],
    params: dict[str, Any],
    extras: dict[str, Any] | None = None,
):
    """Uncompiled Keras classifier of ``kind``; ``extras`` holds data a builder needs
    beyond its parameters (``log_q_matrix`` for ``logq_cnn``)."""
    from mlxas.models.registry import ModelConfigError

    if kind not in BUILDERS:
        raise ModelConfigError(f"xrd: unknown classifier kind {kind!r} (have: {sorted(BUILDERS)})")
    return BUILDERS[kind](tuple(input_shape), dict(heads), params, extras or {})
