"""E0 of measured spectra for ``mlxas predict``: one per spectrum, shared over a series,
or fixed by the user (``ProcessSpec.e0``).

Kept apart from :mod:`mlxas.predict.pipeline` because choosing E0 is its own decision
(series against single scans) with its own tolerance; the pipeline only asks for the E0
of each spectrum it reads.  Units: energy and E0 in eV.
"""

from __future__ import annotations

import math

import numpy as np

from mlxas.predict.spec import ProcessSpec
from mlxas.spectra.measured import Spectrum

__all__ = ["SERIES_E0_TOLERANCE_EV", "e0_of", "edge_energies", "steepest_rise"]

#: In a series, a spectrum whose steepest point lies further than this (eV) from the
#: series E0 gets its own E0 from larch's find_e0.
SERIES_E0_TOLERANCE_EV = 2.0


def edge_energies(spectra: list[Spectrum], spec: ProcessSpec) -> dict[int, float]:
    """E0 (eV) of each spectrum, by index.

    ``e0 = "file"``: larch's ``find_e0`` on every spectrum.  A number: that value.
    ``e0 = "auto"``: spectra on one energy grid (at least ``min_batch`` of them: a
    quick-EXAFS run, a map) share one E0, larch's ``find_e0`` on their mean spectrum;
    the noise of a single scan then does not move E0 from scan to scan, and the whole
    series shares one background factorisation.  A spectrum whose steepest rise is more
    than :data:`SERIES_E0_TOLERANCE_EV` away from that E0 (a different sample on the same
    scan grid) gets its own ``find_e0``.  Smaller groups: ``find_e0`` per spectrum.
    """
    if isinstance(spec.e0, int | float) and not isinstance(spec.e0, bool):
        return {i: float(spec.e0) for i in range(len(spectra))}
    by_grid: dict[bytes, list[int]] = {}
    for i, s in enumerate(spectra):
        by_grid.setdefault(s.energy.tobytes(), []).append(i)
    if spec.e0 == "file":
        return _own_e0s(spectra, list(by_grid.values()))
    e0s: dict[int, float] = {}
    for idx in by_grid.values():
        if len(idx) < spec.min_batch:
            e0s.update({i: e0_of(spectra[i]) for i in idx})
            continue
        s0 = spectra[idx[0]]
        mu = np.stack([spectra[i].mu for i in idx])
        common = e0_of(Spectrum(s0.source, s0.energy, mu.mean(axis=0), s0.mu_from))
        steepest = steepest_rise(s0.energy, mu, common)
        for j, i in enumerate(idx):
            near = abs(steepest[j] - common) <= SERIES_E0_TOLERANCE_EV
            e0s[i] = common if near else e0_of(spectra[i])
    return e0s


def _own_e0s(spectra: list[Spectrum], groups: list[list[int]]) -> dict[int, float]:
    """larch's find_e0 on every spectrum, vectorised over each group of spectra on one
    energy grid (:func:`mlxas.spectra.e0_batch.find_e0_many`, which gives a spectrum the E0
    it gets alone); NaN where it fails (refused later)."""
    from mlxas.spectra.e0_batch import find_e0_many

    e0s: dict[int, float] = {}
    for idx in groups:
        try:
            found = find_e0_many(spectra[idx[0]].energy, np.stack([spectra[i].mu for i in idx]))
        except (ValueError, IndexError, FloatingPointError):
            e0s.update({i: e0_of(spectra[i]) for i in idx})  # each alone, for its reason
            continue
        e0s.update(zip(idx, found.tolist(), strict=True))
    return e0s


def e0_of(s: Spectrum) -> float:
    """larch's find_e0; NaN when it fails on a pathological spectrum (refused later)."""
    from mlxas.spectra.xafsmath import find_e0  # larch's, without importing larch

    try:
        return float(find_e0(s.energy, s.mu))
    except (ValueError, IndexError, FloatingPointError):
        return math.nan


def steepest_rise(
    energy: np.ndarray, mu: np.ndarray, e0: float, half_width: float = 30.0
) -> np.ndarray:
    """Energy of the largest dmu/dE within ``e0 ± half_width`` eV, for each row of ``mu``."""
    sel = np.nonzero(np.abs(energy - e0) <= half_width)[0]
    if len(sel) < 3:
        return np.full(len(mu), e0)
    lo, hi = max(sel[0] - 1, 0), min(sel[-1] + 2, len(energy))
    e = energy[lo:hi]
    d = np.gradient(mu[:, lo:hi], e, axis=1)
    return e[np.argmax(d, axis=1)]
