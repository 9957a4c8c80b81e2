"""Sim-to-real augmentation of normalised XANES on a uniform grid E − E0 (eV).

What separates a measured XANES from a FEFF10 one, each as a function with explicit
per-spectrum parameters so that its effect can be checked analytically:

``shift(norm, de, delta_e)``
    the spectrum moved up in energy by ``delta_e`` eV (an E0 that the half-step rule
    places differently, or FEFF's error in the edge position); values beyond the grid
    are the end values (the pre-edge level below, the last post-edge value above);
``broaden(norm, de, gauss_fwhm, lorentz_fwhm)``
    convolution with a Gaussian (instrument resolution, FWHM eV) and a Lorentzian (a
    longer core-hole lifetime than FEFF's, FWHM eV); the kernels are normalised, so the
    area of a peak is kept; the ends are padded with the end values, so a step stays a
    step of the same height;
``renormalise(norm, grid, scale, slope)``
    an error of the edge step (``norm·(1 + scale)``) plus a residual background line
    rising by ``slope`` edge steps across the grid (imperfect pre-/post-edge fits);
``add_noise(norm, sigma, rng)``
    white Gaussian noise of ``sigma`` edge steps.

:func:`augment` draws the parameters from :class:`AugmentSettings` ranges (uniform) and
applies them in the order of the measurement: broadening, shift, normalisation, noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AugmentSettings",
    "add_noise",
    "augment",
    "broaden",
    "renormalise",
    "shift",
]

#: Lorentzian kernels are cut at this many FWHM on each side (3% of the area beyond).
LORENTZ_CUT = 10.0


def _rows(v, n: int) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return np.broadcast_to(a if a.ndim else a.reshape(1), (n,)) if a.ndim <= 1 else a


def shift(norm: np.ndarray, de: float, delta_e) -> np.ndarray:
    """Each row moved to higher energy by ``delta_e`` eV (one value or one per row)."""
    norm = np.atleast_2d(np.asarray(norm, dtype=float))
    x = np.arange(norm.shape[1]) * de
    d = _rows(delta_e, len(norm))
    return np.stack([np.interp(x - s, x, row) for row, s in zip(norm, d, strict=True)])


def _kernel(de: float, gauss_fwhm: float, lorentz_fwhm: float, n_max: int) -> np.ndarray:
    half = 0.0
    if gauss_fwhm > 0:
        half = max(half, 3.0 * gauss_fwhm)
    if lorentz_fwhm > 0:
        half = max(half, LORENTZ_CUT * lorentz_fwhm)
    m = min(int(np.ceil(half / de)), n_max)
    x = np.arange(-m, m + 1) * de
    k = np.zeros_like(x)
    k[m] = 1.0
    if gauss_fwhm > 0:
        s = gauss_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        g = np.exp(-0.5 * (x / s) ** 2)
        k = np.convolve(k, g / g.sum(), mode="same")
    if lorentz_fwhm > 0:
        h = lorentz_fwhm / 2.0
        lor = h / (x**2 + h**2)
        k = np.convolve(k, lor / lor.sum(), mode="same")
    return k / k.sum()


def broaden(norm: np.ndarray, de: float, gauss_fwhm, lorentz_fwhm) -> np.ndarray:
    """Each row convolved with a normalised Gaussian ⊗ Lorentzian (FWHM in eV)."""
    norm = np.atleast_2d(np.asarray(norm, dtype=float))
    n, m = norm.shape
    g, lor = _rows(gauss_fwhm, n), _rows(lorentz_fwhm, n)
    if np.any(g < 0) or np.any(lor < 0):
        raise ValueError("broadening widths must not be negative")
    out = np.empty_like(norm)
    for i, row in enumerate(norm):
        k = _kernel(de, float(g[i]), float(lor[i]), m)
        p = len(k) // 2
        padded = np.concatenate([np.full(p, row[0]), row, np.full(p, row[-1])])
        out[i] = np.convolve(padded, k, mode="valid")
    return out


def renormalise(norm: np.ndarray, grid: np.ndarray, scale, slope) -> np.ndarray:
    """``norm·(1 + scale) + slope·(E − E_first)/(E_last − E_first)`` per row."""
    norm = np.atleast_2d(np.asarray(norm, dtype=float))
    n = len(norm)
    t = (grid - grid[0]) / (grid[-1] - grid[0])
    return norm * (1.0 + _rows(scale, n)[:, None]) + _rows(slope, n)[:, None] * t[None, :]


def add_noise(norm: np.ndarray, sigma, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise of ``sigma`` edge steps (one value or one per row)."""
    norm = np.atleast_2d(np.asarray(norm, dtype=float))
    return norm + _rows(sigma, len(norm))[:, None] * rng.standard_normal(norm.shape)


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges ``(low, high)`` drawn uniformly per spectrum; ``(0, 0)`` switches one off.

    Defaults: shifts of ±1.5 eV (the scatter of E0 between FEFF10 without SCF and
    measured edges after both are aligned at half step), instrument resolution up to 1.5
    eV FWHM (Si(111) at 5-10 keV is 0.7-1.4 eV), extra lifetime broadening up to 1 eV,
    edge-step errors of ±5 %, background slopes of ±3 %, noise up to 1 % of the step.
    """

    shift: tuple[float, float] = (-1.5, 1.5)
    gauss_fwhm: tuple[float, float] = (0.0, 1.5)
    lorentz_fwhm: tuple[float, float] = (0.0, 1.0)
    scale: tuple[float, float] = (-0.05, 0.05)
    slope: tuple[float, float] = (-0.03, 0.03)
    noise: tuple[float, float] = (0.0, 0.01)

    def __post_init__(self) -> None:
        for name in ("shift", "gauss_fwhm", "lorentz_fwhm", "scale", "slope", "noise"):
            lo, hi = getattr(self, name)
            if hi < lo:
                raise ValueError(f"augment.{name}: low {lo} > high {hi}")
        if self.gauss_fwhm[0] < 0 or self.lorentz_fwhm[0] < 0 or self.noise[0] < 0:
            raise ValueError("augment: widths and noise must not be negative")


def augment(
    norm: np.ndarray, grid: np.ndarray, settings: AugmentSettings, rng: np.random.Generator
) -> np.ndarray:
    """A new, augmented copy of the rows of ``norm`` (on ``grid``, uniform in eV)."""
    norm = np.atleast_2d(np.asarray(norm, dtype=float))
    n = len(norm)
    de = float(grid[1] - grid[0])

    def draw(r):
        return rng.uniform(r[0], r[1], n)

    out = broaden(norm, de, draw(settings.gauss_fwhm), draw(settings.lorentz_fwhm))
    out = shift(out, de, draw(settings.shift))
    out = renormalise(out, grid, draw(settings.scale), draw(settings.slope))
    return add_noise(out, draw(settings.noise), rng)
