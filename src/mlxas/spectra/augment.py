"""Sim-to-real augmentation of unweighted chi(k) on a uniform k grid (k in Å⁻¹).

FEFF spectra are clean; measured ones differ from them in a few well-understood ways.
Each function below applies one of those differences to a batch ``chi[n, k]`` with
explicit per-spectrum parameters, so its effect can be checked analytically;
:func:`augment_chi` draws the parameters from a seeded generator and applies them in
a physical order (structure first, then measurement):

1. Debye–Waller change         chi·exp(−2k²Δσ²)              (Δσ² in Å²; Δσ² < 0
                                                                undoes damping, down
                                                                to a total σ² of 0)
2. amplitude reduction          chi·S0²                        (S0² factor, unitless)
3. E0 shift                      chi(k) ← chi(√(k² + c·ΔE))    (ΔE in eV, c = 2mₑ/ħ²,
                                                                larch's ETOK ≈ 0.2625 Å⁻²/eV)
4. Gaussian noise                white in k, its k^w-weighted rms given
5. k-range truncation            chi = 0 beyond a random kmax  (Å⁻¹)

The config (``models[].augment``) gives each as a ``[low, high]`` range drawn uniformly
per spectrum; a missing or null entry is off.

A negative low end of ``sigma2`` makes spectra *less* damped than FEFF computed them, so
a sample colder than the training set's coldest structure still lies inside the training
distribution.  Undamping is bounded by what the spectrum has: each spectrum's Δσ² is drawn
from [max(low, −σ²₀), high], where σ²₀ is its smallest path sigma² (pass the labels,
e.g. the first-shell ``sigma2_*``, as ``sigma2_base``), so its total sigma² stays >= 0.
The drawn Δσ² is returned with the parameters; :func:`shift_sigma2_labels` adds it to the
sigma² targets, so labels and spectrum change together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from larch.xafs.xafsutils import ETOK

from mlxas.spectra.grids import interp_on_grid

__all__ = [
    "ETOK",
    "augment_chi",
    "debye_waller",
    "draw_parameters",
    "e0_shift",
    "is_enabled",
    "noise",
    "s02_scale",
    "shift_sigma2_labels",
    "truncate_k",
]

#: Keys of an augmentation config that take a ``[low, high]`` range.
RANGE_KEYS = ("sigma2", "s02", "e0_shift", "noise", "kmax")


def _rows(values: float | np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return np.broadcast_to(v.reshape(-1, 1) if v.ndim else v, (n, 1))


def debye_waller(chi: np.ndarray, k: np.ndarray, dsigma2: float | np.ndarray) -> np.ndarray:
    """Changed thermal/static disorder: chi·exp(−2k²Δσ²), Δσ² in Å² (one value or one per
    row); a negative Δσ² removes damping."""
    chi = np.atleast_2d(chi)
    return chi * np.exp(-2.0 * k[None, :] ** 2 * _rows(dsigma2, len(chi)))


def s02_scale(chi: np.ndarray, s02: float | np.ndarray) -> np.ndarray:
    """Amplitude reduction factor: chi·S0² (one value or one per row)."""
    chi = np.atleast_2d(chi)
    return chi * _rows(s02, len(chi))


def e0_shift(chi: np.ndarray, k: np.ndarray, delta_e: float | np.ndarray) -> np.ndarray:
    """Spectrum as seen with the edge energy E0 placed ΔE (eV) higher.

    A photon energy E maps to k² = c(E − E0); moving E0 up by ΔE maps it to
    k'² = k² − c·ΔE.  The shifted spectrum at grid point k therefore holds the original
    value at √(k² + c·ΔE); equivalently the original at k appears at k' = √(k² − c·ΔE).
    Points that map below k = 0 or beyond the grid are zero, as for measured data.
    """
    chi = np.atleast_2d(np.asarray(chi, dtype=float))
    de = _rows(delta_e, len(chi))[:, 0]
    out = np.empty_like(chi)
    for i, (row, d) in enumerate(zip(chi, de, strict=True)):
        # Original sample positions k_j sit at k'_j on the shifted axis; resample to the grid.
        k2 = k**2 - ETOK * d
        valid = k2 >= 0
        out[i] = interp_on_grid(np.sqrt(k2[valid]), row[valid], k)
    return out


def noise(
    chi: np.ndarray,
    k: np.ndarray,
    level: float | np.ndarray,
    kweight: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Add Gaussian noise that is white in k, sized by its k-weighted rms.

    ``level`` is the rms of k^w·ε over the grid, in the units of chi·k^w (Å^-w), which is
    how noise looks in a k^w-weighted plot; the noise ε in chi itself has the constant
    standard deviation level/√⟨k^2w⟩.
    """
    chi = np.atleast_2d(chi)
    sigma = _rows(level, len(chi)) / np.sqrt(np.mean(k ** (2 * kweight)))
    return chi + sigma * rng.standard_normal(chi.shape)


