"""Absorbing sites: symmetry-unique sites and multiplicities of known crystals and clusters,
sampling, whole structures as items, the site table and the `mlxas sites`/`labels`
commands."""

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
from mlxas.provenance import structure_hash
from mlxas.sites import (
    LabelSettings,
    SitesSettings,
    choose_sites,
    enumerate_sites,
    equivalent_sites,
    read_labels,
    read_sites,
    site_table,
    write_sites,
)
from mlxas.structures import build_source, read_structures, source_from_config
from mlxas.structures.nanoparticles import nanoparticle
from mlxas.structures.readers import read_file

DATA = Path(__file__).resolve().parent / "data" / "structures"
LABELS = LabelSettings.from_config(
    {"coordination": {"cn_rule": "rdf_minimum", "rdf": {"r_max": 6.0, "dr": 0.05, "sigma": 0.05}}}
)
UNIQUE = SitesSettings(mode="unique", symprec=0.1)

warnings.filterwarnings("ignore", module="pymatgen")


def tagged(atoms: Atoms, name: str, frame: int = -1) -> Atoms:
    atoms = atoms.copy()
    sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, atoms.pbc)
    atoms.info = {"structure_id": sid, "source": "test", "name": name, "frame": frame}
    return atoms


def unique(atoms: Atoms, absorber: str) -> list[tuple[int, int]]:
    ((idx, mult),) = choose_sites([tagged(atoms, "x")], absorber, UNIQUE)
    return list(zip(idx.tolist(), mult.tolist(), strict=True))


def test_fcc_cu_has_one_unique_site():
    (cu,) = read_file(DATA / "Cu_fcc.cif")
    assert [m for _, m in unique(cu, "Cu")] == [4]


def test_rutile_tio2_has_one_ti_and_one_o_site():
    (tio2,) = read_file(DATA / "TiO2_rutile.cif")
    assert [m for _, m in unique(tio2, "Ti")] == [2]
    assert [m for _, m in unique(tio2, "O")] == [4]
    assert equivalent_sites(tio2) == [
        [i for i, s in enumerate(tio2.get_chemical_symbols()) if s == el]
        for el in sorted(set(tio2.get_chemical_symbols()), key=tio2.get_chemical_symbols().index)
    ]


def test_other_crystals():
    (cu2o,) = read_file(DATA / "Cu2O_CONTCAR")
    assert [m for _, m in unique(cu2o, "Cu")] == [4]
    (cu3au,) = read_file(DATA / "Cu3Au_POSCAR")
    assert [m for _, m in unique(cu3au, "Cu")] == [3]


@pytest.mark.parametrize(
    ("shape", "size", "center", "multiplicities"),
    [
        # 13-atom cuboctahedron: the centre and 12 equivalent surface atoms
        ("cuboctahedron", 2, "atom", [1, 12]),
        # 19-atom octahedron: centre, 6 vertices, 12 edge atoms
        ("octahedron", 3, "atom", [1, 6, 12]),
        # 20-atom tetrahedron: 4 vertices, 12 edge atoms, 4 face centres
        ("tetrahedron", 4, "atom", [4, 4, 12]),
        # 14-atom fcc cell around an octahedral hole: 6 face centres, 8 corners
        ("sphere", 3.5, "octahedral_hole", [6, 8]),
    ],
)
def test_cluster_multiplicities(shape, size, center, multiplicities):
    cluster = nanoparticle("Cu", shape, size, 3.61, center)
    assert sorted(m for _, m in unique(cluster, "Cu")) == multiplicities


def test_cluster_classes_match_pymatgen_point_group_analysis():
    from pymatgen.core import Molecule
    from pymatgen.symmetry.analyzer import PointGroupAnalyzer

    for shape, size in (("octahedron", 4), ("cube", 2), ("tetrahedron", 5)):
        cluster = nanoparticle("Cu", shape, size, 3.61)
        mol = Molecule(cluster.get_chemical_symbols(), cluster.positions)
        eq = PointGroupAnalyzer(mol, tolerance=0.1).get_equivalent_atoms()["eq_sets"]
        expected = sorted(sorted(int(i) for i in g) for g in eq.values())
        assert sorted(equivalent_sites(cluster)) == expected


