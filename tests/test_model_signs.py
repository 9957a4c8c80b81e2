"""The custom-loss hook: many sigmoid outputs trained with element-wise weighted binary
cross-entropy (the reference loss of the phase problem), weights from a dataset array."""

from __future__ import annotations

import numpy as np
import pytest

from mlxas.models.kinds import elementwise_bce
from mlxas.models.registry import ModelConfigError, kind_class
from mlxas.models.spec import ModelSpec
from mlxas.models.train import fit
from mlxas.models.training_data import TrainingData
from synthetic_exafs import features_cfg

N_IN, N_OUT = 16, 24


def _sign_data(n: int, seed: int):
    """Signs of a random linear map of the input; |z| (the "intensity") weighs each sign:
    a large |z| is a sign far from the decision boundary."""
    rng = np.random.default_rng(seed)
    a = np.random.default_rng(99).normal(size=(N_IN, N_OUT))
    x = rng.normal(size=(n, N_IN)).astype(np.float32)
    z = x @ a
    return x, (z > 0).astype(np.float32), np.abs(z).astype(np.float32)


def _data(y_fn=lambda y: y) -> TrainingData:
    splits, extra = {}, {}
    for i, (s, n) in enumerate((("train", 1500), ("val", 300), ("test", 300))):
        x, y, w = _sign_data(n, i)
        splits[s] = (x, {"signs": y_fn(y)})
        extra[s] = {"intensity": w}
    return TrainingData.from_arrays(splits, features_cfg(), extra=extra)


def test_loss_is_the_weighted_mean_of_elementwise_bce():
    rng = np.random.default_rng(0)
    y = (rng.random((7, 5)) > 0.5).astype(np.float32)
    p = rng.uniform(0.05, 0.95, (7, 5)).astype(np.float32)
    w = rng.uniform(0, 3, (7, 5)).astype(np.float32)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    got = float(elementwise_bce()(y, p, sample_weight=w))
    assert got == pytest.approx(float(np.mean(w * bce)), rel=1e-5)
    # without weights it is the plain mean over all elements
    assert float(elementwise_bce()(y, p)) == pytest.approx(float(np.mean(bce)), rel=1e-5)


def test_weights_are_the_array_normalised_per_example():
    data = _data()
    spec = ModelSpec.from_config(
        {"name": "s", "kind": "sign_mlp", "targets": ["signs"], "sample_weight": "intensity"}
    )
    w = kind_class("sign_mlp")().sample_weight(data.splits["val"], spec, data.layout.heads)
    raw = data.splits["val"].extra["intensity"]
    np.testing.assert_allclose(w["signs"].mean(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(w["signs"] * raw.mean(axis=1, keepdims=True), raw, rtol=1e-5)


def test_intensity_weighted_signs_are_learned():
    data = _data()
    spec = ModelSpec.from_config(
        {"name": "s", "kind": "sign_mlp", "targets": ["signs"], "sample_weight": "intensity",
         "epochs": 40, "patience": 10, "params": {"hidden": [64]}, "jit_compile": False}
    )  # fmt: skip
    model, record = fit(data, spec)
    test = data.splits["test"]
    p = np.asarray(model.predict_on_batch(test.x))
    assert p.shape == (len(test), N_OUT) and np.all((p >= 0) & (p <= 1))  # sigmoid
    right = (p > 0.5) == (test.y["signs"] > 0.5)
    w = test.extra["intensity"]
    weighted = float(np.sum(w * right) / np.sum(w))
    assert weighted >= 0.95, f"weighted sign accuracy {weighted:.3f} (chance 0.5)"
    assert record["networks"][0]["epochs_run"] >= 2


def test_non_binary_targets_are_refused():
    data = _data(lambda y: 2 * y - 1)  # signs as -1/+1
    spec = ModelSpec.from_config({"name": "s", "kind": "sign_mlp", "targets": ["signs"],
                                  "epochs": 1, "jit_compile": False})  # fmt: skip
    with pytest.raises(ModelConfigError, match="sign_mlp needs 0/1 targets"):
        fit(data, spec)
