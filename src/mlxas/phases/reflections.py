"""The ``reflections`` engine: single-crystal structure factors of one structure (cctbx).

Unit ``structure``: one item per crystal.  The input text is canonical JSON of the
crystal (cell, species, fractional coordinates of the whole cell, isotropic B per
element) and the settings; :meth:`ReflectionsEngine.run` computes F(hkl) with cctbx's
direct summation (exact; 27 ms for 4630 reflections × 24 atoms, against 44 ms for
cctbx's FFT with 7 % error at its default gridding and 65 ms for gemmi's per-reflection
call) on the setting's fixed reflection list, to ``d_min``.

**The fixed reflection list.**  Every crystal of one setting is described on the same
list, so that a network sees fixed-size inputs: all h, k, l with ``|h|, |k|, |l| <=
index_max``, reduced to the asymmetric unit of the Laue group (cctbx ``map_to_asu``:
Friedel mates merged), without 000 and the space group's systematic absences, sorted.
This is the index box of the published P-1 sign network ([-10, 10], 4630 reflections)
and of PhAI (indices up to 10).  A crystal's reflections with d < ``d_min`` are absent
(mask 0).  A crystal with a cell edge ``a > (index_max + 1) * d_min`` would have
reflections within ``d_min`` outside the box; it is refused (reason ``cell_too_large``)
rather than silently truncated, so choose ``index_max >= max_edge / d_min``.  The list
and its lookups are in :mod:`mlxas.phases.reflection_list`.

Arrays of a result: ``hkl`` [m, 3] (the list's reflections with d >= d_min), ``amplitude``
|F| [m] (electrons), ``phase`` [m] (radians, in (-π, π]), ``d_spacing`` [m] (Å).
Scalars: ``b_iso`` (the crystal's overall B, Å²), ``f000`` (electrons in the cell) and
the cell (``cell_a`` ... ``cell_gamma``, Å and degrees).
Reason codes of failed items: ``not_centrosymmetric`` (phases not at their restricted
values: the crystal lacks the space group's symmetry at the origin).  Refused inputs:
``cell_too_large``, ``unsupported_element``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.engines.base import Axis, InputError, ItemInput, ItemResult, SignalEngine, register
from mlxas.phases.labels import phase_restrictions
from mlxas.phases.reflection_list import box_lookup, list_restrictions, reflection_list
from mlxas.provenance import hash_bytes

__all__ = [
    "PhaseFeatures",
    "ReflectionSettings",
    "ReflectionsEngine",
    "box_lookup",
    "list_restrictions",
    "phase_features",
    "reflection_list",
    "structure_factors",
]

#: scalars of a result that hold the cell (Å, degrees): featurize needs it for |E|
CELL_SCALARS = ("cell_a", "cell_b", "cell_c", "cell_alpha", "cell_beta", "cell_gamma")

#: largest |Im(F e^{-i ht})| / max |F| of a centrosymmetric crystal: the generator
#: accepts symmetry within 1e-3 Å, which moves high-order phases by up to ~1e-2 rad
#: (3e-5 of max |F| seen); a crystal without the inversion has Im parts of percents
SYMMETRY_TOLERANCE = 1e-3

#: bump when the meaning of the arrays changes (part of the engine version)
ENGINE_REVISION = 1


@dataclass(frozen=True)
class ReflectionSettings:
    """Settings of the ``reflections`` engine (config section of the engine)."""

    space_group: str = "P-1"  #: cctbx symbol, standard setting (``P-1``, ``P 1 21/c 1``)
    d_min: float = 1.0  #: resolution cutoff, Å
    index_max: int = 11  #: the reflection box |h|, |k|, |l| <= index_max
    #: overall isotropic displacement B (Å²) of a crystal, drawn uniformly per crystal
    b_iso: tuple[float, float] = (2.0, 5.0)
    #: each element's B is the overall B times a factor drawn in [1 - s, 1 + s]
    b_element_spread: float = 0.2
    b_hydrogen: float = 1.5  #: B of H relative to the overall B (riding-H convention)
    table: str = "n_gaussian"  #: cctbx scattering-factor table (n_gaussian, it1992, wk1995)
    seed: int = 0  #: B draws are seeded by (seed, structure id)


@dataclass(frozen=True)
class PhaseFeatures:
    """How :meth:`ReflectionsEngine.featurize` turns amplitudes into model inputs."""

    #: normalise |F| to |E| with cctbx's amplitude quasi-normalisations (resolution shells)
    normalise: bool = True
    #: shells of this many reflections; halved (down to 10) while cctbx's interpolated
    #: shell mean is not positive (few, steeply falling shells at low resolution)
    reflections_per_bin: int = 50


def structure_factors(
    cell: Sequence[float],
    symbols: Sequence[str],
    frac: np.ndarray,
    b_iso: np.ndarray,
    hkl: np.ndarray,
    table: str = "n_gaussian",
) -> np.ndarray:
    """Complex F(hkl) (electrons) of a whole cell given in P1, by cctbx direct summation.

    ``cell``: a, b, c (Å), α, β, γ (degrees); ``frac`` [n, 3] fractional coordinates;
    ``b_iso`` [n] isotropic B (Å²) of each atom.
    """
    from cctbx import adptbx, crystal, miller, xray
    from cctbx.array_family import flex

    sym = crystal.symmetry(unit_cell=tuple(cell), space_group_symbol="P1")
    scatterers = flex.xray_scatterer()
    for s, x, b in zip(symbols, np.asarray(frac, float), np.asarray(b_iso, float), strict=True):
        scatterers.append(
            xray.scatterer(label=s, site=tuple(x), u=adptbx.b_as_u(b), scattering_type=s)
        )
    xs = xray.structure(crystal_symmetry=sym, scatterers=scatterers)
    xs.scattering_type_registry(table=table)
    ms = miller.set(sym, flex.miller_index(np.asarray(hkl).tolist()), anomalous_flag=False)
    f = ms.structure_factors_from_scatterers(xs, algorithm="direct").f_calc()
    return f.data().as_numpy_array()


def _element_b(settings: ReflectionSettings, structure_id: str, symbols: list[str]) -> dict:
    """Isotropic B (Å²) per element, a pure function of the settings and structure id.
    One B per element keeps symmetry-equivalent atoms equal (the crystal stays
    centrosymmetric)."""
    key = int(hash_bytes(structure_id.encode()), 16)
    rng = np.random.default_rng([settings.seed, key])
    overall = float(rng.uniform(*settings.b_iso))
    out = {}
    for el in sorted(set(symbols)):
        f = rng.uniform(1 - settings.b_element_spread, 1 + settings.b_element_spread)
        out[el] = round(overall * (settings.b_hydrogen if el in ("H", "D") else f), 4)
    return {"overall": round(overall, 4), "elements": out}


def _d_spacings(cell: Sequence[float], hkl: np.ndarray) -> np.ndarray:
    from cctbx import uctbx
    from cctbx.array_family import flex

    uc = uctbx.unit_cell(tuple(cell))
    return uc.d(flex.miller_index(np.asarray(hkl).tolist())).as_numpy_array()


@register
class ReflectionsEngine(SignalEngine):
    """Structure factors on a fixed reflection list (see the module docstring)."""

    name = "reflections"
    unit = "structure"
    arrays = ("hkl", "amplitude", "phase", "d_spacing")
    scalars = ("b_iso", "f000", *CELL_SCALARS)
    settings_class = ReflectionSettings

    @property
    def version(self) -> str:
        return f"cctbx-base {_pkg_version('cctbx-base')} reflections r{ENGINE_REVISION}"

    def prepare(self) -> None:
        reflection_list(self.settings.space_group, self.settings.index_max)

    def input_text(self, atoms: Any, site_index: int | None, item_id: str) -> str:
        from cctbx.eltbx import xray_scattering

        s = self.settings
        symbols = list(atoms.get_chemical_symbols())
        for el in sorted(set(symbols)):
            try:
                xray_scattering.best_approximation(el)
            except RuntimeError:
                raise InputError(
                    "unsupported_element", f"{item_id}: no form factor for {el}"
                ) from None
        lengths = atoms.cell.lengths()
        if np.any(np.floor(lengths / s.d_min) > s.index_max):
            raise InputError(
                "cell_too_large",
                f"{item_id}: cell edges {np.round(lengths, 3).tolist()} Å have reflections "
                f"to d_min {s.d_min} Å beyond index_max {s.index_max}",
            )
        sid = str(atoms.info.get("structure_id", item_id))
        doc = {
            "structure_id": sid,
            "cell": [round(float(x), 6) for x in atoms.cell.cellpar()],
            "symbols": symbols,
            "frac": np.round(np.mod(atoms.get_scaled_positions(wrap=False), 1.0), 7).tolist(),
            "b_iso": _element_b(s, sid, symbols),
            "settings": asdict(s),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def run(self, item: ItemInput, rundir: Path, timeout: float) -> ItemResult:
        t0 = time.perf_counter()
        doc = json.loads(item.text)
        s = self.settings
        hkl_all = reflection_list(s.space_group, s.index_max)
        d = _d_spacings(doc["cell"], hkl_all)
        keep = d >= s.d_min
        hkl = hkl_all[keep]
        b_el = doc["b_iso"]["elements"]
        b = np.array([b_el[x] for x in doc["symbols"]])
        f = structure_factors(doc["cell"], doc["symbols"], np.array(doc["frac"]), b, hkl, s.table)
        result = ItemResult(
            item_id=item.item_id,
            status="ok",
            input_hash=item.input_hash,
            engine=self.name,
            engine_version=self.version,
            scalars={
                "b_iso": doc["b_iso"]["overall"],
                "f000": _f000(doc["symbols"]),
                **dict(zip(CELL_SCALARS, doc["cell"], strict=True)),
            },
        )
        phase = np.angle(f)
        ht = phase_restrictions(s.space_group, hkl)[1]
        # Centrosymmetric at the origin: F e^{-i ht} is real.  Judged on the imaginary
        # part against the strongest |F| (the phase of a very weak reflection wanders
        # with the last digits of the coordinates without meaning anything).
        imag = np.abs(np.imag(f * np.exp(-1j * ht)))
        bad = imag > SYMMETRY_TOLERANCE * np.abs(f).max()
        if np.any(bad):
            result.status, result.reason = "failed", "not_centrosymmetric"
            result.detail = (
                f"{item.item_id}: {int(bad.sum())} of {len(f)} reflections have F e^(-i ht) "
                f"with an imaginary part up to {imag.max() / np.abs(f).max():.3g} of max |F|: "
                f"no {s.space_group} symmetry at the origin"
            )
        else:
            result.arrays = {
                "hkl": hkl.astype(np.int32),
                "amplitude": np.abs(f),
                "phase": phase,
                "d_spacing": d[keep],
            }
        result.seconds = time.perf_counter() - t0
        return result

    def featurize(self, results: Sequence[ItemResult], features: Any) -> dict[str, np.ndarray]:
        """``amplitude`` (|F|, electrons), ``e_value`` (|E|, or |F| when not
        normalised), ``intensity`` (``e_value`` squared: the weights of the
        intensity-weighted sign loss) and ``mask`` (1: reflection within d_min), each
        float32 ``[n_items, n_reflections]`` on the setting's reflection list; and the targets
        ``sign`` and ``phase`` (:meth:`targets`, listed by :meth:`target_names`).
        ``features``: :class:`PhaseFeatures`, or the workflow's ``features`` section
        (its ``reflections`` key)."""
        feats = phase_features(features)
        s = self.settings
        n = len(reflection_list(s.space_group, s.index_max))
        out = {k: np.zeros((len(results), n), np.float32) for k in ("amplitude", "e_value", "mask")}
        for i, r in enumerate(results):
            idx = box_lookup(s.space_group, s.index_max, r.arrays["hkl"], r.item_id)
            amp = r.arrays["amplitude"]
            out["amplitude"][i, idx] = amp
            out["mask"][i, idx] = 1.0
            out["e_value"][i, idx] = (
                normalised_amplitudes(s.space_group, r, feats.reflections_per_bin)
                if feats.normalise
                else amp
            )
        return {**out, "intensity": out["e_value"] ** 2, **self.targets(results)}

    def target_names(self, features: Any) -> tuple[str, ...]:
        return ("sign", "phase")

    def feature_units(self, features: Any) -> dict[str, str]:
        return {"amplitude": "electrons", "phase": "rad"}

    def targets(self, results: Sequence[ItemResult]) -> dict[str, np.ndarray]:
        """Targets computed with the signal: ``sign`` (1: phase = restricted value ht,
        0: ht + π; 0 where masked) and ``phase`` (radians), float32 ``[n_items, n]``."""
        s = self.settings
        hkl_all = reflection_list(s.space_group, s.index_max)
        ht_all = list_restrictions(s.space_group, s.index_max)
        out = {k: np.zeros((len(results), len(hkl_all)), np.float32) for k in ("sign", "phase")}
        for i, r in enumerate(results):
            idx = box_lookup(s.space_group, s.index_max, r.arrays["hkl"], r.item_id)
            phase = r.arrays["phase"]
            out["phase"][i, idx] = phase
            # weak reflections: sign of the (real) F taken as computed
            out["sign"][i, idx] = np.cos(phase - ht_all[idx]) > 0
        return out

    def feature_axes(self, features: Any) -> dict[str, tuple[Axis, ...]]:
        """One shared axis ``reflection``: the row of the setting's reflection list
        (:func:`reflection_list` of the engine's ``space_group`` and ``index_max``)."""
        s = self.settings
        n = len(reflection_list(s.space_group, s.index_max))
        axis = Axis(
            "reflection",
            np.arange(n),
            "",
            f"row of the {s.space_group} reflection list to index {s.index_max} "
            "(mlxas.phases.reflections.reflection_list)",
        )
        keys = ("amplitude", "e_value", "intensity", "mask", "sign", "phase")
        return {k: (axis,) for k in keys}


def phase_features(features: Any) -> PhaseFeatures:
    """:class:`PhaseFeatures` from itself, None (defaults) or the workflow's ``features``
    section (plain data; its ``reflections`` key, schema defaults filled in)."""
    if isinstance(features, PhaseFeatures):
        return features
    from mlxas.settings import from_mapping

    section = (features or {}).get("reflections") or {}
    return from_mapping(PhaseFeatures, section, "features.reflections")


def normalised_amplitudes(space_group: str, result: ItemResult, per_bin: int) -> np.ndarray:
    """|E| of one result: |F| over cctbx's amplitude quasi-normalisation (mean |F|²/ε in
    resolution shells of ``per_bin`` reflections, interpolated)."""
    cell = _cell_from_result(result)
    return quasi_normalise(
        cell, space_group, result.arrays["hkl"], result.arrays["amplitude"], per_bin
    )


def quasi_normalise(
    cell: Sequence[float], space_group: str, hkl: np.ndarray, amplitude: np.ndarray, per_bin: int
) -> np.ndarray:
    """|E| = |F| / N(h), N from :func:`quasi_normalisations`."""
    from cctbx import crystal, miller
    from cctbx.array_family import flex

    sym = crystal.symmetry(unit_cell=tuple(cell), space_group_symbol=space_group)
    ma = miller.array(
        miller.set(sym, flex.miller_index(np.asarray(hkl).tolist()), anomalous_flag=False),
        flex.double(np.asarray(amplitude, float)),
    )
    return np.asarray(amplitude) / quasi_normalisations(ma, per_bin).data().as_numpy_array()


def quasi_normalisations(f_obs, per_bin: int = 50):
    """cctbx's ``amplitude_quasi_normalisations`` of amplitude array ``f_obs`` (mean
    |F|²/ε in shells of ``per_bin`` reflections, interpolated), with the shells halved
    (down to 10 reflections) while the interpolated mean is not positive, which happens
    with few, steeply falling shells.  Returns a cctbx array N(h): E = F / N."""
    while True:
        f_obs.setup_binner_counting_sorted(reflections_per_bin=per_bin)
        try:
            return f_obs.amplitude_quasi_normalisations()
        except AssertionError:
            if per_bin <= 10:
                raise ValueError(
                    f"quasi-normalisation of {f_obs.size()} reflections failed down to "
                    "10 reflections per shell"
                ) from None
            per_bin = max(10, per_bin // 2)


def _cell_from_result(result: ItemResult) -> list[float]:
    return [float(result.scalars[k]) for k in CELL_SCALARS]


def _f000(symbols: Sequence[str]) -> float:
    from ase.data import atomic_numbers

    return float(sum(atomic_numbers[s] for s in symbols))
