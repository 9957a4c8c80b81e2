"""Per-chunk feature cache, so that gathering again computes only new items.

Snakemake deletes ``dataset.h5`` before it reruns ``gather``, so the dataset file itself
cannot be extended in place.  Instead each chunk file is processed once into a cache
file named by a hash of

* the chunk file's bytes,
* the feature settings (and whether per-item model inputs are needed),
* the source of the engine's featurizing code (``provenance.code_version`` of the
  engine's module) and the versions of this cache and of the chunk format,

holding the chunk's item results and what the engine's
:meth:`~mlxas.engines.base.SignalEngine.featurize` returned (signals and model inputs).
A later gather with the same chunk and settings reads the cache instead of recomputing;
a changed chunk, setting or code gives a new key.  Cache files are written under a
temporary name and renamed, so a kill leaves no partial entry; an unreadable entry is
recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from mlxas.dataset.schema import DatasetError
from mlxas.provenance import code_version, hash_json

__all__ = [
    "CACHE_VERSION",
    "SCALARS",
    "ChunkSummary",
    "engine_targets",
    "file_hash",
    "process_chunk",
    "read_cached",
    "read_targets",
]

#: 2: engine-blind entries (featurize's arrays by name); 3: the engine's targets.
CACHE_VERSION = 3

#: Text columns copied from the chunk file for every item, ok or failed.
SCALARS = (
    "site_id",
    "status",
    "reason",
    "detail",
    "input_hash",
    "settings_hash",
    "engine",
    "engine_version",
)


@dataclass
class ChunkSummary:
    """What ``gather`` needs from one processed chunk (the arrays stay in ``cache``).

    ``sites``: one row per item of the chunk: :data:`SCALARS`, ``seconds``, ``ok`` and
    one float column ``scalar:<name>`` per engine scalar (e.g. FEFF's ``e0``).
    """

    chunk: str
    cache: str
    computed: bool
    sites: pd.DataFrame

    @property
    def n_ok(self) -> int:
        return int(self.sites["ok"].sum())


def file_hash(path: str | Path) -> str:
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()[:32]


def cache_key(chunk_hash: str, features: Any, with_features: bool, engine_module: str) -> str:
    from mlxas.simulation.chunk import CHUNK_SCHEMA_VERSION

    # The source of the featurizing code counts; changes to this module's processing bump
    # CACHE_VERSION and changes to what a chunk file holds bump its schema version.
    return hash_json(
        {
            "chunk": chunk_hash,
            "features": features,
            "with_features": with_features,
            "code": code_version(engine_module),
            "version": CACHE_VERSION,
            "chunk_schema": CHUNK_SCHEMA_VERSION,
        },
        length=24,
    )


def _read_sites(f: h5py.File) -> pd.DataFrame:
    df = pd.DataFrame(json.loads(f["sites"][()]))
    floats = {c: float for c in df.columns if c == "seconds" or c.startswith("scalar:")}
    return df.astype({**floats, "ok": bool})


def read_cached(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of a cache entry (rows: the chunk's ok items): every signal, and the model
    inputs in ``names`` (None: all) as ``features/<name>``."""
    with h5py.File(path, "r") as f:
        out: dict[str, np.ndarray] = {}
        f["signals"].visititems(
            lambda key, ds: out.__setitem__(key, ds[()]) if isinstance(ds, h5py.Dataset) else None
        )
        for name, ds in f["features"].items():
            if names is None or name in names:
                out[f"features/{name}"] = ds[()]
    return out


def read_targets(path: str | Path) -> dict[str, np.ndarray]:
    """The engine's targets (:meth:`~mlxas.engines.base.SignalEngine.target_names`) of a
    cache entry, rows as in :func:`read_cached`."""
    with h5py.File(path, "r") as f:
        group = f.get("targets")
        return {} if group is None else {name: ds[()] for name, ds in group.items()}


def engine_targets(
    summaries: list[ChunkSummary], engine, features: dict, targets: dict
) -> dict[str, np.ndarray]:
    """The engine's own targets of the ok items in chunk order, added to ``targets``
    (their unit and grid) in place; a name that a label set also writes is refused."""
    from mlxas.engines.base import Axis

    names = tuple(engine.target_names(features)) if engine is not None else ()
    if not names:
        return {}
    clash = sorted(set(names) & set(targets))
    if clash:
        raise DatasetError(f"gather: labels {clash} come from both a label set and {engine.name}")
    units, axes = engine.feature_units(features), engine.feature_axes(features)
    for name in names:
        axis = axes.get(name)
        grid = None
        if axis is not None:
            first = axis[0] if isinstance(axis[0], Axis) else Axis(name, *axis)
            grid = {
                "values": np.asarray(first.values).tolist(),
                "unit": first.unit,
                "name": first.name,
            }
        targets[name] = {"unit": units.get(name, ""), "grid": grid}
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for s in summaries:
        if s.n_ok:
            arrays = read_targets(s.cache)
            for n in names:
                parts[n].append(arrays[n])
    return {n: np.concatenate(p) if p else np.zeros((0,), np.float32) for n, p in parts.items()}


def _write(path: Path, sites: pd.DataFrame, arrays: dict[str, np.ndarray], meta: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # The item table is small: one JSON text is far quicker than a dataset per column.
    with h5py.File(tmp, "w") as f:
        f.attrs.update(meta)
        f["sites"] = json.dumps({c: sites[c].tolist() for c in sites.columns})
        f.create_group("features")
        f.create_group("signals")
        f.create_group("targets")
        for name, arr in arrays.items():
            f.create_dataset(name, data=arr)
    tmp.replace(path)


def process_chunk(task: tuple) -> ChunkSummary:
    """Cache entry of one chunk file, computed unless an entry with its key exists.

    ``task`` = (chunk path, cache dir, features settings, with_features); a tuple so that
    it can be sent to a worker process.  The engine is rebuilt from the chunk file.
    """
    from mlxas.simulation.chunk import chunk_engine, read_chunk

    chunk, cache_dir, features, with_features = task
    try:
        engine, settings_hash = chunk_engine(chunk)
        key = cache_key(file_hash(chunk), features, with_features, type(engine).__module__)
    except OSError as err:
        raise DatasetError(f"{chunk}: cannot read chunk file ({err.strerror or err})") from None
    except (KeyError, ValueError) as err:
        raise DatasetError(f"{chunk}: not a readable chunk file ({err})") from None
    cpath = Path(cache_dir) / f"{key}.h5"
    if cpath.is_file():
        try:
            with h5py.File(cpath, "r") as f:
                return ChunkSummary(str(chunk), str(cpath), False, _read_sites(f))
        except (OSError, KeyError):
            pass  # damaged or foreign entry: compute it again
    try:
        results = read_chunk(chunk)
    except (OSError, KeyError, ValueError) as err:
        raise DatasetError(f"{chunk}: not a readable chunk file ({err})") from None
    rows, good = [], []
    for r in results:
        row = {
            "site_id": r.item_id, "status": r.status, "reason": r.reason, "detail": r.detail,
            "input_hash": r.input_hash, "settings_hash": settings_hash, "engine": r.engine,
            "engine_version": r.engine_version, "seconds": float(r.seconds), "ok": r.ok,
            **{f"scalar:{k}": float(v) for k, v in r.scalars.items()},
        }  # fmt: skip
        problem = engine.check_item(r, features) if r.ok else None
        if problem is not None:
            row.update(ok=False, status="failed", reason=problem[0], detail=problem[1])
        if row["ok"]:
            good.append(r)
        rows.append(row)
    sites = pd.DataFrame(rows)
    signals = set(engine.signal_names(features))
    targets = set(engine.target_names(features))
    arrays: dict[str, np.ndarray] = {}
    if good:
        for name, arr in engine.featurize(good, features).items():
            if name in signals:
                arrays[f"signals/{name}"] = np.asarray(arr)
            elif name in targets:
                arrays[f"targets/{name}"] = np.asarray(arr, dtype=np.float32)
            elif with_features:
                arrays[f"features/{name}"] = np.asarray(arr, dtype=np.float32)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    _write(cpath, sites, arrays, {"chunk": str(chunk), "key": key, "engine": engine.name})
    return ChunkSummary(str(chunk), str(cpath), True, sites)
