"""Saved models run with numpy alone: inference without importing TensorFlow or Keras.

A ``model.keras`` file is a zip archive holding ``config.json`` (the layer graph as Keras
serialises it) and ``model.weights.h5`` (the weights, one HDF5 group per layer whose
``vars`` group carries the layer's name).  :func:`read_archive` reads both with
``zipfile``, ``json`` and ``h5py``; :class:`NumpyModel` rebuilds the graph and runs its
forward pass in float32, as Keras does on a CPU.

Only the layer kinds that mlxas' model kinds are built from are run (see :data:`LAYERS`;
their forward functions are in :mod:`mlxas.models.numpy_layers`): Dense, Activation,
Dropout/Identity (inference: identity), Normalization (also inverted), Reshape, Flatten,
Cropping1D, Conv1D/Conv2D (any stride) with max pooling, Concatenate and nested
functional models (ensemble members, the per-target networks of ``paper_mlp``).  Anything
else, ``Lambda`` included, is refused with the layer's name: such a model needs Keras
(:func:`mlxas.models.card.load_model`).

The bytes of the archive are read once, checked against an expected SHA-256 when one is
given, and parsed from memory, so the checked bytes are the parsed bytes.

Shapes: inputs ``[N, *input_shape]`` as the card's ``preprocessing.input_shape``; the
output is ``[N, columns]`` (``[N, members, columns]`` for an ensemble), as Keras gives it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.models.card import (
    ModelLoadError,
    load_forest_file,
    loaded_card,
    model_file_name,
    resolve_model_dir,
    verify_model_dir,
)
from mlxas.models.numpy_layers import LAYERS, NO_WEIGHTS, layer_forward
from mlxas.workflow.layout import MODEL_FILE, MODEL_NPZ_FILE, ModelFiles

__all__ = ["LAYERS", "NumpyModel", "blas_threads", "load_model", "read_archive"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# --- reading ------------------------------------------------------------------------------


def read_archive(path: str | Path, sha256: str | None = None) -> tuple[dict, dict]:
    """(config, weights) of a ``.keras`` archive.

    ``weights`` is a tree of dicts: ``{"vars": [arrays], "name": layer name, "layers":
    {key: subtree}}`` as stored in ``model.weights.h5``.  ``sha256``: hex digest the file
    must have; a mismatch is refused before anything is parsed.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelLoadError(f"{path}: cannot read ({err.strerror or err})") from None
    if sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != sha256.lower():
            raise ModelLoadError(
                f"{path}: SHA-256 is {got}, the model card expects {sha256}; "
                "the file was changed after training"
            )
    if data[:8] == _HDF5_MAGIC:
        raise ModelLoadError(f"{path}: is a legacy HDF5 Keras model; mlxas only loads .keras")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            config = json.loads(zf.read("config.json"))
            weights_bytes = zf.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise ModelLoadError(f"{path}: not a Keras .keras archive ({err})") from None
    import h5py

    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as h5:
            weights = _weights_tree(h5)
    except OSError as err:
        raise ModelLoadError(f"{path}: model.weights.h5 is not readable HDF5 ({err})") from None
    return config, weights


def _weights_tree(group) -> dict[str, Any]:
    out: dict[str, Any] = {"vars": [], "name": None, "layers": {}}
    if "vars" in group:
        v = group["vars"]
        out["name"] = v.attrs.get("name")
        if isinstance(out["name"], bytes):
            out["name"] = out["name"].decode()
        out["vars"] = [np.asarray(v[str(i)]) for i in range(len(v))]
    if "layers" in group:
        out["layers"] = {k: _weights_tree(g) for k, g in group["layers"].items()}
    return out


# --- graph ----------------------------------------------------------------------------------


def _refs(obj: Any) -> list:
    """keras_history triples of the tensors in a node argument, in order."""
    if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
        return [tuple(obj["config"]["keras_history"])]
    if isinstance(obj, list | tuple):
        return [r for o in obj for r in _refs(o)]
    return []


def _endpoints(spec: Any) -> list[tuple]:
    if spec and isinstance(spec[0], str):
        return [tuple(spec)]
    return [tuple(s) for s in spec]


