"""Hyperparameter search: Optuna trials over layers, regularisation and input representation."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from mlxas.models.spec import ModelSpec
from mlxas.models.tune import TuneSettings, suggest_spec, tune
from mlxas.workflow.checks import check_config
from mlxas.workflow.layout import Layout
from synthetic_exafs import SyntheticDataset

SPACE = {
    "n_layers": [1, 2],
    "units": [8, 32],
    "learning_rate": [0.001, 0.01],
    "l2": [1e-8, 1e-4],
    "dropout": [0.0, 0.2],
    "batch_size": [16, 32],
    "inputs": [
        {"input": "chi_k", "features": {"kweight": 1}},
        {"input": "ft_mag"},
    ],
}


def test_suggest_spec_puts_sampled_values_into_the_entry():
    base = ModelSpec.from_config({"name": "m", "kind": "mlp"})
    trial = optuna.trial.FixedTrial(
        {"n_layers": 2, "units_0": 20, "units_1": 10, "learning_rate": 0.002, "l2": 1e-6,
         "dropout": 0.1, "batch_size": 16, "input_choice": 1}
    )  # fmt: skip
    spec = suggest_spec(trial, base, SPACE)
    assert spec.params["hidden"] == [20, 10]
    assert spec.learning_rate == 0.002 and spec.batch_size == 16
    assert spec.params["l2"] == 1e-6 and spec.params["dropout"] == 0.1
    assert spec.input == "ft_mag" and spec.features == {}
    # Keys left out of the space keep the entry's values.
    kept = suggest_spec(optuna.trial.FixedTrial({}), base, {"batch_size": None})
    assert kept == base


class _Predicts:
    """Stands in for a model: returns fixed predictions."""

    def __init__(self, pred):
        self.pred = pred

    def predict_on_batch(self, x):
        return self.pred


def test_validation_mse_is_in_units_of_the_training_spread():
    from mlxas.models.train import validation_mse
    from mlxas.models.training_data import TrainingData
    from synthetic_exafs import features_cfg

    rng = np.random.default_rng(0)
    y_tr = {"cn": rng.normal(8, 2, 500), "r": rng.normal(2.5, 0.02, 500)}
    y_va = {"cn": rng.normal(8, 2, 200), "r": rng.normal(2.5, 0.02, 200)}
    x = np.zeros((500, 3))
    data = TrainingData.from_arrays({"train": (x, y_tr), "val": (x[:200], y_va)}, features_cfg())
    truth = np.stack([y_va["cn"], y_va["r"]], axis=1)
    assert validation_mse(_Predicts(truth), data) == pytest.approx(0, abs=1e-9)  # float32 labels
    # Predicting the training mean costs about one variance per target, whatever its unit.
    mean = np.tile([y_tr["cn"].mean(), y_tr["r"].mean()], (200, 1))
    assert validation_mse(_Predicts(mean), data) == pytest.approx(1.0, abs=0.2)
    # Ensemble output (N, members, columns): the member mean is scored.
    stacked = np.stack([truth + 1e-3, truth - 1e-3], axis=1)
    assert validation_mse(_Predicts(stacked), data) == pytest.approx(0, abs=1e-9)


def test_tune_writes_best_entry_and_trials(tmp_path):
    ds = SyntheticDataset(n=200, seed=5)
    settings = TuneSettings(trials=3, epochs=2, seed=0, space=SPACE)
    base = ModelSpec.from_config({"name": "mlp", "kind": "mlp", "jit_compile": False})
    layout = Layout(tmp_path)
    res = tune(ds, settings, base, layout)
    best = json.loads(layout.tune_best.read_text())
    assert best["n_trials"] == 3 and best["n_complete"] >= 1
    assert best["best_value"] == pytest.approx(res["best_value"]) and best["best_value"] > 0
    trials = pd.read_csv(layout.tune_trials)
    assert len(trials) == 3 and {"value", "state", "params_learning_rate"} <= set(trials.columns)
    assert trials["value"].min() == pytest.approx(best["best_value"])
    # The best entry is a valid model entry of the config, ready to paste.
    entry = yaml.safe_load(layout.tune_entry.read_text())[0]
    assert entry == best["model_entry"] and entry["name"] == "mlp_tuned"
    assert len(entry["params"]["hidden"]) == best["best_params"]["n_layers"]
    exp = check_config(
        {"experiment": "t", "absorber": "Cu", "models": [entry],
         "structures": [{"name": "s", "kind": "files", "paths": ["x.xyz"]}]}
    )  # fmt: skip
    assert exp.models["mlp_tuned"].learning_rate == entry["learning_rate"]


@pytest.mark.workflow
def test_tune_command_and_rule_on_the_tiny_workflow(tiny_experiment, tmp_path):
    from conftest import TINY_CONFIG, snakemake, write_config
    from mlxas.cli import main

    dataset = tiny_experiment / "results" / "tiny" / "dataset.h5"
    spec = {"tune": {"trials": 2, "epochs": 2, "seed": 1, "timeout": None,
                     "space": {"inputs": None, "batch_size": [8]}},
            "model": {**TINY_CONFIG["models"][0], "jit_compile": False}}  # fmt: skip
    rc = main(["tune", "--spec", json.dumps(spec), "--dataset", str(dataset),
               "--results", str(tmp_path)])  # fmt: skip
    assert rc == 0
    best = json.loads(Layout(tmp_path).tune_best.read_text())
    assert best["n_trials"] == 2 and best["model_entry"]["input"] == "chi_k"
    # With tune.enabled, `all` schedules the tune rule (dry run on a copy of the config).
    work = tmp_path / "work"
    work.mkdir()
    (work / "results").symlink_to(tiny_experiment / "results")
    cfg = write_config(work, {**TINY_CONFIG, "tune": {"enabled": True, "trials": 2}})
    proc = snakemake(work, "--configfile", str(cfg), "-n")
    assert "rule tune:" in proc.stdout and "tune/best.json" in proc.stdout