def test_alloy_cluster_keeps_elements_apart():
    cluster = nanoparticle("Cu", "cuboctahedron", 2, 3.61)
    centre = int(np.argmin(np.linalg.norm(cluster.positions, axis=1)))
    symbols = np.array(["Au"] * 13)
    symbols[centre] = "Cu"
    cluster.set_chemical_symbols(symbols)
    assert unique(cluster, "Cu") == [(centre, 1)]
    assert [m for _, m in unique(cluster, "Au")] == [12]


def test_frames_have_no_symmetry_and_noise_breaks_it():
    cluster = nanoparticle("Cu", "cuboctahedron", 2, 3.61)
    frame = tagged(cluster, "f", frame=0)
    ((idx, mult),) = choose_sites([frame], "Cu", UNIQUE)
    assert len(idx) == 13 and (mult == 1).all()
    noisy = cluster.copy()
    noisy.positions += np.random.default_rng(1).normal(0, 0.2, noisy.positions.shape)
    assert len(equivalent_sites(noisy, symprec=0.01)) == 13


def test_sampling_is_reproducible_and_exact():
    rng = np.random.default_rng(0)
    base = nanoparticle("Au", "cuboctahedron", 3, 4.08)
    frames = []
    for k in range(20):
        f = base.copy()
        f.positions += rng.normal(0, 0.05, f.positions.shape)
        frames.append(tagged(f, f"f{k}", frame=k))
    cfg = SitesSettings(mode="sample", per_frame=3, total=None, seed=1)
    a = choose_sites(frames, "Au", cfg)
    b = choose_sites(frames, "Au", cfg)
    c = choose_sites(frames, "Au", SitesSettings(mode="sample", per_frame=3, seed=2))
    assert all(len(i) == 3 for i, _ in a)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    # a frame's draw does not depend on the other frames
    alone = choose_sites(frames[5:6], "Au", cfg)
    assert np.array_equal(alone[0][0], a[5][0])
    total = choose_sites(frames, "Au", SitesSettings(mode="sample", total=50))
    assert sum(len(i) for i, _ in total) == 50
    picked = {(k, int(i)) for k, (idx, _) in enumerate(total) for i in idx}
    assert len(picked) == 50
    with pytest.raises(ConfigError, match="exactly one"):
        choose_sites(frames, "Au", SitesSettings(mode="sample", per_frame=2, total=5))


def test_site_table_and_parquet_metadata(tmp_path):
    images = [
        tagged(nanoparticle("Cu", "octahedron", 4, 3.61), "oct4"),
        tagged(nanoparticle("Cu", "tetrahedron", 3, 3.61), "tet3"),
    ]
    df = site_table(images, "Cu", UNIQUE)
    assert len(df) == 4 + 2
    assert df.groupby("structure_id")["multiplicity"].sum().sort_values().tolist() == [10, 44]
    assert df["site_id"].str.fullmatch(r"[0-9a-f]{16}-\d{5}").all()
    assert df["frame"].isna().all()
    path = tmp_path / "sites.parquet"
    rejected = pd.DataFrame([{"origin": "x.cif", "frame": None, "reason": "unreadable",
                              "detail": "broken", "source": "test"}])  # fmt: skip
    write_sites(df, path, UNIQUE, rejected)
    back, meta = read_sites(path)
    assert back.equals(df)
    assert meta["settings"]["mode"] == "unique" and meta["settings"]["symprec"] == 0.1
    assert meta["rejected"] == [{"origin": "x.cif", "frame": None, "reason": "unreadable",
                                 "detail": "broken", "source": "test"}]  # fmt: skip
    labelled = enumerate_sites(images, "Cu", UNIQUE, LABELS)
    # each cluster is its own pool; both put the radius in the middle of the fcc gap
    assert np.allclose(labelled["shell_radius"], (3.61 / 2**0.5 + 3.61) / 2, atol=0.05)
    assert np.stack(labelled["rdf"]).shape == (6, 120)


