"""The error flag of models that read normalised mu(E) (mlxas.error_flag_edge).

A small random forest is fitted by the real trainer on ``tests/data/xanes/
geometry_small.h5`` (FEFF10 K-edge XANES, tests/data/xanes/README.md); the trainer fits
its error flag on perturbed edges of that dataset.  Measured files are only read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _xanes_support import train_small_forest
from mlxas.error_flag_edge import HARSH_EDGE, edge_augments, edge_readings
from mlxas.models.data import opened
from mlxas.models.edge_augment import augment_input
from mlxas.models.numpy_net import load_model
from mlxas.predict.predictor import Predictor
from mlxas.spectra.grids import energy_grid
from mlxas.xanes.augment import AugmentSettings

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "tests/data/xanes/geometry_small.h5"
EXP = ROOT / "tests/data/experimental"


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    augment = {"xanes": {"shift": [-1.0, 1.0], "copies": 1}}
    folder = train_small_forest(tmp_path_factory.mktemp("models"), augment=augment)
    model, card = load_model(folder)
    return folder, model, card


def test_a_xanes_model_gets_a_flag_on_its_class_and_oxidation_state(forest):
    folder, _, _ = forest
    err = json.loads((folder / "ood.json").read_text())["error"]
    assert err["status"] == "fitted"
    assert err["bounds"] == {"oxidation_state": 1.0}  # CN and R of an edge: not bounded
    assert err["classes_right"] == ["geometry"]
    assert err["features"][0] == "p_max_geometry" and err["features"][-1] == "log_distance"
    # the model's own ranges (its shift, the defaults for the rest), then the harsh set
    own, harsh = err["calibration"]["perturbations"]
    assert own["shift"] == [-1.0, 1.0] and own["gauss_fwhm"] == [0.0, 1.5]
    assert harsh["shift"] == list(HARSH_EDGE.shift)
    cal = err["calibration"]
    assert cal["val_wrong_flagged"] >= 0.95 * cal["val_wrong"]


def test_unperturbed_readings_are_wrong_where_the_trainers_metrics_say(forest, monkeypatch):
    """With every perturbation off and no value bound, the wrong readings are the class
    errors: their share is 1 - the accuracy the trainer's metrics recorded."""
    _, model, card = forest
    still = AugmentSettings(*([(0.0, 0.0)] * 6))
    monkeypatch.setattr("mlxas.error_flag_edge.edge_augments", lambda card: [still])
    rng = np.random.default_rng(0)
    with opened(DATASET) as ds:
        for split in ("train", "test"):
            _, wrong, _ = edge_readings(model, card, card["ood"], ds, split, (), 1, rng)
            acc = card["metrics"][split]["geometry"]["accuracy"]
            assert wrong.mean() == pytest.approx(1.0 - acc)
            ox = (("oxidation_state", 1.0),)
            _, wrong_ox, _ = edge_readings(model, card, card["ood"], ds, split, ox, 1, rng)
            assert wrong_ox.sum() >= wrong.sum()
            assert (wrong_ox | wrong == wrong_ox).all()


def test_edges_shifted_far_beyond_training_are_flagged_more_than_clean_ones(forest):
    folder, _, card = forest
    with opened(DATASET) as ds:
        x = np.asarray(ds.features("xanes_channels", "test"), dtype=np.float32)
    grid = energy_grid(card["preprocessing"]["features"]["xanes"])
    far = AugmentSettings(shift=(8.0, 8.0), gauss_fwhm=(0, 0), lorentz_fwhm=(0, 0),
                          scale=(0, 0), slope=(0, 0), noise=(0, 0))  # fmt: skip
    shifted = augment_input(x, grid, far, np.random.default_rng(1))
    with Predictor(folder, jobs=1) as pred:
        clean = pred.flags(x, *pred._run_model(x))["ood"]
        moved = pred.flags(shifted, *pred._run_model(shifted))["ood"]
    assert moved.mean() > clean.mean() and moved.mean() >= 0.8


def test_predict_reports_the_error_score_of_a_measured_edge(forest):
    folder, _, _ = forest
    with Predictor(folder, jobs=1) as pred:
        (res,) = pred.predict([EXP / "kmno4_rt.xdi"])
    assert np.isfinite(res.values["error_score"]) and res.values["error_score"] >= 0
    assert res.values["ood"] == (res.values["ood_score"] > 1.0)


def test_a_model_without_its_own_ranges_is_perturbed_with_the_defaults():
    card = {"preprocessing": {"input": "xanes"}, "training": {"augment": {}}}
    assert edge_augments(card) == [AugmentSettings(), HARSH_EDGE]
