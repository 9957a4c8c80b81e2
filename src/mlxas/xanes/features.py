"""XANES features: normalised mu(E) on E − E0 = −20…+60 eV and its derivative.

Simulated (FEFF10 ``xmu.dat``) and measured spectra go through the same steps:

1. larch ``pre_edge`` (through :func:`mlxas.spectra.xanes.normalize_edge`) subtracts the
   pre-edge line (a calculation has none: larch's ``iscalc`` mode takes its first value)
   and divides by the edge step, the post-edge fit over ``norm1…norm2`` eV above E0
   (``nnorm`` 0: its mean).  The same post-edge window for both kinds of spectra makes
   their normalised heights comparable; measured scans usually reach far beyond it.
2. E0 is the **half-step energy**: the first energy from which the normalised mu(E)
   stays at or above 0.5 for ``hold`` eV, linearly interpolated.  Unlike the maximum of
   the derivative (larch's ``find_e0``), it does not jump to an intense pre-edge peak
   (tetrahedral d0 ions such as Mn(VII), Cr(VI), V(V)): such a peak rises above 0.5 but
   falls back within a few eV.  Steps 1 and 2 are repeated once with the new E0, so the
   windows are placed relative to it.
3. The normalised mu(E) is interpolated onto the grid (0 outside the data) and its
   derivative d(norm)/dE (1/eV) is taken on the grid.

Units: energies in eV; normalised mu is unitless (edge step 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlxas.spectra.grids import energy_grid, interp_on_grid
from mlxas.spectra.xanes import EdgeSpectrum, normalize_edge

__all__ = ["XanesFeatureSettings", "XanesFeatures", "half_step_energy", "xanes_features"]


@dataclass(frozen=True)
class XanesFeatureSettings:
    """Grid and normalisation of the XANES features (eV relative to E0)."""

    emin: float = -20.0
    emax: float = 60.0
    de: float = 0.5
    norm1: float = 20.0
    norm2: float = 60.0
    nnorm: int = 0
    hold: float = 8.0

    def __post_init__(self) -> None:
        if not self.emin < 0.0 < self.emax or self.de <= 0:
            raise ValueError(
                f"xanes features: need emin < 0 < emax and de > 0, got "
                f"{self.emin}, {self.emax}, {self.de}"
            )
        if not 0.0 < self.norm1 < self.norm2:
            raise ValueError(
                f"xanes features: need 0 < norm1 < norm2, got {self.norm1}, {self.norm2}"
            )
        if self.nnorm not in (0, 1, 2):
            raise ValueError(f"xanes features: nnorm must be 0, 1 or 2, got {self.nnorm}")

    @property
    def grid(self) -> np.ndarray:
        """E − E0 (eV) of the feature points."""
        return energy_grid({"emin": self.emin, "emax": self.emax, "de": self.de})

    def larch(self) -> dict:
        """The ``pre_edge`` settings in the form :func:`normalize_edge` takes."""
        return {"norm1": self.norm1, "norm2": self.norm2, "nnorm": self.nnorm}


@dataclass
class XanesFeatures:
    """``norm`` and ``deriv`` are float32 ``[n, n_grid]``; ``e0`` (eV) and ``step`` ``[n]``."""

    norm: np.ndarray
    deriv: np.ndarray
    e0: np.ndarray
    step: np.ndarray

    def stacked(self) -> np.ndarray:
        """``[n, n_grid, 2]``: normalised mu and its derivative as two channels."""
        return np.stack([self.norm, self.deriv], axis=-1)


def half_step_energy(energy: np.ndarray, norm: np.ndarray, hold: float) -> float:
    """First energy from which ``norm`` stays ≥ 0.5 for ``hold`` eV (interpolated)."""
    above = norm >= 0.5
    for i in np.nonzero(above)[0]:
        if energy[-1] < energy[i] + hold:
            break  # too close to the end of the data to tell an edge from a peak
        j = np.searchsorted(energy, energy[i] + hold, side="right")
        if not np.all(above[i:j]):
            continue
        if i == 0:
            return float(energy[0])
        e1, e2, y1, y2 = energy[i - 1], energy[i], norm[i - 1], norm[i]
        return float(e1 + (0.5 - y1) * (e2 - e1) / (y2 - y1))
    raise ValueError(f"normalised mu(E) never stays above 0.5 for {hold:g} eV: no edge")


def _normalise(
    spec: EdgeSpectrum, settings: XanesFeatureSettings
) -> tuple[float, float, np.ndarray]:
    e0, step, norm = normalize_edge(spec, settings.larch())
    for _ in range(2):
        e_half = half_step_energy(spec.energy, norm, settings.hold)
        moved = EdgeSpectrum(spec.energy, spec.mu, e0=e_half, calculated=spec.calculated)
        _, step, norm = normalize_edge(moved, settings.larch())
        e0 = e_half
    return e0, step, norm


def xanes_features(
    spectra: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: XanesFeatureSettings,
    calculated: bool,
) -> XanesFeatures:
    """Features of ``(energy eV, mu)`` pairs; ``calculated`` marks FEFF spectra.

    Raises ``ValueError`` (with the spectrum's position) for a spectrum without an edge.
    """
    grid = settings.grid
    n = len(spectra)
    norm = np.zeros((n, len(grid)), np.float32)
    e0s, steps = np.zeros(n), np.zeros(n)
    for i, (energy, mu) in enumerate(spectra):
        spec = EdgeSpectrum(np.asarray(energy, float), np.asarray(mu, float), calculated=calculated)
        try:
            e0, step, nrm = _normalise(spec, settings)
        except ValueError as err:
            raise ValueError(f"spectrum {i}: {err}") from err
        norm[i] = interp_on_grid(spec.energy - e0, nrm, grid)
        e0s[i], steps[i] = e0, step
    deriv = np.gradient(norm, settings.de, axis=1).astype(np.float32)
    return XanesFeatures(norm, deriv, e0s, steps)