class _Graph:
    """One functional model: layers, their call nodes, inputs and outputs."""

    def __init__(self, config: dict, weights: dict, where: str):
        cfg = config["config"]
        self.name = cfg.get("name", "model")
        where = f"{where}/{self.name}"
        by_name = {w["name"]: w for w in weights.get("layers", {}).values() if w["name"]}
        self.inputs = _endpoints(cfg["input_layers"])
        self.outputs = _endpoints(cfg["output_layers"])
        self.layers: dict[str, Callable] = {}
        self.has_conv = False
        self.nodes: dict[str, list[list[tuple]]] = {}
        for layer in cfg["layers"]:
            cls, name = layer["class_name"], layer["name"]
            lw = by_name.get(name, {"vars": [], "layers": {}})
            self.nodes[name] = [_refs(node.get("args", [])) for node in layer["inbound_nodes"]]
            for node in layer["inbound_nodes"]:
                if _refs(node.get("kwargs", {})):
                    raise ModelLoadError(f"{where}/{name}: tensors passed as keyword arguments")
            if cls == "InputLayer":
                continue
            if cls in ("Functional", "Model", "Sequential") and "layers" in layer["config"]:
                if cls == "Sequential":
                    raise ModelLoadError(f"{where}/{name}: nested Sequential models not supported")
                sub = _Graph(layer, lw, where)
                self.layers[name] = sub
                self.has_conv |= sub.has_conv
                continue
            self.has_conv |= cls in ("Conv1D", "Conv2D")
            if cls in LAYERS and cls not in NO_WEIGHTS and not lw["vars"]:
                raise ModelLoadError(f"{where}/{name}: no weights for this {cls} layer")
            self.layers[name] = layer_forward(cls, layer["config"], lw["vars"], f"{where}/{name}")
        # Keras numbers a nested model's calls from 1 in input_layers/output_layers (its
        # node 0 is the built-in one linking its own inputs and outputs) but from 0 in the
        # inbound nodes of other layers.
        nested = {n for n, f in self.layers.items() if isinstance(f, _Graph)}
        self.inputs = [(n, k - (n in nested), i) for n, k, i in self.inputs]
        self.outputs = [(n, k - (n in nested), i) for n, k, i in self.outputs]

    def __call__(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        values: dict[tuple[str, int], list[np.ndarray]] = {}
        for (name, node, _), x in zip(self.inputs, xs, strict=True):
            values[(name, node)] = [x]

        def get(ref: tuple) -> np.ndarray:
            name, node, idx = ref
            key = (name, node)
            if key not in values:
                args = [get(r) for r in self.nodes[name][node]]
                out = self.layers[name](args)
                values[key] = out if isinstance(self.layers[name], _Graph) else [out]
            return values[key][idx]

        return [get(ref) for ref in self.outputs]


class NumpyModel:
    """A saved Keras model's forward pass in numpy (see the module docstring).

    ``predict_on_batch(x)`` mirrors Keras' method, so :func:`mlxas.models.predict_array`
    takes either model.
    """

    def __init__(self, config: dict, weights: dict, source: str = MODEL_FILE):
        if config.get("class_name") not in ("Functional", "Model"):
            raise ModelLoadError(
                f"{source}: top-level {config.get('class_name')!r} is not a functional model"
            )
        self.source = source
        self.graph = _Graph(config, weights, source)
        self.name = self.graph.name
        first = next(
            layer for layer in config["config"]["layers"] if layer["class_name"] == "InputLayer"
        )
        self.input_shape = tuple(first["config"]["batch_shape"][1:])
        # Rows per pass: convolutions unfold their input (kernel × channels per point).
        self.rows = 256 if self.graph.has_conv else 4096
        #: Threads that share a batch's passes; None: as many as BLAS may use (numpy's
        #: thread limit: 1 in the workers of ``mlxas predict`` and ``mlxas serve``).
        self.threads: int | None = None

    @classmethod
    def from_file(cls, path: str | Path, sha256: str | None = None) -> NumpyModel:
        config, weights = read_archive(path, sha256)
        return cls(config, weights, str(path))

    def __call__(self, x: np.ndarray) -> np.ndarray | list[np.ndarray]:
        return self.predict_on_batch(x)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray | list[np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"{self.source}: expects inputs of shape (N, "
                f"{', '.join(map(str, self.input_shape))}), got {x.shape}"
            )
        # A thread gets a 16th of a full pass at least (`rows` is sized to a pass's cost):
        # ~2 ms on one core for npcnn (16 rows) and for an MLP (256), more than starting
        # the threads costs (0.1–1 ms measured).  Smaller batches run here, as before.
        least = max(1, self.rows // 16)
        threads = self.threads or (blas_threads() if len(x) >= 2 * least else 1)
        threads = min(threads, -(-len(x) // least))
        # Passes of at most `rows` rows, at least one per thread.
        size = max(1, min(self.rows, -(-len(x) // max(threads, 1))))
        starts = range(0, max(len(x), 1), size)
        if threads <= 1 or len(starts) == 1:
            parts = [self.graph([x[i : i + size]]) for i in starts]
        else:
            # One BLAS thread per pass and the passes on `threads` threads (numpy releases
            # the GIL in products and copies): npcnn's products are too small for BLAS to
            # share one among threads (measured, 2 cores: 2 BLAS threads ran no faster than
            # 1, at twice the CPU time; two passes at a time, 2.0x as fast as one).
            with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
                parts = list(pool.map(lambda i: self.graph([x[i : i + size]]), starts))
        outs = [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]
        return outs[0] if len(outs) == 1 else outs


_BLAS = None  # threadpoolctl's controller of the loaded BLAS libraries, made on first use


def _blas():
    global _BLAS
    if _BLAS is None:  # finding the loaded BLAS libraries costs ~1 ms: once per process
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS


def blas_threads() -> int:
    """Threads numpy's BLAS may use now (its limit, at most the cores of this process):
    what :meth:`NumpyModel.predict_on_batch` runs passes on by default."""
    limits = [lib.num_threads for lib in _blas().select(user_api="blas").lib_controllers]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min([*limits, cores or 1]))


def load_model(path: str | Path) -> tuple[NumpyModel, dict]:
    """(numpy model, card) of a model folder, its model.keras, a pointer or ``latest``.

    The drop-in for :func:`mlxas.models.card.load_model` on the prediction path: the
    folder is verified the same way (every file against the SHA-256 the card records, the
    card against its model id, the folder name), the archive's bytes are checked once
    more against the card as they are parsed, and it refuses what that refuses (legacy
    HDF5, Lambda layers: any layer it cannot run).  It never imports TensorFlow.
    """
    model_dir = resolve_model_dir(path)
    card = verify_model_dir(model_dir)
    if model_file_name(card) == MODEL_NPZ_FILE:
        # A random forest is numpy already: its array file, verified above, is the model.
        forest = load_forest_file(ModelFiles(model_dir).model_npz)
        return forest, loaded_card(model_dir, card)
    model = NumpyModel.from_file(ModelFiles(model_dir).model, card["files"][MODEL_FILE])
    shape = tuple(card.get("preprocessing", {}).get("input_shape") or model.input_shape)
    if shape != model.input_shape:
        raise ModelLoadError(
            f"{model_dir}: card says input shape {shape}, {MODEL_FILE} {model.input_shape}"
        )
    return model, loaded_card(model_dir, card)
