"""The experimental effects of one pattern: drawn from the settings' ranges with a seed
derived from the item id, so the same item always gets the same pattern.

The drawn values are plain numbers (an :class:`Effects`); they go into the item's input
text, so the input hash fixes them.  Lattice strain and alloying change the structure the
reflections are computed from (:func:`strained_alloyed`); everything else acts on the
reflection list or the profile (``mlxas.xrd.profile``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from mlxas.provenance import hash_json
from mlxas.xrd.settings import LOG_RANGES, SOURCES, XRDSettings, energy_to_wavelength

__all__ = ["Effects", "alloy_partners", "draw_effects", "item_seed", "strained_alloyed"]


@dataclass(frozen=True)
class Effects:
    """Drawn values of one pattern (units as in :class:`XRDSettings`)."""

    wavelength: float  #: Å (Kα1 of a doublet)
    wavelength2: float | None  #: Å, Kα2, or None
    ka2_ratio: float
    u: float
    v: float
    w: float
    eta: float
    size_nm: float | None
    microstrain: float
    po_r: float  #: March–Dollase r (1: none)
    po_hkl: tuple[int, int, int]
    zero_shift_deg: float
    displacement_mm: float
    background: tuple[float, ...]  #: Chebyshev coefficients, scaled by background_level
    background_level: float
    counts: float | None
    impurity: str | None  #: prototype name of the impurity phase
    impurity_fraction: float
    strain: tuple[float, ...]  #: 3x3 raw strain draw (row-major), symmetrised at run time
    strain_max: float
    alloy_element: str | None
    alloy_partner: str | None
    alloy_fraction: float
    noise_seed: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Effects:
        d = dict(d)
        for key in ("po_hkl", "background", "strain"):
            d[key] = tuple(d[key])
        return cls(**d)


def item_seed(settings_seed: int, item_id: str) -> int:
    """64-bit seed of one item's draws: a hash of the settings seed and the item id."""
    return int(hash_json({"seed": settings_seed, "item": item_id}), 16)


def _draw(rng: np.random.Generator, r: tuple[float, float] | None, name: str) -> float | None:
    """One value from range ``r``; always consumes one uniform number, so that switching
    one effect off does not change the draws of the others."""
    t = float(rng.uniform())
    if r is None:
        return None
    lo, hi = float(r[0]), float(r[1])
    if lo == hi:
        return lo
    if name in LOG_RANGES:
        return float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))))
    return lo + t * (hi - lo)


def _pick(rng: np.random.Generator, options) -> Any:
    i = int(rng.integers(1 << 30))
    return options[i % len(options)] if len(options) else None


def draw_effects(
    settings: XRDSettings,
    item_id: str,
    elements: list[str],
    impurities: tuple[str, ...],
) -> Effects:
    """Effects of item ``item_id`` whose structure holds ``elements``; ``impurities`` are
    the prototype names an impurity phase is drawn from."""
    rng = np.random.default_rng(item_seed(settings.seed, item_id))
    s = settings
    energy = _draw(rng, s.energy_kev, "energy_kev")
    if s.source == "synchrotron":
        lam, lam2 = energy_to_wavelength(energy), None
    else:
        lam, lam2 = SOURCES[s.source]

    def val(name: str, default: float) -> float:
        v = _draw(rng, getattr(s, name), name)
        return default if v is None else v

    # Every value is drawn in a fixed order, used or not (see _draw).
    u, v, w = val("caglioti_u", 0.0), val("caglioti_v", 0.0), val("caglioti_w", 1e-4)
    eta = val("eta", 0.5)
    size = _draw(rng, s.crystallite_size_nm, "crystallite_size_nm")
    micro = val("microstrain", 0.0)
    po_r = val("march_dollase_r", 1.0)
    po_hkl = tuple(int(i) for i in _pick(rng, s.po_directions))
    zero, disp = val("zero_shift_deg", 0.0), val("displacement_mm", 0.0)
    coeffs = tuple(float(c) for c in rng.uniform(-0.4, 0.4, s.background_order + 1))
    level = val("background_level", 0.0)
    counts = _draw(rng, s.counts, "counts")
    imp_on = rng.uniform() < s.impurity_probability and s.impurity_fraction is not None
    imp_name = _pick(rng, impurities)
    imp_frac = val("impurity_fraction", 0.0)
    strain = tuple(float(x) for x in rng.uniform(-1.0, 1.0, 9))
    strain_max = val("lattice_strain", 0.0)
    strain_max = strain_max if rng.uniform() < s.strain_probability else 0.0
    alloy_on = rng.uniform() < s.alloy_probability and s.alloy_fraction is not None
    el = _pick(rng, elements)
    partner = _pick(rng, alloy_partners(el)) if el else None
    partner = partner if alloy_on else None
    alloy_frac = val("alloy_fraction", 0.0)
    impurity = imp_name if (imp_on and imp_name and imp_frac > 0) else None
    return Effects(
        wavelength=lam,
        wavelength2=lam2,
        ka2_ratio=s.ka2_ratio if lam2 else 0.0,
        u=u,
        v=v,
        w=w,
        eta=eta,
        size_nm=size,
        microstrain=micro,
        po_r=po_r,
        po_hkl=po_hkl,  # type: ignore[arg-type]
        zero_shift_deg=zero,
        displacement_mm=disp,
        background=coeffs,
        background_level=level,
        counts=counts,
        impurity=impurity,
        impurity_fraction=imp_frac if impurity else 0.0,
        strain=strain,
        strain_max=strain_max,
        alloy_element=el if partner else None,
        alloy_partner=partner,
        alloy_fraction=alloy_frac if partner else 0.0,
        noise_seed=int(rng.integers(2**62)),
    )


