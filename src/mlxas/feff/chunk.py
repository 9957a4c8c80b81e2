"""Chunk files: the FEFF results of one Snakemake job, one HDF5 file per chunk.

Arrays of different sites have different lengths, so each quantity is stored once,
concatenated, with an offsets array (``k_offsets[i]:k_offsets[i+1]`` is site ``i``).
The file's attributes summarise it (``n_sites``, ``n_ok``, ``reasons`` as JSON
``{reason: count}``, ``feff_seconds``); the same summary is written beside it as
``<nnnnn>.summary.json`` (with the chunk file's size, to tell a stale one), because
``mlxas status`` reads thousands of them and a small JSON file reads ~50x faster than
HDF5 attributes.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CHUNK_SCHEMA_VERSION",
    "SiteResult",
    "chunk_summary",
    "read_chunk",
    "summary_path",
    "write_chunk",
]

CHUNK_SCHEMA_VERSION = 1
_SCALARS = [
    "site_id",
    "status",
    "reason",
    "detail",
    "input_hash",
    "card_hash",
    "engine",
    "engine_version",
    "seconds",
    "e0",
]


@dataclass
class SiteResult:
    site_id: str
    status: str  # "ok" or "failed"
    reason: str = ""
    detail: str = ""
    input_hash: str = ""
    card_hash: str = ""
    engine: str = ""
    engine_version: str = ""
    seconds: float = 0.0
    e0: float = float("nan")
    k: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mu: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mu0: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _ragged(results: list[SiteResult], attr: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = [np.asarray(getattr(r, attr), dtype=np.float64) for r in results]
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    data = np.concatenate(arrays) if arrays else np.zeros(0)
    return data, offsets


# h5py is imported where it is used: `mlxas status` mostly reads the JSON summaries.
def write_chunk(path: str | Path, results: list[SiteResult]) -> None:
    """Write atomically: a temporary file, fsync, then rename over ``path``."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    str_dt = h5py.string_dtype()
    summary = {
        "n_sites": len(results),
        "n_ok": sum(r.ok for r in results),
        "reasons": dict(sorted(Counter(r.reason for r in results if not r.ok).items())),
        "feff_seconds": float(sum(r.seconds for r in results)),
    }
    with h5py.File(tmp, "w") as f:
        f.attrs["schema_version"] = CHUNK_SCHEMA_VERSION
        for key, value in summary.items():
            f.attrs[key] = json.dumps(value) if key == "reasons" else value
        for name in _SCALARS:
            values = [getattr(r, name) for r in results]
            if name in ("seconds", "e0"):
                f.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            else:
                f.create_dataset(name, data=np.asarray(values, dtype=object), dtype=str_dt)
        for grid, attrs in (("k", ("k", "chi")), ("e", ("energy", "mu", "mu0"))):
            for attr in attrs:
                data, offsets = _ragged(results, attr)
                f.create_dataset(attr, data=data, compression="gzip", shuffle=True)
            f.create_dataset(f"{grid}_offsets", data=offsets)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    side = summary_path(path)
    side_tmp = side.with_name(f".{side.name}.tmp-{os.getpid()}")
    side_tmp.write_text(json.dumps({**summary, "chunk_bytes": tmp.stat().st_size}))
    side_tmp.replace(side)
    tmp.replace(path)  # last: the chunk file exists only once complete


def summary_path(path: str | Path) -> Path:
    """``<nnnnn>.summary.json`` beside the chunk file ``<nnnnn>.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.summary.json")


def chunk_summary(path: str | Path, size: int | None = None) -> dict:
    """``{n_sites, n_ok, reasons: {reason: count}, feff_seconds}`` of a chunk file.

    Read from the JSON beside it when that matches the file's ``size`` (bytes; looked up
    if not given), else from the file's attributes.
    """
    path = Path(path)
    size = path.stat().st_size if size is None else size
    try:
        side = json.loads(summary_path(path).read_text())
    except (OSError, ValueError):
        side = None
    if side is not None and side.get("chunk_bytes") == size:
        side.pop("chunk_bytes")
        return side
    import h5py

    with h5py.File(path, "r") as f:
        a = f.attrs
        if "n_ok" in a:
            return {
                "n_sites": int(a["n_sites"]),
                "n_ok": int(a["n_ok"]),
                "reasons": json.loads(a["reasons"]),
                "feff_seconds": float(a["feff_seconds"]),
            }
    results = read_chunk(path)  # written before the summary attributes existed
    return {
        "n_sites": len(results),
        "n_ok": sum(r.ok for r in results),
        "reasons": dict(Counter(r.reason for r in results if not r.ok)),
        "feff_seconds": float(sum(r.seconds for r in results)),
    }


def read_chunk(path: str | Path) -> list[SiteResult]:
    """Every site of a chunk file, in the order of the input table."""
    import h5py

    with h5py.File(path, "r") as f:
        ver = int(f.attrs.get("schema_version", 0))
        if ver > CHUNK_SCHEMA_VERSION:
            raise ValueError(
                f"{path}: chunk schema {ver} is newer than this mlxas ({CHUNK_SCHEMA_VERSION})"
            )
        cols = {}
        for name in _SCALARS:
            raw = f[name][()]
            cols[name] = (
                raw.tolist()
                if raw.dtype.kind == "f"
                else [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
            )
        arrays = {a: f[a][()] for a in ("k", "chi", "energy", "mu", "mu0")}
        koff, eoff = f["k_offsets"][()], f["e_offsets"][()]
    out = []
    for i in range(len(cols["site_id"])):
        r = SiteResult(**{n: cols[n][i] for n in _SCALARS})
        r.k, r.chi = (arrays[a][koff[i] : koff[i + 1]] for a in ("k", "chi"))
        r.energy, r.mu, r.mu0 = (arrays[a][eoff[i] : eoff[i + 1]] for a in ("energy", "mu", "mu0"))
        out.append(r)
    return out
