"""Model builders by name.  Each returns an uncompiled Keras model on standardised data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["BUILDERS", "build"]


def _mlp(input_shape: tuple[int, ...], n_out: int, params: dict[str, Any]):
    import keras

    hidden = params.get("hidden", [256, 128, 64])
    dropout = float(params.get("dropout", 0.0))
    l2 = float(params.get("l2", 0.0))
    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    x = inp = keras.Input(shape=input_shape, name="features")
    if len(input_shape) > 1:
        x = keras.layers.Flatten()(x)
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(
            units,
            activation=params.get("activation", "relu"),
            kernel_regularizer=reg,
            name=f"dense_{i}",
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout)(x)
    out = keras.layers.Dense(n_out, name="targets")(x)
    return keras.Model(inp, out, name="mlp")


def _paper_mlp(input_shape: tuple[int, ...], n_out: int, params: dict[str, Any]):
    # 400-200-20-1 ReLU: the published architecture, one network per target.
    if n_out != 1:
        raise ValueError("paper_mlp predicts one target per network")
    return _mlp(input_shape, 1, {"hidden": [400, 200, 20], "activation": "relu"})


BUILDERS: dict[str, Callable] = {"mlp": _mlp, "paper_mlp": _paper_mlp}


def build(kind: str, input_shape: tuple[int, ...], n_out: int, params: dict[str, Any]):
    if kind not in BUILDERS:
        raise ValueError(f"models: unknown model kind {kind!r} (have: {sorted(BUILDERS)})")
    return BUILDERS[kind](input_shape, n_out, params)
