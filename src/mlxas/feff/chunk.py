"""Chunk files: the FEFF results of one Snakemake job, one HDF5 file per chunk.

Arrays of different sites have different lengths, so each quantity is stored once,
concatenated, with an offsets array (``k_offsets[i]:k_offsets[i+1]`` is site ``i``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

__all__ = ["CHUNK_SCHEMA_VERSION", "SiteResult", "read_chunk", "write_chunk"]

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


def write_chunk(path: str | Path, results: list[SiteResult]) -> None:
    """Write atomically: a temporary file, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    str_dt = h5py.string_dtype()
    with h5py.File(tmp, "w") as f:
        f.attrs["schema_version"] = CHUNK_SCHEMA_VERSION
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
    tmp.replace(path)


def read_chunk(path: str | Path) -> list[SiteResult]:
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
