"""Train one configured model on a dataset and save it as ``models/<model-id>/``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlxas import __version__
from mlxas.dataset import open as open_dataset
from mlxas.models.card import write_card
from mlxas.provenance import hash_json

__all__ = ["model_id", "train"]


def model_id(dataset_hash: str, spec: dict[str, Any]) -> str:
    return hash_json({"dataset": dataset_hash, "model": spec, "mlxas": __version__})


def _set_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def train(
    dataset_path: str | Path,
    spec: dict[str, Any],
    models_dir: str | Path,
    threads: int = 1,
    verbose: int = 2,
) -> tuple[str, dict[str, Any]]:
    """Train ``spec`` (one entry of ``models``) and write model.keras + card.json."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from mlxas.evaluate import regression_metrics
    from mlxas.models.registry import build

    ds = open_dataset(dataset_path)
    mid = model_id(ds.hash, spec)
    out_dir = Path(models_dir) / mid
    out_dir.mkdir(parents=True, exist_ok=True)
    _set_threads(threads)
    keras.utils.set_random_seed(spec["seed"])

    targets = spec["targets"]
    data = {
        s: (
            ds.features(spec["input"], s).astype(np.float32),
            np.stack([ds.labels(t, s) for t in targets], axis=1).astype(np.float32),
        )
        for s in ("train", "val", "test")
    }
    x_tr, y_tr = data["train"]
    if len(x_tr) == 0 or len(data["val"][0]) == 0:
        raise ValueError(
            f"{dataset_path}: train or validation split is empty; "
            "use more structures or change dataset.split"
        )
    x_mean, x_std = _stats(x_tr)
    y_mean, y_std = _stats(y_tr)

    def core_for(kind: str, n_out: int):
        return build(kind, x_tr.shape[1:], n_out, spec["params"])

    # paper_mlp: one independent 400-200-20-1 network per target, side by side.
    if spec["kind"] == "paper_mlp":
        cores = [core_for("paper_mlp", 1) for _ in targets]
    else:
        cores = [core_for(spec["kind"], len(targets))]
    inp = keras.Input(shape=x_tr.shape[1:], name="features")
    z = keras.layers.Normalization(mean=x_mean, variance=x_std**2, name="standardize")(inp)
    outs = [c(z) for c in cores]
    y_std_out = outs[0] if len(outs) == 1 else keras.layers.Concatenate(name="targets_std")(outs)
    train_model = keras.Model(inp, y_std_out)
    if spec["kind"] == "paper_mlp":
        opt = keras.optimizers.RMSprop(learning_rate=spec["learning_rate"])
    else:
        opt = keras.optimizers.Adam(learning_rate=spec["learning_rate"])
    train_model.compile(optimizer=opt, loss="mse")

    def scale(y: np.ndarray) -> np.ndarray:
        return (y - y_mean) / y_std

    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=spec["patience"], restore_best_weights=True
    )
    t0 = time.time()
    hist = train_model.fit(
        x_tr,
        scale(y_tr),
        validation_data=(data["val"][0], scale(data["val"][1])),
        epochs=spec["epochs"],
        batch_size=spec["batch_size"],
        callbacks=[stop],
        verbose=verbose,
        shuffle=True,
    )
    seconds = time.time() - t0
    # Inference model: raw features in, physical units out.
    y_phys = keras.layers.Normalization(
        mean=y_mean, variance=y_std**2, invert=True, name="unstandardize"
    )(y_std_out)
    model = keras.Model(inp, y_phys, name=spec["name"])
    model.save(out_dir / "model.keras")

    metrics = {}
    for s in ("train", "val", "test"):
        x, y = data[s]
        if len(x) == 0:
            continue
        pred = model.predict(x, batch_size=4096, verbose=0)
        metrics[s] = {t: regression_metrics(y[:, i], pred[:, i]) for i, t in enumerate(targets)}
    settings = ds.settings
    card = {
        "model_id": mid,
        "name": spec["name"],
        "kind": spec["kind"],
        "mlxas_version": __version__,
        "keras_version": keras.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": spec,
        "dataset": {
            "path": str(dataset_path),
            "hash": ds.hash,
            "split": {**settings["split"], "sizes": {s: len(data[s][0]) for s in data}},
        },
        "preprocessing": {
            "input": spec["input"],
            "grid": ds.grid(spec["input"]).tolist(),
            "k_grid": settings["features"]["k_grid"],
            "kweight": settings["features"]["kweight"],
            "features": settings["features"],
            "absorber": ds.attrs.get("absorber", ""),
            "edge": ds.attrs.get("edge", ""),
            "targets": targets,
            "input_mean": x_mean.tolist(),
            "input_std": x_std.tolist(),
            "target_mean": y_mean.tolist(),
            "target_std": y_std.tolist(),
        },
        "metrics": metrics,
        "training": {
            "seconds": seconds,
            "epochs_run": len(hist.history["loss"]),
            "best_epoch": int(np.argmin(hist.history["val_loss"])) + 1,
            "threads": threads,
        },
    }
    write_card(out_dir, card)
    _point_latest(Path(models_dir), mid)
    return mid, card


def _point_latest(models_dir: Path, mid: str) -> None:
    link = models_dir / "latest"
    tmp = models_dir / f".latest.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(mid, target_is_directory=True)
    tmp.replace(link)


def write_pointer(path: str | Path, mid: str, card: dict[str, Any]) -> None:
    Path(path).write_text(
        json.dumps({"model_id": mid, "name": card["name"], "metrics": card["metrics"]}, indent=2)
    )
