"""Many FEFF-like spectra in the real chunk format, for the dataset benchmarks.

A few real FEFF8L runs (Cu octahedron, 4 unique sites, through the mlxas stages) are the
seed; each synthetic site takes one of them and changes it the way structure changes a
spectrum: amplitude × s (CN × s), an extra Debye–Waller factor exp(−2k²Δσ²), a
stretched phase chi(k·(1+ε)) (R × (1+ε)), plus a little noise.  The labels change with
them.  The chunk files are written with :func:`mlxas.simulation.chunk.write_chunk`, exactly
as ``mlxas simulate`` writes them; the labels go to a label table as ``mlxas labels``
writes it.
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
) -> tuple[list[Path], Path, Path, dict]:
    """Write ``n_sites`` synthetic sites (ids from ``first``) under ``work``; reuse if there.

    Returns the chunk files, the site table, the label table and a summary."""
    from _dataset_support import feff_results
    from mlxas.simulation.chunk import chunk_engine, read_chunk, write_chunk
    from mlxas.sites import SitesSettings, read_labels, write_labels, write_sites

    out = work / f"synthetic_{first}_{n_sites}_{chunk_size}_{seed}"
    done = out / "done.json"
    if done.is_file():
        info = json.loads(done.read_text())
        chunks = [out / c for c in info["chunks"]]
        return chunks, out / "sites.parquet", out / "labels.parquet", info
    real_dir = work / "feff_seed"
    feff = feff_results(real_dir)
    engine, settings_hash = chunk_engine(feff.chunks[0])
    seeds = [r for c in feff.chunks for r in read_chunk(c)]
    sites = pd.read_parquet(feff.sites[0]).set_index("site_id")
    labels, meta = read_labels(feff.labels[0])
    labels = labels.set_index("site_id")
    rng = np.random.default_rng(seed + first)
    out.mkdir(parents=True, exist_ok=True)
    chunks, rows, label_rows = [], [], []
    for c0 in range(0, n_sites, chunk_size):
        results = []
        for i in range(c0, min(c0 + chunk_size, n_sites)):
            base = seeds[rng.integers(len(seeds))]
            s, dsig2, eps = rng.uniform(0.6, 1.1), rng.uniform(0, 0.006), rng.uniform(-0.02, 0.02)
            k, chi0 = base.arrays["k"], base.arrays["chi"]
            chi = s * np.interp(k * (1 + eps), k, chi0) * np.exp(-2 * k**2 * dsig2)
            chi += rng.normal(scale=1e-4, size=len(k))
            sid = f"b{(first + i) // 4:015x}"
            site_id = f"{sid}-{(first + i) % 4:05d}"
            arrays = {**base.arrays, "chi": chi}
            results.append(replace(base, item_id=site_id, arrays=arrays, input_hash=f"x{site_id}"))
            row = sites.loc[base.item_id].to_dict()
            row.update(
                site_id=site_id,
                structure_id=sid,
                source="synthetic",
                name=f"synthetic_{(first + i) // 4}",
                frame=None,
            )
            rows.append(row)
            lab = labels.loc[base.item_id].to_dict()
            lab.update(site_id=site_id, cn=lab["cn"] * s, r=lab["r"] * (1 + eps))
            label_rows.append(lab)
        path = out / f"{c0 // chunk_size:05d}.h5"
        write_chunk(path, results, path.with_name(f"{path.stem}.summary.json"), engine.name,
                    engine.settings_dict(), settings_hash)  # fmt: skip
        chunks.append(path)
    table = pd.DataFrame(rows)
    table["frame"] = table["frame"].astype("Int64")
    write_sites(table, out / "sites.parquet", SitesSettings())
    write_labels(pd.DataFrame(label_rows), meta, out / "labels.parquet")
    info = {
        "chunks": [c.name for c in chunks],
        "n_sites": n_sites,
        "chunk_size": chunk_size,
        "seed_spectra": [r.item_id for r in seeds],
        "engine": seeds[0].engine_version,
    }
    done.write_text(json.dumps(info))
    return chunks, out / "sites.parquet", out / "labels.parquet", info
