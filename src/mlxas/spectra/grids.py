"""Common grids built from the ``features`` config.

Units: k in Å⁻¹, R in Å, energies in eV relative to the edge energy E0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NFFT",
    "energy_grid",
    "ft_r_grid",
    "interp_on_grid",
    "k_grid",
    "linear_weights",
    "wavelet_k_grid",
    "wavelet_r_grid",
]

#: FFT length of the chi(k) → chi(R) transform, larch's default.
NFFT = 2048


def _span(lo: float, hi: float, step: float, what: str) -> np.ndarray:
    if hi <= lo:
        raise ValueError(f"{what}: maximum {hi} is not above minimum {lo}")
    n = round((hi - lo) / step) + 1
    # Rounding removes the last-bit error of lo + i·step (20.000000000000004 for FEFF's
    # 0.05…20 grid), which would put the last point outside data that end at 20.
    return np.round(lo + step * np.arange(n), 10)


def k_grid(cfg: dict) -> np.ndarray:
    """k grid (Å⁻¹) from ``features.k_grid`` (kmin, kmax, dk), both ends included."""
    return _span(cfg["kmin"], cfg["kmax"], cfg["dk"], "features.k_grid")


def energy_grid(cfg: dict) -> np.ndarray:
    """Energy grid (eV relative to E0) from ``features.xanes`` (emin, emax, de)."""
    return _span(cfg["emin"], cfg["emax"], cfg["de"], "features.xanes")


def ft_r_grid(k_cfg: dict, ft_cfg: dict) -> np.ndarray:
    """R grid (Å) of the Fourier transform: larch ``xftf``'s grid up to ``ft.rmax``.

    The step is π / (NFFT·dk); the number of points follows ``xftf``'s ``rmax_out`` rule so
    that the stored arrays have exactly the length ``xftf`` returns.
    """
    rstep = np.pi / (NFFT * k_cfg["dk"])
    n = int(min(NFFT / 2, 1.01 + ft_cfg["rmax"] / rstep))
    return rstep * np.arange(n)


def wavelet_k_grid(wcfg: dict) -> np.ndarray:
    """k axis (Å⁻¹) of the wavelet maps: ``n_k`` points from ``kmin`` to ``kmax``."""
    if wcfg["kmax"] <= wcfg["kmin"]:
        raise ValueError("features.wavelet: kmax must be above kmin")
    return np.linspace(wcfg["kmin"], wcfg["kmax"], wcfg["n_k"])


def wavelet_r_grid(wcfg: dict) -> np.ndarray:
    """R axis (Å) of the wavelet maps: ``n_r`` points from ``rmin`` to ``rmax``."""
    if wcfg["rmax"] <= wcfg["rmin"]:
        raise ValueError("features.wavelet: rmax must be above rmin")
    return np.linspace(wcfg["rmin"], wcfg["rmax"], wcfg["n_r"])


def interp_on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation onto ``grid``; points beyond the data are zero, not extrapolated."""
    return np.interp(grid, x, y, left=0.0, right=0.0)


def linear_weights(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``i0, i1`` into the increasing axis ``src`` and weights ``t`` such that
    ``y[i0]·(1-t) + y[i1]·t`` is the linear interpolation of ``y(src)`` at ``dst``.

    Used to resample many rows at once; ``dst`` must lie inside ``src``.
    """
    if dst[0] < src[0] - 1e-9 or dst[-1] > src[-1] + 1e-9:
        raise ValueError(
            f"interpolation target {dst[0]:g}..{dst[-1]:g} lies outside {src[0]:g}..{src[-1]:g}"
        )
    i1 = np.clip(np.searchsorted(src, dst), 1, len(src) - 1)
    i0 = i1 - 1
    t = np.clip((dst - src[i0]) / (src[i1] - src[i0]), 0.0, 1.0)
    return i0, i1, t
