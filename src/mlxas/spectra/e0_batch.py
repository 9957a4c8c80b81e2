"""larch's ``find_e0`` for many spectra on one energy grid at once.

``mlxas serve`` gives every request its own E0, and a busy server predicts requests in
batches, most of them recorded on one beamline's energy grid.  :func:`find_e0_many` finds
the E0 of every row of such a batch with the steps of :func:`mlxas.spectra.xafsmath.find_e0`
(same grid handling, same thresholds, same candidate rule), vectorised over the rows:

- the unsmoothed pass is the same arithmetic, row by row;
- the smoothed pass groups rows by their search window and step, and applies larch's
  Lorentzian smoothing as one matrix per group.  The smoothing is linear in dmu/dE (an
  interpolation onto a uniform grid, a mirrored convolution, an interpolation back), so
  its matrix is built once per window by smoothing unit vectors, and kept per grid.

Rows differ from the one-spectrum function only in the rounding of the smoothed
derivative (the sums run in another order), so E0, a point of the energy grid, is the
same unless two points of the smoothed derivative tie to the last bits.  The tests
compare both, and larch, on measured and noisy spectra.

Units: energy in eV.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mlxas.spectra.xafsmath import _energy_grid, _lorentzian_smooth, find_e0, steepest_points

__all__ = ["find_e0_many"]

#: Largest search window (points) smoothed by a cached matrix; the usual window is the
#: 150 points around the steepest rise.  Larger ones (a search over the whole spectrum)
#: are rare and would cost a matrix of their size: they are smoothed row by row.
MAX_MATRIX_POINTS = 160


def find_e0_many(energy: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """E0 (eV) of each row of ``mu`` (spectra × points), all on the grid ``energy``.

    A row with a non-finite value, or an energy grid with one, is handed to
    :func:`~mlxas.spectra.xafsmath.find_e0`, which drops those points first.
    """
    energy = np.ascontiguousarray(energy, dtype=float)
    mu = np.atleast_2d(np.asarray(mu, dtype=float))
    out = np.empty(len(mu))
    finite = np.isfinite(mu).all(axis=1) & bool(np.isfinite(energy).all())
    for row in np.nonzero(~finite)[0]:
        out[row] = find_e0(energy, mu[row])
    rows = np.nonzero(finite)[0]
    if len(rows):
        out[rows] = _find_e0_rows(energy, mu[rows])
    return out


def _find_e0_rows(energy: np.ndarray, mu: np.ndarray) -> np.ndarray:
    en, ordered, estep1, den = _energy_grid(energy.tobytes(), None)
    with np.errstate(divide="ignore", invalid="ignore"):
        dmu = np.gradient(mu[:, ordered], axis=1) / den
    ie0 = steepest_points(dmu)
    n = len(energy)
    e0 = np.empty(len(mu))
    windows: dict[tuple[int, int, float], list[int]] = {}
    for row, i in enumerate(ie0.tolist()):
        e1 = float(en[i])
        istart, istop = max(3, i - 75), min(i + 75, n - 3)
        if i < 0.05 * n:  # steepest point in the first 5 %: a glitch, search the rest
            e1 = float(energy.mean())
            istart, istop = max(3, i - 20), n - 3
        estep = 0.5 * (max(0.01, min(1.0, estep1)) + max(0.01, min(1.0, e1 / 25000.0)))
        windows.setdefault((istart, istop, estep), []).append(row)
    for (istart, istop, estep), idx in windows.items():
        window = np.ascontiguousarray(energy[istart:istop])
        en2, ordered2, _, den2 = _energy_grid(window.tobytes(), estep)
        with np.errstate(divide="ignore", invalid="ignore"):
            d2 = np.gradient(mu[idx, istart:istop][:, ordered2], axis=1) / den2
        if len(en2) <= MAX_MATRIX_POINTS:
            d2 = d2 @ _smoothing_matrix(en2.tobytes(), estep)
        else:  # a whole-spectrum search (glitch at the start): smoothed row by row
            d2 = np.stack([_lorentzian_smooth(en2, d, sigma=estep, xstep=estep) for d in d2])
        ix = steepest_points(d2)
        e0[idx] = np.where(ix < 1, energy[istart + 2], en2[ix])
    return e0


# At most 150 × 150 values each (the search window): 128 of them stay under 25 MB.
@lru_cache(maxsize=128)
def _smoothing_matrix(x_bytes: bytes, step: float) -> np.ndarray:
    """M with ``y @ M`` = larch's Lorentzian smoothing of y on the grid x (sigma = xstep =
    ``step``), row by row: row j of M is the smoothing of the j-th unit vector."""
    x = np.frombuffer(x_bytes)
    unit = np.eye(len(x))
    m = np.stack([_lorentzian_smooth(x, unit[j], sigma=step, xstep=step) for j in range(len(x))])
    m.flags.writeable = False
    return m
