"""An untrained model folder for speed benchmarks: a model kind built by the project's own
code (:func:`mlxas.models.network.assemble`, the registry's builder) with its random
initial weights, saved as training saves a model (card, SHA-256, model id, pointer), so
that both loaders (Keras and :mod:`mlxas.models.numpy_net`) read it.

Inference time does not depend on the weight values, so such a folder times a kind where
no trained model is at hand (``results/`` is not kept on every machine).  Its outputs
mean nothing: results made with it must say the weights were untrained.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The targets and input of the powder-XRD classifiers (config/experiments/xrd_*.yaml).
XRD_TARGETS = ("crystal_system", "space_group")
XRD_POINTS = 1401  # 10–80° 2θ in steps of 0.05°


def untrained_model(kind: str, workdir: Path, n_train: int = 64, seed: int = 0) -> Path:
    """Pointer ``<workdir>/models/<kind>.json`` to an untrained ``kind`` classifier of
    powder patterns (1401 points; crystal system and space group heads), written on the
    first call and reused after."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from mlxas.models.folder import build_card, save_model_folder, training_band
    from mlxas.models.network import assemble, crop_slice, fit_scaling
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import write_pointer
    from mlxas.models.training_data import TrainingData
    from mlxas.ood import fit_ood
    from mlxas.xrd.labels import class_names

    pointer = workdir / "models" / f"{kind}.json"
    if pointer.is_file():
        return pointer
    spec = ModelSpec.from_config(
        {"name": kind, "kind": kind, "input": "intensity", "targets": list(XRD_TARGETS)}
    )
    classes = {t: class_names(t) for t in XRD_TARGETS}
    rng = np.random.default_rng(seed)
    # Random patterns scaled to a maximum of 1 (features xrd: normalize max) and random
    # class codes: enough for the input statistics, the OOD statistics and the card.
    splits = {}
    for split in ("train", "val", "test"):
        x = rng.random((n_train, XRD_POINTS), dtype=np.float32)
        x /= x.max(axis=1, keepdims=True)
        y = {t: rng.integers(0, len(c), n_train) for t, c in classes.items()}
        splits[split] = (x, y)
    data = TrainingData.from_arrays(
        splits,
        {"xrd": {"normalize": "max", "scale": "linear"}},
        grid=np.linspace(10.0, 80.0, XRD_POINTS),
        dataset={"path": "random patterns (untrained benchmark model)", "engine": "xrd"},
        classes=classes,
    )
    train = data.splits["train"]
    heads = data.layout.heads
    crop = crop_slice(data.grid, spec.input_range, XRD_POINTS)
    kind_obj = spec.model_kind()
    unscaled = {t for t, h in heads.items() if not kind_obj.scales_target(t, h)}
    scaling = fit_scaling(
        train.x, train.y, bool(spec.standardize),
        spec.params.get("input_scaling", "per_feature"), crop, heads, unscaled,
    )  # fmt: skip
    keras.utils.set_random_seed(seed)
    _, model = assemble(spec.member_kind, spec.params, (XRD_POINTS,), heads, crop, scaling,
                        name=spec.name)  # fmt: skip
    network = {"seed": seed, "epochs_run": 0, "best_epoch": None, "best_val_loss": None,
               "seconds": 0.0, "epochs_per_second": None}  # fmt: skip
    record = {"scaling": scaling, "crop": crop, "networks": [network]}
    card = build_card(spec, data, record, threads=2)
    card["metrics"] = {}  # untrained: there is nothing to measure
    store = workdir / "models" / kind
    mid, _, card = save_model_folder(
        model, card, fit_ood(train.x), training_band(train.x, card), store
    )
    write_pointer(pointer, mid, card)
    return pointer


def random_patterns(n: int, seed: int = 1) -> np.ndarray:
    """``n`` random inputs of the untrained model's shape (float32, maximum 1 per row)."""
    x = np.random.default_rng(seed).random((n, XRD_POINTS), dtype=np.float32)
    return x / x.max(axis=1, keepdims=True)
