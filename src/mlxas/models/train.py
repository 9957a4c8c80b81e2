"""Train one configured model and save it as ``models/<name>/<model id>/`` with its card.

Training is seeded (``keras.utils.set_random_seed``), stops early on the validation
loss (or, with ``early_stopping: val_accuracy``, on the validation accuracy of the one
class target) and keeps the weights of the best validation epoch.  Each step runs XLA-compiled
and several steps run per call into TensorFlow (``steps_per_execution``), which is what
makes small MLPs train fast on a CPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.metrics import classification_metrics, regression_metrics
from mlxas.models.batches import array_batches, augmented_batches, edge_augmented_batches
from mlxas.models.data import load_training_data, opened
from mlxas.models.edge_augment import expand_training
from mlxas.models.network import (
    Scaling,
    assemble,
    combine_members,
    combine_targets,
    crop_slice,
    fit_scaling,
)
from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec
from mlxas.models.training_data import TrainingData

__all__ = ["fit", "set_threads", "train", "write_pointer"]


def set_threads(threads: int) -> None:
    """Threads TensorFlow may use; only effective before TensorFlow runs its first op."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process: keep its settings


def _optimizer(spec: ModelSpec):
    import keras

    lr = float(spec.learning_rate)
    name = spec.optimizer
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "adamw":
        wd = float(spec.params.get("weight_decay", 1e-4))
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd)
    raise ModelConfigError(f"models.{spec.name}: unknown optimizer {name!r}")


#: Training steps from which XLA compilation pays off: compiling costs a few seconds,
#: and saves about 1 ms per step of a small MLP on a CPU.
XLA_MIN_STEPS = 5000


def _use_xla(setting: bool | str, total_steps: int) -> bool:
    if setting == "auto":
        return total_steps >= XLA_MIN_STEPS
    return bool(setting)


def _monitor(spec: ModelSpec, heads: dict) -> tuple[str, str]:
    """The Keras history key early stopping watches, and whether lower ("min") or higher
    ("max") is better (``spec.early_stopping``)."""
    if spec.early_stopping == "val_loss":
        return "val_loss", "min"
    classes = [t for t, h in heads.items() if h.is_class]
    if len(classes) != 1:
        raise ModelConfigError(
            f"models.{spec.name}: early_stopping val_accuracy needs exactly one class "
            f"target, the model has {classes or 'none'}"
        )
    # Keras names a head's metrics after its output only when there are several outputs.
    return ("val_accuracy" if len(heads) == 1 else f"val_{classes[0]}_accuracy"), "max"


def _callbacks(spec: ModelSpec, extra: list, monitor: tuple[str, str]) -> list:
    """Early stopping on ``monitor`` (best weights kept), the caller's callbacks and, with
    ``lr_schedule: plateau``, halving the learning rate on plateaus of the same quantity."""
    import keras

    key, mode = monitor
    patience = int(spec.patience)
    cbs = [
        keras.callbacks.EarlyStopping(
            monitor=key, mode=mode, patience=patience, restore_best_weights=True
        ),
        *extra,
    ]
    if spec.lr_schedule == "plateau":
        cbs.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=key,
                mode=mode,
                factor=0.5,
                patience=max(3, patience // 4),
                min_lr=float(spec.learning_rate) / 100,
            )
        )
    return cbs


