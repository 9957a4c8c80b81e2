"""The ``xrd`` engine: powder X-ray diffraction patterns behind the simulation-stage
interface (``mlxas.engines.base``).

One item is one pattern of one structure (``unit = "structure"``).  Its input text is
canonical JSON of the structure, the effects drawn for the item (seeded by the settings'
seed and the item id, so the structure id fixes them) and the settings that shape the
pattern; its hash therefore fixes the pattern.  Several patterns of one structure are
items with ids ``<structure id>-p<n>`` (``sites.per_structure``, see
:func:`mlxas.sites.table.pattern_id`), each with its own draw of the effects.

Arrays of a successful item: ``two_theta`` (deg; for ``axis: q`` the Q grid converted
with the item's Kα1/synchrotron wavelength, NaN beyond 180°) and ``intensity`` (strongest
point near 1; background and noise included), both on the common grid.  Scalars:
``wavelength`` (Å) and ``n_peaks`` (reflections pymatgen returned in the computed range).

Reason codes: ``too_many_atoms``, ``no_scattering_factor`` (inputs); ``no_reflections``
(no peak in the grid's range), ``pymatgen_error`` (runs).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlxas.engines.base import InputError, ItemInput, ItemResult, SignalEngine, register
from mlxas.xrd.effects import Effects, draw_effects
from mlxas.xrd.pattern import axis_grid, simulate_pattern
from mlxas.xrd.settings import XRDFeatures, XRDSettings

__all__ = [
    "ENGINE_REVISION",
    "XRDEngine",
    "item_input",
    "structure_from_json",
    "structure_json",
]

#: Revision of the pattern code in this module family; part of the engine version.
ENGINE_REVISION = "1"

#: Settings that shape the pattern beyond the drawn effects (the ranges act through the
#: drawn effects, which the input text holds).
_SHAPING = ("axis", "axis_min", "axis_max", "n_points", "scherrer_k", "goniometer_radius_mm")


def _to_structure(atoms_or_structure: Any):
    from pymatgen.core import Structure

    if isinstance(atoms_or_structure, Structure):
        return atoms_or_structure
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(atoms_or_structure)


def structure_json(structure) -> dict[str, Any]:
    """Plain-data form of a (possibly disordered) pymatgen structure, rounded so that the
    text is stable: lattice in Å to 1e-6, fractional coordinates to 1e-7."""
    species = []
    for site in structure:
        occ = {el.symbol: round(float(x), 6) for el, x in site.species.items()}
        species.append(next(iter(occ)) if len(occ) == 1 and next(iter(occ.values())) == 1 else occ)
    return {
        "lattice": np.round(structure.lattice.matrix, 6).tolist(),
        "species": species,
        "frac": np.round(np.mod(structure.frac_coords, 1.0), 7).tolist(),
    }


def structure_from_json(d: Mapping[str, Any]):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(d["lattice"]), d["species"], d["frac"])


@register
class XRDEngine(SignalEngine):
    """Powder XRD with pymatgen's ``XRDCalculator`` and drawn experimental effects."""

    name: ClassVar[str] = "xrd"
    unit: ClassVar[str] = "structure"
    arrays: ClassVar[tuple[str, ...]] = ("two_theta", "intensity")
    scalars: ClassVar[tuple[str, ...]] = ("wavelength", "n_peaks")
    settings_class: ClassVar[type] = XRDSettings
    section: ClassVar[str] = "xrd"

    @property
    def version(self) -> str:
        import pymatgen.core

        return f"pymatgen-{pymatgen.core.__version__}+mlxas-xrd-{ENGINE_REVISION}"

    def prepare(self) -> None:
        from pymatgen.analysis.diffraction.xrd import XRDCalculator  # noqa: F401

    def input_text(self, atoms: Any, site_index: int | None, item_id: str) -> str:
        from pymatgen.analysis.diffraction.xrd import ATOMIC_SCATTERING_PARAMS

        s = _to_structure(atoms)
        if len(s) > self.settings.max_atoms:
            raise InputError(
                "too_many_atoms", f"{len(s)} atoms > xrd.max_atoms = {self.settings.max_atoms}"
            )
        elements = sorted({el.symbol for site in s for el in site.species})
        missing = [e for e in elements if e not in ATOMIC_SCATTERING_PARAMS]
        if missing:
            raise InputError("no_scattering_factor", f"no X-ray scattering factors for {missing}")
        eff = draw_effects(self.settings, item_id, elements, self.settings.impurities)
        shaping = {k: getattr(self.settings, k) for k in _SHAPING}
        doc = {"structure": structure_json(s), "effects": eff.to_dict(), "settings": shaping}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def run(self, item: ItemInput, rundir: Path, timeout: float) -> ItemResult:
        t0 = time.perf_counter()
        res = ItemResult(item.item_id, "failed", item.input_hash, self.name, self.version)
        res.scalars = {"wavelength": math.nan, "n_peaks": math.nan}
        try:
            doc = json.loads(item.text)
            eff = Effects.from_dict(doc["effects"])
            res.scalars["wavelength"] = eff.wavelength
            key = json.dumps(doc["structure"], sort_keys=True)
            y, info = simulate_pattern(
                structure_from_json(doc["structure"]), eff, self.settings, cache_key=key
            )
        except (ValueError, KeyError, TypeError) as err:
            res.reason, res.detail = "pymatgen_error", f"{type(err).__name__}: {err}"
            res.seconds = time.perf_counter() - t0
            return res
        res.scalars["n_peaks"] = info["n_peaks"]
        res.seconds = time.perf_counter() - t0
        if info["max_before_norm"] <= 0:
            res.reason, res.detail = "no_reflections", "no reflection falls on the grid"
            return res
        res.status = "ok"
        res.arrays = {"two_theta": self._two_theta(eff), "intensity": y.astype(np.float32)}
        return res

    def _two_theta(self, eff: Effects) -> np.ndarray:
        x = axis_grid(self.settings)
        if self.settings.axis == "two_theta":
            return x.astype(np.float32)
        s = x * eff.wavelength / (4 * math.pi)
        out = np.full(x.shape, np.nan)
        out[s <= 1] = 2 * np.degrees(np.arcsin(s[s <= 1]))
        return out.astype(np.float32)

    def featurize(self, results: Sequence[ItemResult], features: Any) -> dict[str, np.ndarray]:
        f = _features(features)
        ok = [r for r in results if r.ok]
        if not ok:
            return {"intensity": np.zeros((0, self.settings.n_points), np.float32)}
        y = np.stack([np.asarray(r.arrays["intensity"], dtype=np.float64) for r in ok])
        return {"intensity": pattern_features(y, f)}

    def feature_axes(self, features: Any) -> Mapping[str, tuple[np.ndarray, str]]:
        unit = "deg" if self.settings.axis == "two_theta" else "1/Å"
        return {"intensity": (axis_grid(self.settings), unit)}


