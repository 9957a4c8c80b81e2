"""Typed settings of the powder-XRD engine: the common grid, the radiation and the ranges
from which every pattern draws its experimental effects.

Every effect is a ``[low, high]`` range (a tuple of two floats), drawn uniformly per
pattern, or ``None`` for "off".  A range with ``low == high`` fixes the value.  Sizes and
counts are drawn log-uniformly (they span decades).  Units are in the field names or the
comments below and in ``docs/xrd.md``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from mlxas.engines.base import EngineError

__all__ = [
    "LOG_RANGES",
    "SOURCES",
    "XRDFeatures",
    "XRDSettings",
    "energy_to_wavelength",
]

Range = tuple[float, float] | None

#: Characteristic lines: (Kα1, Kα2) wavelengths in Å, the values pymatgen's
#: ``WAVELENGTHS`` table holds.  ``<El>Ka`` gives the doublet, ``<El>Ka1`` Kα1 alone.
SOURCES: dict[str, tuple[float, float | None]] = {
    "CuKa": (1.54056, 1.54439),
    "CuKa1": (1.54056, None),
    "MoKa": (0.70930, 0.71359),
    "MoKa1": (0.70930, None),
    "CoKa": (1.78896, 1.79285),
    "CoKa1": (1.78896, None),
    "CrKa": (2.28970, 2.29361),
    "FeKa": (1.93604, 1.93998),
    "AgKa": (0.559421, 0.563813),
}

#: hc in keV·Å: λ[Å] = HC_KEV_A / E[keV]
HC_KEV_A = 12.398419843320026

#: Effects drawn log-uniformly.
LOG_RANGES = ("crystallite_size_nm", "counts")


def energy_to_wavelength(energy_kev: float) -> float:
    """Photon wavelength in Å of a photon energy in keV."""
    return HC_KEV_A / energy_kev


@dataclass(frozen=True)
class XRDSettings:
    """Settings of the ``xrd`` engine (config section ``xrd``)."""

    seed: int = 0  #: mixed with each item id into the seed of its drawn effects
    # --- the common grid every pattern lands on
    axis: Literal["two_theta", "q"] = "two_theta"
    axis_min: float = 10.0  #: deg 2θ (axis two_theta) or Å⁻¹ (axis q)
    axis_max: float = 80.0
    n_points: int = 1401
    # --- radiation
    source: str = "CuKa"  #: a key of SOURCES, or "synchrotron"
    energy_kev: Range = None  #: synchrotron photon energy, keV (source synchrotron)
    ka2_ratio: float = 0.5  #: I(Kα2)/I(Kα1) of a doublet source
    # --- peak shape
    caglioti_u: Range = (0.0, 0.01)  #: deg²
    caglioti_v: Range = (-0.005, 0.0)  #: deg²
    caglioti_w: Range = (0.0005, 0.005)  #: deg²
    eta: Range = (0.0, 0.7)  #: Lorentzian share of the instrumental width
    crystallite_size_nm: Range = (20.0, 500.0)  #: Scherrer size, nm (log-uniform)
    scherrer_k: float = 0.9
    microstrain: Range = (0.0, 0.002)  #: ε; strain breadth 4ε·tanθ
    # --- texture
    march_dollase_r: Range = (0.7, 1.0)  #: r < 1 plates, r > 1 needles, 1 random powder
    po_directions: tuple[tuple[int, int, int], ...] = ((0, 0, 1), (1, 0, 0), (1, 1, 0), (1, 1, 1))
    # --- geometry
    zero_shift_deg: Range = (-0.05, 0.05)  #: deg 2θ, added to every peak
    displacement_mm: Range = (-0.1, 0.1)  #: sample height error, mm
    goniometer_radius_mm: float = 240.0
    # --- background and counting noise
    background_order: int = 4  #: Chebyshev degree
    background_level: Range = (0.0, 0.1)  #: mean background / strongest peak height
    counts: Range = (1.0e3, 1.0e5)  #: counts at the strongest peak (log-uniform); None: no noise
    # --- the sample itself
    impurity_fraction: Range = (0.01, 0.05)  #: strongest impurity peak / strongest main peak
    impurity_probability: float = 0.5
    #: prototype names (``mlxas.xrd.prototypes``, reference chemistry) of impurity phases
    impurities: tuple[str, ...] = (
        "corundum",
        "rutile",
        "rocksalt",
        "fluorite",
        "diamond",
        "calcite",
        "wurtzite",
    )
    lattice_strain: Range = (0.0, 0.01)  #: largest principal lattice strain (symmetry kept)
    strain_probability: float = 0.3  #: share of patterns with a strained lattice
    alloy_fraction: Range = (0.02, 0.15)  #: share of one element's sites given to a neighbour
    alloy_probability: float = 0.2
    max_atoms: int = 256  #: structures with more atoms are refused (reason too_many_atoms)

    def __post_init__(self) -> None:
        # Config lists arrive as (tuples of) lists; keep the settings hashable.
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _tuple(getattr(self, f.name)))
        _validate(self)

    @property
    def doublet(self) -> bool:
        return self.source != "synchrotron" and SOURCES[self.source][1] is not None

    def clean(self) -> XRDSettings:
        """The same grid and radiation with every effect off: ideal powder patterns
        (Kα2 kept: it belongs to the source), narrow fixed instrumental peaks."""
        off = {f: None for f in _EFFECT_FIELDS}
        off.update(caglioti_u=(0.0, 0.0), caglioti_v=(0.0, 0.0), caglioti_w=(0.002, 0.002))
        off.update(eta=(0.5, 0.5), impurity_probability=0.0, alloy_probability=0.0)
        off.update(strain_probability=0.0)
        return dataclasses.replace(self, **off)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_EFFECT_FIELDS = (
    "crystallite_size_nm",
    "microstrain",
    "march_dollase_r",
    "zero_shift_deg",
    "displacement_mm",
    "background_level",
    "counts",
    "impurity_fraction",
    "lattice_strain",
    "alloy_fraction",
)
_RANGE_FIELDS = (
    "energy_kev",
    "caglioti_u",
    "caglioti_v",
    "caglioti_w",
    "eta",
    *_EFFECT_FIELDS,
)


def _validate(s: XRDSettings) -> None:
    if s.axis not in ("two_theta", "q"):
        raise EngineError(f"xrd.axis must be two_theta or q, got {s.axis!r}")
    if not (s.axis_max > s.axis_min >= 0 and s.n_points >= 16):
        raise EngineError(
            f"xrd: the grid needs 0 <= axis_min < axis_max and n_points >= 16, got "
            f"{s.axis_min}..{s.axis_max} with {s.n_points} points"
        )
    if s.axis == "two_theta" and s.axis_max >= 180:
        raise EngineError(f"xrd.axis_max is 2θ in degrees and must be < 180, got {s.axis_max}")
    if s.source == "synchrotron":
        if s.energy_kev is None:
            raise EngineError("xrd.source synchrotron needs energy_kev: [low, high] in keV")
        if s.axis == "two_theta" and s.energy_kev[0] != s.energy_kev[1]:
            raise EngineError(
                "xrd: energies drawn from a range put peaks at different 2θ; use axis: q"
            )
    elif s.source not in SOURCES:
        raise EngineError(
            f"xrd.source {s.source!r} is not one of {sorted(SOURCES)} or 'synchrotron'"
        )
    for name in _RANGE_FIELDS:
        r = getattr(s, name)
        if r is None:
            continue
        if len(r) != 2 or not all(math.isfinite(float(v)) for v in r) or r[0] > r[1]:
            raise EngineError(f"xrd.{name} must be [low, high] with low <= high, got {r!r}")
    positive = ("crystallite_size_nm", "counts", "march_dollase_r", "energy_kev")
    for name in positive:
        r = getattr(s, name)
        if r is not None and r[0] <= 0:
            raise EngineError(f"xrd.{name} must be > 0, got {r!r}")
    for name in ("impurity_probability", "alloy_probability", "strain_probability"):
        if not 0.0 <= getattr(s, name) <= 1.0:
            raise EngineError(f"xrd.{name} must lie in [0, 1], got {getattr(s, name)}")
    from mlxas.xrd.prototypes import PROTOTYPES

    unknown = sorted(set(s.impurities) - set(PROTOTYPES))
    if unknown:
        raise EngineError(f"xrd.impurities: unknown prototype(s) {unknown}")
    if not s.po_directions or any(len(d) != 3 or not any(d) for d in s.po_directions):
        raise EngineError(f"xrd.po_directions must be non-zero [h, k, l], got {s.po_directions}")


@dataclass(frozen=True)
class XRDFeatures:
    """How :meth:`XRDEngine.featurize` turns patterns into model inputs."""

    #: ``max``: each pattern scaled to a strongest point of 1; ``none``: as simulated
    normalize: Literal["max", "none"] = "max"
    #: ``sqrt`` lifts weak reflections (counting statistics); ``linear`` keeps heights
    scale: Literal["linear", "sqrt"] = "linear"


def _tuple(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuple(v) for v in value)
    return value
