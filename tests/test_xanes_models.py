"""Geometry models and classification metrics: training, saving with hashes, splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlxas.xanes.augment import AugmentSettings
from mlxas.xanes.evaluate import (
    classification_metrics,
    grouped_split,
    leave_one_group_out,
    plot_confusion,
    regression_metrics,
)
from mlxas.xanes.features import XanesFeatureSettings
from mlxas.xanes.labels import GEOMETRY_CLASSES
from mlxas.xanes.models import fit, load, resolve_spec

GRID = XanesFeatureSettings().grid
TET, OCT, SQP = (GEOMETRY_CLASSES.index(c) for c in ("tetrahedral", "octahedral", "square_planar"))


def _spectra(n_per: int, seed: int):
    """Three classes told apart by what separates them in real K-edge XANES: an intense
    pre-edge peak (tetrahedral), a strong white line (octahedral), a low-energy shoulder
    on the rising edge (square planar); random edge widths and peak positions."""
    rng = np.random.default_rng(seed)
    rows, cls, cn, r, ox, groups = [], [], [], [], [], []
    for c, (k, n_c, r_c, ox_c) in enumerate(
        [(TET, 4, 1.8, 5), (OCT, 6, 2.05, 3), (SQP, 4, 1.95, 2)]
    ):
        for i in range(n_per):
            w = rng.uniform(0.6, 1.2)
            y = 0.5 + np.arctan(GRID / w) / np.pi
            if c == 0:
                y += rng.uniform(0.4, 0.8) * np.exp(-0.5 * ((GRID + rng.uniform(9, 12)) / 0.9) ** 2)
            elif c == 1:
                y += rng.uniform(0.4, 0.7) * np.exp(-0.5 * ((GRID - rng.uniform(6, 9)) / 2.5) ** 2)
            else:
                y += rng.uniform(0.2, 0.35) * np.exp(-0.5 * ((GRID + rng.uniform(3, 5)) / 1.0) ** 2)
            rows.append(y)
            cls.append(k)
            cn.append(n_c)
            r.append(r_c + rng.normal(0, 0.02))
            ox.append(ox_c)
            groups.append(f"c{c}-{i // 3}")  # three sites per "compound"
    labels = {
        "geometry_index": np.array(cls),
        "cn": np.array(cn, float),
        "r": np.array(r),
        "oxidation_state": np.array(ox, float),
    }
    return np.array(rows), labels, np.array(groups)


@pytest.fixture(scope="module")
def data():
    return _spectra(30, 0), _spectra(10, 1)


def _subset(labels, idx):
    return {k: v[idx] for k, v in labels.items()}


def test_random_forest_learns_the_classes_and_round_trips(tmp_path, data):
    (x, y, _), (xt, yt, _) = data
    model = fit(
        {"kind": "random_forest", "copies": 2, "params": {"n_estimators": 60}},
        (x, y), (xt, yt), GRID, AugmentSettings(),
    )  # fmt: skip
    xin = np.stack([xt, np.gradient(xt, 0.5, axis=1)], axis=-1)
    pred = model.predict(xin)
    assert pred["probabilities"].shape == (len(xt), len(GEOMETRY_CLASSES))
    assert np.allclose(pred["probabilities"].sum(axis=1), 1.0)
    m = classification_metrics(yt["geometry_index"], pred["probabilities"])
    assert m["accuracy"] > 0.9
    assert regression_metrics(yt, pred)["oxidation_state_within_1"] > 0.9
    _scores, flags = model.ood(xin)
    assert np.mean(flags) < 0.2
    model.save(tmp_path / "rf")
    again = load(tmp_path / "rf")
    assert np.allclose(again.predict(xin)["probabilities"], pred["probabilities"])
    # A changed pickle is never unpickled.
    path = tmp_path / "rf" / "model.joblib"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        load(tmp_path / "rf")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cnn1d_class", "multitask"])
def test_networks_learn_the_classes_and_round_trip(tmp_path, data, kind):
    (x, y, _), (xt, yt, _) = data
    spec = {"kind": kind, "copies": 1, "epochs": 25, "patience": 10, "seed": 1, "batch_size": 32}
    model = fit(spec, (x, y), (xt, yt), GRID, AugmentSettings())
    xin = np.stack([xt, np.gradient(xt, 0.5, axis=1)], axis=-1)
    pred = model.predict(xin)
    assert classification_metrics(yt["geometry_index"], pred["probabilities"])["accuracy"] > 0.85
    if kind == "multitask":
        reg = regression_metrics(yt, pred)
        assert reg["cn_mae"] < 0.6 and reg["oxidation_state_within_1"] > 0.85
    card = json.loads(model.save(tmp_path / kind).read_text())
    assert card["kind"] == kind and card["classes"] == list(GEOMETRY_CLASSES)
    again = load(tmp_path / kind)
    assert np.allclose(again.predict(xin)["probabilities"], pred["probabilities"], atol=1e-5)


def test_metrics_match_a_hand_counted_example(tmp_path):
    truth = np.array([TET, TET, OCT, OCT, OCT, SQP])
    pred_cls = np.array([TET, OCT, OCT, OCT, OCT, OCT])
    prob = np.eye(len(GEOMETRY_CLASSES))[pred_cls]
    m = classification_metrics(truth, prob)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    # octahedral: precision 3/5, recall 1 -> F1 = 2·0.6·1/1.6 = 0.75; tetrahedral: 2/3
    assert m["f1"] == pytest.approx(
        {"tetrahedral": 2 / 3, "octahedral": 0.75, "square_planar": 0.0}
    )
    assert m["confusion"][TET][OCT] == 1 and m["confusion"][SQP][OCT] == 1
    assert sum(map(sum, m["confusion"])) == 6
    png = plot_confusion(m["confusion"], "test", tmp_path / "cm.png")
    assert png.stat().st_size > 1000
    truth_reg = {"cn": np.array([4.0, 6.0]), "r": np.array([1.8, 2.0]),
                 "oxidation_state": np.array([7.0, 2.0])}  # fmt: skip
    got = {"cn": np.array([5.0, 6.0]), "r": np.array([1.9, 2.0]),
           "oxidation_state": np.array([5.6, 2.4])}  # fmt: skip
    reg = regression_metrics(truth_reg, got)
    assert reg["cn_mae"] == pytest.approx(0.5) and reg["r_mae"] == pytest.approx(0.05)
    assert reg["oxidation_state_within_1"] == 0.5 and reg["oxidation_state_exact"] == 0.5


def test_splits_keep_compounds_apart_and_every_class_in_test(data):
    (_, y, groups), _ = data
    split = grouped_split(y["geometry_index"], groups, seed=0)
    sets = [set(groups[split[k]]) for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(split[k]) for k in split) == len(groups)
    assert set(y["geometry_index"][split["test"]]) == {TET, OCT, SQP}
    proto = np.array([g.split("-")[0] for g in groups])
    lopo = leave_one_group_out(y["geometry_index"], groups, proto, seed=0)
    assert sorted(lopo) == ["c0", "c1", "c2"]
    for name, s in lopo.items():
        assert set(proto[s["test"]]) == {name} and name not in set(proto[s["train"]])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind 'svm'"):
        resolve_spec({"kind": "svm"})
    assert resolve_spec({"kind": "multitask"})["loss_weights"]["geometry"] == 1.0
