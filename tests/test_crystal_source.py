"""The ``kind: crystal`` structure source: parents, every variation kind, reproducibility,
provenance, and the rejection of bad entries with a reason.

Geometry is checked against crystal geometry (shell distances and counts of fcc, bcc,
rock salt and diamond), ASE's own cluster builders, and the AMCSD entries themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.cluster import Octahedron
from ase.neighborlist import neighbor_list

from mlxas.structures.crystal import apply_strain, crystal_structure_id, crystal_structures
from mlxas.structures.crystal_cut import cut_region, first_shell_cutoff, named_facets
from mlxas.structures.crystal_parent import CrystalInputError, load_parent, prototype_crystal

A_CU, A_FE, A_NIO, A_GE = 3.61, 2.8665, 4.177, 5.658


def shells_of(atoms, index=0, r=6.0, tol=0.01):
    """(distance, count) of the neighbour shells of atom ``index`` of a crystal."""
    i, d = neighbor_list("id", atoms, r)
    d = np.sort(d[i == index])
    groups = np.split(d, np.nonzero(np.diff(d) > tol)[0] + 1)
    return [(float(g.mean()), len(g)) for g in groups]


def structures(spec):
    return list(crystal_structures({"name": "t", "kind": "crystal", **spec}))


# --- parents ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "species", "a", "expected"),
    [
        ("fcc", ["Cu"], A_CU, [(A_CU / np.sqrt(2), 12), (A_CU, 6)]),
        ("bcc", ["Fe"], A_FE, [(A_FE * np.sqrt(3) / 2, 8), (A_FE, 6)]),
        ("rocksalt", ["Ni", "O"], A_NIO, [(A_NIO / 2, 6), (A_NIO / np.sqrt(2), 12)]),
        ("diamond", ["Ge"], A_GE, [(A_GE * np.sqrt(3) / 4, 4), (A_GE / np.sqrt(2), 12)]),
    ],
)
def test_prototypes_have_the_textbook_shells(name, species, a, expected):
    parent = prototype_crystal(name, species, a)
    assert parent.atoms.pbc.all()
    got = shells_of(parent.atoms)[: len(expected)]
    for (d, n), (d0, n0) in zip(got, expected, strict=True):
        assert d == pytest.approx(d0, abs=1e-6) and n == n0


def test_prototype_defaults_come_from_ase_reference_data_and_hcp_has_its_c():
    fe = prototype_crystal("bcc", ["Fe"])
    assert fe.atoms.cell.lengths()[0] == pytest.approx(
        bulk("Fe").cell.cellpar()[0] * 2 / np.sqrt(3)
    )
    co = prototype_crystal("hcp", ["Co"])
    ref = bulk("Co")
    assert co.atoms.cell.cellpar() == pytest.approx(ref.cell.cellpar(), abs=1e-6)
    assert co.spacegroup == "P6_3/mmc" and len(co.atoms) == 2


def test_amcsd_mineral_by_name_resolves_to_an_ambient_ordered_entry():
    nio = load_parent({"amcsd": "bunsenite"})
    assert nio.parent.startswith("amcsd:") and "NiO" in nio.parent
    assert nio.spacegroup == "Fm-3m"
    assert nio.atoms.get_chemical_formula() == "Ni4O4"
    assert nio.atoms.cell.lengths()[0] == pytest.approx(A_NIO, abs=0.02)
    fe = load_parent({"amcsd": "Iron"})  # case-insensitive; 87 entries, bcc at ambient
    assert fe.spacegroup == "Im-3m" and fe.atoms.cell.lengths()[0] == pytest.approx(A_FE, abs=0.02)
    pinned = load_parent({"amcsd": "bunsenite", "amcsd_id": 17028})
    assert pinned.parent.startswith("amcsd:17028") and pinned.atoms.cell.lengths()[0] == 4.18


def test_file_parent_reads_the_repository_cif(tmp_path):
    from mlxas.structures.crystal_parent import ParentCrystal

    parent = load_parent({"file": "config/experiments/structures/NiO.cif"})
    assert isinstance(parent, ParentCrystal) and parent.spacegroup == "Fm-3m"
    assert shells_of(parent.atoms, index=0)[0][1] == 6


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"amcsd": "bunsenit"}, "close matches: Bunsenite"),
        ({"amcsd": "bunsenite", "amcsd_id": 13087}, "is Copper, not 'bunsenite'"),
        ({"amcsd": 999999999}, "no entry with id"),
        ({"prototype": "rocksalt", "species": ["Ni"], "a": 4.1}, "needs 2 species"),
        ({"prototype": "rocksalt", "species": ["Ni", "O"]}, "give the lattice constant `a`"),
        ({"prototype": "rocksal", "species": ["Ni", "O"], "a": 4.1}, "did you mean rocksalt"),
        ({"prototype": "hcp", "species": ["Fe"]}, "no hcp reference lattice for Fe"),
        ({"prototype": "fcc", "species": ["Cu"], "c": 3.0}, "cubic type takes `a` only"),
        ({"file": "missing.cif"}, "missing.cif: file does not exist"),
        ({"file": "x.cif", "amcsd": "iron"}, "exactly one of"),
        ({"amcsd": "iron", "a": 2.9}, "apply to a prototype only"),
        ({}, "give exactly one of"),
    ],
)
def test_bad_parents_are_refused_with_a_reason(spec, message):
    with pytest.raises(CrystalInputError, match=message):
        load_parent(spec)


def test_file_holding_several_structures_or_no_cell_is_refused(tmp_path):
    import ase.io

    path = tmp_path / "two.extxyz"
    ase.io.write(path, [bulk("Cu", cubic=True), bulk("Ni", cubic=True)])
    with pytest.raises(CrystalInputError, match="holds 2 structures"):
        load_parent({"file": str(path)})
    mol = tmp_path / "mol.xyz"
    ase.io.write(mol, Octahedron("Cu", 2))
    with pytest.raises(CrystalInputError, match="without a periodic cell"):
        load_parent({"file": str(mol)})


# --- strain -----------------------------------------------------------------------------


def test_isotropic_strain_grid_scales_every_distance():
    out = structures(
        {
            "prototype": "fcc",
            "species": ["Cu"],
            "a": A_CU,
            "strain": {"isotropic": {"range": [-0.03, 0.03], "steps": 13}},
        }
    )
    assert len(out) == 13
    strains = [a.info["strain_a"] for _, a in out]
    np.testing.assert_allclose(strains, np.linspace(-0.03, 0.03, 13), atol=1e-12)
    for _, atoms in out:
        e = atoms.info["strain_a"]
        assert atoms.info["strain_b"] == atoms.info["strain_c"] == pytest.approx(e)
        d1, n1 = shells_of(atoms)[0]
        assert n1 == 12 and d1 == pytest.approx(A_CU * (1 + e) / np.sqrt(2), abs=1e-9)
        assert atoms.info["volume_per_atom"] == pytest.approx((A_CU * (1 + e)) ** 3 / 4)


def test_per_axis_strain_of_an_hcp_cell_changes_c_over_a():
    co = prototype_crystal("hcp", ["Co"]).atoms
    out = structures(
        {
            "prototype": "hcp",
            "species": ["Co"],
            "strain": {"isotropic": [0.01], "axes": [[0.0, 0.0, 0.02], [-0.01, -0.01, 0.0]]},
        }
    )
    assert len(out) == 2
    for (_, atoms), (ea, ec) in zip(out, [(0.0, 0.02), (-0.01, 0.0)], strict=True):
        a, _, c = atoms.cell.lengths()
        assert a == pytest.approx(co.cell.lengths()[0] * 1.01 * (1 + ea))
        assert c == pytest.approx(co.cell.lengths()[2] * 1.01 * (1 + ec))
        assert atoms.info["strain_c"] == pytest.approx(1.01 * (1 + ec) - 1)
    drawn = structures(
        {
            "prototype": "hcp",
            "species": ["Co"],
            "seed": 3,
            "strain": {"axes": {"range": [[-0.02, 0.0], [-0.02, 0.0], [0.0, 0.03]], "draws": 5}},
        }
    )
    e = np.array([[a.info[f"strain_{x}"] for x in "abc"] for _, a in drawn])
    assert len(drawn) == 5 and np.all(e[:, :2] <= 0) and np.all((e[:, 2] >= 0) & (e[:, 2] <= 0.03))
    assert np.unique(e[:, 2]).size == 5


# --- shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("radius", "n"), [(2.6, 13), (3.7, 19), (4.5, 43), (5.2, 55), (6.0, 79)])
def test_fcc_spheres_hold_whole_shells(radius, n):
    # fcc shells around an atom: 12 at a/√2 (2.55), 6 at a (3.61), 24 at a√1.5 (4.42),
    # 12 at a√2 (5.11), 24 at a√2.5 (5.71) Å.
    cluster = cut_region(prototype_crystal("fcc", ["Cu"], A_CU).atoms, "atom", radius=radius)
    assert len(cluster) == n


def test_polyhedra_match_ase_clusters_and_have_the_magic_surface_counts():
    cu = prototype_crystal("fcc", ["Cu"], A_CU).atoms
    octa = cut_region(cu, "atom", facets=named_facets("octahedron", 2 * A_CU / np.sqrt(3)))
    ref = Octahedron("Cu", 5, 0, latticeconstant=A_CU)  # 85 atoms, edge of 5
    assert len(octa) == len(ref)
    cubo = cut_region(cu, "atom", facets=named_facets("cuboctahedron", A_CU))
    assert len(cubo) == 55 and cubo.arrays["surface"].sum() == 42  # 55 = 13 inside + 42
    poly = cut_region(cu, "atom", facets={(1, 0, 0): A_CU, (1, 1, 1): 2 * A_CU / np.sqrt(3)})
    np.testing.assert_allclose(
        np.sort(np.linalg.norm(poly.positions, axis=1)),
        np.sort(np.linalg.norm(cubo.positions, axis=1)),
        atol=1e-9,
    )


def test_clusters_of_a_compound_and_their_surface_sites():
    nio = prototype_crystal("rocksalt", ["Ni", "O"], A_NIO).atoms
    assert first_shell_cutoff(nio) == pytest.approx((A_NIO / 2 + A_NIO / np.sqrt(2)) / 2)
    small = cut_region(nio, "Ni", radius=3.0)  # Ni + 6 O + 12 Ni
    assert small.get_chemical_formula() == "Ni13O6"
    centre = int(np.argmin(np.linalg.norm(small.positions, axis=1)))
    assert not small.arrays["surface"][centre] and small.arrays["surface"].sum() == 18
    hole = cut_region(prototype_crystal("fcc", ["Cu"], A_CU).atoms, [0.5, 0, 0], radius=3.5)
    assert len(hole) == 14  # an octahedral hole: 6 at a/2, 8 at a√3/2


def test_min_neighbours_prunes_dangling_atoms_of_covalent_clusters():
    ge = prototype_crystal("diamond", ["Ge"], A_GE).atoms
    cut = first_shell_cutoff(ge)
    from scipy.spatial.distance import pdist, squareform

    sizes = []
    for prune in (0, 1, 2):
        cluster = cut_region(ge, "atom", facets=named_facets("cube", 5.0), min_neighbours=prune)
        cn = (squareform(pdist(cluster.positions)) < cut).sum(1) - 1
        assert cn.min() >= prune
        sizes.append(len(cluster))
    assert sizes[0] > sizes[1] > sizes[2]  # the cube's corners hang by 0 or 1 bonds


def test_fcc_cluster_shapes_are_ases_and_need_an_fcc_crystal():
    out = structures(
        {
            "prototype": "fcc",
            "species": ["Cu"],
            "a": A_CU,
            "shapes": [{"cut": "fcc_cluster", "shape": "cuboctahedron", "size": [2, 3]}],
        }
    )
    assert [len(a) for _, a in out] == [13, 55]
    assert out[1][1].info["n_surface"] == 42
    with pytest.raises(CrystalInputError, match="size must be an integer >= 2"):
        structures(
            {"prototype": "fcc", "species": ["Cu"],
             "shapes": [{"cut": "fcc_cluster", "shape": "octahedron", "size": 2.5}]}
        )  # fmt: skip
    with pytest.raises(CrystalInputError, match="one-element fcc crystal"):
        structures(
            {
                "prototype": "bcc",
                "species": ["Fe"],
                "shapes": [{"cut": "fcc_cluster", "shape": "octahedron", "size": 3}],
            }
        )


# --- defects ----------------------------------------------------------------------------


def test_vacancies_and_substitutions_at_their_fractions():
    spec = {
        "prototype": "rocksalt",
        "species": ["Ni", "O"],
        "a": A_NIO,
        "supercell": 8.0,
        "defects": [
            {"vacancies": {"Ni": 0.0625}},
            {"substitutions": {"Ni": {"Mg": 0.25}}},
            {"vacancies": {"O": 0.125}, "substitutions": {"Ni": {"Co": 0.125}}},
        ],
        "defect_draws": 2,
    }
    out = structures(spec)
    assert len(out) == 1 + 3 * 2
    perfect = out[0][1]
    assert len(perfect) == 8 and perfect.info["defect"] == "none"  # no supercell needed
    counts = [a.symbols.formula.count() for _, a in out[1:]]
    assert counts[0] == {"Ni": 30, "O": 32} and counts[2] == {"Ni": 24, "Mg": 8, "O": 32}
    assert counts[4] == {"Ni": 28, "Co": 4, "O": 28}
    assert out[1][1].info["defect"] == "vac-Ni:2/32"
    # Two draws of one variant remove different atoms.
    assert not np.allclose(out[1][1].positions, out[2][1].positions)


@pytest.mark.parametrize(
    ("defects", "message"),
    [
        ([{"vacancies": {"O": 1.2}}], "impossible"),
        ([{"vacancies": {"O": 0.6}, "substitutions": {"O": {"S": 0.5}}}], "add up to 1.1"),
        ([{"substitutions": {"Ni": {"Ni": 0.1}}}], "changes nothing"),
        ([{"vacancies": {"Xx": 0.1}}], "not an element symbol"),
        ([{"vacancies": {"Cu": 0.1}}], "the crystal has no Cu"),
        ([{"vacancies": {"O": 0.001}}], "rounds to none"),
    ],
)
def test_impossible_defects_are_refused(defects, message):
    with pytest.raises(CrystalInputError, match=message):
        structures(
            {"prototype": "rocksalt", "species": ["Ni", "O"], "a": A_NIO, "defects": defects}
        )


# --- temperature ------------------------------------------------------------------------


def test_debye_card_sweep_keeps_geometry_and_gets_distinct_ids():
    out = structures(
        {
            "prototype": "fcc",
            "species": ["Cu"],
            "a": A_CU,
            "temperature": {"values": [10, 300, 600], "debye_temperature": 315},
        }
    )
    assert [a.info["temperature"] for _, a in out] == [10.0, 300.0, 600.0]
    assert all(
        a.info["thermal"] == "debye_card" and a.info["debye_temperature"] == 315.0 for _, a in out
    )
    np.testing.assert_array_equal(out[0][1].positions, out[2][1].positions)
    assert len({crystal_structure_id(a) for _, a in out}) == 3
    # One-element crystals take the element table's θ when none is given.
    ((_, fe),) = structures({"prototype": "bcc", "species": ["Fe"], "temperature": {"values": 300}})
    assert fe.info["debye_temperature"] == 470.0


def test_einstein_snapshots_have_the_model_mean_square_displacement():
    from larch.xafs.sigma2_models import EINS_FACTOR

    out = structures(
        {
            "prototype": "fcc",
            "species": ["Cu"],
            "a": A_CU,
            "supercell": 14.0,
            "temperature": {
                "values": [300],
                "model": "einstein",
                "debye_temperature": 250,
                "snapshots": 3,
            },
        }
    )
    ideal = apply_strain(prototype_crystal("fcc", ["Cu"], A_CU).atoms, np.zeros(3))
    ideal = ideal.repeat((4, 4, 4))
    u = np.concatenate([a.positions - ideal.positions for _, a in out])
    m = ideal.get_masses()[0]
    # <u_x²> = ħ²/(2 m k θ) coth(θ/2T), with larch's constant ħ²/(2 k amu).
    expected = EINS_FACTOR / (m * 250) / np.tanh(250 / 600)
    assert np.mean(u**2) == pytest.approx(expected, rel=0.05)
    assert [a.info["snapshot"] for _, a in out] == [0, 1, 2]


def test_md_snapshots_need_emt_and_warm_up_with_temperature():
    with pytest.raises(CrystalInputError, match="EMT has no parameters for O"):
        structures(
            {
                "prototype": "rocksalt",
                "species": ["Ni", "O"],
                "a": A_NIO,
                "temperature": {"values": [300], "model": "md"},
            }
        )
    out = structures(
        {
            "prototype": "fcc",
            "species": ["Cu"],
            "a": A_CU,
            "supercell": 7.0,
            "temperature": {
                "values": [150, 600],
                "model": "md",
                "snapshots": 2,
                "equilibration": 150,
                "interval": 25,
            },
        }
    )
    assert len(out) == 4 and all(a.info["thermal"] == "md_emt" for _, a in out)
    spread = []
    for _, atoms in out:
        _, d = neighbor_list("id", atoms, 3.05)
        spread.append(np.var(d))
    # Classical MD: the first-shell variance grows about linearly with T (x4 here).
    assert 2.0 < np.mean(spread[2:]) / np.mean(spread[:2]) < 7.0


# --- reproducibility and bad entries ----------------------------------------------------


def test_same_seed_same_structures_and_new_shapes_leave_the_others_unchanged():
    spec = {
        "prototype": "rocksalt",
        "species": ["Ni", "O"],
        "a": A_NIO,
        "seed": 7,
        "strain": {"isotropic": {"range": [-0.02, 0.02], "draws": 2}},
        "defects": [{"vacancies": {"O": 0.1}}],
        "shapes": [{"cut": "sphere", "radius": 6.0, "center": "Ni"}],
        "temperature": {
            "values": {"range": [10, 600], "draws": 2},
            "debye_temperature": {"range": [400, 700]},
        },
    }
    a, b = structures(spec), structures(spec)
    assert [n for n, _ in a] == [n for n, _ in b]
    for (_, x), (_, y) in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.positions, y.positions)
        assert x.info == y.info
    other = structures({**spec, "seed": 8})
    assert [x.info["temperature"] for _, x in other] != [x.info["temperature"] for _, x in a]
    more = structures({**spec, "shapes": [*spec["shapes"], {"cut": "bulk"}]})
    kept = {n: x for n, x in more}
    for name, x in a:
        np.testing.assert_array_equal(kept[name].positions, x.positions)
        assert kept[name].info == x.info


def test_provenance_is_complete():
    (_, atoms), *_ = structures(
        {
            "amcsd": "bunsenite",
            "shapes": [{"cut": "octahedron", "size": 4.0}],
            "temperature": {"values": [77], "debye_temperature": 500},
        }
    )
    for key in (
        "parent",
        "parent_spacegroup",
        "strain_a",
        "strain_b",
        "strain_c",
        "shape",
        "n_surface",
        "defect",
        "temperature",
        "thermal",
        "debye_temperature",
        "volume_per_atom",
        "seed",
    ):
        assert key in atoms.info, key
    assert atoms.info["parent"].startswith("amcsd:") and atoms.info["shape"].startswith(
        "octahedron4"
    )
    assert atoms.arrays["surface"].sum() == atoms.info["n_surface"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"strian": {}}, r"unknown key\(s\) \['strian'\]"),
        ({"seed": -1}, "seed: must be an integer >= 0"),
        ({"strain": {"isotropic": {"range": [0.03, -0.03], "steps": 3}}}, "low > high"),
        ({"strain": {"isotropic": {"range": [-0.03, 0.03]}}}, "exactly one of `steps`"),
        ({"strain": {"isotropic": -0.6}}, "collapses the cell"),
        ({"temperature": {"values": [0.0]}}, ">= 1 K"),
        ({"temperature": {"values": [300], "model": "langevin"}}, "unknown model 'langevin'"),
        ({"temperature": {"values": [300], "snapshots": 3}}, "1 for debye_card"),
        (
            {"temperature": {"values": [300], "debye_temperature": {"Cu": 300}}},
            "one θ per structure",
        ),
        (
            {
                "temperature": {
                    "values": [300],
                    "model": "einstein",
                    "debye_temperature": {"range": [1, 2]},
                }
            },
            "debye_card only",
        ),
        ({"temperature": {"values": [300], "timestep": 1.0}}, "applies to model md only"),
        ({"shapes": [{"cut": "sphere"}]}, "needs `radius`"),
        ({"shapes": [{"cut": "blob", "size": 3}]}, "`cut` must be one of"),
        ({"shapes": [{"cut": "polyhedron", "facets": {"11": 4.0}}]}, "not a Miller index"),
        ({"shapes": [{"cut": "bulk", "center": "atom"}]}, "cut bulk takes"),
        (
            {"shapes": [{"cut": "sphere", "radius": 0.1, "center": [0.5, 0.5, 0.5]}]},
            "holds no atom",
        ),
        ({"perfect": False}, "leaves no structure"),
    ],
)
def test_bad_entries_are_refused_with_the_key_and_reason(extra, message):
    spec = {"name": "bad", "kind": "crystal", "prototype": "fcc", "species": ["Cu"], **extra}
    with pytest.raises(CrystalInputError, match=message) as err:
        list(crystal_structures(spec))
    assert "source 'bad'" in str(err.value)


def test_compound_debye_card_needs_its_theta():
    with pytest.raises(CrystalInputError, match="give one θ"):
        structures(
            {
                "prototype": "rocksalt",
                "species": ["Ni", "O"],
                "a": A_NIO,
                "temperature": {"values": [300]},
            }
        )
    with pytest.raises(CrystalInputError, match="no Debye temperature for O"):
        structures(
            {
                "prototype": "rocksalt",
                "species": ["Ni", "O"],
                "a": A_NIO,
                "temperature": {"values": [300], "model": "debye"},
            }
        )
