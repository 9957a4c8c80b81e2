"""Typed settings of a ``kind: crystal`` structure source, read from one config entry.

Units: lengths in Å, strains as fractions (0.01 = +1 %), temperatures in K.  Every
problem is a :class:`~mlxas.structures.crystal_parent.CrystalInputError` naming the
source and the key.  The JSON schema of the entry is ``schemas/sources/crystal.schema.yaml``.

A *value axis* (strains, temperatures, sizes) is written as one number, a list of
numbers, ``{range: [low, high], steps: n}`` (an even grid, both ends included) or
``{range: [low, high], draws: n}`` (n uniform draws from the source's seed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlxas.structures.crystal_defects import DefectVariant
from mlxas.structures.crystal_parent import CrystalInputError
from mlxas.structures.crystal_shapes import ShapeSpec, parse_shapes

__all__ = [
    "CrystalSettings",
    "DefectVariant",
    "ShapeSpec",
    "StrainSettings",
    "ThermalSettings",
    "ValueAxis",
]

THERMAL_MODELS = ("debye_card", "einstein", "debye", "md")


_fail = CrystalInputError.at


def _refuse_unknown(obj: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = set(obj) - known
    if extra:
        raise _fail(where, f"unknown key(s) {sorted(extra)}")


@dataclass(frozen=True)
class ValueAxis:
    """A list of values: given, an even grid (``steps``) or uniform draws (``draws``)."""

    values: tuple[float, ...] = ()
    low: float | None = None
    high: float | None = None
    steps: int | None = None
    draws: int | None = None

    @classmethod
    def parse(cls, obj: Any, where: str) -> ValueAxis:
        if isinstance(obj, int | float) and not isinstance(obj, bool):
            return cls(values=(float(obj),))
        if isinstance(obj, list | tuple):
            if not obj or not all(isinstance(v, int | float) for v in obj):
                raise _fail(where, f"give a non-empty list of numbers, got {obj!r}")
            return cls(values=tuple(float(v) for v in obj))
        if isinstance(obj, Mapping) and "range" in obj:
            rng = obj["range"]
            _refuse_unknown(obj, {"range", "steps", "draws"}, where)
            if not (isinstance(rng, list | tuple) and len(rng) == 2):
                raise _fail(where, f"range must be [low, high], got {rng!r}")
            lo, hi = float(rng[0]), float(rng[1])
            if hi < lo:
                raise _fail(where, f"range [{lo:g}, {hi:g}] has low > high")
            steps, draws = obj.get("steps"), obj.get("draws")
            if (steps is None) == (draws is None):
                raise _fail(where, "a range needs exactly one of `steps` (grid) and `draws`")
            n = steps if steps is not None else draws
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise _fail(where, f"steps/draws must be an integer >= 1, got {n!r}")
            return cls(low=lo, high=hi, steps=steps, draws=draws)
        raise _fail(
            where, f"give a number, a list, or {{range: [low, high], steps|draws: n}}, got {obj!r}"
        )

    def realise(self, rng: np.random.Generator) -> np.ndarray:
        """The values; draws come from ``rng``."""
        if self.values:
            return np.array(self.values)
        if self.steps is not None:
            return np.linspace(self.low, self.high, self.steps)
        return rng.uniform(self.low, self.high, self.draws)

    @property
    def random(self) -> bool:
        return self.draws is not None

    def bounds(self) -> tuple[float, float]:
        if self.values:
            return min(self.values), max(self.values)
        return float(self.low), float(self.high)


@dataclass(frozen=True)
class StrainSettings:
    """Isotropic strain values and per-axis strain triples (along the cell vectors a, b, c);
    every isotropic value is combined with every triple: (1 + ε_iso)(1 + ε_axis) − 1."""

    isotropic: ValueAxis = field(default_factory=lambda: ValueAxis(values=(0.0,)))
    axes: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 0.0),)
    axes_ranges: tuple[tuple[float, float], ...] | None = None  #: per axis, with axes_draws
    axes_draws: int | None = None

    @classmethod
    def parse(cls, obj: Any, where: str) -> StrainSettings:
        if obj is None:
            return cls()
        if not isinstance(obj, Mapping) or set(obj) - {"isotropic", "axes"}:
            raise _fail(where, "give {isotropic: ..., axes: ...}")
        iso = (
            ValueAxis.parse(obj["isotropic"], f"{where}.isotropic")
            if "isotropic" in obj
            else ValueAxis(values=(0.0,))
        )
        axes, ranges, draws = ((0.0, 0.0, 0.0),), None, None
        spec = obj.get("axes")
        if isinstance(spec, Mapping):
            ranges = spec.get("range")
            draws = spec.get("draws")
            if not (
                isinstance(ranges, list) and len(ranges) == 3 and all(len(r) == 2 for r in ranges)
            ):
                raise _fail(
                    f"{where}.axes", "range must be [[lo, hi], [lo, hi], [lo, hi]] for a, b, c"
                )
            if not isinstance(draws, int) or draws < 1:
                raise _fail(f"{where}.axes", "give `draws` (an integer >= 1) with the ranges")
            ranges = tuple((float(lo), float(hi)) for lo, hi in ranges)
            if any(hi < lo for lo, hi in ranges):
                raise _fail(f"{where}.axes", "a range has low > high")
        elif spec is not None:
            if not (
                isinstance(spec, list)
                and spec
                and all(isinstance(t, list) and len(t) == 3 for t in spec)
            ):
                raise _fail(
                    f"{where}.axes", "give a list of [ε_a, ε_b, ε_c] triples or {range, draws}"
                )
            axes = tuple(tuple(float(v) for v in t) for t in spec)
        lo_iso = iso.bounds()[0]
        lo_ax = min([r[0] for r in ranges] if ranges else [min(t) for t in axes])
        if lo_iso <= -0.5 or lo_ax <= -0.5:
            raise _fail(where, "a strain of -50 % or less collapses the cell")
        return cls(iso, axes, ranges, draws)

    def realise(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Total strain per axis (ε_a, ε_b, ε_c) of every combination, in order."""
        axes = np.array(self.axes)
        if self.axes_ranges is not None:
            lo, hi = np.array(self.axes_ranges).T
            axes = rng.uniform(lo, hi, (self.axes_draws, 3))
        iso = self.isotropic.realise(rng)
        return [(1 + e) * (1 + ax) - 1 for e in iso for ax in axes]