@cache
def alloy_partners(symbol: str) -> tuple[str, ...]:
    """Elements of the same group in the row above or below (a Vegard-type substitution),
    among those pymatgen has X-ray scattering factors for."""
    from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS
    from pymatgen.core import Element

    el = Element(symbol)
    if el.is_noble_gas or el.is_lanthanoid or el.is_actinoid or el.atomic_radius is None:
        return ()
    options = []
    for z in range(1, 95):
        other = Element.from_Z(z)
        if (
            z != el.Z
            and other.group == el.group
            and abs(other.row - el.row) == 1
            and not (other.is_lanthanoid or other.is_actinoid)
            and other.symbol in ATOMIC_SCATTERING_PARAMS
            and other.atomic_radius is not None
        ):
            options.append(other.symbol)
    return tuple(options)


def _symmetrised_strain(structure, eff: Effects, symprec: float = 1e-3) -> np.ndarray:
    """The drawn strain averaged over the lattice's holohedry (in Cartesian axes), scaled
    to a largest principal strain of ``strain_max``.  The holohedry contains the crystal's
    point group, so every operation of the space group maps the strained lattice onto
    itself with the same fractional coordinates: the space group is kept.  (Using the
    bare lattice, one atom at the origin, makes the spglib call cheap.)"""
    import spglib

    cell = (structure.lattice.matrix, [[0.0, 0.0, 0.0]], [1])
    sym = spglib.get_symmetry(cell, symprec=symprec)
    a = structure.lattice.matrix  # rows are lattice vectors; cart = frac @ a
    raw = np.asarray(eff.strain, dtype=float).reshape(3, 3)
    raw = 0.5 * (raw + raw.T)
    rots = sym["rotations"] if sym is not None else np.eye(3, dtype=int)[None]
    inv = np.linalg.inv(a)
    acc = np.zeros((3, 3))
    for r in rots:
        rc = a.T @ r @ inv.T  # the rotation in Cartesian axes
        acc += rc @ raw @ rc.T
    eps = acc / len(rots)
    biggest = np.max(np.abs(np.linalg.eigvalsh(eps)))
    if biggest < 1e-12:
        return np.zeros((3, 3))
    return eps * (eff.strain_max / biggest)


def strained_alloyed(structure, eff: Effects):
    """A copy of ``structure`` with the symmetry-preserving lattice strain and the alloy
    substitution of ``eff`` (a virtual-crystal mixed occupancy on every site of the
    element, with the lattice scaled by Vegard's law on atomic radii)."""
    from pymatgen.core import Element, Lattice, Structure

    s = structure.copy()
    matrix = s.lattice.matrix
    if eff.strain_max > 0:
        eps = _symmetrised_strain(structure, eff)
        matrix = matrix @ (np.eye(3) + eps).T
    if eff.alloy_partner and eff.alloy_element:
        x = eff.alloy_fraction
        e, p = Element(eff.alloy_element), Element(eff.alloy_partner)
        share = s.composition.get_atomic_fraction(e)
        scale = 1.0 + x * share * (float(p.atomic_radius) / float(e.atomic_radius) - 1.0)
        matrix = matrix * scale
        species = [
            {eff.alloy_element: 1.0 - x, eff.alloy_partner: x}
            if site.specie.symbol == eff.alloy_element
            else site.species
            for site in s
        ]
        return Structure(Lattice(matrix), species, s.frac_coords)
    return Structure(Lattice(matrix), s.species, s.frac_coords)