def _fit_network(
    data: TrainingData,
    spec: ModelSpec,
    seed: int,
    crop: slice,
    scaling: Scaling,
    name: str,
    verbose: int,
    callbacks: list,
):
    """Train one network; returns (inference model, training record)."""
    import keras

    from mlxas.models.edge_augment import edge_settings
    from mlxas.spectra.augment import is_enabled

    keras.utils.set_random_seed(seed)
    train, val = data.splits["train"], data.splits["val"]
    input_shape = train.x.shape[1:]
    kind = spec.model_kind()
    heads = data.layout.heads
    train_model, model = assemble(
        spec.member_kind, spec.params, input_shape, heads, crop, scaling, name=name
    )
    batch = int(spec.batch_size)
    steps = -(-len(train) // batch)
    weights = {t: float(spec.loss_weights.get(t, 1.0)) for t in data.layout.names}
    train_model.compile(
        optimizer=_optimizer(spec),
        loss={t: kind.loss(t, h, spec, data) for t, h in heads.items()},
        loss_weights=weights,
        metrics={t: ["accuracy"] for t, h in heads.items() if h.is_class} or None,
        jit_compile=_use_xla(spec.jit_compile, int(spec.epochs) * steps),
        steps_per_execution=max(1, min(int(spec.steps_per_execution), steps)),
    )
    monitor = _monitor(spec, heads)
    cbs = _callbacks(spec, callbacks, monitor)
    y_train = scaling.scale_y(train.y)
    w_train = kind.sample_weight(train, spec, heads)
    w_val = kind.sample_weight(val, spec, heads)
    validation = array_batches(val.x, scaling.scale_y(val.y), batch, weights=w_val)
    t0 = time.perf_counter()
    if is_enabled(spec.augment):
        batches = augmented_batches(data, spec, seed, y_train, w_train, scaling.scale_y)
    elif edge_settings(spec) is not None:
        batches = edge_augmented_batches(data, spec, seed, y_train, w_train)
    else:
        batches = array_batches(
            train.x, y_train, batch, seed=seed, weights=w_train,
            batch_map=kind.batch_map(spec, data),
        )  # fmt: skip
    hist = train_model.fit(
        batches,
        validation_data=validation,
        epochs=int(spec.epochs),
        callbacks=cbs,
        verbose=verbose,
    )
    seconds = time.perf_counter() - t0
    val_loss = np.asarray(hist.history["val_loss"], dtype=float)
    watched = np.asarray(hist.history[monitor[0]], dtype=float)
    best = np.nanargmin if monitor[1] == "min" else np.nanargmax
    record = {
        "seed": seed,
        "epochs_run": len(val_loss),
        "best_epoch": int(best(watched)) + 1 if np.isfinite(watched).any() else None,
        "best_val_loss": float(np.nanmin(val_loss)) if np.isfinite(val_loss).any() else None,
        "seconds": seconds,
        "epochs_per_second": len(val_loss) / seconds if seconds > 0 else None,
    }
    return model, record


def fit(
    data: TrainingData,
    spec: ModelSpec,
    verbose: int = 0,
    callbacks: list | None = None,
    threads: int = 1,
):
    """Train the model of ``spec`` on ``data``; returns (inference model, record).

    The record holds the scaling statistics, the crop and one entry per trained network.
    An ensemble trains ``members`` networks with seeds ``seed``, ``seed + 1``, ...
    A numpy-backend kind (``random_forest``) is fitted by its ``fit_numpy``.
    """
    train, val = data.splits.get("train"), data.splits.get("val")
    if train is None or val is None or len(train) == 0 or len(val) == 0:
        raise ModelConfigError(
            f"{data.dataset.get('path') or 'dataset'}: train or validation split is empty; "
            "use more structures or change dataset.split"
        )
    input_shape = train.x.shape[1:]
    crop = crop_slice(data.grid, spec.input_range, input_shape[0])
    if spec.input_range and len(input_shape) != 1:
        raise ModelConfigError(f"models.{spec.name}: input_range needs a 1D input feature")
    kind = spec.member_kind
    if spec.model_kind().backend == "numpy":
        heads = data.layout.heads
        scaling = fit_scaling(train.x, train.y, False, "none", crop, heads)
        # augment.xanes: augmented copies of the training spectra, drawn once
        data = expand_training(data, spec, int(spec.seed))
        model, records = spec.model_kind().fit_numpy(data, spec, heads, crop, threads)
        return model, {"scaling": scaling, "crop": crop, "networks": records}
    input_scaling = spec.params.get("input_scaling", "per_feature")
    heads = data.layout.heads
    unscaled = {t for t, h in heads.items() if not spec.model_kind().scales_target(t, h)}
    scaling = fit_scaling(
        train.x, train.y, bool(spec.standardize), input_scaling, crop, heads, unscaled
    )
    n = spec.n_members
    nets, records = [], []
    for i in range(n):
        name = f"member_{i}" if n > 1 else spec.name
        seed = int(spec.seed) + i
        if spec.model_kind().one_network_per_target and len(data.layout.names) > 1:
            # As published: one network per target, each trained and early-stopped on
            # its own validation loss, then joined side by side.
            per_target = []
            for t in data.layout.names:
                net, rec = _fit_network(
                    data.select_targets([t]), spec, seed, crop, scaling.select([t]),
                    f"{name}_{t}", verbose, list(callbacks or []),
                )  # fmt: skip
                per_target.append(net)
                records.append({"target": t, **rec})
            net = combine_targets(per_target, input_shape, name)
        else:
            net, rec = _fit_network(
                data, spec, seed, crop, scaling, name, verbose, list(callbacks or [])
            )
            records.append(rec)
        nets.append(net)
        if verbose:
            print(f"{spec.name}: member {i + 1}/{n} ({kind}) done: {json.dumps(records[-1])}")
    model = combine_members(nets, input_shape, spec.name) if n > 1 else nets[0]
    return model, {"scaling": scaling, "crop": crop, "networks": records}


def validation_mse(model, data: TrainingData) -> float:
    """Mean over targets of the validation MSE on standardised targets (no regularisation).

    Comparable across models that differ in inputs, scaling or regularisation, because
    every target is measured in units of its own training-set standard deviation.  A
    class target contributes its mean cross-entropy (nats) instead.
    """
    val = data.splits["val"]
    pred = np.asarray(model.predict_on_batch(val.x), dtype=float)
    if pred.ndim == 3:  # ensemble: mean over members
        pred = pred.mean(axis=1)
    per_target = []
    heads = data.layout.heads
    for t, (a, b) in data.layout.slices().items():
        if heads[t].is_class:
            codes = val.y[t].ravel().astype(np.int64)
            p = np.clip(pred[np.arange(len(codes)), a + codes], 1e-12, None)
            per_target.append(float(-np.mean(np.log(p))))
            continue
        std = np.std(data.splits["train"].y[t], axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        per_target.append(np.mean(((pred[:, a:b] - val.y[t]) / std) ** 2))
    return float(np.mean(per_target))


def _metrics(model, card: dict[str, Any], data: TrainingData) -> dict[str, Any]:
    from mlxas.models.inference import predict_array, split_targets

    splits = [s for s, d in data.splits.items() if len(d)]
    # One prediction over all splits: a single traced call instead of one per split size.
    mean, std = predict_array(model, card, np.concatenate([data.splits[s].x for s in splits]))
    out: dict[str, Any] = {}
    start = 0
    for s in splits:
        d = data.splits[s]
        rows = slice(start, start + len(d))
        start += len(d)
        pred = split_targets(card, mean[rows])
        spread = None if std is None else split_targets(card, std[rows])
        out[s] = {}
        for t, h in data.layout.heads.items():
            if h.is_class:
                m = classification_metrics(d.y[t], pred[t], h.classes)
                out[s][t] = {k: v for k, v in m.items() if k not in ("per_class", "confusion")}
                continue
            y = d.y[t].reshape(len(d), -1)
            p = pred[t].reshape(len(d), -1)
            m = regression_metrics(y.ravel(), p.ravel())
            if spread is not None:
                m["mean_std"] = float(np.mean(spread[t]))
            out[s][t] = m
    return out


def train(
    dataset,
    spec: ModelSpec,
    store: str | Path,
    threads: int = 1,
    verbose: int = 2,
) -> tuple[str, dict[str, Any], Path]:
    """Train ``spec`` and write its model folder ``<store>/<model id>/``.

    ``dataset`` is a path to dataset.h5 or an opened dataset; ``store`` the folder of
    this entry's models (``models/<name>``).  Returns (model id, card, model folder).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from mlxas.error_flag import fit_error_flag
    from mlxas.models.folder import build_card, save_model_folder, training_band
    from mlxas.ood import fit_ood

    set_threads(threads)
    with opened(dataset) as ds:
        data = load_training_data(ds, spec)
        chi_train = _chi_or_none(ds)
    model, record = fit(data, spec, verbose=verbose, threads=threads)
    card = build_card(spec, data, record, threads)
    card["metrics"] = _metrics(model, card, data)
    x_train = data.splits["train"].x
    crop = record["crop"]
    # Out-of-distribution statistics of what the model reads: the cropped input.
    ood = fit_ood(x_train[:, crop] if x_train.ndim == 2 else x_train)
    # The error flag, calibrated on perturbed simulated train/val spectra; stored with the
    # OOD statistics so that the card binds it (mlxas.error_flag).
    with opened(dataset) as ds:
        ood["error"] = fit_error_flag(model, card, ood, ds)
    band = training_band(x_train, card, chi_train)
    mid, folder, card = save_model_folder(model, card, ood, band, Path(store))
    return mid, card, folder


def _chi_or_none(ds) -> np.ndarray | None:
    """The training split's unweighted chi(k), for the plot band; None for a dataset
    without chi(k) (XANES only, a structure engine)."""
    from mlxas.dataset.reader import DatasetError

    try:
        return np.asarray(ds.chi("train"))
    except (KeyError, DatasetError):
        return None


def write_pointer(path: str | Path, mid: str, card: dict[str, Any]) -> None:
    """``models/<name>.json``: name and id of the model trained for a config entry, and
    its metrics; the model folder is ``models/<name>/<model id>``."""
    from mlxas.models.card import write_json

    write_json(Path(path), {"model_id": mid, "name": card["name"], "metrics": card["metrics"]})
