"""Line profiles and instrument effects of a powder pattern, in numpy.

The reflections (positions, integrated intensities, d-spacings, hkl) come from pymatgen's
``XRDCalculator`` (see ``mlxas.xrd.pattern``); this module only spreads them into peaks
on a grid and adds what the instrument and the counting add.  All angles are degrees of
2θ unless a name says ``theta`` (θ in radians).

Peak widths (full width at half maximum, degrees 2θ):

- instrument, Caglioti: H² = U tan²θ + V tanθ + W, shared between a Gaussian part
  (1 − η₀)·H and a Lorentzian part η₀·H by the drawn mixing η₀;
- crystallite size, Scherrer: H = K λ / (L cosθ) (Lorentzian);
- microstrain: H = 4 ε tanθ (Gaussian);

Gaussian parts add in quadrature, Lorentzian parts linearly, and the Thompson–Cox–Hastings
approximation gives the width and mixing of the pseudo-Voigt that stands for their Voigt.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bragg_two_theta",
    "chebyshev_background",
    "march_dollase",
    "peak_shift",
    "peak_widths",
    "poisson_counts",
    "pseudo_voigt_sum",
    "tch",
]

_DEG = 180.0 / np.pi


def bragg_two_theta(d: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (deg) of spacings ``d`` (Å) at ``wavelength`` (Å); NaN beyond the limiting sphere."""
    s = wavelength / (2.0 * np.asarray(d, dtype=float))
    out = np.full(s.shape, np.nan)
    ok = s <= 1.0
    out[ok] = 2.0 * np.degrees(np.arcsin(s[ok]))
    return out


def tch(hg: np.ndarray, hl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Thompson–Cox–Hastings: FWHM and Lorentzian fraction η of the pseudo-Voigt that
    approximates the Voigt of a Gaussian (FWHM ``hg``) and a Lorentzian (FWHM ``hl``)."""
    hg, hl = np.asarray(hg, dtype=float), np.asarray(hl, dtype=float)
    h5 = (
        hg**5
        + 2.69269 * hg**4 * hl
        + 2.42843 * hg**3 * hl**2
        + 4.47163 * hg**2 * hl**3
        + 0.07842 * hg * hl**4
        + hl**5
    )
    h = h5 ** (1.0 / 5.0)
    q = np.divide(hl, h, out=np.zeros_like(h), where=h > 0)
    eta = np.clip(1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3, 0.0, 1.0)
    return h, eta


def peak_widths(
    theta: np.ndarray,
    wavelength: float,
    u: float,
    v: float,
    w: float,
    eta0: float,
    size_nm: float | None,
    microstrain: float,
    scherrer_k: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """FWHM (deg 2θ) and pseudo-Voigt mixing of peaks at Bragg angles ``theta`` (rad)."""
    tan, cos = np.tan(theta), np.cos(theta)
    h_inst = np.sqrt(np.clip(u * tan**2 + v * tan + w, 1e-10, None))
    hg = np.hypot((1.0 - eta0) * h_inst, _DEG * 4.0 * microstrain * tan)
    hl = eta0 * h_inst
    if size_nm is not None and size_nm > 0:
        hl = hl + _DEG * scherrer_k * wavelength / (size_nm * 10.0 * cos)
    return tch(hg, hl)


def peak_shift(
    theta: np.ndarray, zero_shift_deg: float, displacement_mm: float, radius_mm: float
) -> np.ndarray:
    """Observed minus true 2θ (deg): the zero offset plus the sample-displacement shift
    −2 s cosθ / R (s > 0: sample surface above the focusing circle)."""
    return zero_shift_deg - _DEG * 2.0 * displacement_mm * np.cos(theta) / radius_mm


def march_dollase(cos_alpha: np.ndarray, r: float) -> np.ndarray:
    """March–Dollase factor (r² cos²α + sin²α / r)^(−3/2) for reflections whose normal
    makes angle α with the preferred-orientation axis."""
    c2 = np.clip(np.asarray(cos_alpha, dtype=float) ** 2, 0.0, 1.0)
    return (r * r * c2 + (1.0 - c2) / r) ** -1.5


def pseudo_voigt_sum(
    x: np.ndarray,
    centres: np.ndarray,
    areas: np.ndarray,
    fwhm: np.ndarray,
    eta: np.ndarray,
    block: int = 256,
) -> np.ndarray:
    """Σ areaᵢ·pV(x − centreᵢ; fwhmᵢ, ηᵢ) with area-normalised pseudo-Voigt peaks, in
    blocks of ``block`` peaks to bound memory."""
    x = np.asarray(x, dtype=float)
    out = np.zeros(x.shape, dtype=float)
    g_norm = 2.0 * np.sqrt(np.log(2.0) / np.pi)
    for start in range(0, len(centres), block):
        sl = slice(start, start + block)
        h = fwhm[sl, None]
        z2 = ((x[None, :] - centres[sl, None]) / h) ** 2
        gauss = (g_norm / h) * np.exp(-4.0 * np.log(2.0) * z2)
        lorentz = (2.0 / (np.pi * h)) / (1.0 + 4.0 * z2)
        e = eta[sl, None]
        out += (areas[sl, None] * (e * lorentz + (1.0 - e) * gauss)).sum(axis=0)
    return out


def chebyshev_background(x: np.ndarray, coeffs: tuple[float, ...], level: float) -> np.ndarray:
    """A smooth non-negative background of mean ``level``: 1 + Σ cₖTₖ (k ≥ 1, x mapped to
    [−1, 1]), shifted up where it would dip below zero."""
    t = 2.0 * (x - x[0]) / (x[-1] - x[0]) - 1.0
    c = np.array([1.0, *coeffs[1:]])
    b = np.polynomial.chebyshev.chebval(t, c)
    b = b - min(0.0, float(b.min()))
    mean = float(b.mean())
    return b * (level / mean) if mean > 0 else np.full_like(x, level)


def poisson_counts(y: np.ndarray, counts: float, seed: int) -> np.ndarray:
    """Counting noise: ``y`` scaled to ``counts`` at its maximum, Poisson-sampled and
    scaled back."""
    top = float(np.max(y))
    if top <= 0:
        return y
    rng = np.random.default_rng(seed)
    lam = np.clip(y * (counts / top), 0.0, None)
    return rng.poisson(lam).astype(float) * (top / counts)
