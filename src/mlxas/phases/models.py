"""Sign networks for centrosymmetric reflections: kinds, losses, augmentation, training.

Kinds (registry :data:`KIND_DEFAULTS` / :data:`BUILDERS`, in the style of
:mod:`mlxas.models.registry`; the core registry trains regressors with MSE on
standardised targets, so these kinds live here until it can take a kind's own loss):

``sign_mlp``     the reference: |E| of the reflection list -> one hidden Dense layer of
                 100 ReLU units -> one logit per reflection; intensity-weighted binary
                 cross-entropy (weights |E|², 0 for reflections beyond d_min) against the
                 signs at the crystal's own origin, as in the first published attempt.
``sign_mlp_oi``  the same network family made origin-blind: the loss is the smallest of
                 the 8 losses against the signs moved to each permissible origin
                 (:func:`mlxas.phases.labels.origin_flips`), so the network is never
                 asked for what the amplitudes cannot tell; input |E| and the mask,
                 wider layers with dropout; training data multiplied by the 48 signed
                 permutations of h, k, l (axis relabellings and mirror images of a
                 centrosymmetric crystal, which permute its reflections and keep their
                 signs; only for P-1, whose reflection list is closed under them).

A model maps ``[batch, n_reflections]`` |E| (``sign_mlp``) or ``[batch, 2 *
n_reflections]`` (|E| then mask) to logits ``[batch, n_reflections]``: sign 1 (phase =
the restricted value) where the logit is positive.
"""

from __future__ import annotations

import copy
import itertools
import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BUILDERS",
    "KIND_DEFAULTS",
    "TrainResult",
    "build",
    "predict_signs",
    "resolve_spec",
    "signed_permutations",
    "train_signs",
]

KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "sign_mlp": {
        "epochs": 200,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "patience": 20,
        "origin_invariant": False,
        "augment": False,
        "input": "e_value",
        "params": {"hidden": [100], "activation": "relu", "dropout": 0.0, "l2": 0.0},
    },
    "sign_mlp_oi": {
        "epochs": 150,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "patience": 15,
        "origin_invariant": True,
        "augment": True,
        "input": "e_value+mask",
        "params": {"hidden": [256, 256], "activation": "relu", "dropout": 0.2, "l2": 1e-6},
    },
}


class PhaseModelError(ValueError):
    """A model entry that cannot be trained as configured."""


def resolve_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The entry with its kind's defaults filled in (a new dict)."""
    kind = spec.get("kind")
    if kind not in KIND_DEFAULTS:
        raise PhaseModelError(f"unknown phase model kind {kind!r} (have: {sorted(KIND_DEFAULTS)})")
    out = copy.deepcopy(KIND_DEFAULTS[kind])
    out.update({k: v for k, v in spec.items() if k != "params" and v is not None})
    out["params"] = {**out["params"], **(spec.get("params") or {})}
    out.setdefault("seed", 0)
    return out


def _mlp(n_in: int, n_out: int, params: dict[str, Any]):
    import keras

    x = inp = keras.Input(shape=(n_in,), name="reflections")
    reg = keras.regularizers.L2(params["l2"]) if params.get("l2") else None
    for i, units in enumerate(params["hidden"]):
        x = keras.layers.Dense(
            int(units), activation=params["activation"], kernel_regularizer=reg, name=f"dense_{i}"
        )(x)
        if params.get("dropout"):
            x = keras.layers.Dropout(float(params["dropout"]), name=f"dropout_{i}")(x)
    out = keras.layers.Dense(n_out, name="sign_logits")(x)
    return keras.Model(inp, out, name="sign_mlp")


BUILDERS = {"sign_mlp": _mlp, "sign_mlp_oi": _mlp}


def build(kind: str, n_reflections: int, input_kind: str, params: dict[str, Any]):
    """Uncompiled Keras model of ``kind`` for ``n_reflections`` reflections."""
    n_in = n_reflections * (2 if input_kind == "e_value+mask" else 1)
    return BUILDERS[kind](n_in, n_reflections, params)


def model_input(e_value: np.ndarray, mask: np.ndarray, input_kind: str) -> np.ndarray:
    """The network input of a kind from |E| and the mask ``[n, n_reflections]``."""
    if input_kind == "e_value":
        return np.asarray(e_value, np.float32)
    if input_kind == "e_value+mask":
        return np.concatenate([e_value, mask], axis=1).astype(np.float32)
    raise PhaseModelError(f"unknown input {input_kind!r} (e_value, e_value+mask)")


def signed_permutations(hkl: np.ndarray) -> np.ndarray:
    """``[48, n]`` index arrays: row g gives, for each reflection j of the list, the
    reflection i whose value it takes when the crystal's axes are permuted and
    mirrored by g (the image g·h_i, or its Friedel mate, is h_j).  Raises
    :class:`PhaseModelError` if the list is not closed under them."""
    hkl = np.asarray(hkl, int)
    pos = {tuple(h): i for i, h in enumerate(hkl)}
    rows = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            img = hkl[:, perm] * np.array(signs)
            row = np.empty(len(hkl), dtype=np.int64)
            for i, g in enumerate(map(tuple, img)):
                j = pos.get(g)
                if j is None:
                    j = pos.get(tuple(-x for x in g))
                if j is None:
                    raise PhaseModelError(f"reflection list not closed: {g} has no image")
                row[j] = i
            rows.append(row)
    return np.stack(rows)


