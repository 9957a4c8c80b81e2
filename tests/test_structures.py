"""Nanoparticle generator, structure checks (every rejection reason), the per-source
build (index.csv, rejected.csv, structures.extxyz) and the `mlxas structures` command."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk

from mlxas.cli import main
from mlxas.config import ConfigError
from mlxas.feff.engines import get_engine
from mlxas.structures import build_source, read_index, read_structures
from mlxas.structures.checks import FeffLimits, check_structure, feff_cluster_sizes
from mlxas.structures.index import read_rejected
from mlxas.structures.nanoparticles import nanoparticle, nanoparticles

DATA = Path(__file__).resolve().parent / "data" / "structures"
A_CU = 3.61
NN = A_CU / np.sqrt(2)

warnings.filterwarnings("ignore", module="pymatgen")


def feff8l_limits(radius: float = 7.0) -> FeffLimits:
    engine = get_engine("feff8l")
    return FeffLimits(engine.max_atoms, engine.max_potentials, radius, engine.name)


# --- nanoparticles ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "sizes", "atoms"),
    [
        # octahedra: n(2n^2+1)/3 atoms for n along an edge
        ("octahedron", [2, 3, 4, 5], [6, 19, 44, 85]),
        # cuboctahedra (Mackay magic numbers) and regular truncated octahedra
        ("cuboctahedron", [2, 3, 4], [13, 55, 147]),
        ("truncated_octahedron", [2, 3], [38, 201]),
        ("cube", [1, 2], [13, 63]),
        # tetrahedra: n(n+1)(n+2)/6
        ("tetrahedron", [2, 3, 4, 5, 6], [4, 10, 20, 35, 56]),
    ],
)
def test_polyhedra_have_the_textbook_atom_counts(shape, sizes, atoms):
    for size, n in zip(sizes, atoms, strict=True):
        cluster = nanoparticle("Cu", shape, size, A_CU)
        assert len(cluster) == n, (shape, size)
        assert not cluster.pbc.any() and np.allclose(cluster.positions.mean(axis=0), 0, atol=1e-9)
        d = cluster.get_all_distances()
        assert np.isclose(d[d > 0].min(), NN)  # bulk bond length, unrelaxed


@pytest.mark.parametrize(
    ("center", "radius", "atoms"),
    [
        # shells around an atom: 1 + 12 + 6 + 24 (r = a*sqrt(3/2) = 4.42 Å)
        ("atom", 4.7, 43),
        # around an octahedral hole: 6 at a/2, 8 at a*sqrt(3)/2
        ("octahedral_hole", 3.5, 14),
        # around a tetrahedral hole: 4 at a*sqrt(3)/4, 12 at a*sqrt(11)/4
        ("tetrahedral_hole", 3.2, 16),
    ],
)
def test_spheres_around_atoms_and_holes(center, radius, atoms):
    cluster = nanoparticle("Cu", "sphere", radius, A_CU, center)
    assert len(cluster) == atoms
    assert np.linalg.norm(cluster.positions, axis=1).max() <= radius


def test_bad_sizes_and_shapes_are_config_errors():
    base = {"name": "x", "kind": "nanoparticles", "element": "Cu", "lattice_constant": A_CU}
    for bad in (
        {"shape": "octahedron", "sizes": [2.5]},
        {"shape": "tetrahedron", "sizes": [1]},
        {"shape": "cube", "sizes": [2], "center": "octahedral_hole"},
        {"shape": "sphere", "sizes": [1.0], "center": "tetrahedral_hole"},
        {"shape": "octahedron", "sizes": [2], "element": "Sr", "relax": "emt"},
    ):
        with pytest.raises(ConfigError, match="source 'x'"):
            list(nanoparticles({**base, **bad}))
    with pytest.raises(ConfigError, match="not fcc"):
        list(nanoparticles({**base, "element": "Fe", "lattice_constant": None,
                            "shape": "octahedron", "sizes": [3]}))  # fmt: skip


def test_emt_relaxation_contracts_surface_bonds_and_keeps_symmetry():
    from mlxas.sites import equivalent_sites

    spec = {
        "name": "cubo",
        "kind": "nanoparticles",
        "element": "Cu",
        "lattice_constant": A_CU,
        "shape": "cuboctahedron",
        "sizes": [3],
        "relax": "emt",
        "fmax": 0.01,
    }
    ((name, relaxed),) = list(nanoparticles(spec))
    assert name == "cuboctahedron_3_emt"
    ideal = nanoparticle("Cu", "cuboctahedron", 3, A_CU)
    d = relaxed.get_all_distances()
    bonds = d[(d > 0) & (d < 3.0)]
    # real clusters contract: bonds spread below the bulk value, none stretched far above
    assert bonds.mean() < NN - 0.01 and bonds.std() > 0.01 and bonds.max() < NN + 0.05
    assert len(equivalent_sites(relaxed)) == len(equivalent_sites(ideal)) == 5


# --- checks -----------------------------------------------------------------------------


def test_feff_cluster_sizes_count_atoms_and_potentials():
    cluster = nanoparticle("Cu", "sphere", 8.0, A_CU)
    centre = int(np.argmin(np.linalg.norm(cluster.positions, axis=1)))
    n_atoms, n_pots = feff_cluster_sizes(cluster, np.array([centre]), 3.7)
    assert n_atoms[0] == 1 + 12 + 6 and n_pots[0] == 2  # absorber + Cu scatterers
    cell = bulk("Cu", "fcc", a=A_CU)  # one atom: all neighbours are periodic images
    n_atoms, _ = feff_cluster_sizes(cell, np.array([0]), 3.7)
    assert n_atoms[0] == 19


def test_each_rejection_reason():
    limits = feff8l_limits()
    cu13 = nanoparticle("Cu", "cuboctahedron", 2, A_CU)
    assert check_structure(cu13, "Cu", limits) is None
    assert check_structure(cu13, "Pt", limits)[0] == "no_absorber"
    close = cu13.copy()
    close.positions[1] = close.positions[0] + [0.5, 0, 0]
    reason, detail = check_structure(close, "Cu", limits)
    assert reason == "atoms_too_close" and "0.500 Å" in detail
    big = nanoparticle("Cu", "sphere", 16.0, A_CU)
    reason, detail = check_structure(big, "Cu", feff8l_limits(15.0))
    assert reason == "too_many_atoms" and "feff8l allows 1000" in detail
    mixed = cu13.copy()
    order = np.argsort(np.linalg.norm(mixed.positions, axis=1))
    symbols = np.array(mixed.get_chemical_symbols())
    symbols[order[1:]] = ["Cu", "Al", "Ni", "Co", "Fe", "Cr", "Mn", "Pd", "Ag", "Au", "Pt", "Zn"]
    mixed.set_chemical_symbols(symbols)
    reason, detail = check_structure(mixed, "Cu", limits)
    assert reason == "too_many_potentials" and "allows 8" in detail
    flat = Atoms("Cu", cell=[[1, 0, 0], [0, 1, 0], [0, 0, 0]], pbc=True)
    assert check_structure(flat, "Cu", limits)[0] == "degenerate_cell"


# --- one source -------------------------------------------------------------------------


def files_spec(*names: str, **extra) -> dict:
    return {
        "name": "files",
        "kind": "files",
        "paths": [str(DATA / n) for n in names],
        "format": None,
        "frames": None,
        "species": None,
        **extra,
    }


def test_files_source_reads_good_files_and_rejects_bad_ones(tmp_path):
    good = ["Cu_fcc.cif", "Cu3Au_POSCAR", "Cu2O_CONTCAR", "Cu13.xyz", "Cu38_frames.extxyz"]
    bad = {
        "broken.cif": "unreadable",
        "empty.xyz": "unreadable",
        "CuAu_disordered.cif": "partial_occupancy",
        "CuAu_disordered.json": "partial_occupancy",
        "Cu3_too_close.xyz": "atoms_too_close",
        "SiC_moissanite_cod_1010995.cif": "no_absorber",
        "cluster_12_elements.xyz": "too_many_potentials",
        "Cu38_frames.traj": "duplicate",  # same frames as the extxyz file
        "Cu13_types.lammpstrj": "unreadable",  # no species given
    }
    spec = files_spec(*good, *bad, "nothing_*.xyz")
    index, rejected = build_source(spec, "Cu", tmp_path, feff8l_limits())
    assert len(index) == 4 + 3
    assert index["structure_id"].is_unique
    frames = index.loc[index["origin"].str.endswith("Cu38_frames.extxyz"), "frame"]
    assert frames.tolist() == [0, 1, 2]
    assert index.loc[index["name"] == "Cu13", "frame"].isna().all()
    # every bad input is in rejected.csv with its reason; trajectory files once per frame
    on_disk = read_rejected(tmp_path / "rejected.csv")
    pd.testing.assert_frame_equal(on_disk, rejected, check_dtype=False)
    reasons = {Path(o).name: r for o, r in zip(rejected["origin"], rejected["reason"], strict=True)}
    for name, reason in bad.items():
        assert reasons[name] == reason, name
    assert reasons["nothing_*.xyz"] == "unreadable"
    assert (rejected["reason"] == "duplicate").sum() == 3
    # the structures file round-trips with ids, names and frames in index order
    images = read_structures(tmp_path / "structures.extxyz")
    assert [a.info["structure_id"] for a in images] == index["structure_id"].tolist()
    assert (
        read_index(tmp_path / "index.csv")["structure_id"].tolist()
        == index["structure_id"].tolist()
    )
    assert images[0].pbc.all() and np.allclose(images[0].cell.lengths(), A_CU)


def test_multi_frame_files_and_species(tmp_path):
    spec = files_spec("Cu13_types.lammpstrj", "Cu_XDATCAR", species=None)
    index, rejected = build_source({**spec, "frames": "1:"}, "Cu", tmp_path / "a")
    assert index["frame"].tolist() == [1, 2] and len(rejected) == 1
    spec = files_spec("Cu13_types.lammpstrj", species=["Cu"])
    index, rejected = build_source(spec, "Cu", tmp_path / "b")
    assert index["frame"].tolist() == [0, 1] and rejected.empty


def test_cli_structures_prints_the_rejected_table(tmp_path, capsys):
    spec = {
        "source": files_spec("Cu13.xyz", "broken.cif", "Cu3_too_close.xyz"),
        "absorber": "Cu",
        "engine": "feff8l",
        "cluster_radius": 7.0,
    }
    assert main(["structures", "--spec", json.dumps(spec), "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "files: 1 structures, 2 rejected" in out
    assert "origin" in out and "reason" in out
    assert "broken.cif" in out and "unreadable" in out
    assert "Cu3_too_close.xyz" in out and "atoms_too_close" in out


def test_cli_bad_source_is_one_line_error(tmp_path, capsys):
    spec = {
        "source": {
            "name": "np",
            "kind": "nanoparticles",
            "element": "Cu",
            "lattice_constant": A_CU,
            "shape": "octahedron",
            "sizes": [2.5],
        },
        "absorber": "Cu",
        "engine": "feff8l",
        "cluster_radius": 7.0,
    }
    assert main(["structures", "--spec", json.dumps(spec), "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlxas: error:") and "integer" in err and len(err.splitlines()) == 1
