"""Site labels against geometry: CN of bulk fcc (12) and of an octahedron's vertex (4), mean
first-shell distances, partial CNs, the RDF and the first-minimum rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk

from mlxas.errors import ConfigError
from mlxas.sites import (
    CoordinationSettings,
    LabelSettings,
    RdfSettings,
    SitesSettings,
    enumerate_sites,
    frame_labels,
    shell_radius,
)
from mlxas.sites.labels import pooled_first_minimum, pooled_histogram, radial_density, rdf_grid
from mlxas.structures.nanoparticles import nanoparticle
from mlxas.structures.readers import read_file
from test_sites import DATA, tagged

A = 3.61
NN = A / np.sqrt(2)
RDF = {"r_max": 6.0, "dr": 0.05, "sigma": 0.05}

warnings.filterwarnings("ignore", module="pymatgen")


def labels(rule: str, cutoff: float | None = None) -> CoordinationSettings:
    return CoordinationSettings(cn_rule=rule, cutoff=cutoff, rdf=RdfSettings(**RDF))


def label_sets(rule: str) -> LabelSettings:
    return LabelSettings(sets=("coordination",), settings={"coordination": labels(rule)})


def shell_info(df) -> float | None:
    return df.attrs["labels"]["info"]["coordination"]["shell_radius"]


@pytest.mark.parametrize(
    "cfg", [labels("cutoff", 3.0), labels("rdf_minimum"), labels("nn:CrystalNN")]
)
def test_bulk_fcc_has_cn_12_for_every_rule(cfg):
    for cell in (bulk("Cu", "fcc", a=A), bulk("Cu", "fcc", a=A, cubic=True)):
        shell = shell_radius([cell], "Cu", cfg)
        out = frame_labels(cell, np.arange(len(cell)), cfg, shell, ["Cu"])
        assert np.allclose(out["cn"], 12) and np.allclose(out["r"], NN)
        assert np.allclose(out["cn_Cu"], 12)


def test_octahedron_vertex_has_cn_4():
    octa = nanoparticle("Cu", "octahedron", 5, A)
    vertex = int(np.argmax(np.linalg.norm(octa.positions, axis=1)))
    for cfg in (labels("cutoff", 3.0), labels("rdf_minimum")):
        shell = shell_radius([octa], "Cu", cfg)
        out = frame_labels(octa, np.array([vertex]), cfg, shell, ["Cu"])
        assert out["cn"][0] == 4 and np.isclose(out["r"][0], NN)
    # every surface site of the 85-atom octahedron: vertices 4, edges 7, faces 9, bulk 12
    out = frame_labels(octa, np.arange(85), labels("cutoff", 3.0), 3.0, ["Cu"])
    assert sorted(set(out["cn"].astype(int))) == [4, 7, 9, 12]
    assert (out["cn"] == 4).sum() == 6


def test_partial_cn_of_alloys_and_oxides():
    (cu3au,) = read_file(DATA / "Cu3Au_POSCAR")
    cfg = labels("rdf_minimum")
    shell = shell_radius([cu3au], "Cu", cfg)
    cu = np.array([i for i, s in enumerate(cu3au.get_chemical_symbols()) if s == "Cu"])
    out = frame_labels(cu3au, cu, cfg, shell, ["Au", "Cu"])
    # L1_2: each Cu has 4 Au and 8 Cu neighbours at a/sqrt(2)
    assert np.allclose(out["cn_Au"], 4) and np.allclose(out["cn_Cu"], 8)
    assert np.allclose(out["r"], 3.75 / np.sqrt(2))
    (cu2o,) = read_file(DATA / "Cu2O_CONTCAR")
    shell = shell_radius([cu2o], "Cu", cfg)
    cu = np.array([i for i, s in enumerate(cu2o.get_chemical_symbols()) if s == "Cu"])
    out = frame_labels(cu2o, cu, cfg, shell, ["Cu", "O"])
    # cuprite: linear O-Cu-O, Cu-O = a*sqrt(3)/4; Cu-Cu (a/sqrt(2) = 3.02 Å) is the 2nd shell
    assert np.allclose(out["cn_O"], 2) and np.allclose(out["cn_Cu"], 0)
    assert np.allclose(out["r"], 4.2696 * np.sqrt(3) / 4)
    assert 1.9 < shell < 2.9


def test_rdf_is_a_density_whose_first_shell_integral_is_the_cn():
    octa = nanoparticle("Cu", "octahedron", 5, A)
    grid = rdf_grid(RdfSettings(**RDF))
    out = frame_labels(octa, np.arange(85), labels("cutoff", 3.0), 3.0, ["Cu"])
    first = grid <= 3.0
    integral = out["rdf"][:, first].sum(axis=1) * RDF["dr"]
    assert np.allclose(integral, out["cn"], atol=1e-3)
    # at the grid point next to the bond length: cn Gaussians centred on a/sqrt(2)
    k = int(np.argmin(abs(grid - NN)))
    sigma = RDF["sigma"]
    peak = np.exp(-0.5 * ((grid[k] - NN) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    assert np.allclose(out["rdf"][:, k], out["cn"] * peak, rtol=1e-4)


def test_radial_density_matches_the_direct_gaussian_sum():
    rng = np.random.default_rng(0)
    grid = rdf_grid(RdfSettings(**RDF))
    slot = rng.integers(0, 7, 400)
    d = rng.uniform(0.9, 6.2, 400)
    for sigma in (0.05, 0.08, 0.2):
        fast = radial_density(slot, d, 7, grid, sigma)
        direct = np.zeros((7, len(grid)))
        for s, x in zip(slot, d, strict=True):
            direct[s] += np.exp(-0.5 * ((grid - x) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        assert np.allclose(fast, direct, atol=1e-4 * direct.max())
    hist = radial_density(slot, d, 7, grid, 0.0)
    inside = (d >= grid[0] - RDF["dr"] / 2) & (d < grid[-1] + RDF["dr"] / 2)
    assert np.isclose(hist.sum() * RDF["dr"], inside.sum())


def test_first_minimum_sits_in_the_middle_of_a_crystal_gap():
    cube = nanoparticle("Cu", "cube", 3, A)
    r, counts, n = pooled_histogram([cube], "Cu", 6.0)
    assert n == len(cube)
    assert abs(pooled_first_minimum(r, counts, 0.05) - (NN + A) / 2) < 0.03


def test_first_minimum_of_thermal_clusters_is_stable():
    """Au clusters with 300 K-like disorder: one radius per source, the same for two
    independent sets of frames, between the first (2.88 Å) and second (4.08 Å) shells."""
    base = nanoparticle("Au", "cuboctahedron", 4, 4.08)
    radii = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        frames = []
        for _ in range(40):
            f = base.copy()
            f.positions += rng.normal(0, 0.09, f.positions.shape)
            frames.append(f)
        radii.append(shell_radius(frames, "Au", labels("rdf_minimum")))
    assert 3.3 < radii[0] < 3.8
    assert abs(radii[0] - radii[1]) < 0.05


def test_each_structure_and_each_trajectory_is_its_own_pool():
    """Crystals in one source keep their own first shell; the frames of a trajectory share
    one radius."""
    (cu2o,) = read_file(DATA / "Cu2O_CONTCAR")
    (cu,) = read_file(DATA / "Cu_fcc.cif")
    images = [tagged(cu2o, "cu2o"), tagged(cu, "cu")]
    df = enumerate_sites(images, "Cu", SitesSettings(), label_sets("rdf_minimum"))
    by_name = df.set_index("name")
    assert by_name.loc["cu2o", "cn"] == 2 and by_name.loc["cu2o", "cn_O"] == 2
    assert by_name.loc["cu", "cn"] == 12
    assert by_name.loc["cu2o", "shell_radius"] < 2.9 < by_name.loc["cu", "shell_radius"]
    assert shell_info(df) is None

    rng = np.random.default_rng(5)
    base = nanoparticle("Au", "cuboctahedron", 3, 4.08)
    frames = []
    for k in range(10):
        f = base.copy()
        f.positions += rng.normal(0, 0.08, f.positions.shape)
        frame = tagged(f, f"md_{k}", frame=k)
        frame.info["origin"] = "md:Au55"
        frames.append(frame)
    df = enumerate_sites(frames, "Au", SitesSettings(mode="all"), label_sets("rdf_minimum"))
    assert df["shell_radius"].nunique() == 1
    assert shell_info(df) == shell_radius(frames, "Au", labels("rdf_minimum"))


def test_enumerate_batches_give_the_same_labels_as_one_frame():
    rng = np.random.default_rng(4)
    base = nanoparticle("Au", "truncated_octahedron", 2, 4.08)
    frames = []
    for k in range(30):
        f = base.copy()
        f.positions += rng.normal(0, 0.07, f.positions.shape)
        frames.append(tagged(f, f"f{k}", frame=k))
    cfg = labels("rdf_minimum")
    df = enumerate_sites(frames, "Au", SitesSettings(mode="all"), label_sets("rdf_minimum"))
    shell = shell_info(df)
    one = frame_labels(frames[17], np.arange(38), cfg, shell, ["Au"])
    rows = df[df["frame"] == 17]
    assert np.allclose(rows["cn"], one["cn"]) and np.allclose(rows["r"], one["r"])
    assert np.allclose(np.stack(rows["rdf"]), one["rdf"], atol=1e-5)


def test_bad_label_settings():
    octa = nanoparticle("Cu", "octahedron", 3, A)
    with pytest.raises(ConfigError, match="cutoff must be set"):
        shell_radius([octa], "Cu", labels("cutoff"))
    with pytest.raises(ConfigError, match="no near-neighbour class"):
        shell_radius([octa], "Cu", labels("nn:NoSuchNN"))
    with pytest.raises(ConfigError, match="unknown rule"):
        shell_radius([octa], "Cu", labels("closest"))
