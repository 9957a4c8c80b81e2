"""``mlxas models facts``: a bundled model's coverage (label ranges of its training data,
k-range, temperatures) and its readings of measured files, beside its pointer and out of
its model id; ``mlxas models show`` prints them and says when they are stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlxas.cli import main as cli_main


@pytest.fixture()
def bundled_tiny(tiny_experiment, tmp_path) -> tuple[Path, Path]:
    """A bundled folder holding the tiny workflow's models as experiment ``tiny``, and
    the dataset they were trained on."""
    root = tmp_path / "models"
    results = tiny_experiment / "results" / "tiny"
    shutil.copytree(results / "models", root / "tiny", symlinks=True)
    return root, results / "dataset.h5"


def _measured(tmp_path: Path, model_id: str) -> Path:
    """A predict_measured-like JSON with one file read by experiment ``tiny``."""
    shell = {"shell": 1, "truth": {"cn": 12.0, "element": "Cu", "r": 2.556},
             "bound": {"cn_abs_error_max": 0.5, "r_abs_error_max": 0.02},
             "model": {"cn": 11.2, "cn_std": 0.3, "r": 2.55, "r_std": 0.01, "sigma2": 0.008},
             "cn_met": False, "r_met": True}  # fmt: skip
    data = {"date": "2026-12-07", "command": "bench", "files": {
        "cu.xdi": {"file": "cu.xdi", "truth": "fcc", "experiment": "tiny", "not_met": ["cn"],
                   "spectra": [{"model_id": model_id, "ood": False, "ood_score": 0.4,
                                "shells": [shell]}]},
        "ni.xdi": {"file": "ni.xdi", "experiment": "other", "spectra": []}}}  # fmt: skip
    path = tmp_path / "measured.json"
    path.write_text(json.dumps(data))
    return path


def test_facts_hold_the_training_ranges_and_the_measured_readings(bundled_tiny, tmp_path, capsys):
    import mlxas.dataset as mds
    from mlxas.models.card import resolve_model_dir
    from mlxas.predict.bundled import list_models

    root, dataset = bundled_tiny
    (model,) = list_models(root)
    mid = model.model_id
    argv = ["models", "facts", "tiny", str(dataset), "--models", str(root)]
    assert cli_main([*argv, "--measured", str(_measured(tmp_path, mid))]) == 0
    facts = json.loads((root / "tiny" / "mlp.facts.json").read_text())
    assert facts["model_id"] == mid and facts["model"] == "tiny/mlp"
    with mds.open(dataset) as ds:
        for target in ("cn", "r"):
            labels = ds.labels(target, "train")
            assert facts["coverage"]["targets"][target] == pytest.approx(
                [float(np.min(labels)), float(np.max(labels))], abs=1e-6
            )
        assert facts["coverage"]["train_spectra"] == ds.sizes["train"]
    (f,) = facts["measured"]["files"]  # the other experiment's file is not copied
    assert f["file"] == "cu.xdi" and f["shells"][0]["read"]["cn"] == 11.2
    # The facts are not part of the model: its folder and id are unchanged.
    assert resolve_model_dir(root / "tiny" / "mlp.json").name == mid
    capsys.readouterr()
    assert cli_main(["models", "show", "tiny", "--models", str(root)]) == 0
    out = capsys.readouterr().out
    assert "cu.xdi shell 1" in out and "CN 11.20 (truth 12, NOT met)" in out
    assert "R 2.550 Å (truth 2.556, met)" in out and "range cn" in out


def test_facts_refuse_another_dataset_or_another_model_id(bundled_tiny, tmp_path, capsys):
    import h5py

    root, dataset = bundled_tiny
    other = tmp_path / "other.h5"
    shutil.copy(dataset, other)
    with h5py.File(other, "r+") as h:  # a dataset built from other inputs
        h.attrs["dataset_hash"] = "0000000000000000"
    assert cli_main(["models", "facts", "tiny", str(other), "--models", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"{other}: dataset hash 0000000000000000, but tiny/mlp was trained on" in err
    argv = ["models", "facts", "tiny", str(dataset), "--models", str(root)]
    code = cli_main([*argv, "--measured", str(_measured(tmp_path, "0123456789abcdef"))])
    assert code == 2
    err = capsys.readouterr().err
    assert "cu.xdi was read with model id 0123456789abcdef" in err
    assert not (root / "tiny" / "mlp.facts.json").exists()
    # Stale facts (another id) are said to be stale.
    (root / "tiny" / "mlp.facts.json").write_text(json.dumps({"model_id": "feedfacefeedface"}))
    assert cli_main(["models", "show", "tiny", "--models", str(root)]) == 0
    assert "for model id feedfacefeedface, not this one: stale" in capsys.readouterr().out
