"""Train one powder-pattern classifier on a dataset written by ``mlxas.xrd.dataset``.

Heads: ``crystal_system`` (7 classes), ``space_group`` (230; class i is space group
i + 1) and ``structure_type`` (the prototype names and ``other``), each a softmax trained
with sparse categorical cross-entropy.  Training is seeded, keeps the weights of the best
validation epoch and halves the learning rate when the validation loss stalls.

A model directory holds ``model.keras`` and ``card.json`` (kind, resolved entry, class
names per head, the engine settings and grid the inputs must be on, training record,
validation metrics and the OOD statistics of ``mlxas.ood`` on training inputs).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.provenance import hash_json
from mlxas.xrd.models import build_classifier, log_q_matrix, resolve_classifier

__all__ = ["HEADS", "XRDData", "load_xrd_data", "train_classifier"]

HEADS = ("crystal_system", "space_group", "structure_type")
#: Loss weight per head: the structure type matters only for the prototype patterns.
LOSS_WEIGHTS = {"crystal_system": 1.0, "space_group": 1.0, "structure_type": 0.5}
CARD_VERSION = 1


@dataclass
class XRDData:
    x: np.ndarray  #: float32 [n, points]
    y: dict[str, np.ndarray]  #: class index per head
    split: np.ndarray
    source: np.ndarray
    item_id: np.ndarray
    axis: np.ndarray
    axis_unit: str
    settings: dict[str, Any]
    features: dict[str, Any]
    class_names: dict[str, list]
    hash: str


def load_xrd_data(path: str | Path) -> XRDData:
    """Inputs, class indices, splits and metadata of a dataset file."""
    import h5py

    with h5py.File(path, "r") as f:
        x = f["features/intensity"][:]
        y = {
            "crystal_system": f["labels/crystal_system"][:].astype(np.int64),
            "space_group": f["labels/space_group"][:].astype(np.int64) - 1,
            "structure_type": f["labels/structure_type"][:].astype(np.int64),
        }
        items = f["items/item_id"].asstr()[:]
        data = XRDData(
            x=x,
            y=y,
            split=f["items/split"][:],
            source=f["items/source"].asstr()[:],
            item_id=items,
            axis=f["axis"][:],
            axis_unit=str(f.attrs["axis_unit"]),
            settings=json.loads(f.attrs["settings"]),
            features=json.loads(f.attrs["features"]),
            class_names=json.loads(f.attrs["class_names"]),
            hash=hash_json({"items": list(items), "settings": json.loads(f.attrs["settings"])}),
        )
    return data


def _wavelength(settings: dict[str, Any]) -> float:
    from mlxas.xrd.settings import HC_KEV_A, SOURCES

    if settings["source"] == "synchrotron":
        return HC_KEV_A / settings["energy_kev"][0]
    return SOURCES[settings["source"]][0]


def _dataset(x, y, batch: int, shuffle: bool, seed: int):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def _compile(model, lr: float) -> None:
    import keras

    metrics = {h: ["accuracy"] for h in HEADS}
    metrics["space_group"].append(keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss={h: "sparse_categorical_crossentropy" for h in HEADS},
        loss_weights=LOSS_WEIGHTS,
        metrics=metrics,
    )


def train_classifier(
    dataset: str | Path,
    out: str | Path,
    kind: str,
    epochs: int | None = None,
    batch_size: int | None = None,
    threads: int = 2,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    max_train: int | None = None,
    verbose: int = 2,
) -> dict[str, Any]:
    """Train ``kind`` on ``dataset`` and save it to ``out``; returns the card."""
    import keras

    from mlxas.models.train import set_threads
    from mlxas.ood import fit_ood

    set_threads(threads)
    keras.utils.set_random_seed(seed)
    spec = resolve_classifier(kind, {"epochs": epochs, "batch_size": batch_size, "params": params})
    data = load_xrd_data(dataset)
    tr, va = np.flatnonzero(data.split == 0), np.flatnonzero(data.split == 1)
    if max_train is not None and len(tr) > max_train:
        tr = np.sort(np.random.default_rng(seed).choice(tr, max_train, replace=False))
    heads = {h: len(data.class_names[h]) for h in HEADS}
    extras = {}
    if kind == "logq_cnn":
        lam = _wavelength(data.settings)
        extras["log_q_matrix"], _ = log_q_matrix(
            data.axis, data.axis_unit, lam, spec["params"]["n_log_q"]
        )
    model = build_classifier(kind, data.x.shape[1:], heads, spec["params"], extras)
    _compile(model, float(spec["learning_rate"]))
    ytr = {h: data.y[h][tr] for h in HEADS}
    yva = {h: data.y[h][va] for h in HEADS}
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=int(spec["patience"]), restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=max(1, int(spec["patience"]) // 2)
        ),
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    hist = model.fit(
        _dataset(data.x[tr], ytr, int(spec["batch_size"]), True, seed),
        validation_data=_dataset(data.x[va], yva, 1024, False, seed),
        epochs=int(spec["epochs"]),
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    sample = np.random.default_rng(seed).choice(tr, min(len(tr), 3000), replace=False)
    card = {
        "card_version": CARD_VERSION,
        "kind": kind,
        "model_id": hash_json({"dataset": data.hash, "spec": spec, "seed": seed}),
        "config": {**spec, "seed": seed, "max_train": max_train},
        "heads": {h: data.class_names[h] for h in HEADS},
        "dataset": {"path": str(dataset), "hash": data.hash, "n_train": len(tr), "n_val": len(va)},
        "preprocessing": {
            "input": "intensity",
            "settings": data.settings,
            "features": data.features,
            "axis": [float(data.axis[0]), float(data.axis[-1]), len(data.axis)],
            "axis_unit": data.axis_unit,
        },
        "training": {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "threads": threads,
            "epochs_run": len(hist.history["loss"]),
            "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
        },
        "ood": fit_ood(data.x[sample]),
    }
    card["metrics"] = {
        k: float(v[int(np.argmin(hist.history["val_loss"]))])
        for k, v in hist.history.items()
        if k.startswith("val_")
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    (out / "card.json").write_text(json.dumps(card, indent=1, default=float) + "\n")
    return card


def load_classifier(path: str | Path):
    """``(model, card)`` of a model directory; Keras' ``safe_mode`` stays on."""
    import keras

    path = Path(path)
    card_file = path / "card.json"
    if not card_file.is_file():
        raise FileNotFoundError(f"{path}: no card.json (not an xrd model directory)")
    card = json.loads(card_file.read_text())
    if card.get("card_version", 0) > CARD_VERSION:
        raise ValueError(
            f"{card_file}: card version {card['card_version']} is newer than this mlxas"
        )
    model = keras.saving.load_model(path / "model.keras", safe_mode=True)
    return model, card
