"""The built-in Keras model kinds (registered in :mod:`mlxas.models.registry`).

``paper_mlp``  the published network: per target an independent 400-200-20-1 ReLU MLP
               (three hidden Dense layers of 400, 200 and 20 units), RMSprop, MSE loss,
               400 epochs, batch 32, no input or target scaling.  Value targets only.
``mlp``        a shared MLP trunk with one head per target (multi-task), on standardised
               inputs and targets; L2 (and optional dropout) regularisation.
``cnn1d``      1D convolutions along the input's axis (k, R, 2θ, energy), with optional
               strides, dilations and pooling (``pool``: a max-pooling factor, ``none``,
               ``max`` with ``pool_size``, or ``global`` max + mean pooling).
``npcnn``      ``cnn1d`` as a no-pooling CNN: strided convolutions and no pooling, so the
               flattened features keep where the peaks are (powder patterns).
``cnn_pool``   ``cnn1d`` with stride-1 convolutions each followed by max-pooling.
``cnn2d``      2D convolutions on a 2D feature such as a wavelet map (k × R).
``ensemble``   ``members`` copies of ``params.member`` (default ``mlp``) trained with
               different seeds; the spread of their predictions is the uncertainty.

Class heads are ``Dense(n_classes, activation="softmax")``, value heads linear ``Dense``
layers: only standard layers, so saved models load with ``safe_mode`` on and run in
numpy inference.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from mlxas.models.registry import Head, ModelConfigError, ModelKind, register_kind

__all__ = [
    "Cnn1D",
    "Cnn2D",
    "CnnPool",
    "Ensemble",
    "Mlp",
    "NpCnn",
    "PaperMlp",
    "SignMlp",
    "dense_heads",
    "elementwise_bce",
]


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


def dense_heads(
    x, heads: dict[str, Head], prefix: str = "", value_activation: str | None = None
) -> list:
    """One Dense layer per head: softmax for a class target, ``value_activation`` (None:
    linear; ``sigmoid`` for signs or probabilities) for a value target."""
    import keras

    return [
        keras.layers.Dense(
            h.width,
            activation="softmax" if h.is_class else value_activation,
            name=f"{prefix}head_{t}",
        )(x)
        for t, h in heads.items()
    ]


_MLP_TRAINING = {
    "epochs": 400,
    "batch_size": 32,
    "learning_rate": 0.001,
    "patience": 40,
    "optimizer": "adam",
    "standardize": True,
    "lr_schedule": "plateau",
}


@register_kind
class PaperMlp(ModelKind):
    name = "paper_mlp"
    target_kinds = frozenset({"value"})
    one_network_per_target = True
    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 400,
        "batch_size": 32,
        "learning_rate": 0.001,
        "patience": 400,
        "optimizer": "rmsprop",
        "standardize": False,
        "lr_schedule": None,
        "params": {"hidden": [400, 200, 20], "activation": "relu"},
    }

    def build(self, input_shape, heads, params):
        import keras

        # One independent network per target, as published; no regularisation.
        inp = keras.Input(shape=input_shape, name="features")
        x0 = keras.layers.Flatten(name="flatten")(inp) if len(input_shape) > 1 else inp
        outs = []
        for t, h in heads.items():
            x = _dense_stack(x0, params["hidden"], {"activation": params["activation"]}, f"{t}_")
            outs.append(keras.layers.Dense(h.width, name=f"head_{t}")(x))
        return keras.Model(inp, outs, name="paper_mlp")


@register_kind
class Mlp(ModelKind):
    name = "mlp"
    # No dropout by default: FEFF spectra are noise-free and the map to CN and R is
    # smooth, so dropout mostly blurs it; early stopping and a small L2 regularise.
    defaults: ClassVar[dict[str, Any]] = {
        **_MLP_TRAINING,
        "params": {"hidden": [256, 256, 128], "activation": "relu", "dropout": 0.0, "l2": 1e-6},
    }

    def build(self, input_shape, heads, params):
        import keras

        x = inp = keras.Input(shape=input_shape, name="features")
        if len(input_shape) > 1:
            x = keras.layers.Flatten(name="flatten")(x)
        x = _dense_stack(x, params["hidden"], params, "")
        return keras.Model(inp, dense_heads(x, heads), name="mlp")


def _per_layer(value: Any, n: int, key: str) -> list:
    """A per-layer setting: one value for every layer, or a list of ``n``."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ModelConfigError(f"params.{key}: {len(value)} values for {n} conv layers")
        return list(value)
    return [value] * n


