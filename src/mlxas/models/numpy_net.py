"""Saved models run with numpy alone: inference without importing TensorFlow or Keras.

A ``model.keras`` file is a zip archive holding ``config.json`` (the layer graph as Keras
serialises it) and ``model.weights.h5`` (the weights, one HDF5 group per layer whose
``vars`` group carries the layer's name).  :func:`read_archive` reads both with
``zipfile``, ``json`` and ``h5py``; :class:`NumpyModel` rebuilds the graph and runs its
forward pass in float32, as Keras does on a CPU.

Only the layer kinds that mlxas' model kinds are built from are run (see
:data:`LAYERS`): Dense, Activation, Dropout/Identity (inference: identity), Normalization
(also inverted), Reshape, Flatten, Cropping1D, Conv1D/Conv2D (any stride) with max
pooling, Concatenate and nested functional models (ensemble members, the per-target networks of
``paper_mlp``).  Anything else, ``Lambda`` included, is refused with the layer's name:
such a model needs Keras (:func:`mlxas.models.card.load_model`).

The bytes of the archive are read once, checked against an expected SHA-256 when one is
given, and parsed from memory, so the checked bytes are the parsed bytes.

Shapes: inputs ``[N, *input_shape]`` as the card's ``preprocessing.input_shape``; the
output is ``[N, columns]`` (``[N, members, columns]`` for an ensemble), as Keras gives it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.models.card import (
    ModelLoadError,
    load_forest_file,
    loaded_card,
    model_file_name,
    resolve_model_dir,
    verify_model_dir,
)
from mlxas.workflow.layout import MODEL_FILE, MODEL_NPZ_FILE, ModelFiles

__all__ = ["LAYERS", "NumpyModel", "load_model", "read_archive"]

#: Keras' fuzz factor (``keras.backend.epsilon()``), the floor of sqrt(variance) in
#: Normalization layers.
EPSILON = 1e-7
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# --- reading ------------------------------------------------------------------------------


def read_archive(path: str | Path, sha256: str | None = None) -> tuple[dict, dict]:
    """(config, weights) of a ``.keras`` archive.

    ``weights`` is a tree of dicts: ``{"vars": [arrays], "name": layer name, "layers":
    {key: subtree}}`` as stored in ``model.weights.h5``.  ``sha256``: hex digest the file
    must have; a mismatch is refused before anything is parsed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelLoadError(f"{path}: cannot read ({err.strerror or err})") from None
    if sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != sha256.lower():
            raise ModelLoadError(
                f"{path}: SHA-256 is {got}, the model card expects {sha256}; "
                "the file was changed after training"
            )
    if data[:8] == _HDF5_MAGIC:
        raise ModelLoadError(f"{path}: is a legacy HDF5 Keras model; mlxas only loads .keras")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            config = json.loads(zf.read("config.json"))
            weights_bytes = zf.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise ModelLoadError(f"{path}: not a Keras .keras archive ({err})") from None
    import h5py

    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as h5:
            weights = _weights_tree(h5)
    except OSError as err:
        raise ModelLoadError(f"{path}: model.weights.h5 is not readable HDF5 ({err})") from None
    return config, weights


def _weights_tree(group) -> dict[str, Any]:
    out: dict[str, Any] = {"vars": [], "name": None, "layers": {}}
    if "vars" in group:
        v = group["vars"]
        out["name"] = v.attrs.get("name")
        if isinstance(out["name"], bytes):
            out["name"] = out["name"].decode()
        out["vars"] = [np.asarray(v[str(i)]) for i in range(len(v))]
    if "layers" in group:
        out["layers"] = {k: _weights_tree(g) for k, g in group["layers"].items()}
    return out


