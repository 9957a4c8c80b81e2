"""larch's XAFS definitions that ``mlxas predict`` needs, without importing larch.

``import larch.xafs`` costs seconds (lmfit, scikit-learn, SQLAlchemy, pandas and
matplotlib come with it), which a beamline user pays for every single-file prediction.
This module holds the few definitions the prediction path uses, written from larch's
documented algorithms so that they give larch's numbers: ``index_of``, ``index_nearest``,
``remove_dups``, ``find_e0`` (with its Lorentzian smoothing of dmu/dE), the default
fit ranges of ``pre_edge``, ``ftwindow`` and ``xftf_fast``.  The tests compare every one
of them with larch itself, on every measured file in ``tests/data/experimental``.

Training data (FEFF) and everything outside the prediction path keep using larch.

Units: energy in eV, k in Å⁻¹.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "ETOK",
    "TINY_ENERGY",
    "find_e0",
    "ftwindow",
    "index_nearest",
    "index_of",
    "preedge_ranges",
    "remove_dups",
    "xftf_fast",
]

#: 2mₑ/ħ² in 1/(eV·Å²): k = sqrt(ETOK·(E − E0)).  larch's value (scipy.constants,
#: CODATA), written out so that the prediction path needs no scipy.constants.
ETOK = 0.26246842396479836
#: larch's smallest tolerated energy step (eV).
TINY_ENERGY = 0.0005
#: The windows of ``ftwindow`` by their 3-letter names (larch's ``FT_WINDOWS_SHORT``).
WINDOWS = ("kai", "han", "par", "wel", "gau", "sin")


def index_of(array: np.ndarray, value: float) -> int:
    """Index of the last element of an increasing ``array`` at or below ``value`` (0 if
    every element is above it)."""
    array = np.asarray(array)
    if value < array.min():
        return 0
    return int(np.nonzero(array <= value)[0].max())


def index_nearest(array: np.ndarray, value: float) -> int:
    """Index of the element of ``array`` nearest to ``value``."""
    return int(np.abs(np.asarray(array) - value).argmin())


def remove_dups(arr: np.ndarray, tiny: float = 1e-6) -> np.ndarray:
    """Successive values closer than ``tiny`` raised by multiples of ``tiny`` (larch's
    ``remove_dups``: a run of k equal values becomes v, v + tiny, ..., v + (k−1)·tiny)."""
    work = np.asarray(arr, dtype=float)
    if work.size <= 1:
        return arr
    work = work.ravel()
    if np.min(np.diff(work)) > 10 * tiny:
        return work
    add = np.zeros(len(work))
    prev_val, prev_add = math.nan, 0.0
    for i in range(1, len(work)):
        if not math.isnan(work[i - 1]):
            prev_val, prev_add = work[i - 1], add[i - 1]
        val = work[i]
        if math.isnan(val) or math.isnan(prev_val):
            continue
        if abs(val - prev_val) < tiny:
            add[i] = prev_add + tiny
    return work + add


def _lorentzian_smooth(x: np.ndarray, y: np.ndarray, sigma: float, xstep: float) -> np.ndarray:
    """larch's ``smooth(x, y, sigma, xstep=xstep)`` (Lorentzian form, npad 5): y on a
    uniform grid, mirrored at both ends, convolved with a normalised Lorentzian, and
    interpolated back onto x."""
    if xstep < 1e-12:
        raise ValueError("cannot smooth: x must be strictly increasing")
    x0, kernel = _smoothing_grid(x.tobytes(), sigma, xstep)
    npts = len(x0)
    y0 = np.interp(x0, x, y)
    y1 = np.concatenate((y0[npts:0:-1], y0, y0[-1 : -npts - 1 : -1]))
    y2 = np.convolve(kernel, y1, mode="valid")
    if len(y2) > len(x0):
        nex = int((len(y2) - len(x0)) / 2)
        y2 = y2[nex:][: len(x0)]
    return np.interp(x, x0, y2)


# The grid-only parts of find_e0 (uniform grid, kernel; sorted energies and their step),
# kept per energy grid: every scan of a series, and every request to ``mlxas serve``
# from one beamline, shares them.  Same inputs, same arithmetic: same numbers.
@lru_cache(maxsize=256)
def _smoothing_grid(x_bytes: bytes, sigma: float, xstep: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.frombuffer(x_bytes)
    npad = 5
    xmin = xstep * int((x.min() - npad * xstep) / xstep)
    xmax = xstep * int((x.max() + npad * xstep) / xstep)
    npts = min(1 + int(abs(xmax - xmin + xstep * 0.1) / xstep), 50 * len(x))
    x0 = np.linspace(xmin, xmax, npts)
    s = max(1e-15, sigma / xstep)
    wx = np.arange(2 * npts)
    win = (1.0 / (1 + ((1.0 * wx - npts) / s) ** 2)) / max(1e-15, math.pi * s)
    kernel = win / win.sum()
    x0.flags.writeable = kernel.flags.writeable = False
    return x0, kernel


@lru_cache(maxsize=256)
def _energy_grid(
    energy_bytes: bytes, estep: float | None
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(sorted energies without duplicates, their order, the energy step, dE per point)."""
    en = remove_dups(np.frombuffer(energy_bytes), tiny=TINY_ENERGY)
    ordered = np.where(np.diff(np.argsort(en)) == 1)[0]
    en = en[ordered]
    if estep is None:
        estep = _energy_step(en)
    den = np.gradient(en)
    for shared in (en, ordered, den):  # cached: shared by every caller
        shared.flags.writeable = False
    return en, ordered, estep, den