@dataclass(frozen=True)
class ThermalSettings:
    """Temperatures and how they enter the structures (see :mod:`mlxas.structures.thermal`)."""

    temperatures: ValueAxis
    model: str = "debye_card"
    #: one θ (K), a per-element map (snapshot models), or a (low, high) range drawn per structure
    debye_temperature: float | dict[str, float] | tuple[float, float] | None = None
    snapshots: int = 1
    timestep: float = 2.0  #: fs (md)
    equilibration: int = 400  #: steps (md)
    interval: int = 50  #: steps between snapshots (md)
    friction: float = 0.05  #: 1/fs (md)

    @classmethod
    def parse(cls, obj: Any, where: str) -> ThermalSettings | None:
        if obj is None:
            return None
        if not isinstance(obj, Mapping) or "values" not in obj:
            raise _fail(where, "give {values: <K axis>, model: ..., ...}")
        known = {
            "values",
            "model",
            "debye_temperature",
            "snapshots",
            "timestep",
            "equilibration",
            "interval",
            "friction",
        }
        _refuse_unknown(obj, known, where)
        temps = ValueAxis.parse(obj["values"], f"{where}.values")
        if temps.bounds()[0] < 1.0:
            raise _fail(f"{where}.values", "temperatures must be >= 1 K")
        model = obj.get("model", "debye_card")
        if model not in THERMAL_MODELS:
            raise _fail(
                f"{where}.model", f"unknown model {model!r}; choose {', '.join(THERMAL_MODELS)}"
            )
        theta = obj.get("debye_temperature")
        if isinstance(theta, Mapping) and "range" in theta:
            lo, hi = (float(v) for v in theta["range"])
            if not 0 < lo <= hi:
                raise _fail(f"{where}.debye_temperature", "range must be 0 < low <= high (K)")
            theta = (lo, hi)
        elif isinstance(theta, Mapping):
            theta = {str(k): float(v) for k, v in theta.items()}
            if any(v <= 0 for v in theta.values()):
                raise _fail(f"{where}.debye_temperature", "Debye temperatures must be > 0 K")
        elif theta is not None:
            theta = float(theta)
            if theta <= 0:
                raise _fail(f"{where}.debye_temperature", "must be > 0 K")
        if model == "debye_card" and isinstance(theta, dict):
            raise _fail(
                f"{where}.debye_temperature",
                "FEFF's DEBYE card takes one θ per structure, not one per element",
            )
        if model != "debye_card" and isinstance(theta, tuple):
            raise _fail(
                f"{where}.debye_temperature", "a range of θ applies to model debye_card only"
            )
        snaps = obj.get("snapshots", 1)
        if not isinstance(snaps, int) or snaps < 1 or (model == "debye_card" and snaps != 1):
            raise _fail(
                f"{where}.snapshots", "an integer >= 1, and 1 for debye_card (static structures)"
            )
        out = cls(temps, model, theta, snaps)
        for key in ("timestep", "equilibration", "interval", "friction"):
            if key in obj:
                if model != "md":
                    raise _fail(f"{where}.{key}", "applies to model md only")
                value = obj[key]
                if not isinstance(value, int | float) or value <= 0:
                    raise _fail(f"{where}.{key}", f"must be > 0, got {value!r}")
                out = _replace(out, **{key: type(getattr(out, key))(value)})
        return out


