"""Bring a FEFF run of an older mlxas (chunk schema 1, ``feff/<source>/``) into today's
layout (``simulation/<source>/chunks``, schema 2), without running FEFF again.

The structures and site tables are copied as they are; every chunk row becomes an
:class:`~mlxas.engines.base.ItemResult` of the FEFF engine (arrays ``k``, ``chi``,
``energy``, ``mu``, ``mu0``, scalar ``e0``) written by
:func:`mlxas.simulation.chunk.write_chunk` with the engine's settings, rebuilt from a
``feff`` config section.  The script refuses when the settings do not reproduce the old
inputs: the ``feff.inp`` of every old run folder must equal the text today's engine
writes for the same site (so the spectra belong to the settings the new chunk names).

    .venv/bin/python benchmarks/_surrogate_legacy.py OLD_RESULTS_DIR NEW_RESULTS_DIR SOURCE \
        --feff '{"cards": {"RPATH": 6.0, "NLEGS": 6}, "cluster_radius": 7.0}' --edge K
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def old_rows(path: Path):
    """The rows of a schema-1 chunk file as ItemResults."""
    import h5py

    from mlxas.engines.base import ItemResult

    with h5py.File(path, "r") as f:
        if int(f.attrs.get("schema_version", 0)) != 1:
            raise SystemExit(f"{path}: not a schema-1 chunk file")
        col = {n: [x.decode() if isinstance(x, bytes) else str(x) for x in f[n][()]]
               for n in ("site_id", "status", "reason", "detail", "input_hash", "engine",
                         "engine_version")}  # fmt: skip
        seconds, e0 = f["seconds"][()], f["e0"][()]
        k_off, e_off = f["k_offsets"][()], f["e_offsets"][()]
        arr = {n: f[n][()] for n in ("k", "chi", "energy", "mu", "mu0")}
    out = []
    for i, sid in enumerate(col["site_id"]):
        r = ItemResult(sid, col["status"][i], col["input_hash"][i], col["engine"][i],
                       col["engine_version"][i], col["reason"][i], col["detail"][i],
                       float(seconds[i]), {"e0": float(e0[i])})  # fmt: skip
        if r.ok:
            for n, off in (("k", k_off), ("chi", k_off), ("energy", e_off), ("mu", e_off),
                           ("mu0", e_off)):  # fmt: skip
                r.arrays[n] = np.asarray(arr[n][off[i] : off[i + 1]], dtype=np.float64)
        out.append(r)
    return out


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from mlxas.simulation.chunk import write_chunk
    from mlxas.simulation.inputs import settings_hash
    from mlxas.structures.index import read_structures
    from mlxas.surrogate.feff_runs import feff_engine
    from mlxas.workflow.layout import Layout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("source")
    ap.add_argument("--engine", default="feff8l")
    ap.add_argument("--feff", default="{}", help="the feff config section, JSON")
    ap.add_argument("--edge", default="K")
    a = ap.parse_args(argv)
    engine = feff_engine(a.engine, json.loads(a.feff), edge=a.edge)
    old_feff = a.old / "feff" / a.source
    new = Layout(a.new)
    shutil.copytree(a.old / "structures" / a.source, new.structures_dir(a.source),
                    dirs_exist_ok=True)  # fmt: skip
    new.sites(a.source).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(a.old / "sites" / f"{a.source}.parquet", new.sites(a.source))
    sites = pd.read_parquet(new.sites(a.source)).set_index("site_id")
    frames = {
        str(x.info["structure_id"]): x for x in read_structures(new.structures_frames(a.source))
    }
    folder = new.simulation(a.source)
    n_checked = 0
    for chunk in sorted((old_feff / "chunks").glob("*.h5")):
        rows = old_rows(chunk)
        for r in rows:
            inp = old_feff / "runs" / r.item_id / "feff.inp"
            if r.ok and inp.is_file():
                site = sites.loc[r.item_id]
                text = engine.input_text(frames[site["structure_id"]], int(site["site_index"]),
                                         r.item_id)  # fmt: skip
                if text != inp.read_text():
                    raise SystemExit(f"{inp}: today's {a.engine} input differs; other settings")
                n_checked += 1
        n = int(chunk.stem)
        write_chunk(folder.chunk(n), rows, folder.chunk_summary(n), engine.name,
                    engine.settings_dict(), settings_hash(engine))  # fmt: skip
    print(f"{a.source}: chunks written to {folder.chunks_dir}; {n_checked} feff.inp identical")


if __name__ == "__main__":
    main()
