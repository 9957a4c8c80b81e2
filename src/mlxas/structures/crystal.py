"""The ``kind: crystal`` structure source: many structures from one crystal, reproducibly.

From one parent crystal (:mod:`mlxas.structures.crystal_parent`) every combination of

1. lattice strain (isotropic values × per-axis triples, :class:`StrainSettings`),
2. shape: the periodic bulk or a cluster cut from the strained crystal
   (:mod:`mlxas.structures.crystal_cut`; ``fcc_cluster`` shapes come from ASE),
3. defect variant (the perfect crystal and each set of vacancies/substitutions, each
   drawn ``defect_draws`` times),
4. temperature (a list or grid shared by all, or ``draws`` new values for every
   combination), with the thermal model of :mod:`mlxas.structures.thermal`

becomes one structure (``debye_card``) or ``snapshots`` structures (displacement models).
Bulk variants with defects or snapshots are supercells at least ``supercell`` Å wide.

Every random step draws from its own generator, seeded by the source's ``seed`` and the
names of the combination it belongs to, so a structure does not change when another
shape or temperature is added to the config.

Provenance in ``atoms.info``: ``parent``, ``parent_spacegroup``, ``strain_a``,
``strain_b``, ``strain_c`` (fractions along the cell vectors), ``shape``, ``n_surface``,
``defect`` (with the counts actually made), ``temperature`` (K), ``thermal`` (model),
``debye_temperature`` (K, the DEBYE card's θ), ``snapshot``, ``volume_per_atom`` (Å³ of
the strained crystal) and ``seed``; per-atom arrays ``surface`` and ``parent_index``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from mlxas.structures.crystal_defects import DefectVariant, apply_defects
from mlxas.structures.crystal_parent import (
    CrystalInputError,
    ParentCrystal,
    load_parent,
    parent_kind,
)
from mlxas.structures.crystal_settings import CrystalSettings, ThermalSettings
from mlxas.structures.crystal_shapes import make_shape
from mlxas.structures.sources import register_source
from mlxas.structures.thermal import debye_temperatures_for, displace, md_snapshots

__all__ = [
    "CrystalSource",
    "apply_defects",
    "apply_strain",
    "crystal_structure_id",
    "crystal_structures",
    "make_shape",
]


def _rng(seed: int, *key: object) -> np.random.Generator:
    """A generator seeded by the source seed and a stable digest of ``key``."""
    digest = zlib.crc32("|".join(str(k) for k in key).encode())
    return np.random.default_rng([seed, digest])


def apply_strain(atoms: Atoms, strain: np.ndarray) -> Atoms:
    """A copy with cell vectors a, b, c stretched by (1 + ε) each, atoms following."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array * (1.0 + np.asarray(strain, float))[:, None], scale_atoms=True)
    return out


def _card_theta(thermal: ThermalSettings, symbols: list[str], rng) -> float:
    theta = thermal.debye_temperature
    if isinstance(theta, tuple):
        return float(rng.uniform(*theta))
    if isinstance(theta, float):
        return theta
    elements = sorted(set(symbols))
    if len(elements) != 1:
        raise CrystalInputError(
            f"temperature.debye_temperature: give one θ (K) for the DEBYE card of "
            f"{'-'.join(elements)}; the element table holds elements only"
        )
    try:
        return debye_temperatures_for(elements, None)[elements[0]]
    except ValueError as err:
        raise CrystalInputError(f"temperature: {err}") from None


def _thermal_variants(
    atoms: Atoms, thermal: ThermalSettings | None, seed: int, key: str
) -> Iterator[tuple[str, Atoms, dict[str, Any]]]:
    """(name suffix, structure, info) for every temperature and snapshot of one variant."""
    if thermal is None:
        yield "", atoms, {}
        return
    temps = thermal.temperatures.realise(_rng(seed, key, "temperature"))
    symbols = atoms.get_chemical_symbols()
    for t in temps:
        t = float(round(t, 3))
        tag = f"_T{t:g}"
        if thermal.model == "debye_card":
            theta = _card_theta(thermal, symbols, _rng(seed, key, tag, "theta"))
            info = {"temperature": t, "thermal": "debye_card", "debye_temperature": round(theta, 3)}
            yield tag, atoms, info
            continue
        rng = _rng(seed, key, tag, thermal.model)
        if thermal.model == "md":
            try:
                frames = md_snapshots(
                    atoms,
                    t,
                    thermal.snapshots,
                    rng,
                    thermal.timestep,
                    thermal.equilibration,
                    thermal.interval,
                    thermal.friction,
                )
            except ValueError as err:
                raise CrystalInputError(f"temperature: {err}") from None
            label = "md_emt"
        else:
            try:
                thetas = debye_temperatures_for(symbols, thermal.debye_temperature)
            except ValueError as err:
                raise CrystalInputError(f"temperature: {err}") from None
            frames = [
                displace(atoms, t, thermal.model, thetas, rng) for _ in range(thermal.snapshots)
            ]
            label = thermal.model
        for k, frame in enumerate(frames):
            frame.arrays.update(
                {n: atoms.arrays[n] for n in ("surface", "parent_index") if n in atoms.arrays}
            )
            yield f"{tag}_s{k:03d}", frame, {"temperature": t, "thermal": label, "snapshot": k}