def _replace(obj, **changes):
    from dataclasses import replace

    return replace(obj, **changes)


@dataclass(frozen=True)
class CrystalSettings:
    """One ``kind: crystal`` source entry, validated."""

    name: str
    parent: dict[str, Any]  #: file / prototype (+ species, a, c, u) / amcsd (+ amcsd_id)
    seed: int = 0
    strain: StrainSettings = field(default_factory=StrainSettings)
    thermal: ThermalSettings | None = None
    defects: tuple[DefectVariant, ...] = ()
    perfect: bool = True  #: keep the defect-free variant beside the defect variants
    defect_draws: int = 1  #: random realisations of every defect variant
    shapes: tuple[ShapeSpec, ...] = (ShapeSpec("bulk"),)
    supercell: float = 10.0  #: Å, smallest cell width of bulk variants with defects or snapshots

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> CrystalSettings:
        name = spec.get("name")
        where = f"structures: source {name!r}"
        parent_keys = ("file", "prototype", "species", "a", "c", "u", "amcsd", "amcsd_id")
        known = {
            "name",
            "kind",
            "seed",
            "strain",
            "temperature",
            "defects",
            "perfect",
            "defect_draws",
            "shapes",
            "supercell",
            *parent_keys,
        }
        _refuse_unknown(spec, known, where)
        if spec.get("kind", "crystal") != "crystal":
            raise _fail(where, f"kind is {spec.get('kind')!r}, not crystal")
        seed = spec.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise _fail(f"{where}: seed", f"must be an integer >= 0, got {seed!r}")
        defects = spec.get("defects") or []
        if not isinstance(defects, list):
            raise _fail(f"{where}: defects", "give a list of defect variants")
        variants = tuple(
            DefectVariant.parse(d, f"{where}: defects[{k}]") for k, d in enumerate(defects)
        )
        draws = spec.get("defect_draws", 1)
        if not isinstance(draws, int) or draws < 1:
            raise _fail(f"{where}: defect_draws", "must be an integer >= 1")
        perfect = bool(spec.get("perfect", True))
        if not perfect and not variants:
            raise _fail(f"{where}: perfect", "false leaves no structure without defect variants")
        width = float(spec.get("supercell", 10.0))
        if width <= 0:
            raise _fail(f"{where}: supercell", "must be > 0 Å")
        return cls(
            name=str(name),
            parent={k: spec[k] for k in parent_keys if spec.get(k) is not None},
            seed=seed,
            strain=StrainSettings.parse(spec.get("strain"), f"{where}: strain"),
            thermal=ThermalSettings.parse(spec.get("temperature"), f"{where}: temperature"),
            defects=variants,
            perfect=perfect,
            defect_draws=draws,
            shapes=parse_shapes(spec.get("shapes"), f"{where}: shapes"),
            supercell=width,
        )
