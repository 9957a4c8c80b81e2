"""Many FEFF-like spectra in the real chunk format, for the dataset benchmarks.

A few real FEFF8L runs (Cu octahedron, 4 unique sites, through the mlxas stages) are the
seed; each synthetic site takes one of them and changes it the way structure changes a
spectrum: amplitude × s (CN × s), an extra Debye–Waller factor exp(−2k²Δσ²), a
stretched phase chi(k·(1+ε)) (R × (1+ε)), plus a little noise.  The labels change with
them.  The chunk files are written with :func:`mlxas.feff.chunk.write_chunk`, exactly as
``mlxas run-feff`` writes them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

__all__ = ["make_chunks"]


def make_chunks(
    work: Path, n_sites: int, chunk_size: int, seed: int = 0, first: int = 0
) -> tuple[list[Path], Path, dict]:
    """Write ``n_sites`` synthetic sites (ids from ``first``) under ``work``; reuse if there."""
    from _dataset_support import CONFIG, feff_results
    from mlxas.feff.chunk import read_chunk, write_chunk
    from mlxas.sites import write_sites

    out = work / f"synthetic_{first}_{n_sites}_{chunk_size}_{seed}"
    done = out / "done.json"
    if done.is_file():
        info = json.loads(done.read_text())
        return [out / c for c in info["chunks"]], out / "sites.parquet", info
    real_dir = work / "feff_seed"
    feff = feff_results(real_dir)
    seeds = [r for c in feff.chunks for r in read_chunk(c)]
    labels = pd.read_parquet(feff.sites[0]).set_index("site_id")
    rng = np.random.default_rng(seed + first)
    out.mkdir(parents=True, exist_ok=True)
    chunks, rows = [], []
    for c0 in range(0, n_sites, chunk_size):
        results = []
        for i in range(c0, min(c0 + chunk_size, n_sites)):
            base = seeds[rng.integers(len(seeds))]
            s, dsig2, eps = rng.uniform(0.6, 1.1), rng.uniform(0, 0.006), rng.uniform(-0.02, 0.02)
            k = base.k
            chi = s * np.interp(k * (1 + eps), k, base.chi) * np.exp(-2 * k**2 * dsig2)
            chi += rng.normal(scale=1e-4, size=len(k))
            sid = f"b{(first + i) // 4:015x}"
            site_id = f"{sid}-{(first + i) % 4:05d}"
            results.append(replace(base, site_id=site_id, chi=chi, input_hash=f"x{site_id}"))
            row = labels.loc[base.site_id].to_dict()
            row.update(
                site_id=site_id,
                structure_id=sid,
                source="synthetic",
                name=f"synthetic_{(first + i) // 4}",
                frame=None,
                cn=row["cn"] * s,
                r=row["r"] * (1 + eps),
            )
            rows.append(row)
        path = out / f"{c0 // chunk_size:05d}.h5"
        write_chunk(path, results)
        chunks.append(path)
    table = pd.DataFrame(rows)
    table["frame"] = table["frame"].astype("Int64")
    write_sites(table, out / "sites.parquet", CONFIG["labels"])
    info = {
        "chunks": [c.name for c in chunks],
        "n_sites": n_sites,
        "chunk_size": chunk_size,
        "seed_spectra": [r.site_id for r in seeds],
        "engine": seeds[0].engine_version,
    }
    done.write_text(json.dumps(info))
    return chunks, out / "sites.parquet", info