def truncate_k(chi: np.ndarray, k: np.ndarray, kmax: float | np.ndarray) -> np.ndarray:
    """Zero chi beyond ``kmax`` (Å⁻¹), as for a scan that stops there."""
    chi = np.atleast_2d(chi)
    return np.where(k[None, :] <= _rows(kmax, len(chi)), chi, 0.0)


def is_enabled(cfg: dict[str, Any] | None) -> bool:
    """True when the augmentation config switches on at least one effect."""
    return bool(cfg) and any(cfg.get(key) is not None for key in RANGE_KEYS)


def draw_parameters(
    n: int,
    cfg: dict[str, Any],
    rng: np.random.Generator,
    sigma2_base: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-spectrum parameters for ``n`` spectra, each uniform in its configured range.

    A spectrum is left clean with probability ``1 − probability``; its parameters are then
    the neutral values (Δσ² = 0, S0² = 1, ΔE = 0, no noise, no truncation).  A ``sigma2``
    range reaching below 0 needs ``sigma2_base`` (Å², one per spectrum, >= 0): each
    spectrum's Δσ² is then drawn from [max(low, −base), high], so no total sigma² goes
    below zero.
    """
    p = float(cfg.get("probability", 1.0))
    on = rng.random(n) < p
    neutral = {"sigma2": 0.0, "s02": 1.0, "e0_shift": 0.0, "noise": 0.0, "kmax": np.inf}
    out: dict[str, Any] = {"augmented": on}
    for key in RANGE_KEYS:
        rng_ = cfg.get(key)
        if rng_ is None:
            continue
        lo, hi = (float(v) for v in rng_)
        if hi < lo:
            raise ValueError(f"augment.{key}: range [{lo}, {hi}] has low > high")
        low = np.full(n, lo)
        if key == "sigma2" and lo < 0:
            low = _undamping_floor(lo, hi, n, sigma2_base)
        out[key] = np.where(on, rng.uniform(low, hi, n), neutral[key])
    return out


def _undamping_floor(lo: float, hi: float, n: int, base: np.ndarray | None) -> np.ndarray:
    """Per-spectrum low end of Δσ²: ``lo``, but never below −base (total sigma² >= 0)."""
    if base is None:
        raise ValueError(
            f"augment.sigma2: the low end {lo} < 0 removes damping; it needs each "
            "spectrum's own sigma² (sigma2_base, e.g. the first-shell sigma2 label) to "
            "keep the total >= 0"
        )
    base = np.broadcast_to(np.asarray(base, dtype=float), (n,))
    if not np.all(np.isfinite(base)) or np.any(base < 0):
        raise ValueError("augment.sigma2: sigma2_base must be finite and >= 0 for every spectrum")
    return np.minimum(np.maximum(lo, -base), hi)


def shift_sigma2_labels(
    labels: dict[str, np.ndarray], parameters: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The labels with the drawn Δσ² added to every ``sigma2*`` column (others unchanged)."""
    if "sigma2" not in parameters:
        return dict(labels)
    d = np.asarray(parameters["sigma2"], dtype=float)
    return {
        name: (np.asarray(v, dtype=float) + d if name.startswith("sigma2") else v)
        for name, v in labels.items()
    }


def augment_chi(
    chi: np.ndarray,
    k: np.ndarray,
    cfg: dict[str, Any],
    rng: np.random.Generator,
    kweight: float = 2.0,
    sigma2_base: np.ndarray | None = None,
    return_parameters: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Apply the configured augmentations to a batch of unweighted chi(k) rows.

    ``cfg`` is a model's ``augment`` section; ``kweight`` sizes the noise when the
    config does not give ``noise_kweight``; ``sigma2_base`` (Å², one per row) bounds a
    negative Δσ² (see :func:`draw_parameters`).  The result is a new array, with the
    drawn parameters when ``return_parameters`` is true.
    """
    chi = np.array(np.atleast_2d(chi), dtype=float)
    par = draw_parameters(len(chi), cfg, rng, sigma2_base)
    if "sigma2" in par:
        chi = debye_waller(chi, k, par["sigma2"])
    if "s02" in par:
        chi = s02_scale(chi, par["s02"])
    if "e0_shift" in par:
        chi = e0_shift(chi, k, par["e0_shift"])
    if "noise" in par:
        w = cfg.get("noise_kweight")
        chi = noise(chi, k, par["noise"], kweight if w is None else w, rng)
    if "kmax" in par:
        chi = truncate_k(chi, k, par["kmax"])
    return (chi, par) if return_parameters else chi
