"""Whole models around a builder's core: raw features in, physical units out.

The saved (inference) model of one network is::

    features (full grid) → crop to input_range → Normalization (input statistics)
      → core (registry builder) → one head per target
      → Normalization(invert=True) per target (target statistics) → Concatenate

The training model shares these layers but stops at the standardised heads, one named
output per target.  An ensemble stacks its members' inference models to an output of
shape ``(batch, members, columns)``.  Only built-in Keras layers are used (no
``Lambda``), so every saved model loads with ``safe_mode`` on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlxas.models.registry import Head, ModelConfigError

__all__ = [
    "Scaling",
    "assemble",
    "combine_members",
    "combine_targets",
    "crop_slice",
    "fit_scaling",
]


@dataclass
class Scaling:
    """Input and target statistics of one model (arrays; plain JSON in the card)."""

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: dict[str, np.ndarray]
    y_std: dict[str, np.ndarray]
    input_scaling: str  # "per_feature", "global" or "none"
    #: targets left unscaled (class codes, sigmoid outputs): statistics 0 and 1 per column
    class_targets: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "input_scaling": self.input_scaling,
            "input_mean": np.asarray(self.x_mean).tolist(),
            "input_std": np.asarray(self.x_std).tolist(),
            "target_mean": np.concatenate([self.y_mean[t] for t in self.y_mean]).tolist(),
            "target_std": np.concatenate([self.y_std[t] for t in self.y_std]).tolist(),
        }

    def select(self, targets: list[str]) -> Scaling:
        """The same statistics for a subset of the targets."""
        return Scaling(
            self.x_mean,
            self.x_std,
            {t: self.y_mean[t] for t in targets},
            {t: self.y_std[t] for t in targets},
            self.input_scaling,
            self.class_targets & set(targets),
        )

    def scale_y(self, y: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Standardised value targets; class codes unchanged."""
        return {
            t: v
            if t in self.class_targets
            else ((v - self.y_mean[t]) / self.y_std[t]).astype(np.float32)
            for t, v in y.items()
        }


def _safe_std(std: np.ndarray) -> np.ndarray:
    # A constant input point (zero-padded k) or a constant target (R of unrelaxed fcc
    # clusters) would divide by zero; scale it by 1 instead.
    return np.where(std > 1e-12, std, 1.0)


def crop_slice(grid: np.ndarray | None, input_range: list[float] | None, n: int) -> slice:
    """Indices of the input points inside ``input_range`` (grid units), all if None."""
    if not input_range:
        return slice(0, n)
    if grid is None:
        raise ModelConfigError("input_range needs the input feature's grid")
    lo, hi = input_range
    idx = np.nonzero((grid >= lo - 1e-9) & (grid <= hi + 1e-9))[0]
    if len(idx) < 2:
        raise ModelConfigError(
            f"input_range [{lo}, {hi}] keeps fewer than 2 points of the grid "
            f"{float(grid[0]):.3g}..{float(grid[-1]):.3g}"
        )
    return slice(int(idx[0]), int(idx[-1]) + 1)


def fit_scaling(
    x: np.ndarray,
    y: dict[str, np.ndarray],
    standardize: bool,
    input_scaling: str,
    crop: slice,
    heads: Mapping[str, Head] | None = None,
    unscaled: set[str] | frozenset[str] = frozenset(),
) -> Scaling:
    """Statistics of the (cropped) training inputs and of the training value targets
    (class targets of ``heads`` and the targets in ``unscaled`` get mean 0 and std 1
    per output column)."""
    xc = x[:, crop] if x.ndim == 2 else x
    classes = {t: h.width for t, h in (heads or {}).items() if h.is_class or t in unscaled}
    y_mean = {t: np.zeros(n) for t, n in classes.items()}
    y_std = {t: np.ones(n) for t, n in classes.items()}
    values = {t: v for t, v in y.items() if t not in classes}
    if not standardize:
        y_mean.update({t: np.zeros(v.shape[1]) for t, v in values.items()})
        y_std.update({t: np.ones(v.shape[1]) for t, v in values.items()})
        x_mean, x_std, input_scaling = np.zeros(()), np.ones(()), "none"
    else:
        if input_scaling == "global":
            x_mean, x_std = np.asarray(xc.mean()), _safe_std(np.asarray(xc.std()))
        else:
            x_mean, x_std = xc.mean(axis=0), _safe_std(xc.std(axis=0))
        y_mean.update({t: v.mean(axis=0).astype(np.float64) for t, v in values.items()})
        y_std.update({t: _safe_std(v.std(axis=0)).astype(np.float64) for t, v in values.items()})
    order = list(y)
    return Scaling(
        np.asarray(x_mean, np.float64),
        np.asarray(x_std, np.float64),
        {t: y_mean[t] for t in order},
        {t: y_std[t] for t in order},
        input_scaling,
        frozenset(classes),
    )


