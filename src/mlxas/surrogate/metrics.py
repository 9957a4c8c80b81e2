"""How close a surrogate spectrum is to FEFF's: the measures of the surrogate's targets.

EXAFS
    normalised residual  Σ_k (Δ(k^w·chi))² / Σ_k (k^w·chi_FEFF)², per site, on the grid
    first-shell R        the same ``mlxas.baseline.fit_chi`` first-shell fit (larch
                         ``feffit``, one FEFF path of the reference crystal) run on the
                         surrogate's and on FEFF's chi(k); the difference of the fitted R
XANES
    cosine similarity    a·b / (|a| |b|) of the two normalised mu(E) on the grid
    peaks                the peak rule below applied to both spectra; a FEFF peak agrees
                         when the nearest surrogate peak is within ``max_shift`` eV and its
                         height within ``max_rel_height`` of FEFF's

Peak rule (one rule for both spectra): local maxima of normalised mu(E) on the grid with a
topographic prominence of at least ``prominence`` (edge-step units, default 0.05;
``scipy.signal.find_peaks``), each maximum refined by the vertex of the parabola through
the grid point and its two neighbours (position in eV, height in edge-step units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PeakAgreement",
    "cosine_similarity",
    "first_shell_r",
    "normalised_residual",
    "peak_agreement",
    "xanes_peaks",
]

#: Minimal prominence of a XANES peak, in units of the edge step.
PEAK_PROMINENCE = 0.05


def normalised_residual(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Σ(pred − true)² / Σ true² of each row (weighted spectra, e.g. k²·chi)."""
    pred, true = np.atleast_2d(pred).astype(float), np.atleast_2d(true).astype(float)
    if pred.shape != true.shape:
        raise ValueError(f"shapes differ: {pred.shape} and {true.shape}")
    return ((pred - true) ** 2).sum(axis=1) / np.maximum((true**2).sum(axis=1), 1e-300)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of the angle between the rows of ``a`` and ``b``."""
    a, b = np.atleast_2d(a).astype(float), np.atleast_2d(b).astype(float)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(den, 1e-300)


def xanes_peaks(
    energy: np.ndarray, mu: np.ndarray, prominence: float = PEAK_PROMINENCE
) -> tuple[np.ndarray, np.ndarray]:
    """(positions in eV, heights) of the peaks of one spectrum by the module's rule."""
    from scipy.signal import find_peaks

    energy, mu = np.asarray(energy, float), np.asarray(mu, float)
    idx, _ = find_peaks(mu, prominence=prominence)
    pos, height = energy[idx].copy(), mu[idx].copy()
    for n, i in enumerate(idx):
        y0, y1, y2 = mu[i - 1], mu[i], mu[i + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:  # a true maximum: the parabola's vertex lies within ±half a step
            shift = 0.5 * (y0 - y2) / den
            pos[n] = energy[i] + shift * (energy[i + 1] - energy[i])
            height[n] = y1 - 0.25 * (y0 - y2) * shift
    return pos, height


@dataclass
class PeakAgreement:
    """Counts over many spectra: FEFF peaks, those that agree, and surrogate peaks with
    no FEFF peak within ``max_shift`` (spurious)."""

    n_feff_peaks: int
    n_agree: int
    n_position_ok: int
    n_spurious: int

    @property
    def fraction(self) -> float:
        return self.n_agree / self.n_feff_peaks if self.n_feff_peaks else float("nan")


def peak_agreement(
    energy: np.ndarray,
    pred: np.ndarray,
    true: np.ndarray,
    max_shift: float = 1.0,
    max_rel_height: float = 0.10,
    prominence: float = PEAK_PROMINENCE,
) -> PeakAgreement:
    """Peak agreement of surrogate rows ``pred`` with FEFF rows ``true`` (same grid)."""
    n_f = n_ok = n_pos = n_sp = 0
    for p_row, t_row in zip(np.atleast_2d(pred), np.atleast_2d(true), strict=True):
        tp, th = xanes_peaks(energy, t_row, prominence)
        pp, ph = xanes_peaks(energy, p_row, prominence)
        n_f += len(tp)
        for e, h in zip(tp, th, strict=True):
            if len(pp) == 0:
                continue
            j = int(np.argmin(np.abs(pp - e)))
            close = abs(pp[j] - e) <= max_shift
            n_pos += int(close)
            n_ok += int(close and abs(ph[j] - h) <= max_rel_height * abs(h))
        n_sp += int(sum(len(tp) == 0 or np.min(np.abs(tp - e)) > max_shift for e in pp))
    return PeakAgreement(n_f, n_ok, n_pos, n_sp)


def first_shell_r(k: np.ndarray, chi: np.ndarray, path, settings=None) -> np.ndarray:
    """First-shell R (Å) of each row of ``chi`` (unweighted, on ``k``) from
    :func:`mlxas.baseline.fit_chi` with the reference ``path``; NaN where refused."""
    from mlxas.baseline import fit_chi

    out = np.full(len(chi), np.nan)
    for i, row in enumerate(np.atleast_2d(chi)):
        res = fit_chi(k, row, path, settings)
        if res.status == "ok":
            out[i] = res.r
    return out