def _energy_step(energy: np.ndarray, frac_ignore: float = 0.01, nave: int = 10) -> float:
    nskip = int(frac_ignore * len(energy))
    ordered = np.where(np.diff(np.argsort(energy)) == 1)[0]
    ediff = np.diff(energy[ordered][nskip:-nskip])
    return float(ediff[np.argsort(ediff)][nskip : nskip + nave].mean())


def _finde0(energy: np.ndarray, mu_in: np.ndarray, estep: float | None, use_smooth: bool):
    en, ordered, estep, den = _energy_grid(np.ascontiguousarray(energy).tobytes(), estep)
    mu = mu_in[ordered]
    with np.errstate(divide="ignore", invalid="ignore"):
        dmu = np.gradient(mu) / den
    if use_smooth:
        dmu = _lorentzian_smooth(en, dmu, sigma=estep, xstep=estep)
    imax = int(steepest_points(dmu[None, :])[0])
    return float(en[imax]), imax, estep


def steepest_points(dmu: np.ndarray) -> np.ndarray:
    """Index of larch's E0 point in each row of ``dmu`` (dmu/dE on one energy grid, one
    spectrum per row; rows are modified): the largest value with values above a threshold
    on both sides, away from the ends; 0 where there is none.

    Rows are normalised to 0…1 over their inner part; the threshold (0.6) is halved up to
    twice for a row with fewer than 3 points above it, as larch does.
    """
    n = dmu.shape[1]
    nmin = max(3, int(n * 0.02))
    dmu[~np.isfinite(dmu)] = -1.0
    inner = dmu[:, nmin:-nmin]
    low = inner.min(axis=1, keepdims=True)
    span = np.maximum(1e-10, inner.max(axis=1, keepdims=True) - low)
    dmu -= low  # inner is a view of dmu: its range is taken first
    dmu /= span
    high = dmu > (0.60 if n > 20 else 0.30)
    for row in np.nonzero(high.sum(axis=1) < 3)[0]:
        high[row] = _few_high_points(dmu[row], 0.60 if n > 20 else 0.30)
    # The steepest point with steep neighbours on both sides, away from the ends: larch
    # walks the steep points keeping the first strict maximum above 0, which is the first
    # occurrence of the largest value among the candidates (np.argmax), if above 0.
    cand = np.zeros_like(high)
    cand[:, nmin : n - nmin + 1] = True
    cand[:, 1:-1] &= high[:, 1:-1] & high[:, :-2] & high[:, 2:]
    cand[:, [0, -1]] = False
    score = np.where(cand, dmu, -np.inf)
    best = np.argmax(score, axis=1)
    return np.where(score[np.arange(len(best)), best] > 0.0, best, 0)


