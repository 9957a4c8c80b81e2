"""Shapes of a crystal source: the periodic bulk, or clusters cut from the crystal.

``{cut: bulk}``; ``{cut: sphere, radius: [Å, ...], center: ...}``; ``{cut: polyhedron,
facets: {"111": Å, "100": Å}, center: ...}``; a named polyhedron ``{cut: octahedron |
cube | cuboctahedron | truncated_octahedron | rhombic_dodecahedron, size: [Å, ...]}``
(:mod:`mlxas.structures.crystal_cut`); or ``{cut: fcc_cluster, shape: ..., size: [n,
...]}``, ASE's fcc clusters counted in atoms along an edge
(:mod:`mlxas.structures.nanoparticles`) for one-element fcc crystals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from mlxas.structures.crystal_cut import (
    NAMED_SHAPES,
    bulk_coordination,
    cluster_coordination,
    cut_region,
    first_shell_cutoff,
    named_facets,
    supercell,
)
from mlxas.structures.crystal_parent import CrystalInputError

__all__ = ["CUTS", "FCC_CLUSTER_SHAPES", "ShapeSpec", "make_shape", "parse_shapes"]

FCC_CLUSTER_SHAPES = ("octahedron", "cuboctahedron", "truncated_octahedron", "cube", "tetrahedron")
CUTS = ("bulk", "sphere", "polyhedron", "fcc_cluster", *NAMED_SHAPES)
_fail = CrystalInputError.at


@dataclass(frozen=True)
class ShapeSpec:
    """One way to present the crystal: the periodic bulk or a cluster cut from it."""

    cut: str
    size: float | None = None  #: sphere radius, named-shape size (Å) or fcc_cluster size (atoms)
    center: str | tuple[float, float, float] = "atom"
    facets: tuple[tuple[tuple[int, int, int], float], ...] = ()
    shape: str | None = None  #: fcc_cluster shape
    min_neighbours: int = 1  #: cut clusters: atoms with fewer first-shell neighbours go

    @property
    def label(self) -> str:
        c = (
            self.center
            if isinstance(self.center, str)
            else "f" + ",".join(f"{x:g}" for x in self.center)
        )
        if self.cut == "bulk":
            return "bulk"
        if self.cut == "polyhedron":
            return (
                "poly-"
                + "-".join(f"{''.join(map(str, h))}x{d:g}" for h, d in self.facets)
                + f"@{c}"
                + (f"-min{self.min_neighbours}" if self.min_neighbours != 1 else "")
            )
        if self.cut == "fcc_cluster":
            return f"{self.shape}{self.size:g}"
        prune = f"-min{self.min_neighbours}" if self.min_neighbours != 1 else ""
        return f"{self.cut}{self.size:g}@{c}{prune}"


def _miller(key: Any, where: str) -> tuple[int, int, int]:
    text = str(key).strip()
    try:
        parts = [int(p) for p in text.split(",")] if "," in text else [int(ch) for ch in text]
    except ValueError:
        parts = []
    if len(parts) != 3 or not any(parts):
        raise _fail(where, f"facet {key!r} is not a Miller index like '111' or '1,-1,0'")
    return tuple(parts)  # type: ignore[return-value]


def parse_shapes(obj: Any, where: str) -> tuple[ShapeSpec, ...]:
    """Every shape entry, expanded to one :class:`ShapeSpec` per size."""
    if obj is None:
        return (ShapeSpec("bulk"),)
    if not isinstance(obj, list) or not obj:
        raise _fail(where, "give a non-empty list of shapes")
    out: list[ShapeSpec] = []
    for k, item in enumerate(obj):
        w = f"{where}[{k}]"
        if not isinstance(item, Mapping) or item.get("cut") not in CUTS:
            raise _fail(w, f"`cut` must be one of {', '.join(CUTS)}, got {item!r}")
        cut = item["cut"]
        allowed = {"cut", "center", "min_neighbours"} | {
            "bulk": set(),
            "sphere": {"radius"},
            "polyhedron": {"facets"},
            "fcc_cluster": {"shape", "size"},
        }.get(cut, {"size"})
        if cut in ("bulk", "fcc_cluster"):
            allowed -= {"min_neighbours"} | ({"center"} if cut == "bulk" else set())
        if set(item) - allowed:
            raise _fail(w, f"cut {cut} takes {sorted(allowed)}, got {sorted(item)}")
        prune = item.get("min_neighbours", 1)
        if not isinstance(prune, int) or isinstance(prune, bool) or prune < 0:
            raise _fail(w, f"min_neighbours must be an integer >= 0, got {prune!r}")
        center = item.get("center", "atom")
        if isinstance(center, list):
            if len(center) != 3:
                raise _fail(w, "center: give 3 fractional coordinates")
            center = tuple(float(x) for x in center)
        if cut == "bulk":
            out.append(ShapeSpec("bulk"))
        elif cut == "polyhedron":
            facets = item.get("facets")
            if not isinstance(facets, Mapping) or not facets:
                raise _fail(w, "facets: give {Miller index: distance in Å}, e.g. {'111': 6.0}")
            pairs = tuple((_miller(h, w), float(d)) for h, d in facets.items())
            if any(d <= 0 for _, d in pairs):
                raise _fail(w, "facet distances must be > 0 Å")
            out.append(ShapeSpec("polyhedron", center=center, facets=pairs, min_neighbours=prune))
        else:
            key = "radius" if cut == "sphere" else "size"
            if key not in item:
                raise _fail(w, f"cut {cut} needs `{key}`")
            sizes = item[key] if isinstance(item[key], list) else [item[key]]
            if not sizes or any(not isinstance(s, int | float) or s <= 0 for s in sizes):
                raise _fail(w, f"{key} must be positive numbers, got {item[key]!r}")
            shape = item.get("shape") if cut == "fcc_cluster" else None
            if cut == "fcc_cluster" and shape not in FCC_CLUSTER_SHAPES:
                raise _fail(w, f"fcc_cluster shape must be one of {', '.join(FCC_CLUSTER_SHAPES)}")
            out.extend(
                ShapeSpec(cut, float(s), center, shape=shape, min_neighbours=prune) for s in sizes
            )
    return tuple(out)


def _fcc_cluster(strained: Atoms, shape: ShapeSpec) -> Atoms:
    from mlxas.structures.nanoparticles import nanoparticle

    elements = set(strained.get_chemical_symbols())
    lengths, angles = strained.cell.lengths(), strained.cell.angles()
    if len(elements) != 1 or len(strained) != 4 or np.ptp(lengths) > 1e-6 or np.ptp(angles) > 1e-6:
        raise CrystalInputError(
            "fcc_cluster shapes need a one-element fcc crystal in its cubic 4-atom cell and "
            "isotropic strain; use sphere, polyhedron or a named shape for other crystals"
        )
    el = elements.pop()
    cluster = nanoparticle(el, shape.shape, shape.size, float(lengths[0]))
    cutoff = first_shell_cutoff(strained)
    cluster.arrays["parent_index"] = np.zeros(len(cluster), dtype=int)
    cluster.arrays["surface"] = (
        cluster_coordination(cluster.positions, cutoff) < bulk_coordination(strained, cutoff)[0]
    )
    return cluster


def make_shape(strained: Atoms, shape: ShapeSpec, width: float | None) -> Atoms:
    """The bulk (a supercell ``width`` Å wide when given) or a cluster cut from ``strained``."""
    if shape.cut == "bulk":
        out = supercell(strained, width) if width else strained.copy()
        out.arrays.setdefault("parent_index", np.arange(len(out)) % len(strained))
        out.arrays["surface"] = np.zeros(len(out), dtype=bool)
        return out
    try:
        if shape.cut == "fcc_cluster":
            return _fcc_cluster(strained, shape)
        if shape.cut == "sphere":
            return cut_region(
                strained, shape.center, radius=shape.size, min_neighbours=shape.min_neighbours
            )
        facets = (
            dict(shape.facets) if shape.cut == "polyhedron" else named_facets(shape.cut, shape.size)
        )
        return cut_region(
            strained, shape.center, facets=facets, min_neighbours=shape.min_neighbours
        )
    except ValueError as err:
        raise CrystalInputError(f"shape {shape.label}: {err}") from None
