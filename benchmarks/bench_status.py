"""status_100k: wall time of ``mlxas status`` on 10⁵ sites in 4000 chunk files.

Builds a results folder like a half-finished large run: one source of ``--sites`` sites
in chunks of ``--chunk-size``, ``--done-fraction`` of the chunks written (each with a
few failures), and the rest pending with some finished run directories.  Reported: the
median wall time of the whole command (Python start, imports, reading, printing).

    .venv/bin/python benchmarks/bench_status.py [--sites 100000] [--chunk-size 25]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def build(root: Path, n_sites: int, chunk_size: int, done_fraction: float) -> int:
    from mlxas.engines import ItemResult
    from mlxas.simulation.chunk import write_chunk
    from mlxas.workflow.layout import DONE_MARKER, Layout

    folder = Layout(root).simulation("big")
    folder.chunks_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"0123456789abcdef-{i:05d}" for i in range(n_sites)]
    chunk = np.arange(n_sites) // chunk_size
    pd.DataFrame(
        {"item_id": ids, "chunk": chunk, "text": "TITLE x\nEND\n", "reason": ""}
    ).to_parquet(folder.inputs_table, row_group_size=chunk_size)
    n_chunks = int(chunk.max()) + 1
    plan = {"items_per_chunk": np.bincount(chunk).tolist(), "refused_per_chunk": {}}
    folder.chunk_plan.write_text(json.dumps(plan))
    n_done = int(done_fraction * n_chunks)
    k = np.arange(0.05, 20.0001, 0.05)
    ok = {"k": k, "chi": np.sin(k) / k**2}
    for c in range(n_done):
        members = ids[c * chunk_size : (c + 1) * chunk_size]
        results = [
            ItemResult(s, "ok", "h", "feff8l", "v", seconds=1.0, arrays=ok)
            if j % 10
            else ItemResult(s, "failed", "h", "feff8l", "v", reason="atoms_very_close")
            for j, s in enumerate(members)
        ]
        write_chunk(folder.chunk(c), results, folder.chunk_summary(c), "feff8l", {})
    # A killed job: half of the next chunk finished, no chunk file yet.
    for s in ids[n_done * chunk_size : n_done * chunk_size + chunk_size // 2]:
        (folder.runs_dir / s).mkdir(parents=True, exist_ok=True)
        (folder.runs_dir / s / DONE_MARKER).write_text(json.dumps({"input_hash": "x"}))
    return n_chunks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--chunk-size", type=int, default=25)
    ap.add_argument("--done-fraction", type=float, default=0.75)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workdir", default="/tmp/mlxas-bench-status")
    a = ap.parse_args()

    root = Path(a.workdir) / f"{a.sites}_{a.chunk_size}"
    from mlxas.workflow.layout import Layout

    if not Layout(root).simulation("big").inputs_table.is_file():
        t = time.perf_counter()
        build(root, a.sites, a.chunk_size, a.done_fraction)
        print(f"built {root} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    mlxas = str(Path(sys.executable).parent / "mlxas")
    times, out = [], ""
    for _ in range(a.repeats):
        t = time.perf_counter()
        out = subprocess.run(
            [mlxas, "status", str(root)], capture_output=True, text=True, check=True
        ).stdout
        times.append(time.perf_counter() - t)
    print(out)
    n_chunks = -(-a.sites // a.chunk_size)
    write_result(
        "status_100k" if a.sites == 100_000 else f"status_{a.sites}",
        round(statistics.median(times), 3),
        "s",
        sites=a.sites,
        chunks=n_chunks,
        chunks_written=int(a.done_fraction * n_chunks),
        runs=[round(x, 3) for x in times],
        output=out.strip().splitlines(),
    )


if __name__ == "__main__":
    main()
