"""Local-geometry labels of absorbing sites: ChemEnv environment, CN, R and oxidation state.

``site_labels(structure, site_index, settings)`` returns, for one absorbing site of a
pymatgen ``Structure`` (or an ASE ``Atoms``, converted):

``geometry``
    one of :data:`GEOMETRY_CLASSES`: the coordination environment that pymatgen's ChemEnv
    (``LocalGeometryFinder`` with ``SimplestChemenvStrategy``) finds, mapped by
    :data:`CE_CLASSES`; every other ChemEnv symbol is ``other``, and so is an environment
    whose continuous symmetry measure exceeds ``settings.max_csm`` (when set);
``geometry_index``
    its index in :data:`GEOMETRY_CLASSES`;
``ce_symbol``, ``csm``
    ChemEnv's symbol (``O:6``, ``T:4``, ...) and its continuous symmetry measure (0 for an
    ideal polyhedron, larger with distortion; ChemEnv's units, percent-like);
``cn``, ``r``
    the number of neighbours of that environment and their mean distance (Å);
``oxidation_state``
    the site's oxidation state: from the structure's species when it carries them
    (pymatgen ``Species`` with ``oxi_state``), else from pymatgen's ``BVAnalyzer``.

The bond-valence states also tell ChemEnv which sites are anions: only cation-anion
bonds count as coordination (ChemEnv's ``ONLY_ACB`` condition).

:class:`GeometryLabels` is the label set ``geometry`` of the workflow's ``labels``
stage (settings ``labels.geometry``: :class:`GeometrySettings`).  Its columns:
``geometry`` (the class index, a class target: its names, :data:`GEOMETRY_CLASSES`, are
the column's ``classes`` in the label metadata and in ``dataset.h5``; the per-class
counts are in ``info.geometry.class_counts``), ``csm``, ``cn``, ``r`` (Å), ``oxidation_state``
(targets) and ``ce_symbol`` (text, information).  Oxidation states come from the
structures' per-atom array ``oxidation_state`` when the source sets one (the
``prototypes`` source does), else from ``BVAnalyzer``.  A site without labels stops the
stage with the site, the structure and the reason: nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from mlxas.errors import ConfigError
from mlxas.sites.labelsets import LabelColumns, LabelSet, register_label_set

__all__ = [
    "CE_CLASSES",
    "GEOMETRY_CLASSES",
    "GeometryLabels",
    "GeometrySettings",
    "LabelError",
    "site_labels",
    "sites_labels",
    "valences",
]

#: Label classes, in the order of ``geometry_index`` and of the models' softmax outputs.
GEOMETRY_CLASSES = (
    "tetrahedral",
    "square_planar",
    "square_pyramidal",
    "trigonal_bipyramidal",
    "octahedral",
    "linear",
    "other",
)
#: ChemEnv symbols of the named classes (ChemEnv's own names: T:4 tetrahedron, S:4
#: square plane, S:5 square pyramid, T:5 trigonal bipyramid, O:6 octahedron, L:2 linear).
CE_CLASSES = {
    "T:4": "tetrahedral",
    "S:4": "square_planar",
    "S:5": "square_pyramidal",
    "T:5": "trigonal_bipyramidal",
    "O:6": "octahedral",
    "L:2": "linear",
}


class LabelError(ValueError):
    """A site whose labels cannot be computed; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True)
class GeometrySettings:
    """Settings of the ChemEnv labels.

    ``distance_cutoff`` and ``angle_cutoff`` are those of ChemEnv's
    ``SimplestChemenvStrategy`` (neighbours within ``distance_cutoff`` × the shortest
    distance, solid-angle cutoff as a fraction of the largest); ``max_distance_factor``
    bounds ChemEnv's neighbour search (× the shortest distance); ``max_csm`` (None: no
    limit) sends environments more distorted than that to ``other``.
    """

    distance_cutoff: float = 1.4
    angle_cutoff: float = 0.3
    max_distance_factor: float = 1.5
    max_csm: float | None = None

    def __post_init__(self) -> None:
        if self.distance_cutoff <= 1.0 or self.max_distance_factor < self.distance_cutoff:
            raise ConfigError(
                "labels.geometry: need 1 < distance_cutoff <= max_distance_factor, got "
                f"{self.distance_cutoff} and {self.max_distance_factor}"
            )
        if not 0.0 < self.angle_cutoff < 1.0:
            raise ConfigError(
                f"labels.geometry: angle_cutoff must be in (0, 1), got {self.angle_cutoff}"
            )
        if self.max_csm is not None and self.max_csm <= 0:
            raise ConfigError(
                f"labels.geometry: max_csm must be positive or null, got {self.max_csm}"
            )


def _as_structure(structure: Any):
    from pymatgen.core import Structure

    if isinstance(structure, Structure):
        return structure
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_structure(structure)


def valences(structure: Any) -> list[float]:
    """Oxidation state of every site: the species' own, else pymatgen's ``BVAnalyzer``."""
    s = _as_structure(structure)
    states = [getattr(site.specie, "oxi_state", None) for site in s]
    if all(v is not None for v in states):
        return [float(v) for v in states]
    from pymatgen.analysis.bond_valence import BVAnalyzer

    try:
        return [float(v) for v in BVAnalyzer().get_valences(s)]
    except ValueError as err:
        raise LabelError(
            "no_oxidation_states",
            f"{s.composition.reduced_formula}: BVAnalyzer assigns no valences ({err})",
        ) from err


@cache
def _finder():
    from pymatgen.analysis.chemenv.coordination_environments.coordination_geometry_finder import (
        LocalGeometryFinder,
    )

    # ChemEnv logs every step at INFO level and prints a banner; neither helps a user.
    logging.getLogger("pymatgen.analysis.chemenv").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        return LocalGeometryFinder()