def _front(inp, input_shape: tuple[int, ...], crop: slice, scaling: Scaling):
    """Crop and standardise the raw input; returns (tensor, its shape)."""
    import keras

    x = inp
    shape = input_shape
    n = input_shape[0]
    if len(input_shape) == 1 and (crop.start > 0 or crop.stop < n):
        # Cropping1D works on (steps, channels): add a channel axis and drop it again.
        x = keras.layers.Reshape((n, 1), name="to_steps")(x)
        x = keras.layers.Cropping1D((crop.start, n - crop.stop), name="input_range")(x)
        shape = (crop.stop - crop.start,)
        x = keras.layers.Reshape(shape, name="from_steps")(x)
    if scaling.input_scaling == "per_feature":
        axis = -1 if len(shape) == 1 else tuple(range(1, len(shape) + 1))
        x = keras.layers.Normalization(
            axis=axis, mean=scaling.x_mean, variance=scaling.x_std**2, name="standardize"
        )(x)
    elif scaling.input_scaling == "global":
        x = keras.layers.Normalization(
            axis=None,
            mean=float(scaling.x_mean),
            variance=float(scaling.x_std) ** 2,
            name="standardize",
        )(x)
    return x, shape


def assemble(
    kind: str,
    params: dict[str, Any],
    input_shape: tuple[int, ...],
    heads: Mapping[str, Head | int],
    crop: slice,
    scaling: Scaling,
    name: str = "model",
):
    """(training model, inference model) sharing one set of layers.

    ``heads``: target -> :class:`~mlxas.models.registry.Head` (or a value target's
    width).  A class head's softmax probabilities are never unstandardised."""
    import keras

    from mlxas.models.registry import as_heads, build

    head_specs = as_heads(heads)
    inp = keras.Input(shape=input_shape, name="features")
    z, shape = _front(inp, input_shape, crop, scaling)
    core = build(kind, shape, head_specs, params)
    outs = core(z)
    if not isinstance(outs, list | tuple):
        outs = [outs]
    heads = dict(zip(head_specs, outs, strict=True))
    train_model = keras.Model(
        inp,
        {t: keras.layers.Identity(name=t)(o) for t, o in heads.items()},
        name=f"{name}_training",
    )
    phys = []
    for t, o in heads.items():
        if scaling.input_scaling != "none" and t not in scaling.class_targets:
            o = keras.layers.Normalization(
                mean=scaling.y_mean[t],
                variance=scaling.y_std[t] ** 2,
                invert=True,
                name=f"unstandardize_{t}",
            )(o)
        phys.append(o)
    out = phys[0] if len(phys) == 1 else keras.layers.Concatenate(name="targets")(phys)
    return train_model, keras.Model(inp, out, name=name)


def combine_members(members: list, input_shape: tuple[int, ...], name: str):
    """One model whose output stacks the members' predictions: (batch, members, columns).

    Members must have distinct names (``assemble(..., name=...)``): they become nested
    models of the saved file.
    """
    import keras

    inp = keras.Input(shape=input_shape, name="features")
    outs = []
    for i, m in enumerate(members):
        y = m(inp)
        outs.append(keras.layers.Reshape((1, y.shape[-1]), name=f"stack_{i}")(y))
    return keras.Model(inp, keras.layers.Concatenate(axis=1, name="members")(outs), name=name)


def combine_targets(nets: list, input_shape: tuple[int, ...], name: str):
    """One model whose output columns are those of ``nets`` (one network per target) in order."""
    import keras

    inp = keras.Input(shape=input_shape, name="features")
    outs = [net(inp) for net in nets]
    return keras.Model(inp, keras.layers.Concatenate(name="targets")(outs), name=name)