def test_structure_mode_makes_one_item_per_structure_without_absorber():
    images = [tagged(nanoparticle("Cu", "octahedron", 4, 3.61), "oct4"),
              tagged(nanoparticle("Cu", "cube", 2, 3.61), "cube2")]  # fmt: skip
    df = site_table(images, None, SitesSettings(mode="structure"))
    assert df["site_id"].tolist() == [a.info["structure_id"] for a in images]
    assert df["site_index"].tolist() == [-1, -1] and df["multiplicity"].tolist() == [1, 1]
    with pytest.raises(ConfigError, match="needs an absorber"):
        site_table(images, None, UNIQUE)


def test_cli_sites_and_labels(tmp_path, capsys):
    spec = {
        "name": "np",
        "kind": "nanoparticles",
        "element": "Cu",
        "lattice_constant": 3.61,
        "shape": "cuboctahedron",
        "sizes": [2, 3],
    }
    folder = tmp_path / "np"
    frames = folder / "structures.extxyz"
    build_source(source_from_config(spec), "Cu", frames, folder / "index.csv",
                 folder / "rejected.csv")  # fmt: skip
    sites_spec = {"absorber": "Cu", "source": "np", "sites": {"mode": "unique"}}
    out = tmp_path / "np.parquet"
    args = ["sites", "--spec", json.dumps(sites_spec), "--out", str(out)]
    args += ["--rejected", str(folder / "rejected.csv")]
    assert main([*args, "--structures", str(frames)]) == 0
    assert "7 items from 2 structures" in capsys.readouterr().out
    df, _ = read_sites(out)
    n = {len(a): a for a in read_structures(frames)}
    assert df.groupby("name")["multiplicity"].sum().to_dict() == {
        "cuboctahedron_2": 13,
        "cuboctahedron_3": 55,
    }
    assert set(n) == {13, 55}
    labels = LabelSettings.from_config({"coordination": {"cn_rule": "cutoff", "cutoff": 3.0}})
    lab_spec = json.dumps({"absorber": "Cu", "labels": labels.to_dict()})
    lab = tmp_path / "np_labels.parquet"
    assert main(["labels", "--spec", lab_spec, "--structures", str(frames), "--sites", str(out),
                 "--out", str(lab)]) == 0  # fmt: skip
    table, meta = read_labels(lab)
    assert table["site_id"].tolist() == df["site_id"].tolist()
    assert meta["info"]["coordination"]["shell_radius"] == 3.0
    assert meta["columns"]["cn"]["target"] and not meta["columns"]["shell_radius"]["target"]
    assert len(meta["columns"]["rdf"]["grid"]["values"]) == 120
    # centre of the 13-atom cuboctahedron: 12 neighbours at a/sqrt(2)
    assert table["cn"].max() == 12 and np.isclose(table["r"].min(), 3.61 / 2**0.5)


def test_cu_nanoparticles_preset_has_20_crystals_and_84_sites(tmp_path):
    """The preset reproduces the published Cu set: 20 distinct crystals, 84 unique sites."""
    from mlxas.workflow.checks import load_experiment

    root = Path(__file__).resolve().parent.parent
    exp = load_experiment([root / "config" / "experiments" / "cu_nanoparticles.yaml"])
    ids, n_sites, cns = [], 0, []
    for name, src in exp.sources.items():
        folder = tmp_path / name
        index, rejected = build_source(src, exp.absorber, folder / "s.extxyz",
                                       folder / "index.csv", folder / "rejected.csv")  # fmt: skip
        assert rejected.empty
        ids += index["structure_id"].tolist()
        images = read_structures(folder / "s.extxyz")
        df = enumerate_sites(images, "Cu", exp.sites, exp.labels)
        per_structure = df.groupby("structure_id")["multiplicity"].sum()
        atoms = index.set_index("structure_id")["n_atoms"]
        assert per_structure.sort_index().tolist() == atoms.sort_index().tolist()
        n_sites += len(df)
        cns += df["cn"].tolist()
    assert len(ids) == len(set(ids)) == 20
    assert n_sites == 84
    assert min(cns) == 3 and max(cns) == 12
