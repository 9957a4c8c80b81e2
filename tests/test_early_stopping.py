"""What the trainer's early stopping watches (``early_stopping`` of a model entry)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec
from mlxas.models.train import fit
from mlxas.models.training_data import TrainingData


def _spec(**extra) -> ModelSpec:
    entry = {"name": "m", "kind": "mlp", "targets": ["system", "v"], "epochs": 6,
             "patience": 6, "params": {"hidden": [8]}, **extra}  # fmt: skip
    return ModelSpec.from_config(entry)


def test_the_default_is_the_validation_loss_and_stays_out_of_the_card():
    """Cards written before the key existed keep their model id on retraining."""
    assert _spec().early_stopping == "val_loss"
    assert _spec(early_stopping=None).early_stopping == "val_loss"
    assert "early_stopping" not in _spec().to_dict()
    assert _spec(early_stopping="val_accuracy").to_dict()["early_stopping"] == "val_accuracy"
    again = ModelSpec.from_dict(_spec(early_stopping="val_accuracy").to_dict())
    assert again.early_stopping == "val_accuracy"


def test_an_unknown_setting_is_refused_with_the_model_name():
    with pytest.raises(ModelConfigError, match=r"models\.m: early_stopping 'val_r2'"):
        _spec(early_stopping="val_r2")


class _Logs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(dict(logs or {}))


def _data(targets: tuple[str, ...]) -> TrainingData:
    rng = np.random.default_rng(3)
    splits = {}
    for s, n in (("train", 160), ("val", 60)):
        x = rng.normal(size=(n, 12)).astype(np.float32)
        y = {"system": (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int),
             "v": x[:, 1:2] * 2.0}  # fmt: skip
        splits[s] = (x, {t: y[t] for t in targets})
    return TrainingData.from_arrays(splits, {}, classes={"system": ("a", "b")})


@pytest.mark.parametrize(
    ("targets", "key"),
    [(("system", "v"), "val_system_accuracy"), (("system",), "val_accuracy")],
)
def test_val_accuracy_watches_the_class_head_keras_reports(targets, key):
    """The watched key is one Keras writes (a wrong name would stop nothing), and the kept
    epoch is the one of the best validation accuracy, not of the lowest loss."""
    logs = _Logs()
    spec = _spec(targets=list(targets), early_stopping="val_accuracy")
    _, records = fit(_data(targets), spec, callbacks=[logs])
    acc = [e[key] for e in logs.epochs]
    assert records["networks"][0]["best_epoch"] == int(np.argmax(acc)) + 1


def test_val_accuracy_without_a_class_target_is_refused():
    with pytest.raises(ModelConfigError, match="needs exactly one class target"):
        fit(_data(("v",)), _spec(targets=["v"], early_stopping="val_accuracy"))
