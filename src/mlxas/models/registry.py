"""Model kinds by name: their defaults and their network builders.

A builder maps a standardised input of shape ``input_shape`` to one output tensor per
target head (``heads`` maps a target name to its width: 1 for a scalar such as CN or R,
the number of bins for the RDF).  The builder returns a Keras ``Model`` whose outputs
are listed in the order of ``heads``.  Standardisation, cropping to the k-range and the
return to physical units are added around it by :mod:`mlxas.models.network`.

Kinds
-----
``paper_mlp``  the published network: per target an independent 400-200-20-1 ReLU MLP
               (three hidden Dense layers of 400, 200 and 20 units), RMSprop, MSE loss,
               400 epochs, batch 32, no input or target scaling.
``mlp``        a shared MLP trunk with one linear head per target (multi-task), on
               standardised inputs and targets; L2 (and optional dropout) regularisation.
``cnn1d``      1D convolutions along k (or R) on a 1D feature such as chi_k.
``cnn2d``      2D convolutions on a 2D feature such as a wavelet map (k × R).
``ensemble``   ``members`` copies of ``params.member`` (default ``mlp``) trained with
               different seeds; the spread of their predictions is the uncertainty.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mlxas.errors import ConfigError

__all__ = ["BUILDERS", "KIND_DEFAULTS", "TRAINING_KEYS", "ModelConfigError", "build"]


class ModelConfigError(ConfigError):
    """A model entry that cannot be trained as configured; the message names the entry."""


#: Training settings and builder parameters of each kind; a model entry overrides them.
#: ``epochs``, ``learning_rate``, ``batch_size`` and ``patience`` given as null in the
#: config take these values.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper_mlp": {
        "epochs": 400,
        "batch_size": 32,
        "learning_rate": 0.001,
        "patience": 400,
        "optimizer": "rmsprop",
        "standardize": False,
        "lr_schedule": None,
        "params": {"hidden": [400, 200, 20], "activation": "relu"},
    },
    "mlp": {
        "epochs": 400,
        "batch_size": 32,
        "learning_rate": 0.001,
        "patience": 40,
        "optimizer": "adam",
        "standardize": True,
        "lr_schedule": "plateau",
        # No dropout by default: FEFF spectra are noise-free and the map to CN and R is
        # smooth, so dropout mostly blurs it; early stopping and a small L2 regularise.
        "params": {"hidden": [256, 256, 128], "activation": "relu", "dropout": 0.0, "l2": 1e-6},
    },
    "cnn1d": {
        "epochs": 300,
        "batch_size": 32,
        "learning_rate": 0.001,
        "patience": 30,
        "optimizer": "adam",
        "standardize": True,
        "lr_schedule": "plateau",
        "params": {
            "filters": [16, 32, 64],
            "kernel_size": 7,
            "pool": 2,
            "dense": [128],
            "activation": "relu",
            "dropout": 0.0,
            "l2": 1e-6,
            "input_scaling": "global",
        },
    },
}
# The 2D CNN (wavelet maps) is the 1D one with 3×3 kernels.
KIND_DEFAULTS["cnn2d"] = copy.deepcopy(KIND_DEFAULTS["cnn1d"])
KIND_DEFAULTS["cnn2d"]["params"]["kernel_size"] = 3
KIND_DEFAULTS["ensemble"] = {
    **copy.deepcopy(KIND_DEFAULTS["mlp"]),
    "params": {"member": "mlp", "members": 5},
}

TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "patience")


def _regularizer(params: dict[str, Any]):
    import keras

    l2 = float(params.get("l2", 0.0))
    return keras.regularizers.L2(l2) if l2 > 0 else None


def _dense_stack(x, units: list[int], params: dict[str, Any], prefix: str):
    import keras

    dropout = float(params.get("dropout", 0.0))
    for i, n in enumerate(units):
        x = keras.layers.Dense(
            int(n),
            activation=params.get("activation", "relu"),
            kernel_regularizer=_regularizer(params),
            name=f"{prefix}dense_{i}",
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"{prefix}dropout_{i}")(x)
    return x


def _heads(x, heads: dict[str, int], prefix: str = "") -> list:
    import keras

    return [keras.layers.Dense(n, name=f"{prefix}head_{t}")(x) for t, n in heads.items()]


def _mlp(input_shape: tuple[int, ...], heads: dict[str, int], params: dict[str, Any]):
    import keras

    x = inp = keras.Input(shape=input_shape, name="features")
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    x = _dense_stack(x, params["hidden"], params, "")
    return keras.Model(inp, _heads(x, heads), name="mlp")


def _paper_mlp(input_shape: tuple[int, ...], heads: dict[str, int], params: dict[str, Any]):
    import keras

    # One independent network per target, as published; no regularisation.
    inp = keras.Input(shape=input_shape, name="features")
    x0 = keras.layers.Flatten(name="flatten")(inp) if len(input_shape) > 1 else inp
    outs = []
    for t, n in heads.items():
        x = _dense_stack(x0, params["hidden"], {"activation": params["activation"]}, f"{t}_")
        outs.append(keras.layers.Dense(n, name=f"head_{t}")(x))
    return keras.Model(inp, outs, name="paper_mlp")


def _conv_trunk(x, params: dict[str, Any], conv, pool):
    dropout = float(params.get("dropout", 0.0))
    for i, f in enumerate(params["filters"]):
        x = conv(
            int(f),
            params["kernel_size"],
            padding="same",
            activation=params.get("activation", "relu"),
            kernel_regularizer=_regularizer(params),
            name=f"conv_{i}",
        )(x)
        if params.get("pool", 2) > 1:
            x = pool(params["pool"], padding="same", name=f"pool_{i}")(x)
    import keras

    x = keras.layers.Flatten(name="flatten")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="conv_dropout")(x)
    return x


def _cnn1d(input_shape: tuple[int, ...], heads: dict[str, int], params: dict[str, Any]):
    import keras

    if len(input_shape) != 1:
        raise ModelConfigError(f"cnn1d needs a 1D input feature, got shape {input_shape}")
    inp = keras.Input(shape=input_shape, name="features")
    x = keras.layers.Reshape((input_shape[0], 1), name="channels")(inp)
    x = _conv_trunk(x, params, keras.layers.Conv1D, keras.layers.MaxPooling1D)
    x = _dense_stack(x, params["dense"], params, "")
    return keras.Model(inp, _heads(x, heads), name="cnn1d")


def _cnn2d(input_shape: tuple[int, ...], heads: dict[str, int], params: dict[str, Any]):
    import keras

    if len(input_shape) != 2:
        raise ModelConfigError(
            f"cnn2d needs a 2D input feature (e.g. a wavelet map), got shape {input_shape}"
        )
    inp = keras.Input(shape=input_shape, name="features")
    x = keras.layers.Reshape((*input_shape, 1), name="channels")(inp)
    x = _conv_trunk(x, params, keras.layers.Conv2D, keras.layers.MaxPooling2D)
    x = _dense_stack(x, params["dense"], params, "")
    return keras.Model(inp, _heads(x, heads), name="cnn2d")


BUILDERS: dict[str, Callable] = {
    "paper_mlp": _paper_mlp,
    "mlp": _mlp,
    "cnn1d": _cnn1d,
    "cnn2d": _cnn2d,
}


def build(kind: str, input_shape: tuple[int, ...], heads: dict[str, int], params: dict[str, Any]):
    """Uncompiled Keras model of ``kind`` from standardised input to one output per head."""
    if kind not in BUILDERS:
        raise ModelConfigError(f"models: unknown model kind {kind!r} (have: {sorted(BUILDERS)})")
    return BUILDERS[kind](tuple(input_shape), dict(heads), params)
