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
from mlxas.error_flag import DEFAULT_BOUNDS
from mlxas.error_flag_edge import (
    EDGE_BOUNDS,
    HARSH_EDGE,
    edge_augments,
    edge_readings,
    unflagged_note,
)
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


def test_a_xanes_model_gets_a_flag_on_its_class_oxidation_state_cn_and_r(forest):
    folder, _, _ = forest
    err = json.loads((folder / "ood.json").read_text())["error"]
    assert err["status"] == "fitted"
    # CN and R bounded as an EXAFS reading is (the one definition), the oxidation state by 1
    assert err["bounds"] == {**dict(DEFAULT_BOUNDS), "oxidation_state": 1.0}
    assert err["bounds"]["cn"] == 1.5 and err["bounds"]["r"] == 0.05
    assert err["classes_right"] == ["geometry"]
    assert err["features"][0] == "p_max_geometry" and err["features"][-1] == "log_distance"
    # the forest's spread over its trees is a feature of each value target
    for t in ("cn", "r", "oxidation_state"):
        assert f"log_{t}_std" in err["features"]
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


class _Relabelled:
    """An opened dataset whose value labels of one split are replaced (the rest read
    through), to place the truth at a chosen distance from the model's reading."""

    def __init__(self, ds, split: str, labels: dict[str, np.ndarray]):
        self._ds, self._split, self._labels = ds, split, labels

    def labels(self, name, split=None):
        if split == self._split and name in self._labels:
            return self._labels[name]
        return self._ds.labels(name, split)

    def __getattr__(self, name):
        return getattr(self._ds, name)


def test_a_reading_whose_r_or_cn_misses_by_more_than_its_bound_is_wrong(forest, monkeypatch):
    """Unperturbed test readings, every label moved to the reading itself but R (or CN)
    moved by just over or just under its bound: exactly the rows beyond it are wrong."""
    from mlxas.models.inference import class_predictions, predict_array, split_targets

    _, model, card = forest
    still = AugmentSettings(*([(0.0, 0.0)] * 6))
    monkeypatch.setattr("mlxas.error_flag_edge.edge_augments", lambda card: [still])
    bounds = dict(EDGE_BOUNDS)
    with opened(DATASET) as ds:
        x = np.asarray(ds.features("xanes_channels", "test"), dtype=np.float32)
        m = split_targets(card, predict_array(model, card, x)[0])
        best = class_predictions(card, m)["geometry"][0]
        codes = np.asarray([list(ds.classes("geometry")).index(b) for b in best])
        beyond = np.arange(len(x)) % 2 == 0
        for t in ("r", "cn"):
            off = np.where(beyond, 1.01, 0.99) * bounds[t]
            labels = {k: m[k].astype(np.float64) for k in ("cn", "r", "oxidation_state")}
            labels[t] = labels[t] + off * np.where(np.arange(len(x)) % 4 < 2, 1.0, -1.0)
            fake = _Relabelled(ds, "test", {**labels, "geometry": codes})
            rng = np.random.default_rng(0)
            _, wrong, _ = edge_readings(model, card, card["ood"], fake, "test", EDGE_BOUNDS, 1, rng)
            assert (wrong == beyond).all(), t


def _note_card(error: dict | None, input_: str = "xanes_channels") -> dict:
    targets = ["geometry", "cn", "r", "oxidation_state"]
    test = {"cn": {"mae": 0.443}, "r": {"mae": 0.0443}, "oxidation_state": {"mae": 0.31}}
    return {
        "preprocessing": {"input": input_, "targets": targets},
        "outputs": {"classes": {"geometry": ["a", "b"]}, "units": {"r": "Å"}},
        "metrics": {"test": test},
        "ood": {"error": error} if error is not None else {},
    }


def test_the_note_names_only_what_the_model_s_own_flag_leaves_unbounded():
    full = {"status": "fitted", "bounds": dict(EDGE_BOUNDS), "classes_right": ["geometry"]}
    assert unflagged_note(_note_card(full)) is None  # everything bounded: no note
    # a model calibrated before CN and R were bounded keeps saying so
    old = {"status": "fitted", "bounds": {"oxidation_state": 1.0}, "classes_right": ["geometry"]}
    assert unflagged_note(_note_card(old)) == (
        "cn, r read from the edge are not covered by the OOD flag (test MAE cn 0.443, r 0.0443 Å)"
    )
    only_r = {**full, "bounds": {"cn": 1.5, "oxidation_state": 1.0}}
    assert unflagged_note(_note_card(only_r)).startswith("r read from the edge are not covered")
    # no fitted flag: nothing is bounded, the class included
    none = {"status": "none", "reason": "no perturbed reading is wrong"}
    for card in (_note_card(none), _note_card(None)):
        assert unflagged_note(card).startswith("geometry, cn, r, oxidation_state read from")
    assert unflagged_note(_note_card(full, input_="chi_k")) is None  # not a XANES model


def test_a_forest_s_tree_spread_is_the_spread_of_its_trees_predictions():
    from sklearn.ensemble import RandomForestRegressor

    from mlxas.models.forest import ForestModel, export_forest
    from mlxas.models.inference import value_spread

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = x[:, 0] + 0.3 * rng.normal(size=200)
    est = RandomForestRegressor(n_estimators=12, random_state=0).fit(x, y)
    model = ForestModel(["r"], {"r": export_forest(est, 1)}, slice(0, 5))
    want = np.std([t.predict(x[:20]) for t in est.estimators_], axis=0)
    got = model.tree_spread(x[:20])["r"][:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert (got > 0).any()
    card = {"outputs": {"slices": {"r": [0, 1]}}}
    np.testing.assert_allclose(value_spread(model, card, x[:20], {})["r"], want, rtol=1e-6)
    ensemble = {"r": np.ones(20)}  # a model with members keeps its own spread
    assert value_spread(model, card, x[:20], ensemble) is ensemble


def test_the_spread_is_only_computed_for_a_flag_fitted_on_it():
    from mlxas.error_flag import flag_spread

    class NoWalk:
        def tree_spread(self, x, heads=None):
            raise AssertionError("walked the trees for a flag that does not read the spread")

    card = {"outputs": {"slices": {"r": [0, 1]}}}
    old = {"error": {"status": "fitted", "features": ["r", "log_distance"]}}
    assert flag_spread(NoWalk(), card, old, np.zeros((2, 3)), {}) == {}
    new = {"error": {"status": "fitted", "features": ["r", "log_r_std", "log_distance"]}}
    with pytest.raises(AssertionError, match="walked the trees"):
        flag_spread(NoWalk(), card, new, np.zeros((2, 3)), {})