def _few_high_points(dmu: np.ndarray, dhigh: float) -> np.ndarray:
    """larch's steep points of one row when fewer than 3 lie above the first threshold:
    the threshold halved up to twice, else every finite point."""
    high = dmu > dhigh
    for _ in range(2):
        if high.sum() > 3:
            break
        dhigh *= 0.5
        high = dmu > dhigh
    if high.sum() < 3:
        high = np.isfinite(dmu)
    return high


def find_e0(energy: np.ndarray, mu: np.ndarray) -> float:
    """E0 (eV) as larch's ``find_e0``: the steepest rise of mu(E), found without and then
    with smoothing, avoiding glitches in the first 5 % of the points."""
    energy = np.asarray(energy, dtype=float)
    mu = np.asarray(mu, dtype=float)
    good = np.isfinite(energy) & np.isfinite(mu)
    energy, mu = energy[good], mu[good]
    e1, ie0, estep1 = _finde0(energy, mu, None, use_smooth=False)
    istart, istop = max(3, ie0 - 75), min(ie0 + 75, len(energy) - 3)
    if ie0 < 0.05 * len(energy):
        e1 = energy.mean()
        istart, istop = max(3, ie0 - 20), len(energy) - 3
    estep = 0.5 * (max(0.01, min(1.0, estep1)) + max(0.01, min(1.0, e1 / 25000.0)))
    e0, ix, _ = _finde0(energy[istart:istop], mu[istart:istop], estep, use_smooth=True)
    if ix < 1:
        e0 = energy[istart + 2]
    return float(e0)


def preedge_ranges(energy: np.ndarray, mu: np.ndarray, e0: float | None = None) -> dict:
    """The fit ranges larch's ``preedge(energy, mu, e0)`` chooses with its defaults:
    ``e0`` (found by :func:`find_e0` when None or outside the data), ``pre1``, ``pre2``,
    ``norm1``, ``norm2`` (eV relative to E0), ``nnorm`` (post-edge polynomial degree)
    and ``nvict`` (0)."""
    energy = remove_dups(np.asarray(energy, dtype=float), tiny=TINY_ENERGY)
    if energy.size <= 1:
        raise ValueError("energy array must have at least 2 points")
    if e0 is None or e0 < energy[1] or e0 > energy[-2]:
        e0 = find_e0(energy, mu)
    ie0 = index_nearest(energy, e0)
    rnd = 5.0 if ie0 > 20 else 2.0  # E0 far into the data: pre1 in steps of 5 eV, else 2
    pre1 = rnd * round((energy[1] - e0) / rnd)
    pre1 = max(pre1, energy.min() - e0)
    pre2 = 0.5 * pre1
    if pre1 > pre2:
        pre1, pre2 = pre2, pre1
    nvict = 0
    norm2 = 5.0 * round((energy.max() - e0) / 5.0)
    if norm2 < 0:
        norm2 = energy.max() - e0 - norm2
    norm2 = min(norm2, energy.max() - e0)
    norm1 = min(25, 5.0 * round(norm2 / 15.0))
    if norm1 > norm2:
        norm1, norm2 = norm2, norm1
    norm1 = min(norm1, norm2 - 2)
    nnorm = 2
    if norm2 - norm1 < 300:
        nnorm = 1
    if norm2 - norm1 < 30:
        nnorm = 0
    return {
        "e0": float(e0),
        "pre1": float(pre1),
        "pre2": float(pre2),
        "nvict": nvict,
        "norm1": float(norm1),
        "norm2": float(norm2),
        "nnorm": nnorm,
    }


