"""Class targets end to end: softmax networks and random forests on a separable set,
cards with class names, numpy forests equal to scikit-learn, classification metrics."""

from __future__ import annotations

import numpy as np
import pytest

from mlxas.metrics import classification_metrics
from mlxas.models import load_model, predict_array, split_targets
from mlxas.models.data import load_training_data
from mlxas.models.forest import ForestModel, export_forest
from mlxas.models.inference import class_predictions
from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec
from mlxas.models.train import train
from synthetic_exafs import SyntheticDataset

SHELLS = (4, 8, 12)


@pytest.fixture(scope="module")
def ds():
    # CN 4, 8 or 12 (a 2x amplitude step between classes, more than sigma² can fake):
    # separable from chi(k) alone; chance is 1/3.
    return SyntheticDataset(n=360, seed=3, shells=SHELLS)


@pytest.fixture(scope="module")
def trained(ds, tmp_path_factory):
    root = tmp_path_factory.mktemp("class_models")
    entries = {
        "rf": {"name": "rf", "kind": "random_forest", "targets": ["shell", "r"],
               "params": {"n_estimators": 30}},
        "soft": {"name": "soft", "kind": "mlp", "targets": ["shell", "cn"], "epochs": 80,
                 "patience": 20, "learning_rate": 0.003, "params": {"hidden": [32]},
                 "jit_compile": False},
    }  # fmt: skip
    out = {}
    for name, entry in entries.items():
        spec = ModelSpec.from_config(entry)
        out[name] = train(ds, spec, root / name, threads=1, verbose=0)
    return out


@pytest.mark.parametrize("name", ["rf", "soft"])
def test_separable_classes_are_learned_and_the_card_names_them(ds, trained, name):
    mid, card, folder = trained[name]
    assert card["outputs"]["classes"] == {"shell": ["cn4", "cn8", "cn12"]}
    assert card["outputs"]["columns"][:3] == ["shell[cn4]", "shell[cn8]", "shell[cn12]"]
    model, loaded = load_model(folder)
    assert loaded["model_id"] == mid
    x = np.asarray(ds.features("chi_k", "test"))
    mean, _ = predict_array(model, loaded, x)
    probs = split_targets(loaded, mean)["shell"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    truth = np.asarray(ds.labels("shell", "test"))
    accuracy = float(np.mean(probs.argmax(axis=1) == truth))
    names, _ = class_predictions(loaded, split_targets(loaded, mean))["shell"]
    assert names == [("cn4", "cn8", "cn12")[i] for i in probs.argmax(axis=1)]
    assert accuracy >= 0.9, f"{name}: test accuracy {accuracy:.3f}"
    # the card's metrics are the same computation on the same split
    assert card["metrics"]["test"]["shell"]["accuracy"] == pytest.approx(accuracy)


def test_forest_is_saved_as_plain_arrays(trained):
    _, card, folder = trained["rf"]
    assert card["model_file"] == "model.npz" and not (folder / "model.keras").exists()
    with np.load(folder / "model.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    # the regression head of the forest: Å, near the true R (spread 2.45-2.60 Å)
    assert card["metrics"]["test"]["r"]["mae"] < 0.05


def test_forest_file_is_bound_by_the_card(trained, tmp_path):
    import shutil

    from mlxas.models import ModelLoadError

    _, _, folder = trained["rf"]
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    data = bytearray((copy / "model.npz").read_bytes())
    data[-40] ^= 1
    (copy / "model.npz").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"model\.npz: SHA-256"):
        load_model(copy)


def test_numpy_forest_equals_scikit_learn():
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 12))
    y_class = (x[:, 0] + 0.5 * x[:, 3] > 0).astype(int) + (x[:, 5] > 1).astype(int)
    y_value = np.stack([x[:, 1] ** 2, np.sin(x[:, 2])], axis=1)
    x_new = rng.normal(size=(300, 12))
    clf = RandomForestClassifier(n_estimators=25, random_state=0).fit(x, y_class)
    # four class columns: a class (code 3) the training labels never hold gets 0
    forest = ForestModel(["c"], {"c": export_forest(clf, 4, clf.classes_)}, slice(0, 12))
    probs = forest.predict_on_batch(x_new)
    np.testing.assert_array_equal(probs[:, :3], clf.predict_proba(x_new))
    assert np.all(probs[:, 3] == 0)
    reg = RandomForestRegressor(n_estimators=20, random_state=0).fit(x, y_value)
    forest = ForestModel(["v"], {"v": export_forest(reg, 2)}, slice(0, 12))
    np.testing.assert_allclose(forest.predict_on_batch(x_new), reg.predict(x_new), rtol=1e-12)


