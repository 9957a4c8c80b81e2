"""The experiments written on the crystal source (config/experiments/*.yaml), read
through the workflow contract (mlxas.workflow.load_experiment: schema, typed source,
label sets, FEFF engine) and built by the registered ``kind: crystal`` source.

Each experiment must build the structures its entry describes, hold its absorber, carry
provenance, give every structure its own DEBYE card in the FEFF input the engine writes,
cover 10-600 K, and its bulk-like sites must have the textbook shells of its crystal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mlxas.sites.shells import shell_table
from mlxas.sites.table import choose_sites
from mlxas.structures.crystal import crystal_structure_id
from mlxas.workflow.checks import load_experiment

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "config" / "experiments"

#: Shells of a bulk absorber (shell label: CN) from crystal geometry.
BULK_SHELLS = {
    "foil_cu": {"s1_Cu": 12, "s2_Cu": 6},
    "foil_ni": {"s1_Ni": 12, "s2_Ni": 6},
    "foil_pt": {"s1_Pt": 12, "s2_Pt": 6},
    "foil_au": {"s1_Au": 12, "s2_Au": 6},
    "foil_fe": {"s1_Fe": 8, "s2_Fe": 6},
    "nio": {"s1_O": 6, "s2_Ni": 12},
    "ge_crystal": {"s1_Ge": 4, "s2_Ge": 12},
}


def load(name: str) -> dict:
    return yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())


@pytest.fixture(scope="module", params=sorted(BULK_SHELLS))
def experiment(request):
    exp = load_experiment([EXPERIMENTS / f"{request.param}.yaml"])
    (source,) = exp.sources.values()
    images = [atoms for _, _, _, atoms in source.generate(None)]
    return request.param, exp, load(request.param), images


def _count(values) -> int:
    """How many values a ``{range, steps|draws}`` or list entry gives."""
    if isinstance(values, dict):
        return int(values.get("steps") or values["draws"])
    return len(values) if isinstance(values, list) else 1


def test_experiment_builds_with_provenance_and_a_temperature_axis(experiment):
    _, exp, cfg, images = experiment
    (entry,) = cfg["structures"]
    assert entry["kind"] == "crystal"
    iso = entry["strain"]["isotropic"]
    expected = _count(iso) * len(entry["shapes"]) * _count(entry["temperature"]["values"])
    assert len(images) == expected
    assert len({crystal_structure_id(a) for a in images}) == len(images)
    temps = np.array([a.info["temperature"] for a in images])
    assert temps.min() < 100 and temps.max() > 500 and np.all((temps >= 10) & (temps <= 600))
    strains = sorted({round(a.info["strain_a"], 6) for a in images})
    np.testing.assert_allclose(strains, np.linspace(*iso["range"], iso["steps"]), atol=1e-9)
    assert "DEBYE" not in cfg["feff"]["cards"]  # the structures bring it
    for atoms in images[:: max(1, len(images) // 6)]:
        assert exp.absorber in atoms.get_chemical_symbols()
        assert atoms.info["thermal"] == "debye_card" and atoms.info["parent"]
        site = atoms.get_chemical_symbols().index(exp.absorber)
        text = exp.engine.input_text(atoms, site, "test")
        (debye,) = [line.split() for line in text.splitlines() if line.startswith("DEBYE")]
        assert float(debye[1]) == pytest.approx(atoms.info["temperature"], abs=1e-3)
        assert float(debye[2]) == pytest.approx(atoms.info["debye_temperature"], abs=1e-3)


def test_bulk_sites_have_the_crystal_shells(experiment):
    name, exp, _cfg, images = experiment
    shells = exp.labels.settings["shells"]
    columns = set(shells.columns()) | {"cn", "r"}
    for spec in exp.models.values():
        assert set(spec.targets) <= columns, f"{name}: targets {spec.targets} not among labels"
    z = {"Cu": 29, "Ni": 28, "Pt": 78, "Au": 79, "Fe": 26, "Ge": 32}[exp.absorber]
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
    exp = load_experiment([EXPERIMENTS / "cu_nanoparticles.yaml"])
    (source,) = exp.sources.values()
    images = [a for _, _, _, a in source.generate(None)]
    assert sorted(len(a) for a in images) == sorted(
        [6, 19, 44, 85, 13, 55, 38, 63, 4, 10, 20, 35, 56, 43, 79, 87, 14, 68, 92, 68]
    )
    chosen = choose_sites(images, "Cu", exp.sites)
    assert sum(len(idx) for idx, _ in chosen) == 84
    assert sum(int(m.sum()) for _, m in chosen) == sum(len(a) for a in images)


def test_every_crystal_experiment_passes_the_config_check():
    """Each shipped experiment with a crystal source is valid as the workflow reads it
    (the refusals of bad crystal entries are in tests/test_config_contract.py)."""
    names = [
        p.stem
        for p in sorted(EXPERIMENTS.glob("*.yaml"))
        if any(s.get("kind") == "crystal" for s in load(p.stem)["structures"])
    ]
    assert len(names) == 8
    for name in names:
        exp = load_experiment([EXPERIMENTS / f"{name}.yaml"])
        assert [s.kind for s in exp.sources.values()] == ["crystal"]
