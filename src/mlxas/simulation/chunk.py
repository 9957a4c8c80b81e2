"""Chunk files: the results of one simulation job, one HDF5 file per chunk, any engine.

Per item: the strings ``item_id``, ``status``, ``reason``, ``detail``, ``input_hash``,
``engine``, ``engine_version`` and the float ``seconds``; per scalar of the engine a
float64 column under ``scalars/<name>``; per array of the engine a group
``arrays/<name>`` with ``data`` (the items' arrays concatenated along their first axis)
and ``offsets`` (``offsets[i]:offsets[i+1]`` is item ``i``; an item without that array
has none).  Attributes: ``schema_version``, ``engine``, ``engine_version``,
``settings`` (the engine's settings as JSON: the file is self-describing, so ``gather``
rebuilds the engine from it), ``settings_hash`` and the summary ``n_items``, ``n_ok``,
``reasons`` (JSON ``{reason: count}``), ``seconds``.  The same summary is written beside the file as
``<nnnnn>.summary.json`` (with the chunk file's size, to tell a stale one), because
``mlxas status`` reads thousands of them and a small JSON file reads ~50x faster than
HDF5 attributes.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.engines.base import ItemResult, SignalEngine

__all__ = [
    "CHUNK_SCHEMA_VERSION",
    "chunk_engine",
    "chunk_summary",
    "read_chunk",
    "summarise",
    "write_chunk",
]

#: 2: engine-blind layout (named arrays and scalars); 1 held FEFF's arrays by name.
CHUNK_SCHEMA_VERSION = 2
_STRINGS = ("item_id", "status", "reason", "detail", "input_hash", "engine", "engine_version")


def summarise(results: Sequence[ItemResult]) -> dict:
    """``{n_items, n_ok, reasons: {reason: count}, seconds}`` of a chunk's results."""
    return {
        "n_items": len(results),
        "n_ok": sum(r.ok for r in results),
        "reasons": dict(sorted(Counter(r.reason for r in results if not r.ok).items())),
        "seconds": float(sum(r.seconds for r in results)),
    }


# h5py is imported where it is used: `mlxas status` mostly reads the JSON summaries.
def write_chunk(
    path: str | Path,
    results: Sequence[ItemResult],
    summary_path: str | Path,
    engine: str,
    settings: Mapping[str, Any],
    settings_hash: str = "",
) -> None:
    """Write atomically: a temporary file, fsync, then rename over ``path``; the summary
    JSON goes to ``summary_path`` first.  ``engine`` and ``settings`` (plain data) name
    the engine that computed the results."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    summary = summarise(results)
    with h5py.File(tmp, "w") as f:
        f.attrs["schema_version"] = CHUNK_SCHEMA_VERSION
        f.attrs["engine"] = engine
        f.attrs["engine_version"] = ",".join(sorted({r.engine_version for r in results}))
        f.attrs["settings"] = json.dumps(settings, sort_keys=True)
        f.attrs["settings_hash"] = settings_hash
        for key, value in summary.items():
            f.attrs[key] = json.dumps(value) if key == "reasons" else value
        str_dt = h5py.string_dtype()
        for name in _STRINGS:
            values = np.asarray([getattr(r, name) for r in results], dtype=object)
            f.create_dataset(name, data=values, dtype=str_dt)
        f.create_dataset("seconds", data=np.asarray([r.seconds for r in results], float))
        scalars = sorted({k for r in results for k in r.scalars})
        for name in scalars:
            values = [r.scalars.get(name, np.nan) for r in results]
            f.create_dataset(f"scalars/{name}", data=np.asarray(values, dtype=np.float64))
        for name in sorted({k for r in results for k in r.arrays}):
            data, offsets = _ragged([r.arrays.get(name) for r in results])
            g = f.create_group(f"arrays/{name}")
            g.create_dataset("data", data=data, compression="gzip", shuffle=True)
            g.create_dataset("offsets", data=offsets)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    side = Path(summary_path)
    side_tmp = side.with_name(f".{side.name}.tmp-{os.getpid()}")
    side_tmp.write_text(json.dumps({**summary, "chunk_bytes": tmp.stat().st_size}))
    side_tmp.replace(side)
    tmp.replace(path)  # last: the chunk file exists only once complete


def _ragged(arrays: list[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    present = [np.asarray(a) for a in arrays if a is not None]
    tail = present[0].shape[1:] if present else ()
    dtype = np.result_type(*present) if present else np.float64
    parts = [np.zeros((0, *tail), dtype) if a is None else np.asarray(a, dtype) for a in arrays]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in parts])
    data = np.concatenate(parts) if parts else np.zeros((0, *tail), dtype)
    return data, offsets


def chunk_summary(path: str | Path, summary_path: str | Path, size: int | None = None) -> dict:
    """``{n_items, n_ok, reasons, seconds}`` of a chunk file: from ``summary_path`` when it
    matches the chunk's ``size`` (bytes; looked up if not given), else from the file."""
    path = Path(path)
    size = path.stat().st_size if size is None else size
    try:
        side = json.loads(Path(summary_path).read_text())
    except (OSError, ValueError):
        side = None
    if side is not None and side.get("chunk_bytes") == size:
        side.pop("chunk_bytes")
        return side
    import h5py

    with h5py.File(path, "r") as f:
        a = f.attrs
        return {
            "n_items": int(a["n_items"]),
            "n_ok": int(a["n_ok"]),
            "reasons": json.loads(a["reasons"]),
            "seconds": float(a["seconds"]),
        }


def read_chunk(path: str | Path) -> list[ItemResult]:
    """Every item of a chunk file, in the order of the input table."""
    import h5py

    with h5py.File(path, "r") as f:
        ver = int(f.attrs.get("schema_version", 0))
        if ver != CHUNK_SCHEMA_VERSION:
            raise ValueError(
                f"{path}: chunk schema {ver}, this mlxas reads {CHUNK_SCHEMA_VERSION}; "
                "rerun the simulation stage (finished runs are reused)"
            )
        cols = {n: [x.decode() if isinstance(x, bytes) else str(x) for x in f[n][()]]
                for n in _STRINGS}  # fmt: skip
        seconds = f["seconds"][()].tolist()
        scalars = {n: ds[()] for n, ds in f.get("scalars", {}).items()}
        arrays = {n: (g["data"][()], g["offsets"][()]) for n, g in f.get("arrays", {}).items()}
    out = []
    for i in range(len(cols["item_id"])):
        r = ItemResult(
            **{n: cols[n][i] for n in _STRINGS}, seconds=float(seconds[i]),
            scalars={n: float(v[i]) for n, v in scalars.items()},
        )  # fmt: skip
        for name, (data, off) in arrays.items():
            if off[i + 1] > off[i] or r.ok:
                r.arrays[name] = data[off[i] : off[i + 1]]
        out.append(r)
    return out


def chunk_engine(path: str | Path) -> tuple[SignalEngine, str]:
    """The engine that wrote a chunk file, rebuilt from its attributes, and its
    settings hash."""
    import h5py

    from mlxas.engines.base import get_engine

    with h5py.File(path, "r") as f:
        name, settings = str(f.attrs["engine"]), json.loads(f.attrs["settings"])
        settings_hash = str(f.attrs.get("settings_hash", ""))
    return get_engine(name, settings), settings_hash
