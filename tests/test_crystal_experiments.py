"""The experiments written on the crystal source (config/experiments/*.yaml), loaded as
YAML and built through mlxas.structures.crystal directly (the workflow schema learns the
source kind when it is registered).

Each experiment must build, hold its absorber, carry provenance, give FEFF cards the
engine accepts, cover 10-600 K where it sweeps temperature, and its bulk-like sites must
have the textbook shells of its crystal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mlxas.feff.cards import merged_cards
from mlxas.feff.temperature import structure_cards
from mlxas.sites.shells import ShellSettings, shell_table
from mlxas.sites.table import choose_sites
from mlxas.structures.crystal import crystal_structure_id, crystal_structures

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "config" / "experiments"

#: Shells of a bulk absorber (shell name: CN) from crystal geometry.
BULK_SHELLS = {
    "foil_cu": {"Cu1": 12, "Cu2": 6},
    "foil_ni": {"Ni1": 12, "Ni2": 6},
    "foil_pt": {"Pt1": 12, "Pt2": 6},
    "foil_fe": {"Fe1": 8, "Fe2": 6},
    "nio": {"O1": 6, "Ni2": 12},
    "ge_crystal": {"Ge1": 4, "Ge2": 12},
}


def load(name: str) -> dict:
    return yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())


@pytest.fixture(scope="module", params=sorted(BULK_SHELLS))
def experiment(request):
    cfg = load(request.param)
    images = [a for spec in cfg["structures"] for _, a in crystal_structures(spec)]
    return request.param, cfg, images


def test_experiment_builds_with_provenance_and_a_temperature_axis(experiment):
    _, cfg, images = experiment
    assert all(s["kind"] == "crystal" for s in cfg["structures"]) and len(cfg["structures"]) == 1
    assert len(images) == 104  # 13 strains x 4 shapes x 2 temperatures
    assert len({crystal_structure_id(a) for a in images}) == len(images)
    temps = np.array([a.info["temperature"] for a in images])
    assert temps.min() < 30 and temps.max() > 570 and np.all((temps >= 10) & (temps <= 600))
    strains = sorted({round(a.info["strain_a"], 6) for a in images})
    np.testing.assert_allclose(strains, np.linspace(-0.03, 0.03, 13), atol=1e-9)
    for atoms in images:
        assert cfg["absorber"] in atoms.get_chemical_symbols()
        assert atoms.info["thermal"] == "debye_card" and atoms.info["parent"]
        feff = cfg["feff"]
        cards = merged_cards(
            feff["engine"], cfg["edge"], {**feff["cards"], **structure_cards(atoms)}
        )
        assert cards["DEBYE"][0] == pytest.approx(atoms.info["temperature"], abs=1e-3)
        assert "DEBYE" not in feff["cards"]  # the structures bring it


def test_bulk_sites_have_the_crystal_shells(experiment):
    name, cfg, images = experiment
    shells = ShellSettings.from_config(cfg["labels"])
    targets = cfg["models"][0]["targets"]
    columns = set(shells.columns()) | {"cn", "r"}
    assert set(targets) <= columns, f"{name}: targets {targets} not among the labels"
    z = {"Cu": 29, "Ni": 28, "Pt": 78, "Fe": 26, "Ge": 32}[cfg["absorber"]]
    bulk = [
        a for a in images if a.info["shape"] in ("bulk",) or a.info["shape"].startswith("sphere")
    ]
    atoms = bulk[0]
    centre = int(
        np.argmin(
            np.where(
                atoms.numbers == z,
                np.linalg.norm(atoms.positions - atoms.positions.mean(0), axis=1),
                np.inf,
            )
        )
    )
    got = shell_table(atoms, [centre], shells)
    for shell, cn in BULK_SHELLS[name].items():
        assert got[f"cn_{shell}"][0] == cn, (name, shell)
        assert got[f"sigma2_{shell}"][0] > 0.001  # the DEBYE card's sigma² at >= 10 K


def test_cu_nanoparticles_rewrite_keeps_the_published_20_crystals_and_84_sites():
    cfg = load("cu_nanoparticles")
    ((spec),) = cfg["structures"]
    images = [a for _, a in crystal_structures(spec)]
    assert sorted(len(a) for a in images) == sorted(
        [6, 19, 44, 85, 13, 55, 38, 63, 4, 10, 20, 35, 56, 43, 79, 87, 14, 68, 92, 68]
    )
    chosen = choose_sites(images, "Cu", cfg["sites"])
    assert sum(len(idx) for idx, _ in chosen) == 84
    assert sum(int(m.sum()) for _, m in chosen) == sum(len(a) for a in images)


def test_schema_fragment_accepts_the_experiments_and_refuses_bad_entries():
    import jsonschema

    fragment = yaml.safe_load(
        (ROOT / "src" / "mlxas" / "schemas" / "sources" / "crystal.schema.yaml").read_text()
    )
    validator = jsonschema.Draft202012Validator({"type": "object", "allOf": [fragment]})
    entries = [
        s
        for path in sorted(EXPERIMENTS.glob("*.yaml"))
        for s in yaml.safe_load(path.read_text())["structures"]
        if s.get("kind") == "crystal"
    ]
    assert len(entries) == 7
    for entry in entries:
        assert not list(validator.iter_errors(entry)), entry["name"]
    bad = [
        {"name": "x", "kind": "crystal", "prototype": "fcc", "amcsd": "iron"},  # two parents
        {"name": "x", "kind": "crystal"},  # no parent
        {
            "name": "x",
            "kind": "crystal",
            "prototype": "fcc",
            "strain": {"isotropic": {"range": [0, 1]}},
        },
        {"name": "x", "kind": "crystal", "amcsd": "iron", "defects": [{"vacancies": {"Fe": 1.5}}]},
        {"name": "x", "kind": "crystal", "amcsd": "iron", "shapes": [{"cut": "blob"}]},
    ]
    for entry in bad:
        assert list(validator.iter_errors(entry)), entry
