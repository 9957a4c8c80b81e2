"""One powder pattern: pymatgen's reflections of the (strained, alloyed) structure, spread
into peaks with the drawn instrument and sample effects, on the settings' common grid."""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from mlxas.xrd.effects import Effects, strained_alloyed
from mlxas.xrd.profile import (
    bragg_two_theta,
    chebyshev_background,
    march_dollase,
    peak_shift,
    peak_widths,
    poisson_counts,
    pseudo_voigt_sum,
)
from mlxas.xrd.settings import XRDSettings

__all__ = ["Reflections", "axis_grid", "reflections", "simulate_pattern"]

#: Extra 2θ (deg) computed beyond the grid, so that shifted peaks and tails entering the
#: grid are present.
MARGIN_DEG = 3.0


@dataclass
class Reflections:
    """Peaks as pymatgen returns them: 2θ (deg), integrated intensity (unscaled), d (Å),
    and per peak the hkl families (3- or 4-index tuples) merged into it."""

    two_theta: np.ndarray
    intensity: np.ndarray
    d: np.ndarray
    families: list[list[tuple[int, ...]]]
    multiplicities: list[list[int]]


def axis_grid(settings: XRDSettings) -> np.ndarray:
    """The common grid: 2θ in degrees or Q in Å⁻¹."""
    return np.linspace(settings.axis_min, settings.axis_max, settings.n_points)


def two_theta_range(settings: XRDSettings, wavelength: float) -> tuple[float, float]:
    """2θ range (deg) pymatgen must cover for the grid at ``wavelength``."""
    if settings.axis == "two_theta":
        lo, hi = settings.axis_min, settings.axis_max
    else:
        s_lo = settings.axis_min * wavelength / (4 * math.pi)
        s_hi = min(1.0, settings.axis_max * wavelength / (4 * math.pi))
        lo, hi = 2 * math.degrees(math.asin(s_lo)), 2 * math.degrees(math.asin(s_hi))
    return max(0.0, lo - MARGIN_DEG), min(179.9, hi + MARGIN_DEG)


def reflections(structure, wavelength: float, tt_range: tuple[float, float]) -> Reflections:
    """pymatgen's ``XRDCalculator`` pattern of ``structure`` (unscaled intensities)."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    p = XRDCalculator(wavelength=wavelength).get_pattern(
        structure, scaled=False, two_theta_range=tt_range
    )
    fams = [[tuple(f["hkl"]) for f in peak] for peak in p.hkls]
    mults = [[int(f["multiplicity"]) for f in peak] for peak in p.hkls]
    x, y, d = (np.asarray(v, dtype=float) for v in (p.x, p.y, p.d_hkls))
    return Reflections(x, y, d, fams, mults)


@lru_cache(maxsize=256)
def _impurity_reflections(name: str, wavelength: float, tt_lo: float, tt_hi: float):
    from mlxas.xrd.prototypes import reference_structure

    return reflections(reference_structure(name), wavelength, (tt_lo, tt_hi))


@cache
def _signed_permutations() -> np.ndarray:
    """The 48 signed permutation matrices [48, 3, 3]."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=int)
            m[range(3), perm] = signs
            mats.append(m)
    return np.array(mats)


@cache
def _hex_permutations() -> np.ndarray:
    """Maps of a 4-index (h, k, i, l) to the 3-index hkl of its candidates: permutations
    of (h, k, i) with a common sign, and ±l [24, 3, 4]."""
    mats = []
    for perm in itertools.permutations(range(3)):
        for s_hki in (1, -1):
            for s_l in (1, -1):
                m = np.zeros((3, 4), dtype=int)
                m[0, perm[0]] = m[1, perm[1]] = s_hki
                m[2, 3] = s_l
                mats.append(m)
    return np.array(mats)


def _candidates(family: tuple[int, ...]) -> np.ndarray:
    """Reflections a family may hold [48, 3]: signed permutations of its indices (for the
    4-index hexagonal form, permutations of h, k, i with a common sign, and ±l; listed
    twice to keep 48 rows).  Each distinct member appears equally often, so means over
    the candidates are means over the distinct members."""
    if len(family) == 4:
        c = _hex_permutations() @ np.asarray(family)
        return np.concatenate([c, c])
    return _signed_permutations() @ np.asarray(family)


