"""Common grids (k in Å^-1, E in eV relative to E0, R in Å) built from the config."""

from __future__ import annotations

import numpy as np

__all__ = ["energy_grid", "interp_on_grid", "k_grid"]


def k_grid(cfg: dict) -> np.ndarray:
    """k grid from ``features.k_grid`` (kmin, kmax, dk), both ends included."""
    n = round((cfg["kmax"] - cfg["kmin"]) / cfg["dk"]) + 1
    return cfg["kmin"] + cfg["dk"] * np.arange(n)


def energy_grid(cfg: dict) -> np.ndarray:
    """Energy grid relative to E0 from ``features.xanes`` (emin, emax, de)."""
    n = round((cfg["emax"] - cfg["emin"]) / cfg["de"]) + 1
    return cfg["emin"] + cfg["de"] * np.arange(n)


def interp_on_grid(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation onto ``grid``; points beyond the data are zero, not extrapolated."""
    return np.interp(grid, x, y, left=0.0, right=0.0)