def ftwindow(
    x: np.ndarray,
    xmin: float | None = None,
    xmax: float | None = None,
    dx: float = 1.0,
    dx2: float | None = None,
    window: str = "hanning",
) -> np.ndarray:
    """larch's Fourier-transform window on the uniform grid ``x`` (kaiser, hanning,
    parzen, welch, gaussian, sine), tapers of widths ``dx``/``dx2``."""
    nam = (window or "kaiser").strip().lower()[:3]
    if nam not in WINDOWS:
        raise ValueError(f"invalid window name {window}")
    x = np.asarray(x, dtype=float)
    dx1 = dx
    dx2 = dx1 if dx2 is None else dx2
    xmin = x.min() if xmin is None else xmin
    xmax = x.max() if xmax is None else xmax
    xstep = (x[-1] - x[0]) / (len(x) - 1)
    if xstep < 0 or np.isnan(xstep):
        xstep = 1e-3
    xeps = 1e-4 * xstep
    x1 = max(x.min(), xmin - dx1 / 2.0)
    x2 = xmin + dx1 / 2.0 + xeps
    x3 = xmax - dx2 / 2.0 - xeps
    x4 = min(x.max(), xmax + dx2 / 2.0)
    if nam == "gau":
        dx1 = max(dx1, xeps)

    def asint(val: float) -> int:
        return int((val + xeps) / xstep)

    i1, i2, i3, i4 = asint(x1), asint(x2), asint(x3), asint(x4)
    i1, i2 = max(0, i1), max(0, i2)
    i3, i4 = min(len(x) - 1, i3), min(len(x) - 1, i4)
    if i2 == i1:
        i1 = max(0, i2 - 1)
    if i4 == i3:
        i3 = max(i2, i4 - 1)
    x1, x2, x3, x4 = x[i1], x[i2], x[i3], x[i4]
    if x1 == x2:
        x2 = x2 + xeps
    if x3 == x4:
        x4 = x4 + xeps
    fwin = np.zeros(len(x))
    if i3 > i2:
        fwin[i2:i3] = 1.0
    lo, hi = x[i1 : i2 + 1], x[i3 : i4 + 1]
    if nam == "han":
        fwin[i1 : i2 + 1] = np.sin((np.pi / 2) * (lo - x1) / (x2 - x1)) ** 2
        fwin[i3 : i4 + 1] = np.cos((np.pi / 2) * (hi - x3) / (x4 - x3)) ** 2
    elif nam == "par":
        fwin[i1 : i2 + 1] = (lo - x1) / (x2 - x1)
        fwin[i3 : i4 + 1] = 1 - (hi - x3) / (x4 - x3)
    elif nam == "wel":
        fwin[i1 : i2 + 1] = 1 - ((lo - x2) / (x2 - x1)) ** 2
        fwin[i3 : i4 + 1] = 1 - ((hi - x3) / (x4 - x3)) ** 2
    elif nam == "kai":
        cen, wid = (x4 + x1) / 2, (x4 - x1) / 2
        arg = np.maximum(1 - (x - cen) ** 2 / wid**2, 0)
        fwin = (np.i0(dx * np.sqrt(arg)) - 1) / max(1e-10, np.i0(dx) - 1)
    elif nam == "sin":
        fwin[i1 : i4 + 1] = np.sin(np.pi * (x4 - x[i1 : i4 + 1]) / (x4 - x1))
    elif nam == "gau":
        cen = (x4 + x1) / 2
        fwin = np.exp(-((x - cen) ** 2) / (2 * dx1 * dx1))
    return fwin


def xftf_fast(chi: np.ndarray, nfft: int = 2048, kstep: float = 0.05) -> np.ndarray:
    """larch's ``xftf_fast``: complex chi(R) of an already windowed, k-weighted chi(k) on
    a uniform grid of step ``kstep`` (the first nfft/2 points)."""
    cchi = np.zeros(nfft, dtype=np.complex128)
    cchi[: len(chi)] = chi
    return (kstep / math.sqrt(math.pi)) * np.fft.fft(cchi)[: nfft // 2]