def crystal_structures(spec: Mapping[str, Any] | CrystalSettings) -> Iterator[tuple[str, Atoms]]:
    """Yield ``(name, atoms)`` for every structure of a crystal source entry.

    Bad entries raise :class:`CrystalInputError` before the first structure where the
    entry alone shows the problem, and at the structure that meets it otherwise.
    """
    settings = spec if isinstance(spec, CrystalSettings) else CrystalSettings.from_spec(spec)
    where = f"structures: source {settings.name!r}"
    try:
        parent = load_parent(settings.parent)
        yield from _generate(settings, parent)
    except CrystalInputError as err:
        raise CrystalInputError(f"{where}: {err}") from None


def _generate(settings: CrystalSettings, parent: ParentCrystal) -> Iterator[tuple[str, Atoms]]:
    present = set(parent.atoms.get_chemical_symbols())
    for variant in settings.defects:
        missing = {el for el, *_ in (*variant.vacancies, *variant.substitutions)} - present
        if missing:
            raise CrystalInputError(f"defects: the crystal has no {', '.join(sorted(missing))}")
    variants = ([DefectVariant()] if settings.perfect else []) + list(settings.defects)
    snapshots = settings.thermal is not None and settings.thermal.model != "debye_card"
    strains = settings.strain.realise(_rng(settings.seed, "strain"))
    for s_idx, eps in enumerate(strains):
        strained = apply_strain(parent.atoms, eps)
        vpa = strained.cell.volume / len(strained)
        for shape in settings.shapes:
            for d_idx, variant in enumerate(variants):
                defective = bool(variant.vacancies or variant.substitutions)
                width = settings.supercell if (defective or snapshots) else None
                base = make_shape(strained, shape, width)
                for draw in range(settings.defect_draws if defective else 1):
                    key = f"e{s_idx:03d}_{shape.label}_d{d_idx}" + (f"r{draw}" if defective else "")
                    atoms, defect = base, "none"
                    if defective:
                        atoms, defect = apply_defects(
                            base, variant, _rng(settings.seed, key, "defect")
                        )
                    common = {
                        "parent": parent.parent,
                        "parent_spacegroup": parent.spacegroup,
                        "strain_a": float(eps[0]),
                        "strain_b": float(eps[1]),
                        "strain_c": float(eps[2]),
                        "shape": shape.label,
                        "n_surface": int(atoms.arrays["surface"].sum()),
                        "defect": defect,
                        "volume_per_atom": float(vpa),
                        "seed": settings.seed,
                    }
                    for suffix, structure, info in _thermal_variants(
                        atoms, settings.thermal, settings.seed, key
                    ):
                        out = structure.copy()
                        out.info = {**common, **info}
                        yield f"{settings.name}_{key}{suffix}", out


def crystal_structure_id(atoms: Atoms) -> str:
    """Structure id that also tells apart static structures swept by the DEBYE card.

    Two ``debye_card`` structures share their geometry and differ only in the
    temperature (and θ) of their FEFF card, so the geometry hash alone
    (:func:`mlxas.provenance.structure_hash`) would call the second a duplicate.
    """
    from mlxas.provenance import structure_hash

    base = structure_hash(
        atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, atoms.pbc
    )
    if atoms.info.get("thermal") != "debye_card":
        return base
    extra = f"{base}|DEBYE {atoms.info['temperature']:.3f} {atoms.info['debye_temperature']:.3f}"
    return hashlib.blake2b(extra.encode(), digest_size=8).hexdigest()


@register_source
@dataclass(frozen=True)
class CrystalSource:
    """A ``kind: crystal`` source: the entry's keys as given in the config (see
    ``docs/structures.md``); the parent is one of ``file`` (a CIF/POSCAR path relative to
    the working directory), ``prototype`` (+ ``species``, ``a``, ``c``, ``u`` in Å) and
    ``amcsd`` (+ ``amcsd_id``).  The entry is checked when the config is read
    (:class:`~mlxas.structures.crystal_settings.CrystalSettings`), so a bad key stops the
    workflow before any job."""

    kind = "crystal"
    name: str
    file: str | None = None
    prototype: str | None = None
    species: tuple[str, ...] | None = None
    a: float | None = None
    c: float | None = None
    u: float | None = None
    amcsd: str | int | None = None
    amcsd_id: int | None = None
    seed: int = 0
    strain: dict[str, Any] | None = None
    temperature: dict[str, Any] | None = None
    defects: tuple[dict[str, Any], ...] | None = None
    perfect: bool = True
    defect_draws: int = 1
    shapes: tuple[dict[str, Any], ...] | None = None
    supercell: float = 10.0

    def __post_init__(self) -> None:
        where = f"structures: source {self.name!r}"
        settings = self.settings()
        try:
            parent_kind(settings.parent)
        except CrystalInputError as err:
            raise CrystalInputError(f"{where}: {err}") from None
        if self.file is not None and not Path(self.file).is_file():
            raise CrystalInputError(
                f"{where}: file: {self.file} does not exist "
                "(paths are relative to the working directory)"
            )

    def entry(self) -> dict[str, Any]:
        """The config entry (lists, no unset keys)."""
        from mlxas.settings import to_dict

        return {k: v for k, v in to_dict(self).items() if v is not None}

    def settings(self) -> CrystalSettings:
        return CrystalSettings.from_spec(self.entry())

    def elements(self) -> tuple[str, ...]:
        subs = {by for d in self.defects or () for to in (d.get("substitutions") or {}).values()
                for by in to}  # fmt: skip
        return tuple(sorted(set(self.species or ()) | subs))

    def input_files(self) -> list[str]:
        return [self.file] if self.file else []

    def structure_id(self, atoms: Atoms) -> str:
        return crystal_structure_id(atoms)

    def generate(self, work_dir: Path | None = None) -> Iterator:
        settings = self.settings()
        for name, atoms in crystal_structures(settings):
            yield name, None, f"crystal:{name}", atoms
