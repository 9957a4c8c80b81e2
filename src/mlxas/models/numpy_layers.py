"""The layers :class:`mlxas.models.numpy_net.NumpyModel` runs: each Keras layer kind of
:data:`LAYERS` as a numpy forward function (float32, as Keras on a CPU), with the
activations by their Keras name and the convolutions and pooling by TensorFlow's
padding rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlxas.models.card import ModelLoadError

__all__ = ["ACTIVATIONS", "LAYERS", "NO_WEIGHTS", "layer_forward"]

#: Keras' fuzz factor (``keras.backend.epsilon()``), the floor of sqrt(variance) in
#: Normalization layers.
EPSILON = 1e-7


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


#: Activations that may overwrite their input, for the outputs of Dense and Conv layers
#: (new arrays): relu in place saves a pass over memory and an allocation per layer.
_IN_PLACE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0, out=x),
}


def _activation(
    spec: Any, where: str, in_place: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """The activation ``spec`` names; with ``in_place``, one that may overwrite its input
    where there is such a variant (the caller passes an array it owns)."""
    name = spec if isinstance(spec, str) or spec is None else None
    if isinstance(spec, dict) and spec.get("module") in ("keras.activations", None):
        name = spec.get("config", spec.get("class_name"))
        name = name if isinstance(name, str) else None
    if name is None:
        return ACTIVATIONS["linear"]
    if name not in ACTIVATIONS:
        raise ModelLoadError(f"{where}: activation {name!r} is not supported by numpy inference")
    return _IN_PLACE.get(name, ACTIVATIONS[name]) if in_place else ACTIVATIONS[name]


def _same_pad(n: int, size: int, stride: int) -> tuple[int, int, int]:
    """Output length and (before, after) padding of TensorFlow's 'same' rule."""
    out = -(-n // stride)
    total = max((out - 1) * stride + size - n, 0)
    return out, total // 2, total - total // 2


#: Bytes of unfolded windows multiplied at a time in :func:`_conv`: few enough to stay in
#: cache between the copy that unfolds them and the product that reads them.  Measured on
#: the five npcnn convolutions, 256 rows, one thread, CPU time (median of 12, load ~2):
#: 1–2 MB blocks 30 ms; 128 kB or 4 MB 33 ms; one block of all 256 rows (26 MB for the
#: second layer) 41 ms; the previous code (all rows unfolded into a new array) 33 ms.
UNFOLD_BYTES = 1 << 20


def _conv(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    padding: str,
    strides: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Cross-correlation over the spatial axes of channels-last ``x`` with ``strides``
    (default 1), padded by TensorFlow's 'same' rule or not at all ('valid').  Returns a
    new array, which the caller may overwrite (the activation runs in place)."""
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
        # copies made below to the windows actually used.
        win = win[(slice(None), *(slice(None, None, s) for s in strides))]
    # (N, *out, C, *k) -> (N, *out, *k, C), matching the kernel layout (*k, C, F): one
    # window is then one row of the unfolded matrix, its (k, C) runs contiguous in x.
    nd = len(sizes)
    order = (*range(0, 1 + nd), *range(2 + nd, 2 + 2 * nd), 1 + nd)
    win = win.transpose(order)
    depth, filters = int(np.prod(win.shape[1 + nd :])), kernel.shape[-1]
    w = kernel.reshape(depth, filters)
    y = np.empty((*win.shape[: 1 + nd], filters), dtype=np.result_type(x, kernel))
    per_row = max(1, int(np.prod(win.shape[1:])) * x.itemsize)  # unfolded bytes of one row
    step = max(1, UNFOLD_BYTES // per_row)
    for i in range(0, len(x), step):
        # Unfold a cache-sized block of rows (the reshape copies) and multiply it while it
        # is still in cache, straight into the output (a contiguous slice: a view).
        np.matmul(win[i : i + step].reshape(-1, depth), w, out=y[i : i + step].reshape(-1, filters))
    if bias is not None:
        y += bias
    return y


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


def layer_forward(cls: str, cfg: dict, vars_: list[np.ndarray], where: str) -> Callable:
    """The forward function of one (non-nested) layer: f(list of inputs) -> output."""
    if cls in ("Dropout", "Identity", "SpatialDropout1D", "GaussianNoise", "GaussianDropout"):
        return lambda xs: xs[0]  # inference: these layers pass their input on
    if cls == "Activation":
        act = _activation(cfg.get("activation"), where)
        return lambda xs: act(xs[0])
    if cls == "Dense":
        act = _activation(cfg.get("activation"), where, in_place=True)
        w = vars_[0].astype(np.float32)
        b = vars_[1].astype(np.float32) if cfg.get("use_bias", True) else None
        if w.shape[1] != cfg["units"]:
            raise ModelLoadError(f"{where}: kernel {w.shape} does not match {cfg['units']} units")

        def dense(xs: list[np.ndarray]) -> np.ndarray:
            y = xs[0] @ w  # a new array: bias and activation may overwrite it
            if b is not None:
                y += b
            return act(y)

        return dense
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
        # The width from the shape, not -1: an empty batch has no size to infer it from.
        return lambda xs: xs[0].reshape(len(xs[0]), int(np.prod(xs[0].shape[1:])))
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
        act = _activation(cfg.get("activation"), where, in_place=True)  # _conv: a new array
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
NO_WEIGHTS = LAYERS - {"Conv1D", "Conv2D", "Dense"}