def orientation_factors(
    refl: Reflections, recip: np.ndarray, po_hkl: tuple[int, int, int], r: float
) -> np.ndarray:
    """March–Dollase factor per peak: the mean over each hkl family's reflections at the
    peak's d, the families weighted by their multiplicities.

    ``recip``: reciprocal lattice (rows a*, b*, c*; |g| = 1/d).  A family's reflections
    are its candidates whose |g| equals the peak's 1/d.
    """
    if not refl.families:
        return np.ones(0)
    pole = np.asarray(po_hkl, dtype=float) @ recip
    pole /= np.linalg.norm(pole)
    peak_of = np.array([n for n, fams in enumerate(refl.families) for _ in fams])
    mult = np.array([m for fams in refl.multiplicities for m in fams], dtype=float)
    cand = np.stack([_candidates(f) for fams in refl.families for f in fams])  # [F, 48, 3]
    g = cand @ recip
    norm = np.linalg.norm(g, axis=2)
    keep = np.abs(norm * refl.d[peak_of][:, None] - 1.0) < 1e-4
    cos = np.divide(g @ pole, norm, out=np.zeros_like(norm), where=norm > 0)
    md = np.where(keep, march_dollase(cos, r), 0.0)
    count = keep.sum(axis=1)
    fam_mean = np.divide(md.sum(axis=1), count, out=np.ones(len(count)), where=count > 0)
    num = np.bincount(peak_of, weights=fam_mean * mult, minlength=len(refl.d))
    den = np.bincount(peak_of, weights=mult, minlength=len(refl.d))
    return np.divide(num, den, out=np.ones(len(refl.d)), where=den > 0)


def _profile(
    refl: Reflections, eff: Effects, settings: XRDSettings, x: np.ndarray, po: np.ndarray | None
) -> np.ndarray:
    """Peaks of ``refl`` with the effects' lines, widths and shifts, on grid ``x``."""
    lines = [(refl.two_theta, eff.wavelength, refl.intensity)]
    if eff.wavelength2:
        lines.append(
            (
                bragg_two_theta(refl.d, eff.wavelength2),
                eff.wavelength2,
                refl.intensity * eff.ka2_ratio,
            )
        )
    centres, areas, fwhm, eta = [], [], [], []
    for tt, lam, area in lines:
        ok = np.isfinite(tt)
        theta = np.radians(tt[ok] / 2)
        h, e = peak_widths(
            theta, lam, eff.u, eff.v, eff.w, eff.eta, eff.size_nm, eff.microstrain,
            settings.scherrer_k,
        )  # fmt: skip
        obs = tt[ok] + peak_shift(
            theta, eff.zero_shift_deg, eff.displacement_mm, settings.goniometer_radius_mm
        )
        a = area[ok] * (po[ok] if po is not None else 1.0)
        if settings.axis == "q":
            # Measured 2θ is converted with the nominal (Kα1) wavelength, as for real data.
            th_obs = np.radians(obs / 2)
            k = 4 * math.pi / eff.wavelength
            obs, h = k * np.sin(th_obs), k * np.cos(th_obs) * np.radians(h) / 2
        centres.append(obs)
        areas.append(a)
        fwhm.append(h)
        eta.append(e)
    return pseudo_voigt_sum(
        x, np.concatenate(centres), np.concatenate(areas), np.concatenate(fwhm), np.concatenate(eta)
    )


#: Reflections of recently seen unstrained structures, by (key, wavelength, range).
_RECENT: OrderedDict[tuple, Reflections] = OrderedDict()
_RECENT_SIZE = 32


def _cached_reflections(key: str, structure, wavelength: float, tt_range: tuple[float, float]):
    k = (key, wavelength, tt_range)
    if k in _RECENT:
        _RECENT.move_to_end(k)
        return _RECENT[k]
    refl = reflections(structure, wavelength, tt_range)
    _RECENT[k] = refl
    while len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)
    return refl


def simulate_pattern(
    structure, eff: Effects, settings: XRDSettings, cache_key: str | None = None
) -> tuple[np.ndarray, dict]:
    """Intensity on :func:`axis_grid` (strongest point 1 before noise) and a few numbers
    (``n_peaks``).  ``cache_key`` (a text that identifies ``structure``, e.g. its JSON):
    patterns of the same structure without strain or alloying reuse its reflections."""
    x = axis_grid(settings)
    s = strained_alloyed(structure, eff)
    tt_range = two_theta_range(settings, eff.wavelength)
    if cache_key is not None and eff.strain_max == 0 and not eff.alloy_partner:
        refl = _cached_reflections(cache_key, s, eff.wavelength, tt_range)
    else:
        refl = reflections(s, eff.wavelength, tt_range)
    po = None
    if eff.po_r != 1.0 and len(refl.d):
        recip = s.lattice.reciprocal_lattice_crystallographic.matrix
        po = orientation_factors(refl, recip, eff.po_hkl, eff.po_r)
    y = _profile(refl, eff, settings, x, po)
    top = float(y.max()) if len(y) else 0.0
    if eff.impurity and eff.impurity_fraction > 0:
        imp = _impurity_reflections(eff.impurity, eff.wavelength, *tt_range)
        yi = _profile(imp, eff, settings, x, None)
        if yi.max() > 0 and top > 0:
            y = y + yi * (eff.impurity_fraction * top / yi.max())
    top = float(y.max())
    y = y / top if top > 0 else y
    if eff.background_level > 0:
        y = y + chebyshev_background(x, eff.background, eff.background_level)
    if eff.counts:
        y = poisson_counts(y, eff.counts, eff.noise_seed)
    return y, {"n_peaks": float(len(refl.d)), "max_before_norm": top}
