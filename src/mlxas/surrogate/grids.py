"""The grid a surrogate predicts on: chi(k) for EXAFS, normalised mu(E) for XANES.

- EXAFS: k from ``k_min`` to ``k_max`` in steps of ``dk`` (Å⁻¹), both ends included; the
  default is the dataset's grid 0.05…20 Å⁻¹ (``features.k_grid``).  The networks work
  on k^w·chi(k) (``kweight`` w); :meth:`SpectrumGrid.unweight` returns chi(k).
- XANES: E − E0 from ``e_min`` to ``e_max`` in steps of ``de`` (eV); the default −20…+60
  eV in 0.5 eV steps is the grid of the XANES geometry models.  mu(E) is normalised
  with larch's ``pre_edge`` (calculated-spectrum mode), E0 from larch's ``find_e0``,
  exactly as ``mlxas.spectra.xanes.edge_on_grid`` does for the datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlxas.spectra.grids import energy_grid, k_grid

__all__ = ["SpectrumGrid", "exafs_grid", "xanes_grid"]


@dataclass(frozen=True)
class SpectrumGrid:
    """``target``: ``exafs`` or ``xanes``; ``start``, ``stop``, ``step``: the grid (Å⁻¹ or
    eV); ``kweight``: power of k the EXAFS networks are trained on (0 for XANES)."""

    target: str
    start: float
    stop: float
    step: float
    kweight: int = 2

    def __post_init__(self):
        if self.target not in ("exafs", "xanes"):
            raise ValueError(f"surrogate target must be exafs or xanes, got {self.target!r}")

    @property
    def values(self) -> np.ndarray:
        if self.target == "exafs":
            return k_grid({"kmin": self.start, "kmax": self.stop, "dk": self.step})
        return energy_grid({"emin": self.start, "emax": self.stop, "de": self.step})

    @property
    def unit(self) -> str:
        return "1/Angstrom" if self.target == "exafs" else "eV"

    def __len__(self) -> int:
        return len(self.values)

    def weight(self, spectra: np.ndarray) -> np.ndarray:
        """What the networks fit: k^w·chi(k) for EXAFS, the spectrum itself for XANES."""
        if self.target == "xanes":
            return np.asarray(spectra, dtype=np.float32)
        return (np.asarray(spectra) * self.values**self.kweight).astype(np.float32)

    def unweight(self, weighted: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`weight` (the grid must not hold k = 0)."""
        if self.target == "xanes":
            return np.asarray(weighted, dtype=np.float32)
        return (np.asarray(weighted) / self.values**self.kweight).astype(np.float32)

    def xanes_settings(self) -> dict:
        """``features.xanes`` settings for ``mlxas.spectra.xanes.edge_on_grid``."""
        return {"emin": self.start, "emax": self.stop, "de": self.step}

    def xanes_from_mu(self, energy: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Normalised mu(E) of one FEFF spectrum on this grid (ValueError if impossible)."""
        from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid

        edge = edge_on_grid([EdgeSpectrum(energy, mu, None, True)], self.xanes_settings())
        return edge.norm[0]

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "start": self.start,
            "stop": self.stop,
            "step": self.step,
            "kweight": self.kweight,
        }

    @classmethod
    def from_json(cls, d: dict) -> SpectrumGrid:
        return cls(**d)


def exafs_grid(k_min: float = 0.05, k_max: float = 20.0, dk: float = 0.05, kweight: int = 2):
    """The dataset's k grid (Å⁻¹), networks on k^kweight·chi."""
    if not k_min > 0:
        raise ValueError("the surrogate's k grid must start above k = 0 (it divides by k^w)")
    return SpectrumGrid("exafs", k_min, k_max, dk, kweight)


def xanes_grid(e_min: float = -20.0, e_max: float = 60.0, de: float = 0.5) -> SpectrumGrid:
    """E − E0 grid (eV) of the XANES surrogate."""
    return SpectrumGrid("xanes", e_min, e_max, de, 0)
