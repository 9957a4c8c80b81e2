"""`mlxas train` and `mlxas evaluate` report bad model settings and bad models in one line."""

from __future__ import annotations

import json

import pytest

from mlxas.cli import main

pytestmark = pytest.mark.workflow


def test_train_with_an_input_range_outside_the_grid_is_one_error_line(
    tiny_experiment, tmp_path, capsys
):
    dataset = tiny_experiment / "results" / "tiny" / "dataset.h5"
    spec = {"name": "bad", "kind": "mlp", "input_range": [30.0, 40.0], "epochs": 1}
    out = ["--store", str(tmp_path / "bad"), "--pointer", str(tmp_path / "bad.json")]
    rc = main(["train", "--spec", json.dumps(spec), "--dataset", str(dataset), *out])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("mlxas: error: input_range [30.0, 40.0] keeps fewer than 2 points")
    assert not (tmp_path / "bad.json").exists()


def test_evaluate_refuses_a_legacy_model_in_one_line(tiny_experiment, tmp_path, capsys):
    dataset = tiny_experiment / "results" / "tiny" / "dataset.h5"
    legacy = tmp_path / "model.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n")
    rc = main(["evaluate", "--spec", '{"primary": null}', "--dataset", str(dataset),
               "--models", str(legacy), "--results", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0] == (
        f"mlxas: error: {legacy}: legacy HDF5 Keras models are not loaded; "
        "mlxas only loads .keras models"
    )
