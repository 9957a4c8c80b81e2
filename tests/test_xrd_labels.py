"""Structure labels (crystal system, space group, structure type), prototypes and random
crystals.  Truths: the International Tables' crystal-system ranges and the known space
groups of textbook structures."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.core import Lattice, Structure

from mlxas.xrd.labels import (
    CRYSTAL_SYSTEMS,
    crystal_system_index,
    structure_labels,
    structure_types,
)
from mlxas.xrd.prototypes import PROTOTYPES, prototype_structure
from mlxas.xrd.random_crystals import ANIONS, CATIONS, random_composition, random_crystal


@pytest.mark.parametrize(
    ("number", "system"),
    [(1, "triclinic"), (2, "triclinic"), (3, "monoclinic"), (15, "monoclinic"),
     (16, "orthorhombic"), (74, "orthorhombic"), (75, "tetragonal"), (142, "tetragonal"),
     (143, "trigonal"), (167, "trigonal"), (168, "hexagonal"), (194, "hexagonal"),
     (195, "cubic"), (230, "cubic")],
)  # fmt: skip
def test_crystal_system_ranges(number, system):
    assert CRYSTAL_SYSTEMS[crystal_system_index(number)] == system


def test_crystal_system_refuses_bad_numbers():
    with pytest.raises(ValueError, match="231"):
        crystal_system_index(231)


@pytest.mark.parametrize(
    ("name", "atoms", "sg", "system", "stype"),
    [
        ("NaCl", bulk("NaCl", "rocksalt", a=5.64), 225, "cubic", "rocksalt"),
        ("Cu", bulk("Cu", "fcc", a=3.61), 225, "cubic", "fcc"),
        ("Fe", bulk("Fe", "bcc", a=2.87), 229, "cubic", "bcc"),
        ("Si", bulk("Si", "diamond", a=5.43), 227, "cubic", "diamond"),
        ("GaAs", bulk("GaAs", "zincblende", a=5.65), 216, "cubic", "zincblende"),
        ("Mg", bulk("Mg", "hcp", a=3.21, c=5.21), 194, "hexagonal", "hcp"),
        ("ZnO", bulk("ZnO", "wurtzite", a=3.25, c=5.21), 186, "hexagonal", "wurtzite"),
        ("CsCl", bulk("CsCl", "cesiumchloride", a=4.12), 221, "cubic", "cesium_chloride"),
        ("CaF2", bulk("CaF2", "fluorite", a=5.46), 225, "cubic", "fluorite"),
    ],
)
def test_labels_of_ase_textbook_crystals(name, atoms, sg, system, stype):
    lab = structure_labels(atoms)
    assert lab["space_group"] == sg
    assert lab["crystal_system_name"] == system
    assert lab["structure_type_name"] == stype
    assert structure_types()[lab["structure_type"]] == stype


def test_prototype_label_and_other():
    lab = structure_labels(bulk("NaCl", "rocksalt", a=5.64))
    assert lab["prototype_label"] == "AB_cF8_225_a_b"
    # Orthorhombic cell of two species on general-ish positions: no prototype.
    s = Structure(
        Lattice.orthorhombic(4.0, 5.0, 6.0), ["Na", "Cl"], [[0, 0, 0], [0.31, 0.27, 0.44]]
    )
    lab = structure_labels(s)
    assert lab["structure_type_name"] == "other" and lab["space_group"] == 1


@pytest.mark.parametrize("name", sorted(PROTOTYPES))
def test_prototype_instances_keep_group_and_type(name):
    from pymatgen.symmetry.groups import SpaceGroup

    ref = structure_labels(prototype_structure(name, np.random.default_rng(0), jitter=0.0))
    assert ref["structure_type_name"] == name
    # The group the prototype is built in (International Tables number of its symbol).
    assert ref["space_group"] == SpaceGroup(PROTOTYPES[name].spacegroup).int_number
    for seed in (1, 2):
        s = prototype_structure(name, np.random.default_rng(seed))
        lab = structure_labels(s)
        assert lab["space_group"] == ref["space_group"]
        assert lab["structure_type_name"] == name


def test_random_composition_is_charge_balanced():
    rng = np.random.default_rng(0)
    ox = {el: q for q, els in CATIONS.items() for el in els}
    for _ in range(200):
        comp = random_composition(rng)
        anions = [e for e in comp if e in ANIONS]
        if not anions:
            continue  # metals and intermetallics
        (anion,) = anions
        cations = [e for e in comp if e != anion]
        charges = [
            sum(n * q for n, q in zip([comp[c] for c in cations], qs, strict=True))
            for qs in _oxidation_choices(cations, ox)
        ]
        assert comp[anion] * ANIONS[anion] in charges


def _oxidation_choices(cations, ox):
    # An element may appear under several oxidation states (Fe 2+/3+): try them all.
    choices = [[q for q, els in CATIONS.items() if c in els] for c in cations]
    if len(choices) == 1:
        return [[q] for q in choices[0]]
    return [[a, b] for a in choices[0] for b in choices[1]]


@pytest.mark.parametrize("sg", [1, 14, 62, 139, 166, 194, 225])
def test_random_crystal_is_reproducible_and_sensible(sg):
    from ase.data import covalent_radii

    a, b = random_crystal(sg, seed=11), random_crystal(sg, seed=11)
    assert a is not None and a == b
    lab = structure_labels(a)
    # spglib may find a supergroup of the one pyxtal built, never a lower symmetry here.
    assert lab["space_group"] >= 1 and crystal_system_index(
        lab["space_group"]
    ) >= crystal_system_index(sg)
    d = a.distance_matrix + np.eye(len(a)) * 100
    z = np.array([site.specie.Z for site in a])
    r = covalent_radii[z]
    assert np.all(d >= 0.69 * (r[:, None] + r[None, :]))
    c = random_crystal(sg, seed=12)
    assert c is not None and c != a
