"""Variants of a prototype crystal: lattice strain, supercells and thermal rattling.

All random draws come from a ``numpy.random.Generator`` the caller seeds, so a variant is
reproducible from its seed.  Site properties (the ``role`` of each site) survive every
operation.

Units: strains are dimensionless (0.01 = 1 %), displacements in Å.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Snapshot",
    "VariantSettings",
    "draw_strain",
    "rattled",
    "snapshot",
    "strained",
    "supercell_for",
]


@dataclass(frozen=True)
class VariantSettings:
    """How the thermal snapshots of a compound are drawn.

    ``strain``: largest |component| of the random symmetric strain tensor (uniform in
    ±strain per Voigt component).  ``rattle``: range (Å) of the per-snapshot rms
    displacement sigma, one Gaussian displacement per atom and Cartesian axis (room
    temperature mean-square displacements of oxides, 0.003-0.008 Å², give sigma of about
    0.05-0.09 Å).  ``min_width``: smallest perpendicular width (Å) of the rattled
    supercell, so that the atoms around an absorber within ``min_width / 2`` are all
    displaced independently (no periodic image of one displaced atom).
    """

    strain: float = 0.02
    rattle: tuple[float, float] = (0.03, 0.08)
    min_width: float = 9.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.strain < 0.2:
            raise ValueError(f"variants.strain must be in [0, 0.2), got {self.strain}")
        lo, hi = self.rattle
        if not 0.0 <= lo <= hi < 0.5:
            raise ValueError(f"variants.rattle must be 0 <= low <= high < 0.5 Å, got {lo}, {hi}")
        if self.min_width <= 0:
            raise ValueError(f"variants.min_width must be positive, got {self.min_width}")


def strained(structure, strain: np.ndarray):
    """``structure`` deformed by the symmetric strain tensor ``strain`` (3×3, or 6 Voigt
    components), fractional coordinates kept.  pymatgen's ``Strain`` is the
    Green-Lagrange strain E = (FᵀF − I)/2 of the deformation F applied."""
    from pymatgen.analysis.elasticity.strain import Strain

    e = np.asarray(strain, dtype=float)
    tensor = Strain.from_voigt(e) if e.shape == (6,) else Strain(e)
    if not np.allclose(tensor, np.asarray(tensor).T):
        raise ValueError("strain tensor must be symmetric")
    return tensor.get_deformation_matrix().apply_to_structure(structure)


def draw_strain(max_component: float, rng: np.random.Generator) -> np.ndarray:
    """Voigt components (e_xx, e_yy, e_zz, 2e_yz, 2e_xz, 2e_xy) uniform in ±max; the
    shear entries are engineering strains as Voigt notation has them."""
    e = rng.uniform(-max_component, max_component, 6)
    e[3:] *= 2.0
    return e


def supercell_for(structure, min_width: float):
    """Diagonal supercell whose perpendicular widths are all at least ``min_width`` Å."""
    lat = structure.lattice
    m = lat.matrix
    vol = abs(np.linalg.det(m))
    widths = [vol / np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3])) for i in range(3)]
    scale = [max(1, math.ceil(min_width / w - 1e-9)) for w in widths]
    s = structure.copy()
    s.make_supercell(scale)
    return s


def rattled(structure, sigma: float, rng: np.random.Generator):
    """Every atom displaced by a Gaussian of rms ``sigma`` Å per Cartesian axis."""
    from pymatgen.core import Structure

    disp = rng.normal(0.0, sigma, (len(structure), 3))
    return Structure(
        structure.lattice,
        structure.species,
        structure.cart_coords + disp,
        coords_are_cartesian=True,
        site_properties=structure.site_properties,
    )


@dataclass(frozen=True)
class Snapshot:
    """One structure drawn from a compound: ``kind`` is ``ideal`` or ``thermal``."""

    kind: str
    seed: int
    strain: tuple[float, ...]  #: Voigt components applied (zeros for ideal)
    sigma: float  #: rms displacement (Å) per axis (0 for ideal)
    structure: object


def snapshot(structure, settings: VariantSettings, seed: int | None) -> Snapshot:
    """The ideal structure (``seed`` None) or a strained, rattled supercell from ``seed``."""
    if seed is None:
        return Snapshot("ideal", -1, (0.0,) * 6, 0.0, structure.copy())
    rng = np.random.default_rng(seed)
    e = draw_strain(settings.strain, rng)
    sigma = float(rng.uniform(*settings.rattle))
    s = supercell_for(strained(structure, e), settings.min_width)
    return Snapshot("thermal", int(seed), tuple(float(v) for v in e), sigma, rattled(s, sigma, rng))