def _features(features: Any) -> XRDFeatures:
    if features is None:
        return XRDFeatures()
    if isinstance(features, XRDFeatures):
        return features
    from mlxas.settings import from_mapping

    return from_mapping(XRDFeatures, features.get("xrd"), "features.xrd")


def pattern_features(y: np.ndarray, f: XRDFeatures) -> np.ndarray:
    """Model input from patterns ``y`` [n, points] on the common grid: negative values
    (noise below a subtracted background) set to 0, optional sqrt, then max-scaling."""
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, None)
    if f.scale == "sqrt":
        y = np.sqrt(y)
    if f.normalize == "max":
        top = y.max(axis=1, keepdims=True)
        y = np.divide(y, top, out=np.zeros_like(y), where=top > 0)
    return y.astype(np.float32)


def item_input(
    engine: XRDEngine, atoms: Any, item_id: str, structure_id: str, chunk: int = 0
) -> ItemInput:
    """The :class:`ItemInput` the ``inputs`` step writes for one item, for benchmarks
    and tests that run the engine on structures in memory; refusals carry their reason."""
    from mlxas.simulation.inputs import input_hash

    try:
        text = engine.input_text(atoms, None, item_id)
    except InputError as err:
        return ItemInput(item_id, structure_id, chunk, "", "", err.reason, err.detail)
    return ItemInput(item_id, structure_id, chunk, text, input_hash(engine, text))
