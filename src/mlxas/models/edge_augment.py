"""Sim-to-real augmentation of XANES model inputs while training (``augment.xanes``).

A model on normalised mu(E) (input ``xanes``, or ``xanes_channels``: the normalised
spectrum and its derivative) cannot be augmented through chi(k).  Its input is already
the normalised spectrum on the grid E − E0 (eV), so the physics of
:mod:`mlxas.xanes.augment` (broadening, energy shift, normalisation error, noise) acts on
it directly, and the derivative channel is recomputed from the augmented spectrum the
way `gather` computed it (``numpy.gradient`` on the grid step).

How a kind gets the augmented spectra:

- Keras kinds: a new draw for every training spectrum at the start of every epoch
  (:func:`mlxas.models.batches.edge_augmented_batches`);
- numpy kinds (``random_forest``): ``copies`` augmented copies of the training split are
  drawn once and added to the clean spectra before fitting (:func:`expand_training`).

Validation and test spectra are never augmented.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mlxas.models.registry import ModelConfigError

__all__ = [
    "EFFECTS",
    "augment_input",
    "edge_grid",
    "edge_settings",
    "expand_training",
    "n_copies",
]

#: Effects of ``augment.xanes``, each a ``[low, high]`` range (see AugmentSettings).
EFFECTS = ("shift", "gauss_fwhm", "lorentz_fwhm", "scale", "slope", "noise")


def edge_settings(spec) -> Any | None:
    """The :class:`~mlxas.xanes.augment.AugmentSettings` of ``spec.augment.xanes``, or
    None when it is absent or null.  A key left out takes the default range of
    AugmentSettings; a key set to null switches that effect off (range ``[0, 0]``).
    Refused (:class:`ModelConfigError`, naming the entry): an input other than
    :data:`~mlxas.spectra.input_names.NORMALISED_EDGE_INPUTS` (the only inputs that hold
    a normalised edge to perturb), unknown keys, ranges that are not ``[low, high]``."""
    from mlxas.spectra.input_names import NORMALISED_EDGE_INPUTS
    from mlxas.xanes.augment import AugmentSettings

    cfg = (spec.augment or {}).get("xanes")
    if cfg is None:
        return None
    where = f"models.{spec.name}.augment.xanes"
    if spec.input not in NORMALISED_EDGE_INPUTS:
        raise ModelConfigError(
            f"{where}: acts on normalised mu(E) inputs {list(NORMALISED_EDGE_INPUTS)}, "
            f"not on {spec.input!r}"
        )
    unknown = sorted(set(cfg) - set(EFFECTS) - {"copies"})
    if unknown:
        raise ModelConfigError(f"{where}: unknown key(s) {unknown} (have {[*EFFECTS, 'copies']})")
    ranges = {}
    for key in EFFECTS:
        if key not in cfg:
            continue
        value = cfg[key]
        if value is None:
            ranges[key] = (0.0, 0.0)
            continue
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ModelConfigError(f"{where}.{key}: a [low, high] range, got {value!r}")
        ranges[key] = (float(value[0]), float(value[1]))
    try:
        return AugmentSettings(**ranges)
    except ValueError as err:
        raise ModelConfigError(f"{where}: {err}") from None


def n_copies(spec) -> int:
    """Augmented copies of the training split for numpy kinds (``augment.xanes.copies``)."""
    n = (spec.augment.get("xanes") or {}).get("copies", 4)
    if int(n) != n or n < 0:
        raise ModelConfigError(f"models.{spec.name}.augment.xanes.copies: an integer >= 0")
    return int(n)


def augment_input(
    x: np.ndarray,
    grid: np.ndarray,
    settings,
    rng: np.random.Generator,
    probability: float = 1.0,
) -> np.ndarray:
    """An augmented copy of model inputs ``x``: ``[n, points]`` (``xanes``) or
    ``[n, points, 2]`` (``xanes_channels``: spectrum, derivative) on ``grid`` (eV,
    uniform).  Each spectrum is augmented with probability ``probability`` (the others
    are returned unchanged); the derivative channel is recomputed from the spectrum."""
    from mlxas.xanes.augment import augment

    x = np.asarray(x)
    grid = np.asarray(grid, dtype=float).reshape(-1)
    norm = x[..., 0] if x.ndim == 3 else x
    if norm.shape[1] != len(grid):
        raise ValueError(f"input has {norm.shape[1]} points, the grid {len(grid)}")
    out = np.array(norm, dtype=np.float64)
    chosen = rng.random(len(out)) < probability
    if np.any(chosen):
        out[chosen] = augment(out[chosen], grid, settings, rng)
    if x.ndim == 2:
        return out.astype(x.dtype)
    deriv = np.gradient(out, float(grid[1] - grid[0]), axis=1)
    keep = ~chosen  # unchanged spectra keep their stored derivative exactly
    deriv[keep] = x[keep, :, 1]
    return np.stack([out, deriv], axis=-1).astype(x.dtype)


def edge_grid(data) -> np.ndarray:
    """The energy grid (eV, E − E0) of the model input: the one `gather` put it on."""
    from mlxas.spectra.grids import energy_grid

    xcfg = data.features_cfg.get("xanes")
    if not isinstance(xcfg, dict):
        raise ModelConfigError("augment.xanes: the dataset has no features.xanes settings")
    return energy_grid(xcfg)


def expand_training(data, spec, seed: int):
    """``data`` with ``n_copies(spec)`` augmented copies of its training split appended
    (targets, extra arrays and chi repeated); ``data`` itself when ``augment.xanes`` is
    off or ``copies`` is 0."""
    from mlxas.models.training_data import SplitData

    settings = edge_settings(spec)
    n = n_copies(spec) if settings is not None else 0
    if n == 0:
        return data
    grid = edge_grid(data)
    train = data.splits["train"]
    rng = np.random.default_rng([seed, 0x5A4E])
    p = float(spec.augment.get("probability", 1.0))
    xs = [train.x] + [augment_input(train.x, grid, settings, rng, p) for _ in range(n)]

    def rep(a):
        return None if a is None else np.concatenate([a] * (n + 1))

    big = SplitData(
        np.concatenate(xs),
        {t: rep(v) for t, v in train.y.items()},
        rep(train.chi),
        {k: rep(v) for k, v in train.extra.items()},
        rep(train.sigma2_base),
    )
    return replace(data, splits={**data.splits, "train": big})
