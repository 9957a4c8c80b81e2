"""Per-chunk feature cache, so that gathering again computes only new spectra.

Snakemake deletes ``dataset.h5`` before it reruns ``gather``, so the dataset file itself
cannot be extended in place.  Instead each FEFF chunk file is processed once into a
cache file named by a hash of

* the chunk file's bytes,
* the feature settings (and whether per-site features are needed),
* the source of the spectral code (``provenance.code_version``) and the versions of
  this cache and of the chunk format,

holding the chunk's site results, chi(k) on the k grid, mu(E) on the energy grid when
XANES is on, and the per-site features.  A later gather with the same chunk and settings
reads the cache instead of recomputing; a changed chunk, setting or code gives a new key.
Cache files are written under a temporary name and renamed, so a kill leaves no partial
entry; an unreadable entry is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from mlxas.dataset.schema import DatasetError
from mlxas.provenance import code_version, hash_json

__all__ = ["CACHE_VERSION", "ChunkSummary", "file_hash", "process_chunk", "read_cached"]

CACHE_VERSION = 1

#: Scalar columns copied from the chunk file for every site, ok or failed.
SCALARS = (
    "site_id",
    "status",
    "reason",
    "detail",
    "input_hash",
    "card_hash",
    "engine",
    "engine_version",
)
FLOATS = ("seconds", "feff_e0")
_EDGE = ("mu", "norm", "e0", "edge_step")


@dataclass
class ChunkSummary:
    """What ``gather`` needs from one processed chunk (the arrays stay in ``cache``)."""

    chunk: str
    cache: str
    computed: bool
    sites: pd.DataFrame  # one row per site of the chunk: SCALARS, FLOATS, ok

    @property
    def n_ok(self) -> int:
        return int(self.sites["ok"].sum())


def file_hash(path: str | Path) -> str:
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()[:32]


def cache_key(chunk_hash: str, features_cfg: dict, with_features: bool) -> str:
    from mlxas.feff.chunk import CHUNK_SCHEMA_VERSION

    # The source of the spectral code counts; changes to this module's processing bump
    # CACHE_VERSION and changes to what a chunk file holds bump its schema version.
    # (Hashing the dataset or FEFF packages would drop the cache on any edit there.)
    code = code_version("mlxas.spectra.features")
    return hash_json(
        {
            "chunk": chunk_hash,
            "features": features_cfg,
            "with_features": with_features,
            "code": code,
            "version": CACHE_VERSION,
            "chunk_schema": CHUNK_SCHEMA_VERSION,
        },
        length=24,
    )


def _read_sites(f: h5py.File) -> pd.DataFrame:
    df = pd.DataFrame(json.loads(f["sites"][()]), columns=[*SCALARS, *FLOATS, "ok"])
    return df.astype({c: float for c in FLOATS} | {"ok": bool})


def read_cached(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of a cache entry (rows: the chunk's ok sites): ``chi``, XANES and features."""
    with h5py.File(path, "r") as f:
        out = {"chi": f["chi"][()]}
        if "edge" in f:
            out.update({f"edge/{a}": f["edge"][a][()] for a in _EDGE})
        for name, ds in f["features"].items():
            if names is None or name in names:
                out[f"features/{name}"] = ds[()]
    return out


def _write(path: Path, sites: pd.DataFrame, arrays: dict[str, np.ndarray], meta: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # The site table is small: one JSON text is far quicker than a dataset per column.
    with h5py.File(tmp, "w") as f:
        f.attrs.update(meta)
        f["sites"] = json.dumps({c: sites[c].tolist() for c in sites.columns})
        f.create_group("features")
        for name, arr in arrays.items():
            f.create_dataset(name, data=arr)
    tmp.replace(path)


def process_chunk(task: tuple) -> ChunkSummary:
    """Cache entry of one chunk file, computed unless an entry with its key exists.

    ``task`` = (chunk path, cache dir, features settings, with_features); a tuple so that
    it can be sent to a worker process.
    """
    from mlxas.feff.chunk import read_chunk
    from mlxas.spectra.features import compute_features
    from mlxas.spectra.grids import interp_on_grid, k_grid
    from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid

    chunk, cache_dir, cfg, with_features = task
    try:
        key = cache_key(file_hash(chunk), cfg, with_features)
    except OSError as err:
        raise DatasetError(f"{chunk}: cannot read chunk file ({err.strerror or err})") from None
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
        raise DatasetError(f"{chunk}: not a readable FEFF chunk file ({err})") from None
    k = k_grid(cfg["k_grid"])
    rows, chis, edges = [], [], []
    xanes = cfg["xanes"]["enabled"]
    for r in results:
        row = {c: str(getattr(r, c)) for c in SCALARS}
        row.update(seconds=float(r.seconds), feff_e0=float(r.e0), ok=bool(r.ok))
        if r.ok and not (np.all(np.isfinite(r.chi)) and len(r.k) == len(r.chi) > 1):
            row.update(ok=False, status="failed", reason="invalid_spectrum")
            row["detail"] = "chi(k) in the chunk file is empty or not finite"
        if row["ok"] and xanes:
            try:
                edge = edge_on_grid([EdgeSpectrum(r.energy, r.mu, None, True)], cfg["xanes"])
            except ValueError as err:
                row.update(ok=False, status="failed", reason="xanes_normalisation")
                row["detail"] = f"mu(E) could not be normalised: {err}"
            else:
                edges.append(edge)
        if row["ok"]:
            chis.append(interp_on_grid(r.k, r.chi, k))
        rows.append(row)
    cols = [*SCALARS, *FLOATS, "ok"]
    sites = pd.DataFrame({c: [row[c] for row in rows] for c in cols}, columns=cols)
    chi = np.asarray(chis, dtype=np.float64).reshape(len(chis), len(k))
    arrays: dict[str, np.ndarray] = {"chi": chi.astype(np.float32)}
    edge = None
    if xanes:
        from mlxas.spectra.xanes import EdgeGrid

        edge = EdgeGrid.concat(edges) if edges else None
        if edge is not None:
            arrays.update({f"edge/{a}": getattr(edge, a) for a in _EDGE})
    if with_features and len(chi):
        for name, arr in compute_features(chi, cfg, edge).items():
            arrays[f"features/{name}"] = arr
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    _write(cpath, sites, arrays, {"chunk": str(chunk), "key": key})
    return ChunkSummary(str(chunk), str(cpath), True, sites)