def test_classification_metrics_against_hand_counts():
    codes = np.array([0, 0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.8 + 0.2 / 3
    m = classification_metrics(codes, probs, ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls 2/3, 1/2, 1
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(1 / 2)


def test_value_only_kind_refuses_class_targets(ds):
    spec = ModelSpec.from_config({"name": "p", "kind": "paper_mlp", "targets": ["shell"]})
    with pytest.raises(ModelConfigError, match=r"paper_mlp predicts values only.*shell"):
        load_training_data(ds, spec)


def test_class_codes_outside_the_classes_are_refused(ds):
    from mlxas.models.training_data import TrainingData
    from synthetic_exafs import features_cfg

    x = np.zeros((3, 5), np.float32)
    with pytest.raises(ModelConfigError, match=r"codes 0\.\.3 outside 0\.\.2"):
        TrainingData.from_arrays(
            {"train": (x, {"g": np.array([0, 3, 1])})},
            features_cfg(),
            classes={"g": ("a", "b", "c")},
        )


def test_evaluation_of_class_targets(ds, trained, tmp_path):
    import json

    from mlxas.evaluate import evaluate
    from mlxas.workflow.layout import Layout

    layout = Layout(tmp_path)
    folders = [str(trained[n][2]) for n in ("rf", "soft")]
    res = evaluate(ds, folders, layout, primary="rf")
    n_test = len(ds.labels("shell", "test"))
    saved = json.loads(layout.metrics.read_text())
    for name in ("rf", "soft"):
        m = saved["models"][name]["targets"]["shell"]
        assert sum(map(sum, m["confusion"])) == n_test
        diag = sum(m["confusion"][i][i] for i in range(3))
        assert m["accuracy"] == pytest.approx(diag / n_test)
        assert m["accuracy"] == pytest.approx(
            trained[name][1]["metrics"]["test"]["shell"]["accuracy"]
        )
        assert layout.model_plot("parity", name, "shell").stat().st_size > 5000
        assert layout.model_plot("errors", name, "shell").is_file()
    assert layout.parity("shell").is_file()
    # regression heads beside the class head are still evaluated as before
    assert res["models"]["rf"]["targets"]["r"]["mae"] < 0.05
    md = layout.comparison_md.read_text()
    assert "| rf | random_forest | shell | " in md and "balanced_accuracy" in md


def test_a_dataset_without_a_k_grid_trains():
    """Diffraction or reflection datasets have no chi(k): their features settings hold no
    k grid, and training a class head must not need one."""
    from mlxas.models.train import fit
    from mlxas.models.training_data import TrainingData

    rng = np.random.default_rng(5)
    splits = {}
    for s, n in (("train", 200), ("val", 50)):
        x = rng.normal(size=(n, 10)).astype(np.float32)
        splits[s] = (x, {"system": (x[:, 2] > 0).astype(int)})
    data = TrainingData.from_arrays(splits, {}, classes={"system": ("a", "b")})
    spec = ModelSpec.from_config({"name": "f", "kind": "random_forest", "targets": ["system"],
                                  "params": {"n_estimators": 10}})  # fmt: skip
    model, _ = fit(data, spec)
    x, y = splits["val"][0], splits["val"][1]["system"]
    assert np.mean(model.predict_on_batch(x).argmax(axis=1) == y) > 0.85


def test_predict_on_a_measured_spectrum_gives_class_and_probabilities(trained):
    """mlxas predict with a class model: the class name under the target and every
    class's probability beside it (a measured Cu foil; the synthetic-trained forest
    flags it out of distribution, which is reported, not hidden)."""
    from pathlib import Path

    from mlxas.predict.predictor import Predictor

    foil = Path(__file__).parent / "data" / "experimental" / "cu_metal_rt.xdi"
    with Predictor(trained["rf"][2], jobs=1, allow_short_k=True) as p:
        (res,) = p.predict([foil])
    assert res.status == "ok", res.reason
    probs = res.values["shell_probabilities"]
    assert list(probs) == ["cn4", "cn8", "cn12"]
    assert sum(probs.values()) == pytest.approx(1.0)
    assert res.values["shell"] == max(probs, key=probs.get)
    assert isinstance(res.values["r"], float) and isinstance(res.values["ood"], bool)


def test_a_label_set_declares_class_names_in_the_label_file(tmp_path, monkeypatch):
    """LabelColumns.classes travel into the label file's metadata (what gather copies
    into dataset.h5); codes stay integers."""
    from dataclasses import dataclass

    import pandas as pd
    from ase.build import bulk

    from mlxas.sites import labelsets
    from mlxas.sites.labelsets import (
        LabelColumns,
        LabelSet,
        LabelSettings,
        compute_labels,
        read_labels,
        write_labels,
    )

    @dataclass(frozen=True)
    class _NoSettings:
        pass

    class SiteParity(LabelSet):
        """Class of a site: whether its index is even or odd (plumbing only)."""

        name = "test_site_parity"
        units = ("site",)
        settings_class = _NoSettings

        def provides(self, target):
            return target == "parity"

        def compute(self, images, items, absorber):
            codes = items["site_index"].to_numpy() % 2
            return LabelColumns({"parity": codes}, targets=("parity",),
                                classes={"parity": ("even", "odd")})  # fmt: skip

    # registered for this test only
    monkeypatch.setitem(labelsets._REGISTRY, SiteParity.name, SiteParity)
    items = pd.DataFrame({"site_id": ["s-0", "s-1", "s-2"], "structure_id": ["s"] * 3,
                          "site_index": [0, 1, 2]})  # fmt: skip
    settings = LabelSettings(
        sets=("test_site_parity",), settings={"test_site_parity": _NoSettings()}
    )
    table, meta = compute_labels([bulk("Cu")], items, "Cu", settings)
    assert meta["columns"]["parity"]["classes"] == ["even", "odd"]
    write_labels(table, meta, tmp_path / "labels.parquet")
    back, meta2 = read_labels(tmp_path / "labels.parquet")
    assert meta2["columns"]["parity"]["classes"] == ["even", "odd"]
    assert back["parity"].tolist() == [0, 1, 0]
