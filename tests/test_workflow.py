"""End to end: the real workflow (real FEFF8L, real Keras) on the tiny config."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import TINY_CONFIG, snakemake
from mlxas.sites import equivalent_sites
from mlxas.structures.nanoparticles import nanoparticle

pytestmark = pytest.mark.workflow


def expected_sites() -> int:
    n = 0
    for src in TINY_CONFIG["structures"]:
        for size in src["sizes"]:
            atoms = nanoparticle("Cu", src["shape"], size, src["lattice_constant"])
            n += len(equivalent_sites(atoms))
    return n


def test_dataset_holds_every_site(tiny_experiment):
    res = tiny_experiment / "results" / "tiny"
    with h5py.File(res / "dataset.h5", "r") as f:
        ids = f["sites/site_id"].asstr()[()]
        assert len(ids) == len(set(ids)) == expected_sites()
        chi = f["examples/features/chi_k"][()]
        assert np.isfinite(chi).all() and np.abs(chi).max() > 0
        cn = f["examples/labels/cn"][()]
        # Cluster CNs are integers between a vertex (4 for an octahedron) and bulk (12).
        assert cn.min() >= 3 and cn.max() == 12 and np.allclose(cn, np.round(cn))
        assert set(f["examples/split"][()]) == {0, 1, 2}
        assert len(f["failures/site_id"]) == 0


def test_card_and_metrics(tiny_experiment):
    res = tiny_experiment / "results" / "tiny"
    pointer = json.loads((res / "models" / "mlp.json").read_text())
    model_dir = res / "models" / pointer["model_id"]
    card = json.loads((model_dir / "card.json").read_text())
    assert (model_dir / "model.keras").is_file()
    assert (res / "models" / "latest").resolve() == model_dir.resolve()
    with h5py.File(res / "dataset.h5", "r") as f:
        assert card["dataset"]["hash"] == f.attrs["dataset_hash"]
    assert card["preprocessing"]["kweight"] == 2
    assert len(card["preprocessing"]["input_mean"]) == len(card["preprocessing"]["grid"])
    assert card["config"]["epochs"] == 3 and card["training"]["epochs_run"] <= 3
    metrics = json.loads((res / "evaluation" / "metrics.json").read_text())
    cn = metrics["models"]["mlp"]["targets"]["cn"]
    assert cn["n"] == metrics["n_test"] > 0
    assert cn["mae"] >= 0 and np.isfinite(cn["mae"])
    assert (res / "evaluation" / "parity_cn.png").stat().st_size > 1000


def test_second_dry_run_schedules_nothing(tiny_experiment):
    proc = snakemake(tiny_experiment, "--configfile", str(tiny_experiment / "config.yaml"), "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
