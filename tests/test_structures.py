"""Nanoparticle generator, structure checks (every rejection reason), the per-source
build (index, refused inputs, structures) and the `mlxas structures` command.  What FEFF
can take is checked per site by the simulation stage's inputs step, not here."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from mlxas.cli import main
from mlxas.errors import ConfigError
from mlxas.structures import build_source, read_index, read_structures, source_from_config
from mlxas.structures.checks import check_structure
from mlxas.structures.index import read_rejected
from mlxas.structures.nanoparticles import nanoparticle, nanoparticles

DATA = Path(__file__).resolve().parent / "data" / "structures"
A_CU = 3.61
NN = A_CU / np.sqrt(2)

warnings.filterwarnings("ignore", module="pymatgen")


def build(spec: dict, absorber: str | None, folder: Path):
    return build_source(
        source_from_config(spec),
        absorber,
        folder / "structures.extxyz",
        folder / "index.csv",
        folder / "rejected.csv",
    )


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
            list(nanoparticles(source_from_config({**base, **bad})))
    with pytest.raises(ConfigError, match="not fcc"):
        list(nanoparticles(source_from_config({**base, "element": "Fe", "lattice_constant": None,
                            "shape": "octahedron", "sizes": [3]})))  # fmt: skip


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
    ((name, relaxed),) = list(nanoparticles(source_from_config(spec)))
    assert name == "cuboctahedron_3_emt"
    ideal = nanoparticle("Cu", "cuboctahedron", 3, A_CU)
    d = relaxed.get_all_distances()
    bonds = d[(d > 0) & (d < 3.0)]
    # real clusters contract: bonds spread below the bulk value, none stretched far above
    assert bonds.mean() < NN - 0.01 and bonds.std() > 0.01 and bonds.max() < NN + 0.05
    assert len(equivalent_sites(relaxed)) == len(equivalent_sites(ideal)) == 5


# --- checks -----------------------------------------------------------------------------


def test_each_rejection_reason():
    cu13 = nanoparticle("Cu", "cuboctahedron", 2, A_CU)
    assert check_structure(cu13, "Cu") is None
    assert check_structure(cu13, "Pt")[0] == "no_absorber"
    assert check_structure(cu13, None) is None  # no absorber asked for: not refused
    close = cu13.copy()
    close.positions[1] = close.positions[0] + [0.5, 0, 0]
    reason, detail = check_structure(close, "Cu")
    assert reason == "atoms_too_close" and "0.500 Å" in detail
    flat = Atoms("Cu", cell=[[1, 0, 0], [0, 1, 0], [0, 0, 0]], pbc=True)
    assert check_structure(flat, "Cu")[0] == "degenerate_cell"


def test_engine_limits_refuse_sites_in_the_inputs_step_not_structures(tmp_path):
    """A cluster too large for FEFF8L around some sites passes the structures check; the
    inputs step refuses exactly the sites whose FEFF cluster exceeds the engine's limits."""
    from mlxas.engines import engine_class
    from mlxas.simulation.inputs import build_inputs
    from mlxas.sites import SitesSettings, site_table
    from mlxas.workflow.layout import SimulationFolder

    big = nanoparticle("Cu", "sphere", 16.0, A_CU)
    assert check_structure(big, "Cu") is None
    big.info = {"structure_id": "b" * 16, "source": "big", "name": "big", "frame": -1}
    sites = site_table([big], "Cu", SitesSettings(mode="all"))
    cls = engine_class("feff8l")
    engine = cls(cls.settings_from_config({"cluster_radius": 15.0}, absorber="Cu", edge="K"))
    table = build_inputs(sites, {"b" * 16: big}, engine, 50, SimulationFolder(tmp_path))
    # independent count: atoms within 15 Å of each site, the site included
    d = big.get_all_distances()
    over = (d <= 15.0).sum(axis=1) > engine.programs.max_atoms
    assert over.any() and not over.all()
    np.testing.assert_array_equal(table["reason"] == "too_many_atoms", over)
    assert table.loc[over, "text"].eq("").all() and table.loc[~over, "text"].ne("").all()


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
        "Cu38_frames.traj": "duplicate",  # same frames as the extxyz file
        "Cu13_types.lammpstrj": "unreadable",  # no species given
    }
    # 12 elements around one Cu: too many for FEFF, which the inputs step says per site
    good.append("cluster_12_elements.xyz")
    spec = files_spec(*good, *bad, "nothing_*.xyz")
    index, rejected = build(spec, "Cu", tmp_path)
    assert len(index) == 5 + 3
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
    index, rejected = build({**spec, "frames": "1:"}, "Cu", tmp_path / "a")
    assert index["frame"].tolist() == [1, 2] and len(rejected) == 1
    spec = files_spec("Cu13_types.lammpstrj", species=["Cu"])
    index, rejected = build(spec, "Cu", tmp_path / "b")
    assert index["frame"].tolist() == [0, 1] and rejected.empty


def outputs(folder: Path) -> list[str]:
    return ["--frames", str(folder / "s.extxyz"), "--index", str(folder / "index.csv"),
            "--rejected", str(folder / "rejected.csv")]  # fmt: skip


def test_cli_structures_prints_the_rejected_table(tmp_path, capsys):
    spec = {
        "source": files_spec("Cu13.xyz", "broken.cif", "Cu3_too_close.xyz"),
        "absorber": "Cu",
    }
    assert main(["structures", "--spec", json.dumps(spec), *outputs(tmp_path)]) == 0
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
    }
    assert main(["structures", "--spec", json.dumps(spec), *outputs(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlxas: error:") and "integer" in err and len(err.splitlines()) == 1