# --- layers ---------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # only models with GELU pay for scipy.special

    return (0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))).astype(x.dtype)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _softmax(x: np.ndarray) -> np.ndarray:
    """Keras' softmax over the last axis (the class heads), shifted by the row maximum
    so that exp cannot overflow."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: Activations by their Keras name (definitions of ``keras.activations``).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x >= 0, x, np.float32(0.2) * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(x, np.float32(0)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "gelu": _gelu,
    "exponential": np.exp,
    "softmax": _softmax,
}


def _activation(spec: Any, where: str) -> Callable[[np.ndarray], np.ndarray]:
    name = spec if isinstance(spec, str) or spec is None else None
    if isinstance(spec, dict) and spec.get("module") in ("keras.activations", None):
        name = spec.get("config", spec.get("class_name"))
        name = name if isinstance(name, str) else None
    if name is None:
        return ACTIVATIONS["linear"]
    if name not in ACTIVATIONS:
        raise ModelLoadError(f"{where}: activation {name!r} is not supported by numpy inference")
    return ACTIVATIONS[name]


def _same_pad(n: int, size: int, stride: int) -> tuple[int, int, int]:
    """Output length and (before, after) padding of TensorFlow's 'same' rule."""
    out = -(-n // stride)
    total = max((out - 1) * stride + size - n, 0)
    return out, total // 2, total - total // 2


def _conv(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    padding: str,
    strides: tuple[int, ...] | None = None,
):
    """Cross-correlation over the spatial axes of channels-last ``x`` with ``strides``
    (default 1), padded by TensorFlow's 'same' rule or not at all ('valid')."""
    sizes = kernel.shape[:-2]
    strides = strides or (1,) * len(sizes)
    axes = tuple(range(1, 1 + len(sizes)))
    if padding == "same":
        dims = zip(axes, sizes, strides, strict=True)
        pads = [_same_pad(x.shape[a], k, s)[1:] for a, k, s in dims]
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    win = np.lib.stride_tricks.sliding_window_view(x, sizes, axis=axes)
    if any(s != 1 for s in strides):
        # Only every stride-th window is an output: slicing the view first keeps the
        # copy made by the reshape below to the windows actually used.
        win = win[(slice(None), *(slice(None, None, s) for s in strides))]
    # (N, *out, C, *k) -> (N, *out, *k, C), matching the kernel layout (*k, C, F).
    nd = len(sizes)
    order = (*range(0, 1 + nd), *range(2 + nd, 2 + 2 * nd), 1 + nd)
    win = win.transpose(order)
    flat = win.reshape(*win.shape[: 1 + nd], -1)
    y = flat @ kernel.reshape(-1, kernel.shape[-1])
    return y if bias is None else y + bias


def _max_pool(x: np.ndarray, size: tuple[int, ...], strides: tuple[int, ...], padding: str):
    axes = tuple(range(1, 1 + len(size)))
    if padding == "same":
        dims = zip(axes, size, strides, strict=True)
        pads = [_same_pad(x.shape[a], p, s)[1:] for a, p, s in dims]
        x = np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(x, size, axis=axes)
    sl = (slice(None), *(slice(None, None, s) for s in strides))
    return win[sl].max(axis=tuple(range(-len(size), 0)))


def _norm_params(cfg: dict, vars_: list[np.ndarray], ndim: int):
    mean = cfg.get("mean")
    var = cfg.get("variance")
    if mean is None:  # adapted layer: mean, variance (and count) are weights
        mean, var = vars_[0], vars_[1]
    mean = np.asarray(mean, dtype=np.float32)
    var = np.asarray(var, dtype=np.float32)
    axis = cfg.get("axis")
    axis = [] if axis is None else ([axis] if isinstance(axis, int) else list(axis))
    keep = sorted(a % ndim for a in axis)
    shape = [1] * ndim
    for i in range(1, mean.ndim + 1):
        shape[keep[-i]] = mean.shape[-i]
    mean, var = mean.reshape(shape), var.reshape(shape)
    return mean, np.maximum(np.sqrt(var), np.float32(EPSILON))


def _layer(cls: str, cfg: dict, vars_: list[np.ndarray], where: str) -> Callable:
    """The forward function of one (non-nested) layer: f(list of inputs) -> output."""
    if cls in ("Dropout", "Identity", "SpatialDropout1D", "GaussianNoise", "GaussianDropout"):
        return lambda xs: xs[0]  # inference: these layers pass their input on
    if cls == "Activation":
        act = _activation(cfg.get("activation"), where)
        return lambda xs: act(xs[0])
    if cls == "Dense":
        act = _activation(cfg.get("activation"), where)
        w = vars_[0].astype(np.float32)
        b = vars_[1].astype(np.float32) if cfg.get("use_bias", True) else None
        if w.shape[1] != cfg["units"]:
            raise ModelLoadError(f"{where}: kernel {w.shape} does not match {cfg['units']} units")
        return lambda xs: act(xs[0] @ w + b if b is not None else xs[0] @ w)
    if cls == "Normalization":
        params: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # by input rank

        def norm(xs: list[np.ndarray]) -> np.ndarray:
            x = xs[0]
            if x.ndim not in params:
                params[x.ndim] = _norm_params(cfg, vars_, x.ndim)
            mean, scale = params[x.ndim]
            return mean + x * scale if cfg.get("invert") else (x - mean) / scale

        return norm
    if cls == "Reshape":
        target = tuple(cfg["target_shape"])
        return lambda xs: xs[0].reshape(len(xs[0]), *target)
    if cls == "Flatten":
        return lambda xs: xs[0].reshape(len(xs[0]), -1)
    if cls == "Cropping1D":
        a, b = cfg["cropping"]
        return lambda xs: xs[0][:, a : xs[0].shape[1] - b]
    if cls == "Concatenate":
        axis = cfg.get("axis", -1)
        return lambda xs: np.concatenate(xs, axis=axis)
    if cls in ("Conv1D", "Conv2D"):
        nd = 1 if cls == "Conv1D" else 2
        for key, ok in (("dilation_rate", 1), ("groups", 1)):
            val = cfg.get(key, ok)
            if any(int(v) != ok for v in ([val] if isinstance(val, int) else val)):
                raise ModelLoadError(f"{where}: {cls} with {key} {val} is not supported")
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ModelLoadError(f"{where}: only channels_last convolutions are supported")
        kernel = vars_[0].astype(np.float32)
        bias = vars_[1].astype(np.float32) if cfg.get("use_bias", True) else None
        act = _activation(cfg.get("activation"), where)
        pad = cfg.get("padding", "valid")
        if kernel.ndim != nd + 2:
            raise ModelLoadError(f"{where}: {cls} kernel has shape {kernel.shape}")
        strides = cfg.get("strides", 1)
        strides = (strides,) * nd if isinstance(strides, int) else tuple(map(int, strides))
        return lambda xs: act(_conv(xs[0], kernel, bias, pad, strides))
    if cls in ("MaxPooling1D", "MaxPooling2D"):
        nd = 1 if cls == "MaxPooling1D" else 2
        size = cfg["pool_size"]
        size = (size,) * nd if isinstance(size, int) else tuple(size)
        strides = cfg.get("strides") or size
        strides = (strides,) * nd if isinstance(strides, int) else tuple(strides)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ModelLoadError(f"{where}: only channels_last pooling is supported")
        pad = cfg.get("padding", "valid")
        return lambda xs: _max_pool(xs[0], size, strides, pad)
    raise ModelLoadError(
        f"{where}: layer kind {cls!r} is not supported by numpy inference "
        f"(supported: {', '.join(sorted(LAYERS))})"
    )


#: Layer kinds :class:`NumpyModel` runs (besides ``InputLayer`` and nested ``Functional``).
LAYERS = frozenset(
    {
        "Activation", "Concatenate", "Conv1D", "Conv2D", "Cropping1D", "Dense", "Dropout",
        "Flatten", "GaussianDropout", "GaussianNoise", "Identity", "MaxPooling1D",
        "MaxPooling2D", "Normalization", "Reshape", "SpatialDropout1D",
    }
)  # fmt: skip
#: Layers that hold no weights of their own in the archive.
_NO_WEIGHTS = LAYERS - {"Conv1D", "Conv2D", "Dense"}


# --- graph ----------------------------------------------------------------------------------


def _refs(obj: Any) -> list:
    """keras_history triples of the tensors in a node argument, in order."""
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        return [tuple(obj["config"]["keras_history"])]
    if isinstance(obj, list | tuple):
        return [r for o in obj for r in _refs(o)]
    return []


def _endpoints(spec: Any) -> list[tuple]:
    if spec and isinstance(spec[0], str):
        return [tuple(spec)]
    return [tuple(s) for s in spec]


class _Graph:
    """One functional model: layers, their call nodes, inputs and outputs."""

    def __init__(self, config: dict, weights: dict, where: str):
        cfg = config["config"]
        self.name = cfg.get("name", "model")
        where = f"{where}/{self.name}"
        by_name = {w["name"]: w for w in weights.get("layers", {}).values() if w["name"]}
        self.inputs = _endpoints(cfg["input_layers"])
        self.outputs = _endpoints(cfg["output_layers"])
        self.layers: dict[str, Callable] = {}
        self.has_conv = False
        self.nodes: dict[str, list[list[tuple]]] = {}
        for layer in cfg["layers"]:
            cls, name = layer["class_name"], layer["name"]
            lw = by_name.get(name, {"vars": [], "layers": {}})
            self.nodes[name] = [_refs(node.get("args", [])) for node in layer["inbound_nodes"]]
            for node in layer["inbound_nodes"]:
                if _refs(node.get("kwargs", {})):
                    raise ModelLoadError(f"{where}/{name}: tensors passed as keyword arguments")
            if cls == "InputLayer":
                continue
            if cls in ("Functional", "Model", "Sequential") and "layers" in layer["config"]:
                if cls == "Sequential":
                    raise ModelLoadError(f"{where}/{name}: nested Sequential models not supported")
                sub = _Graph(layer, lw, where)
                self.layers[name] = sub
                self.has_conv |= sub.has_conv
                continue
            self.has_conv |= cls in ("Conv1D", "Conv2D")
            if cls in LAYERS and cls not in _NO_WEIGHTS and not lw["vars"]:
                raise ModelLoadError(f"{where}/{name}: no weights for this {cls} layer")
            self.layers[name] = _layer(cls, layer["config"], lw["vars"], f"{where}/{name}")
        # Keras numbers a nested model's calls from 1 in input_layers/output_layers (its
        # node 0 is the built-in one linking its own inputs and outputs) but from 0 in the
        # inbound nodes of other layers.
        nested = {n for n, f in self.layers.items() if isinstance(f, _Graph)}
        self.inputs = [(n, k - (n in nested), i) for n, k, i in self.inputs]
        self.outputs = [(n, k - (n in nested), i) for n, k, i in self.outputs]

    def __call__(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        values: dict[tuple[str, int], list[np.ndarray]] = {}
        for (name, node, _), x in zip(self.inputs, xs, strict=True):
            values[(name, node)] = [x]

        def get(ref: tuple) -> np.ndarray:
            name, node, idx = ref
            key = (name, node)
            if key not in values:
                args = [get(r) for r in self.nodes[name][node]]
                out = self.layers[name](args)
                values[key] = out if isinstance(self.layers[name], _Graph) else [out]
            return values[key][idx]

        return [get(ref) for ref in self.outputs]


class NumpyModel:
    """A saved Keras model's forward pass in numpy (see the module docstring).

    ``predict_on_batch(x)`` mirrors Keras' method, so :func:`mlxas.models.predict_array`
    takes either model.
    """

    def __init__(self, config: dict, weights: dict, source: str = MODEL_FILE):
        if config.get("class_name") not in ("Functional", "Model"):
            raise ModelLoadError(
                f"{source}: top-level {config.get('class_name')!r} is not a functional model"
            )
        self.source = source
        self.graph = _Graph(config, weights, source)
        self.name = self.graph.name
        first = next(
            layer for layer in config["config"]["layers"] if layer["class_name"] == "InputLayer"
        )
        self.input_shape = tuple(first["config"]["batch_shape"][1:])
        # Rows per pass: convolutions unfold their input (kernel × channels per point).
        self.rows = 256 if self.graph.has_conv else 4096

    @classmethod
    def from_file(cls, path: str | Path, sha256: str | None = None) -> NumpyModel:
        config, weights = read_archive(path, sha256)
        return cls(config, weights, str(path))

    def __call__(self, x: np.ndarray) -> np.ndarray | list[np.ndarray]:
        return self.predict_on_batch(x)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray | list[np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"{self.source}: expects inputs of shape (N, "
                f"{', '.join(map(str, self.input_shape))}), got {x.shape}"
            )
        parts = [self.graph([x[i : i + self.rows]]) for i in range(0, max(len(x), 1), self.rows)]
        outs = [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]
        return outs[0] if len(outs) == 1 else outs


def load_model(path: str | Path) -> tuple[NumpyModel, dict]:
    """(numpy model, card) of a model folder, its model.keras, a pointer or ``latest``.

    The drop-in for :func:`mlxas.models.card.load_model` on the prediction path: the
    folder is verified the same way (every file against the SHA-256 the card records, the
    card against its model id, the folder name), the archive's bytes are checked once
    more against the card as they are parsed, and it refuses what that refuses (legacy
    HDF5, Lambda layers: any layer it cannot run).  It never imports TensorFlow.
    """
    model_dir = resolve_model_dir(path)
    card = verify_model_dir(model_dir)
    if model_file_name(card) == MODEL_NPZ_FILE:
        # A random forest is numpy already: its array file, verified above, is the model.
        forest = load_forest_file(ModelFiles(model_dir).model_npz)
        return forest, loaded_card(model_dir, card)
    model = NumpyModel.from_file(ModelFiles(model_dir).model, card["files"][MODEL_FILE])
    shape = tuple(card.get("preprocessing", {}).get("input_shape") or model.input_shape)
    if shape != model.input_shape:
        raise ModelLoadError(
            f"{model_dir}: card says input shape {shape}, {MODEL_FILE} {model.input_shape}"
        )
    return model, loaded_card(model_dir, card)
