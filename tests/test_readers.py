"""Structure readers on real files: CIF, pymatgen JSON, POSCAR/CONTCAR, xyz, extxyz, ASE
trajectories, LAMMPS dumps, XDATCAR; and the errors for files that cannot be used."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from mlxas.structures.readers import StructureReadError, parse_frames, read_file, read_frames

DATA = Path(__file__).resolve().parent / "data" / "structures"

warnings.filterwarnings("ignore", module="pymatgen")


def test_cif_with_symmetry_operations_is_expanded_by_pymatgen():
    (atoms,) = read_file(DATA / "Cu_fcc.cif")
    assert atoms.get_chemical_formula() == "Cu4"
    assert np.allclose(atoms.cell.cellpar(), [3.61, 3.61, 3.61, 90, 90, 90])
    assert atoms.pbc.all()
    d = atoms.get_all_distances(mic=True)
    assert np.isclose(d[d > 0].min(), 3.61 / np.sqrt(2))


def test_rutile_cif():
    (atoms,) = read_file(DATA / "TiO2_rutile.cif")
    assert sorted(atoms.get_chemical_symbols()) == ["O"] * 4 + ["Ti"] * 2
    # TiO6 octahedron: 2 apical bonds sqrt(2) x a, 4 equatorial sqrt(2 (1/2 - x)^2 a^2 + c^2/4)
    a, c, x = 4.5937, 2.9587, 0.3048
    d = atoms.get_all_distances(mic=True)
    ti = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "Ti"]
    o = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "O"]
    bonds = np.unique(np.round(d[np.ix_(ti, o)], 4))
    apical, equatorial = np.sqrt(2) * x * a, np.sqrt(2 * (0.5 - x) ** 2 * a**2 + c**2 / 4)
    assert np.allclose(bonds, sorted([apical, equatorial]), atol=1e-4)


def test_cod_cif():
    (atoms,) = read_file(DATA / "SiC_moissanite_cod_1010995.cif")
    assert atoms.get_chemical_formula() == "C4Si4"
    d = atoms.get_all_distances(mic=True)
    assert np.isclose(d[d > 0].min(), 4.348 * np.sqrt(3) / 4, atol=1e-3)  # Si-C bond


def test_pymatgen_json_transformed_structure_and_lists(tmp_path):
    from monty.serialization import dumpfn
    from pymatgen.core import Molecule, Structure
    from pymatgen.core.trajectory import Trajectory

    (vo2,) = read_file(DATA / "VO2_rutile_pymatgen.json")
    assert vo2.get_chemical_formula() == "O4V2" and vo2.pbc.all()

    cu = Structure.from_file(DATA / "Cu_fcc.cif")
    dumpfn([cu, Molecule(["Cu", "Cu"], [[0, 0, 0], [0, 0, 2.5]])], tmp_path / "list.json")
    contents = read_frames(tmp_path / "list.json")
    assert contents.total == 2 and not contents.trajectory
    assert [a.pbc.any() for _, a in contents.items] == [True, False]

    dumpfn(Trajectory.from_structures([cu, cu.copy()]), tmp_path / "traj.json")
    contents = read_frames(tmp_path / "traj.json")
    assert contents.total == 2 and contents.trajectory


def test_poscar_and_contcar():
    (cu3au,) = read_file(DATA / "Cu3Au_POSCAR")
    assert cu3au.get_chemical_formula() == "AuCu3" and cu3au.pbc.all()
    (cu2o,) = read_file(DATA / "Cu2O_CONTCAR")
    assert cu2o.get_chemical_formula() == "Cu4O2"
    d = cu2o.get_all_distances(mic=True)
    assert np.isclose(d[d > 0].min(), 4.2696 * np.sqrt(3) / 4, atol=1e-4)  # Cu-O bond


def test_xyz():
    contents = read_frames(DATA / "Cu13.xyz")
    assert contents.total == 1 and not contents.trajectory
    atoms = contents.items[0][1]
    assert len(atoms) == 13 and not atoms.pbc.any()


def test_extxyz_and_ase_trajectory_hold_the_same_frames():
    a = read_frames(DATA / "Cu38_frames.extxyz")
    b = read_frames(DATA / "Cu38_frames.traj")
    assert a.total == b.total == 3 and a.trajectory and b.trajectory
    for (ka, fa), (kb, fb) in zip(a.items, b.items, strict=True):
        assert ka == kb and len(fa) == 38
        assert np.allclose(fa.positions, fb.positions, atol=1e-6)


def test_lammps_dump_needs_species_without_element_column():
    with pytest.raises(StructureReadError, match="species") as err:
        read_file(DATA / "Cu13_types.lammpstrj")
    assert err.value.reason == "unreadable"
    typed = read_frames(DATA / "Cu13_types.lammpstrj", species=["Cu"])
    named = read_frames(DATA / "Cu13_elements.lammpstrj")
    for contents in (typed, named):
        assert contents.total == 2 and contents.trajectory
        assert all(a.get_chemical_formula() == "Cu13" for _, a in contents.items)
        assert np.allclose(contents.items[0][1].cell.lengths(), 30.0)


def test_xdatcar_frames_and_slices():
    contents = read_frames(DATA / "Cu_XDATCAR")
    assert contents.total == 3 and contents.trajectory
    assert np.allclose(contents.items[0][1].cell.lengths(), 3.61)
    assert [k for k, _ in read_frames(DATA / "Cu_XDATCAR", frames="::2").items] == [0, 2]
    assert [k for k, _ in read_frames(DATA / "Cu_XDATCAR", frames="-1").items] == [2]


def test_parse_frames():
    assert parse_frames(None) == slice(None)
    assert parse_frames("10:") == slice(10, None)
    assert parse_frames("::5") == slice(None, None, 5)
    assert parse_frames("3") == slice(3, 4)
    with pytest.raises(ValueError, match="slice"):
        parse_frames("a:b")


@pytest.mark.parametrize(
    ("name", "kwargs", "reason", "words"),
    [
        ("missing.xyz", {}, "unreadable", "does not exist"),
        ("empty.xyz", {}, "unreadable", "empty"),
        ("broken.cif", {}, "unreadable", "not a valid CIF"),
        ("CuAu_disordered.cif", {}, "partial_occupancy", "partially occupied"),
        ("CuAu_disordered.json", {}, "partial_occupancy", "partially occupied"),
        ("Cu_XDATCAR", {"frames": "5:"}, "unreadable", "selects none"),
        ("Cu13.xyz", {"species": ["Cu"]}, "unreadable", "LAMMPS dumps only"),
    ],
)
def test_unusable_files_name_the_file_and_the_reason(name, kwargs, reason, words):
    with pytest.raises(StructureReadError) as err:
        read_file(DATA / name, **kwargs)
    assert err.value.reason == reason
    assert words in str(err.value) and name in str(err.value)


def test_garbage_with_a_known_suffix(tmp_path):
    bad = tmp_path / "garbage.xyz"
    bad.write_text("this is\nnot an xyz file\n")
    with pytest.raises(StructureReadError, match=r"garbage\.xyz") as err:
        read_file(bad)
    assert err.value.reason == "unreadable"
    # a file ASE cannot place asks for an explicit format
    odd = tmp_path / "structure.unknown"
    shutil.copy(DATA / "Cu13.xyz", odd)
    assert len(read_file(odd, fmt="xyz")[0]) == 13
