"""XANES geometry as stages of the workflow: the ``prototypes`` structure source, the
``marked`` sites mode, the ``geometry`` label set and FEFF10 XANES through the FEFF10
engine to the edge features (real pymatgen ChemEnv, BVAnalyzer and FEFF10)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.data import atomic_numbers

from mlxas.engines.base import EngineError, ItemInput, engine_class
from mlxas.errors import ConfigError
from mlxas.sites.labelsets import LabelSettings, compute_labels
from mlxas.sites.table import SitesSettings, site_table
from mlxas.structures.sources import source_from_config
from mlxas.xanes.labels import GEOMETRY_CLASSES

warnings.filterwarnings("ignore", module="pymatgen")
ROOT = Path(__file__).parents[1]
CONFIG = ROOT / "config/experiments/xanes_geometry.yaml"


def _images(prototypes: list[str], absorbers: list[str]):
    """Ideal crystals of the ``prototypes`` source, as the structures stage stores them."""
    source = source_from_config(
        {"name": "p", "kind": "prototypes", "prototypes": prototypes, "absorbers": absorbers,
         "snapshots": {"tetrahedral": 0, "octahedral": 0}}
    )  # fmt: skip
    images = []
    for name, frame, _origin, atoms in source.generate(None):
        atoms.info.update(structure_id=f"{name}-{frame}", name=name, source="p", frame=frame)
        images.append(atoms)
    return images


@pytest.fixture(scope="module")
def crystals():
    return {a.info["name"]: a for a in _images(["rock_salt", "zinc_blende"], ["Ni", "Zn"])}


def test_source_marks_one_atom_per_role_with_its_multiplicity(crystals):
    assert {"NiO_rock_salt", "ZnS_zinc_blende", "NiS_zinc_blende"} <= set(crystals)
    assert not any(n.startswith(("MnO", "CoO")) for n in crystals)  # absorbers: Ni, Zn only
    for atoms in crystals.values():
        marks = atoms.arrays["absorbing"]
        metal = np.isin(atoms.numbers, [atomic_numbers["Ni"], atomic_numbers["Zn"]])
        # Conventional cubic cells: 4 metal atoms, all of one Wyckoff orbit.
        assert metal.sum() == 4 and np.count_nonzero(marks) == 1 and marks.sum() == 4
        assert metal[np.argmax(marks)]
        states = atoms.arrays["oxidation_state"]
        assert set(states[metal]) == {2.0} and set(states[~metal]) == {-2.0}


def test_marked_sites_take_the_marked_atoms_of_every_element(crystals):
    images = list(crystals.values())
    table = site_table(images, None, SitesSettings(mode="marked"))
    assert len(table) == len(images) and set(table["multiplicity"]) == {4}
    assert set(table["element"]) == {"Ni", "Zn"}
    only_ni = site_table(images, "Ni", SitesSettings(mode="marked"))
    assert set(only_ni["element"]) == {"Ni"} and len(only_ni) == 2  # NiO and NiS
    plain = images[0].copy()
    del plain.arrays["absorbing"]
    with pytest.raises(ConfigError, match="no per-atom array 'absorbing'"):
        site_table([plain], None, SitesSettings(mode="marked"))


def _labels(images, sites):
    settings = LabelSettings.from_config({"sets": ["geometry"], "geometry": {}})
    table, meta = compute_labels(images, sites, None, settings)
    return table.set_index(sites["structure_id"].to_numpy()), meta


def test_geometry_labels_match_the_crystal_geometry(crystals):
    images = list(crystals.values())
    table, meta = _labels(images, site_table(images, None, SitesSettings(mode="marked")))
    assert meta["columns"]["geometry"]["classes"] == list(GEOMETRY_CLASSES)
    assert meta["columns"]["geometry"]["target"] and meta["columns"]["r"]["unit"] == "Angstrom"
    for sid, row in table.iterrows():
        atoms = next(a for a in images if a.info["structure_id"] == sid)
        a = atoms.cell.lengths()[0]
        if "rock_salt" in sid:  # octahedral: 6 anions at a/2
            want = ("octahedral", 6, a / 2)
        else:  # zinc blende, tetrahedral: 4 anions at a·√3/4
            want = ("tetrahedral", 4, a * np.sqrt(3) / 4)
        assert GEOMETRY_CLASSES[row["geometry"]] == want[0], sid
        assert row["cn"] == want[1] and row["r"] == pytest.approx(want[2], abs=1e-4)
        assert row["csm"] == pytest.approx(0.0, abs=1e-3) and row["oxidation_state"] == 2.0


def test_without_source_states_bvanalyzer_gives_the_oxidation_state(crystals):
    """A structure without the source's states (kind files): pymatgen's BVAnalyzer."""
    nio = crystals["NiO_rock_salt"].copy()
    del nio.arrays["oxidation_state"]
    table, _ = _labels([nio], site_table([nio], None, SitesSettings(mode="marked")))
    row = table.iloc[0]
    assert row["oxidation_state"] == 2.0 and GEOMETRY_CLASSES[row["geometry"]] == "octahedral"


def test_xanes_config_refuses_chi_features():
    from mlxas.workflow.checks import load_experiment

    exp = load_experiment([CONFIG])
    assert exp.engine.name == "feff10" and exp.engine.settings.spectroscopy == "xanes"
    assert exp.sites.mode == "marked" and exp.absorber is None and exp.edge == "K"
    with pytest.raises(ConfigError, match="computes no chi"):
        load_experiment([CONFIG], {"features": {"chi_k": True}})


def test_feff10_xanes_of_nio_through_the_engine(tmp_path, crystals):
    """FEFF10 XANES (FMS 3 Å, no SCF: a few seconds) of NiO through the engine interface
    to the edge features of dataset.h5."""
    from xraydb import xray_edge

    from mlxas.workflow.checks import load_experiment

    features = load_experiment([CONFIG]).dataset.features
    cls = engine_class("feff10")
    engine = cls(cls.settings_from_config(
        {"spectroscopy": "xanes", "cards": {"FMS": 3.0, "SCF": None, "XANES": 5.0},
         "cluster_radius": 4.5},
        absorber=None, edge="K"))  # fmt: skip
    nio = crystals["NiO_rock_salt"]
    index = int(np.argmax(nio.arrays["absorbing"]))
    text = engine.input_text(nio, index, "nio")
    assert "FMS 3.0" in text.splitlines() and "XANES 5.0" in text.splitlines()
    result = engine.run(ItemInput("nio", "s", 0, text, "h"), tmp_path, timeout=300)
    assert result.ok, (result.reason, result.detail)
    assert engine.check_item(result, features) is None
    assert abs(result.scalars["e0"] - xray_edge("Ni", "K").energy) < 15
    feats = engine.featurize([result], features)
    assert "chi" not in feats and set(engine.signal_names(features)) <= set(feats)
    grid = engine.feature_axes(features)["xanes_channels"][0].values
    x = feats["xanes_channels"]
    assert x.shape == (1, len(grid), 2) and grid[0] == -20 and grid[-1] == 60
    assert np.mean(x[0, grid >= 20, 0]) == pytest.approx(1.0, abs=0.05)
    assert np.max(np.abs(x[0, grid < -10, 0])) < 0.1
    again = engine.featurize_signals({k: v for k, v in feats.items()
                                      if k in engine.signal_names(features)}, features)  # fmt: skip
    assert np.allclose(again["xanes_channels"], x)
    with pytest.raises(EngineError, match="computes no chi"):
        engine.check_features({**features, "chi_k": True})


def test_split_by_name_keeps_a_compounds_structures_together():
    """``group_by: name``: the crystal and snapshots of one compound (one name, several
    structures) share a split; the same name in two sources are two groups."""
    import pandas as pd

    from mlxas.dataset.splitting import group_keys, split_groups

    names = [f"c{i}" for i in range(12) for _ in range(5)]  # 12 compounds x 5 structures
    sites = pd.DataFrame({"source": ["p"] * 60, "name": names,
                          "structure_id": [f"s{i}" for i in range(60)]})  # fmt: skip
    keys = group_keys(sites, "name")
    assert len(set(keys)) == 12
    split = split_groups(keys, [0.5, 0.25, 0.25], seed=0)
    for name in set(names):
        assert len(set(split[sites["name"].to_numpy() == name])) == 1
    assert sorted(np.bincount(split)) == [15, 15, 30]
    by_structure = split_groups(group_keys(sites, "structure"), [0.5, 0.25, 0.25], seed=0)
    assert any(len(set(by_structure[sites["name"].to_numpy() == n])) > 1 for n in set(names))
    two = pd.concat([sites, sites.assign(source="q")])
    assert len(set(group_keys(two, "name"))) == 24
