"""Classifier kinds, metrics, and the path dataset → training → evaluation → prediction on
measured files, on a small dataset."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

from mlxas.models.registry import ModelConfigError
from mlxas.xrd.evaluate import classification_metrics
from mlxas.xrd.models import CLASSIFIER_DEFAULTS, build_classifier, log_q_matrix, resolve_classifier


def test_log_q_matrix_interpolates_exactly_in_ln_q():
    lam = 1.54056
    tt = np.linspace(10, 80, 1401)
    m, target = log_q_matrix(tt, "deg", lam, 500)
    lnq = np.log(4 * math.pi * np.sin(np.radians(tt / 2)) / lam)
    # A function linear in ln Q is reproduced exactly by linear interpolation.
    np.testing.assert_allclose(lnq @ m, target, atol=1e-5)
    np.testing.assert_allclose(m.sum(axis=0), 1.0, atol=1e-6)
    assert target[0] == pytest.approx(lnq[0]) and target[-1] == pytest.approx(lnq[-1])


@pytest.mark.parametrize("kind", sorted(CLASSIFIER_DEFAULTS))
def test_kinds_build_softmax_heads(kind):
    spec = resolve_classifier(kind)
    extras = {"log_q_matrix": log_q_matrix(np.linspace(10, 80, 1401), "deg", 1.54, 256)[0]}
    if kind == "logq_cnn":
        spec["params"]["n_log_q"] = 256
    model = build_classifier(
        kind, (1401,), {"crystal_system": 7, "space_group": 230}, spec["params"], extras
    )
    out = model(np.random.default_rng(0).uniform(size=(3, 1401)).astype("float32"))
    assert [o.shape for o in out] == [(3, 7), (3, 230)]
    for o in out:
        np.testing.assert_allclose(np.asarray(o).sum(axis=1), 1.0, rtol=1e-5)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ModelConfigError, match="unknown classifier kind 'mlp'"):
        resolve_classifier("mlp")


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 12, 400)
    proba = rng.dirichlet(np.ones(12), 400)
    proba[np.arange(200), y[:200]] += 1.0  # half of them right
    proba /= proba.sum(axis=1, keepdims=True)
    m = classification_metrics(y, proba)
    pred = proba.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["top5_accuracy"] == pytest.approx(
        top_k_accuracy_score(y, proba, k=5, labels=np.arange(12))
    )
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["n"] == 400


@pytest.mark.slow
def test_dataset_train_evaluate_predict(tmp_path):
    from mlxas.xrd.dataset import StructureTask, build_dataset
    from mlxas.xrd.evaluate import evaluate_models
    from mlxas.xrd.predict import evaluate_folder, pattern_files, predict_patterns
    from mlxas.xrd.settings import XRDSettings
    from mlxas.xrd.train import load_xrd_data, train_classifier

    names = ("fcc", "bcc", "rocksalt", "cesium_chloride")
    tasks = [StructureTask("prototype", n, i) for i in range(12) for n in names]
    ds = tmp_path / "ds.h5"
    summary = build_dataset(
        ds, tasks, XRDSettings(), n_patterns=2, fractions=(0.6, 0.2, 0.2), progress=False
    )
    data = load_xrd_data(ds)
    assert summary["n_patterns"] == len(data.x) > 40
    assert set(np.unique(data.split)) == {0, 1, 2}
    # No composition is in two splits.
    formula = np.array([json.loads(j)["formula"] for j in _structures(ds, data)])
    assert all(len(set(data.split[formula == f])) == 1 for f in set(formula))
    card = train_classifier(
        ds, tmp_path / "m", "npcnn", epochs=4, verbose=0, params={"dropout": 0.0}
    )
    hist = card["training"]["history"]["loss"]
    assert hist[-1] < hist[0]
    rep = evaluate_models(
        [str(tmp_path / "m")], str(ds), str(tmp_path / "eval"), clean=str(tmp_path / "ds_clean.h5")
    )
    assert (tmp_path / "eval" / "confusion_npcnn_space_group.png").stat().st_size > 1000
    assert "robustness_drop_points" in rep["models"]["npcnn"]
    # Measured files written from test patterns, labelled in a CSV.
    folder = tmp_path / "measured"
    folder.mkdir()
    test = np.flatnonzero(data.split == 2)[:6]
    with (folder / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "space_group", "structure_type"])
        for n, i in enumerate(test):
            rows = "".join(
                f"{x:.4f} {1e4 * y:.2f}\n" for x, y in zip(data.axis, data.x[i], strict=True)
            )
            (folder / f"p{n}.xy").write_text("# Wavelength = 1.54056\n" + rows)
            w.writerow(
                [
                    f"p{n}.xy",
                    data.y["space_group"][i] + 1,
                    data.class_names["structure_type"][data.y["structure_type"][i]],
                ]
            )
    files = pattern_files([folder], exclude=folder / "labels.csv")
    assert [f.name for f in files] == [f"p{n}.xy" for n in range(len(test))]
    preds = predict_patterns(tmp_path / "m", files)
    assert all(len(p["space_groups"]) == 5 and p["wavelength_source"] == "header" for p in preds)
    table = evaluate_folder(tmp_path / "m", files, folder / "labels.csv")
    right = np.mean(
        [
            p["space_groups"][0]["space_group"] == data.y["space_group"][i] + 1
            for p, i in zip(preds, test, strict=True)
        ]
    )
    assert table["space_group"]["accuracy"] == pytest.approx(right)
    assert table["n_files"] == len(test)


def _structures(ds, data):
    import h5py

    with h5py.File(ds) as f:
        sids = list(f["structures/structure_id"].asstr()[:])
        docs = list(f["structures/json"].asstr()[:])
        by_id = dict(zip(sids, docs, strict=True))
        item_sid = f["items/structure_id"].asstr()[:]
    return [by_id[s] for s in item_sid]