def _sign_loss(flips: np.ndarray | None):
    """Weighted BCE on logits; ``y_true`` is ``[batch, 2, n]`` (sign, weight).  With
    ``flips`` [n_origins, n] (±1) the loss is the smallest over the origins."""
    import keras
    from keras import ops

    f = None if flips is None else keras.ops.convert_to_tensor(flips.T.astype("float32"))

    def loss(y_true, logits):
        sign, w = y_true[:, 0, :], y_true[:, 1, :]
        wsum = ops.maximum(ops.sum(w, axis=1), 1e-6)
        base = ops.sum(w * ops.softplus(logits), axis=1)
        if f is None:
            return (base - ops.sum(w * sign * logits, axis=1)) / wsum
        t = 2.0 * sign - 1.0  # ±1
        # target under origin o is (t f_o + 1) / 2
        cross = 0.5 * ops.matmul(w * t * logits, f) + 0.5 * ops.sum(w * logits, axis=1)[:, None]
        return ops.min(base[:, None] - cross, axis=1) / wsum

    return loss


@dataclass
class TrainResult:
    model: Any
    spec: dict[str, Any]
    seconds: float
    epochs_run: int
    best_val_loss: float
    history: dict[str, list[float]]


def _dataset(x, y, perms, batch, shuffle, seed, augment):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(len(x), 20000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)
    if augment:
        table = tf.constant(perms)
        n_ref = perms.shape[1]
        two = x.shape[1] == 2 * n_ref

        def aug(xb, yb):
            # one signed permutation per crystal of the batch, gathered in one call
            g = tf.random.uniform((tf.shape(xb)[0],), 0, table.shape[0], dtype=tf.int32)
            idx = tf.gather(table, g)  # [batch, n_ref]
            if two:
                xb = tf.concat(
                    [
                        tf.gather(xb[:, :n_ref], idx, batch_dims=1),
                        tf.gather(xb[:, n_ref:], idx, batch_dims=1),
                    ],
                    axis=1,
                )
            else:
                xb = tf.gather(xb, idx, batch_dims=1)
            return xb, tf.gather(yb, idx, axis=2, batch_dims=1)

        ds = ds.map(aug, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def train_signs(
    spec: dict[str, Any],
    e_value: np.ndarray,
    mask: np.ndarray,
    sign: np.ndarray,
    hkl: np.ndarray,
    space_group: str,
    validation_fraction: float = 0.1,
    verbose: int = 0,
) -> TrainResult:
    """Train one sign model on ``[n, n_reflections]`` arrays; the last
    ``validation_fraction`` of the rows is the validation set (early stopping)."""
    import keras

    from mlxas.phases.labels import origin_flips

    spec = resolve_spec(spec)
    keras.utils.set_random_seed(int(spec["seed"]))
    x = model_input(e_value, mask, spec["input"])
    weight = (np.asarray(mask) * np.asarray(e_value) ** 2).astype(np.float32)
    y = np.stack([np.asarray(sign, np.float32), weight], axis=1)
    n_val = max(1, round(validation_fraction * len(x)))
    flips = origin_flips(space_group, hkl) if spec["origin_invariant"] else None
    perms = signed_permutations(hkl) if spec["augment"] else None
    model = build(spec["kind"], len(hkl), spec["input"], spec["params"])
    model.compile(
        optimizer=keras.optimizers.Adam(spec["learning_rate"]),
        loss=_sign_loss(None if flips is None else flips.astype(np.float32)),
    )
    train = _dataset(
        x[:-n_val], y[:-n_val], perms, spec["batch_size"], True, spec["seed"], spec["augment"]
    )
    val = _dataset(x[-n_val:], y[-n_val:], None, 256, False, 0, False)
    stop = keras.callbacks.EarlyStopping(
        patience=int(spec["patience"]), restore_best_weights=True, monitor="val_loss"
    )
    t0 = time.perf_counter()
    hist = model.fit(
        train, validation_data=val, epochs=int(spec["epochs"]), callbacks=[stop], verbose=verbose
    )
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return TrainResult(
        model, spec, time.perf_counter() - t0, len(h["loss"]), float(min(h["val_loss"])), h
    )


_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_call(model):
    """The model's forward pass as one traced TensorFlow function, made once per model:
    a plain eager call costs ~8 ms of CPU per crystal for the 256-256 network, the
    traced one ~3.5 ms (Keras' predict() adds ~30 ms of set-up per call)."""
    fn = _CALLS.get(model)
    if fn is None:
        import tensorflow as tf

        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        _CALLS[model] = fn
    return fn


def predict_signs(model, spec: dict[str, Any], e_value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sign probabilities ``[n, n_reflections]`` (sigmoid of the logits)."""
    x = model_input(e_value, mask, resolve_spec(spec)["input"])
    fn = _compiled_call(model)
    logits = np.concatenate([np.asarray(fn(x[i : i + 4096])) for i in range(0, len(x), 4096)])
    return 1.0 / (1.0 + np.exp(-logits))