def sites_labels(
    structure: Any,
    indices: Sequence[int],
    settings: GeometrySettings = GeometrySettings(),
) -> list[dict[str, Any]]:
    """:func:`site_labels` for several sites of one structure, sharing ChemEnv's set-up."""
    from pymatgen.analysis.chemenv.coordination_environments.chemenv_strategies import (
        SimplestChemenvStrategy,
    )
    from pymatgen.analysis.chemenv.coordination_environments.structure_environments import (
        LightStructureEnvironments,
    )

    s = _as_structure(structure)
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < len(s)]
    if bad:
        raise LabelError("bad_index", f"site indices {bad} outside 0..{len(s) - 1}")
    val = valences(s)
    not_cation = [i for i in indices if val[i] <= 0]
    if not_cation:
        raise LabelError("not_a_cation", f"sites {not_cation} have no positive valence")
    plain = s.copy()
    plain.remove_oxidation_states()
    lgf = _finder()
    strategy = SimplestChemenvStrategy(
        distance_cutoff=settings.distance_cutoff, angle_cutoff=settings.angle_cutoff
    )
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        lgf.setup_structure(plain)
        se = lgf.compute_structure_environments(
            only_indices=indices,
            valences=[round(v) for v in val],
            maximum_distance_factor=settings.max_distance_factor,
            get_from_hints=False,
        )
        lse = LightStructureEnvironments.from_structure_environments(
            strategy=strategy, structure_environments=se
        )
    return [_one(lse, plain, i, val[i], settings) for i in indices]


def _one(lse, structure, index: int, valence: float, settings: GeometrySettings) -> dict:
    envs = lse.coordination_environments[index]
    nsets = lse.neighbors_sets[index]
    if not envs or not nsets:
        raise LabelError("no_environment", f"ChemEnv finds no environment for site {index}")
    best = min(envs, key=lambda e: e["csm"])
    symbol, csm = best["ce_symbol"], float(best["csm"])
    geometry = CE_CLASSES.get(symbol, "other")
    if settings.max_csm is not None and csm > settings.max_csm:
        geometry = "other"
    centre = structure[index].coords
    nbs = nsets[0].neighb_coords
    dist = np.linalg.norm(np.asarray(nbs) - centre, axis=1)
    return {
        "geometry": geometry,
        "geometry_index": GEOMETRY_CLASSES.index(geometry),
        "ce_symbol": symbol,
        "csm": csm,
        "cn": len(dist),
        "r": float(dist.mean()),
        "oxidation_state": float(valence),
    }


def site_labels(
    structure: Any,
    site_index: int,
    settings: GeometrySettings = GeometrySettings(),
) -> dict[str, Any]:
    """Labels of one absorbing site (see the module docstring for the keys and units)."""
    return sites_labels(structure, [site_index], settings)[0]


#: Numeric columns of the ``geometry`` label set (all model targets) and their units.
GEOMETRY_COLUMNS = {
    "geometry": "",
    "csm": "",
    "cn": "",
    "r": "Angstrom",
    "oxidation_state": "e",
}


def _structure_of(atoms):
    """pymatgen Structure of ASE ``atoms``, with the source's oxidation states if any."""
    from pymatgen.core import Structure

    s = Structure(
        atoms.cell.array, atoms.get_chemical_symbols(), atoms.positions, coords_are_cartesian=True
    )
    states = atoms.arrays.get("oxidation_state")
    if states is not None:
        s.add_oxidation_state_by_site([float(v) for v in states])
    return s


@register_label_set
class GeometryLabels(LabelSet):
    """ChemEnv coordination class, CSM, CN, R and oxidation state of absorbing sites."""

    name = "geometry"
    units = ("site",)
    settings_class = GeometrySettings

    def provides(self, target: str) -> bool:
        return target in GEOMETRY_COLUMNS

    def compute(self, images, items, absorber) -> LabelColumns:
        from tqdm import tqdm

        by_id = {str(a.info["structure_id"]): a for a in images}
        sid = items["structure_id"].astype(str).to_numpy()
        index = items["site_index"].to_numpy(dtype=np.int64)
        rows: dict[int, dict[str, Any]] = {}
        groups: dict[str, list[int]] = {}
        for row, structure in enumerate(sid):
            groups.setdefault(structure, []).append(row)
        for structure, members in tqdm(
            groups.items(), desc="geometry labels", unit="structure", mininterval=3
        ):
            atoms = by_id[structure]
            try:
                labels = sites_labels(_structure_of(atoms), index[members], self.settings)
            except LabelError as err:
                raise LabelError(
                    err.reason,
                    f"structure {atoms.info.get('name', '')} ({structure}), sites "
                    f"{index[members].tolist()}: {err.detail}",
                ) from None
            rows.update(zip(members, labels, strict=True))
        ordered = [rows[k] for k in range(len(sid))]
        values = {
            col: np.array([r[f"{col}_index" if col == "geometry" else col] for r in ordered],
                          dtype=np.int64 if col == "geometry" else np.float64)
            for col in GEOMETRY_COLUMNS
        }  # fmt: skip
        values["ce_symbol"] = np.array([r["ce_symbol"] for r in ordered], dtype=object)
        counts = np.bincount(values["geometry"], minlength=len(GEOMETRY_CLASSES))
        return LabelColumns(
            values=values,
            units={k: v for k, v in GEOMETRY_COLUMNS.items() if v},
            targets=tuple(GEOMETRY_COLUMNS),
            classes={"geometry": GEOMETRY_CLASSES},
            info={
                "class_counts": dict(zip(GEOMETRY_CLASSES, counts.tolist(), strict=True)),
            },
        )