def _pooling(params: dict[str, Any]) -> tuple[str, list]:
    """(mode, per-layer sizes): an integer ``pool`` is max-pooling by that factor (1: none)."""
    pool = params.get("pool", 2)
    n = len(params["filters"])
    if isinstance(pool, int) and not isinstance(pool, bool):
        return ("max", [pool] * n) if pool > 1 else ("none", [1] * n)
    if pool in ("none", "global"):
        return pool, [1] * n
    if pool == "max":
        return "max", _per_layer(params.get("pool_size", 2), n, "pool_size")
    raise ModelConfigError(f"params.pool: {pool!r} is not a factor, none, max or global")


def _conv_trunk(x, params: dict[str, Any], nd: int):
    """Convolution blocks, then flattening (or global max + mean pooling)."""
    import keras

    conv = keras.layers.Conv1D if nd == 1 else keras.layers.Conv2D
    pool_layer = keras.layers.MaxPooling1D if nd == 1 else keras.layers.MaxPooling2D
    n = len(params["filters"])
    kernels = _per_layer(params["kernel_size"], n, "kernel_size")
    strides = _per_layer(params.get("strides", 1), n, "strides")
    dilations = _per_layer(params.get("dilations", 1), n, "dilations")
    mode, sizes = _pooling(params)
    for i, f in enumerate(params["filters"]):
        x = conv(
            int(f),
            kernels[i],
            strides=strides[i],
            dilation_rate=dilations[i],
            padding="same",
            activation=params.get("activation", "relu"),
            kernel_regularizer=_regularizer(params),
            name=f"conv_{i}",
        )(x)
        if mode == "max" and sizes[i] > 1:
            x = pool_layer(sizes[i], padding="same", name=f"pool_{i}")(x)
    if mode == "global":
        gmax = keras.layers.GlobalMaxPooling1D if nd == 1 else keras.layers.GlobalMaxPooling2D
        gavg = (
            keras.layers.GlobalAveragePooling1D if nd == 1 else keras.layers.GlobalAveragePooling2D
        )
        x = keras.layers.Concatenate(name="pooled")(
            [gmax(name="global_max")(x), gavg(name="global_mean")(x)]
        )
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    dropout = float(params.get("dropout", 0.0))
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="conv_dropout")(x)
    return x


_CNN_TRAINING = {**_MLP_TRAINING, "epochs": 300, "patience": 30}


@register_kind
class Cnn1D(ModelKind):
    name = "cnn1d"
    defaults: ClassVar[dict[str, Any]] = {
        **_CNN_TRAINING,
        "params": {
            "filters": [16, 32, 64],
            "kernel_size": 7,
            "strides": 1,
            "dilations": 1,
            "pool": 2,
            "dense": [128],
            "activation": "relu",
            "dropout": 0.0,
            "l2": 1e-6,
            "input_scaling": "global",
        },
    }

    def build(self, input_shape, heads, params):
        import keras

        if len(input_shape) not in (1, 2):
            raise ModelConfigError(
                f"{self.name} needs a 1D input feature (or points × channels), got shape "
                f"{input_shape}"
            )
        inp = keras.Input(shape=input_shape, name="features")
        x = inp
        if len(input_shape) == 1:
            x = keras.layers.Reshape((input_shape[0], 1), name="channels")(inp)
        x = _conv_trunk(x, params, 1)
        x = _dense_stack(x, params["dense"], params, "")
        return keras.Model(inp, dense_heads(x, heads), name=self.name)


_XRD_LAYERS = {"filters": [16, 32, 32, 64, 64], "kernel_size": [16, 9, 7, 5, 5]}


@register_kind
class NpCnn(Cnn1D):
    """No-pooling CNN for powder patterns (after Salgado et al., npj Comput. Mater.
    2023; sizes chosen for a small CPU): strides instead of pooling."""

    name = "npcnn"
    defaults: ClassVar[dict[str, Any]] = {
        **_CNN_TRAINING,
        "params": {
            **Cnn1D.defaults["params"],
            **_XRD_LAYERS,
            "strides": [4, 2, 2, 2, 2],
            "pool": "none",
            "dense": [256],
            "dropout": 0.3,
        },
    }


@register_kind
class CnnPool(Cnn1D):
    """The ``npcnn`` layers with stride 1, each followed by max-pooling by the NPCNN's
    stride."""

    name = "cnn_pool"
    defaults: ClassVar[dict[str, Any]] = {
        **_CNN_TRAINING,
        "params": {
            **Cnn1D.defaults["params"],
            **_XRD_LAYERS,
            "pool": "max",
            "pool_size": [4, 2, 2, 2, 2],
            "dense": [256],
            "dropout": 0.3,
        },
    }


