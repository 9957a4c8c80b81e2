"""End to end: the real workflow (real FEFF8L, real Keras) on the tiny config."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml

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
    model_dir = res / "models" / "mlp" / pointer["model_id"]
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


def _copy_experiment(src, dst):
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def _scheduled(proc) -> dict[str, list[str]]:
    """Rule name -> wildcard strings of the jobs a dry run lists."""
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        stripped = line.strip()
        if stripped.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint ")):
            rule = stripped.split()[1].rstrip(":")
            jobs.setdefault(rule, []).append("")
        elif stripped.startswith("wildcards:") and rule:
            jobs[rule][-1] = stripped.split(":", 1)[1].strip()
    return jobs


def test_editing_one_source_reruns_only_its_jobs(tiny_experiment, tmp_path):
    work = _copy_experiment(tiny_experiment, tmp_path / "w")
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["structures"][1]["sizes"] = [3]  # cubo: a different cuboctahedron
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    jobs = _scheduled(snakemake(work, "--configfile", str(work / "config.yaml"), "-n"))
    for rule in ("structures", "sites", "labels", "inputs"):
        assert jobs.get(rule) == ["source=cubo"], (rule, jobs)
    assert "source=octa" not in str(jobs)
    assert {"gather", "train", "evaluate"} <= set(jobs)


def test_code_change_reruns_that_stage(tiny_experiment, tmp_path):
    import shutil

    from conftest import ROOT

    work = _copy_experiment(tiny_experiment, tmp_path / "w")
    code = tmp_path / "code"
    shutil.copytree(
        ROOT / "src" / "mlxas", code / "mlxas", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {"PYTHONPATH": str(code)}
    # Unchanged copy of the code: nothing to do.
    proc = snakemake(work, "--configfile", str(work / "config.yaml"), "-n", env=env)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    with open(code / "mlxas" / "sites" / "labels.py", "a") as fh:
        fh.write("\n# a change in the sites stage\n")
    jobs = _scheduled(snakemake(work, "--configfile", str(work / "config.yaml"), "-n", env=env))
    # labels.py is the code of the labels stage only: the sites and the simulation stay.
    assert sorted(jobs["labels"]) == ["source=cubo", "source=octa"]
    assert not {"structures", "sites", "inputs", "simulate"} & set(jobs), jobs
