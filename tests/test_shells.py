"""Shell labels per neighbour element (CN, R, sigma²) against crystal geometry, larch's
thermal models and FEFF8L's own Debye-model sigma²."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from mlxas.sites.shells import (
    ShellError,
    ShellSettings,
    correlated_debye_sigma2,
    pooled_shell_labels,
    shell_labels,
    shell_table,
)
from mlxas.structures.crystal import crystal_structures
from mlxas.structures.crystal_parent import prototype_crystal
from mlxas.structures.thermal import displace

A_FE, A_NIO, A_GE, A_CU = 2.8665, 4.177, 5.658, 3.61


def settings(*shells, **kw) -> ShellSettings:
    return ShellSettings.from_config({"windows": list(shells), **kw})


def test_bcc_iron_has_8_then_6():
    fe = prototype_crystal("bcc", ["Fe"], A_FE).atoms
    s = settings(
        {"element": "Fe", "r": [2.0, 2.67]}, {"element": "Fe", "r": [2.67, 3.3]}, sigma2="geometry"
    )
    got = shell_labels(fe, 0, s)
    assert got["cn_s1_Fe"] == 8 and got["r_s1_Fe"] == pytest.approx(A_FE * np.sqrt(3) / 2)
    assert got["cn_s2_Fe"] == 6 and got["r_s2_Fe"] == pytest.approx(A_FE)
    assert got["sigma2_s1_Fe"] == pytest.approx(0.0, abs=1e-20)  # static, no DEBYE card
    assert list(got) == s.columns()


def test_rock_salt_nio_shells_per_element_from_both_sites():
    nio = prototype_crystal("rocksalt", ["Ni", "O"], A_NIO).atoms
    s = settings(
        {"element": "O", "r": [1.6, 2.5]},
        {"element": "Ni", "r": [2.5, 3.4]},
        {"r": [2.5, 3.4]},
        sigma2="none",
    )
    # Names: windows numbered by distance window, the element appended.
    assert [x.name for x in s.shells] == ["s1_O", "s2_Ni", "s2"]
    ni = int(np.nonzero(nio.numbers == 28)[0][0])
    o = int(np.nonzero(nio.numbers == 8)[0][0])
    table = shell_table(nio, [ni, o], s)
    np.testing.assert_array_equal(table["cn_s1_O"], [6, 0])  # an O site has no O at a/2
    np.testing.assert_array_equal(table["cn_s2_Ni"], [12, 0])
    np.testing.assert_array_equal(table["cn_s2"], [12, 12])  # 12 like neighbours at a/√2
    assert table["r_s1_O"][0] == pytest.approx(A_NIO / 2)
    assert table["r_s2_Ni"][0] == pytest.approx(A_NIO / np.sqrt(2))
    assert np.isnan(table["r_s1_O"][1]) and "sigma2_s1_O" not in table


def test_diamond_germanium_has_4_at_a_sqrt3_over_4():
    ge = prototype_crystal("diamond", ["Ge"], A_GE).atoms
    got = shell_labels(
        ge,
        3,
        settings(
            {"element": "Ge", "r": [2.0, 3.2]},
            {"element": "Ge", "r": [3.2, 4.4]},
            sigma2="geometry",
        ),
    )
    assert got["cn_s1_Ge"] == 4 and got["r_s1_Ge"] == pytest.approx(A_GE * np.sqrt(3) / 4)
    assert got["cn_s2_Ge"] == 12 and got["r_s2_Ge"] == pytest.approx(A_GE / np.sqrt(2))


def test_cluster_surface_sites_lose_neighbours_and_strain_moves_r():
    spec = {
        "name": "t",
        "prototype": "fcc",
        "species": ["Cu"],
        "a": A_CU,
        "strain": {"isotropic": [0.02]},
        "shapes": [{"cut": "fcc_cluster", "shape": "cuboctahedron", "size": 3}],
    }
    ((_, cubo),) = list(crystal_structures(spec))
    s = settings({"element": "Cu", "r": [2.0, 3.05]}, sigma2="geometry")
    table = shell_table(cubo, range(len(cubo)), s)
    # 55-atom cuboctahedron: 1 centre (12), 12 inner shell (12), 12 vertices (5), 24 edges (7),
    # 6 square-face centres (8).
    counts = dict(zip(*np.unique(table["cn_s1_Cu"], return_counts=True), strict=True))
    assert counts == {5.0: 12, 7.0: 24, 8.0: 6, 12.0: 13}
    np.testing.assert_allclose(table["r_s1_Cu"], A_CU * 1.02 / np.sqrt(2))


def test_debye_card_sigma2_is_larchs_correlated_debye_at_the_structures_t_and_theta():
    from larch.xafs.sigma2_models import sigma2_correldebye

    spec = {
        "name": "t",
        "prototype": "fcc",
        "species": ["Cu"],
        "a": A_CU,
        "temperature": {"values": [10, 300, 600], "debye_temperature": 315},
    }
    s = settings({"element": "Cu", "r": [2.0, 3.05]}, {"element": "Cu", "r": [3.05, 3.9]})
    rs_bohr = (3 * A_CU**3 / 4 / (4 * np.pi)) ** (1 / 3) / 0.52917721
    values = []
    for _, atoms in crystal_structures(spec):
        got = shell_labels(atoms, 0, s)
        t = atoms.info["temperature"]
        for name, d in (("s1_Cu", A_CU / np.sqrt(2)), ("s2_Cu", A_CU)):
            ref = sigma2_correldebye(2, t, 315.0, rs_bohr, [0, d], [0, 0], [0, 0], [63.546] * 2)
            assert got[f"sigma2_{name}"] == pytest.approx(ref, rel=1e-3)
        values.append(got["sigma2_s1_Cu"])
    # Zero-point motion at 10 K, nearly linear in T above θ/2: the published Cu shape.
    assert 0.0025 < values[0] < 0.0035 and values[0] < values[1] < values[2]
    assert values[2] / values[1] == pytest.approx(2.0, rel=0.15)


def test_snapshot_sigma2_is_the_variance_of_the_distances_and_matches_einsteins_msrd():
    from larch.xafs.sigma2_models import EINS_FACTOR

    cu = prototype_crystal("fcc", ["Cu"], A_CU).atoms.repeat((3, 3, 3))
    rng = np.random.default_rng(0)
    frames = [displace(cu, 300.0, "einstein", {"Cu": 250.0}, rng) for _ in range(40)]
    s = settings({"element": "Cu", "r": [2.0, 3.05]})
    pooled = pooled_shell_labels(frames, 0, s)
    # Independent displacements: MSRD = ħ²/(2kθ)(1/m1 + 1/m2) coth(θ/2T) (larch's constant).
    m = cu.get_masses()[0]
    msrd = EINS_FACTOR / 250.0 * (2.0 / m) / np.tanh(250.0 / 600.0)
    assert pooled["sigma2_s1_Cu"] == pytest.approx(msrd, rel=0.12)
    assert pooled["cn_s1_Cu"] == 12.0
    # One snapshot: the variance of its own 12 distances, a noisy estimate of the same.
    one = shell_labels(frames[0], 0, s)
    d = frames[0].get_distances(0, range(1, len(cu)), mic=True)
    np.testing.assert_allclose(one["sigma2_s1_Cu"], np.var(d[d < 3.05]), rtol=1e-9)
    assert pooled["r_s1_Cu"] > A_CU / np.sqrt(2)  # disorder lengthens the mean distance


def test_settings_refuse_bad_shells():
    with pytest.raises(ShellError, match="non-empty list"):
        ShellSettings.from_config({})
    with pytest.raises(ShellError, match="unknown key"):
        ShellSettings.from_config({"shells": [{"r": [1.0, 2.0]}]})
    with pytest.raises(ShellError, match="r_min < r_max"):
        settings({"element": "O", "r": [2.5, 1.6]})
    with pytest.raises(ShellError, match="not an element"):
        settings({"element": "Q", "r": [1.0, 2.0]})
    with pytest.raises(ShellError, match="given twice"):
        settings({"element": "O", "r": [1.0, 2.0]}, {"element": "O", "r": [1.0, 2.0]})
    with pytest.raises(ShellError, match="together"):
        settings({"r": [1.0, 2.0]}, temperature=300)
    cluster = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    with pytest.raises(ShellError, match="volume per atom"):
        shell_labels(
            cluster, 0, settings({"r": [2.0, 3.0]}, temperature=300, debye_temperature=315)
        )
    # With a Norman radius given, a bare cluster under a config DEBYE card is labelled.
    got = shell_labels(
        cluster,
        0,
        settings({"r": [2.0, 3.0]}, temperature=300, debye_temperature=315, norman_radius=1.41),
    )
    assert got["sigma2_s1"] == pytest.approx(
        correlated_debye_sigma2(2.5, 300, 315, 1.41, 63.546, 63.546)
    )