@register_kind
class Cnn2D(ModelKind):
    name = "cnn2d"
    # The 2D CNN (wavelet maps) is the 1D one with 3×3 kernels.
    defaults: ClassVar[dict[str, Any]] = {
        **_CNN_TRAINING,
        "params": {**Cnn1D.defaults["params"], "kernel_size": 3},
    }

    def build(self, input_shape, heads, params):
        import keras

        if len(input_shape) != 2:
            raise ModelConfigError(
                f"cnn2d needs a 2D input feature (e.g. a wavelet map), got shape {input_shape}"
            )
        inp = keras.Input(shape=input_shape, name="features")
        x = keras.layers.Reshape((*input_shape, 1), name="channels")(inp)
        x = _conv_trunk(x, params, 2)
        x = _dense_stack(x, params["dense"], params, "")
        return keras.Model(inp, dense_heads(x, heads), name="cnn2d")


@register_kind
class Ensemble(ModelKind):
    """A meta-kind: ``members`` networks of kind ``member``; training, hooks and target
    kinds are the member kind's (:attr:`mlxas.models.spec.ModelSpec.member_kind`)."""

    name = "ensemble"
    defaults: ClassVar[dict[str, Any]] = {
        **copy.deepcopy(Mlp.defaults),
        "params": {"member": "mlp", "members": 5},
    }

    def build(self, input_shape, heads, params):
        raise ModelConfigError("an ensemble is built from its member kind")


_BCE_CLASS = None


def elementwise_bce():
    """A Keras loss: binary cross-entropy per output element (not averaged over the last
    axis), so that a sample weight of the head's shape ``[batch, width]`` weighs every
    element; Keras then averages the weighted values over all elements of the batch.
    ``mean(w · BCE)`` with per-example weights averaging 1 is the intensity-weighted
    BCE of the phase problem (one sign per reflection, weighted by its |F|)."""
    global _BCE_CLASS
    import keras

    if _BCE_CLASS is None:

        class ElementwiseBinaryCrossentropy(keras.losses.Loss):
            def call(self, y_true, y_pred):
                ops = keras.ops
                p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
                y = ops.cast(y_true, p.dtype)
                return -(y * ops.log(p) + (1 - y) * ops.log(1 - p))

        _BCE_CLASS = ElementwiseBinaryCrossentropy
    return _BCE_CLASS(name="elementwise_bce")


@register_kind
class SignMlp(Mlp):
    """The MLP trunk with sigmoid value heads, trained with element-wise binary
    cross-entropy: many binary outputs per example (the signs of the reflections of the
    phase problem), targets 0/1 never standardised.  With ``sample_weight: <array>`` (an
    ``[n, width]`` feature such as the reflections' |F|) each element's loss is weighed
    by it, normalised so that every example's weights average 1."""

    name = "sign_mlp"
    target_kinds = frozenset({"value"})
    defaults: ClassVar[dict[str, Any]] = {
        **_MLP_TRAINING,
        "params": {"hidden": [256], "activation": "relu", "dropout": 0.0, "l2": 1e-6},
    }

    def build(self, input_shape, heads, params):
        import keras

        x = inp = keras.Input(shape=input_shape, name="features")
        if len(input_shape) > 1:
            x = keras.layers.Flatten(name="flatten")(x)
        x = _dense_stack(x, params["hidden"], params, "")
        return keras.Model(inp, dense_heads(x, heads, value_activation="sigmoid"), name=self.name)

    def scales_target(self, target, head):
        return False

    def loss(self, target, head, spec, data):
        y = data.splits["train"].y[target]
        if np.any((y != 0) & (y != 1)):
            raise ModelConfigError(
                f"models.{spec.name}: {self.name} needs 0/1 targets; {target!r} holds other values"
            )
        return elementwise_bce()

    def sample_weight(self, split, spec, heads):
        out = super().sample_weight(split, spec, heads)
        if out is None:
            return None
        normed = {}
        for t, w in out.items():
            w = np.abs(np.asarray(w, np.float64))
            w = w.reshape(len(w), -1) if w.ndim > 1 else w
            mean = w.mean(axis=-1, keepdims=True) if w.ndim > 1 else w.mean()
            normed[t] = (w / np.where(mean > 0, mean, 1.0)).astype(np.float32)
        return normed
