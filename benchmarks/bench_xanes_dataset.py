"""Size, composition and cost of a XANES geometry dataset built by the workflow.

Reads what ``snakemake --configfile config/experiments/xanes_geometry*.yaml`` wrote
(nothing is run here): the simulation folder of the ``prototypes`` source (per-item FEFF10
wall seconds from the chunk files; items whose run was reused from an earlier run with
the same input hash are counted apart, their seconds are the earlier run's), the label
table (classes, prototypes, elements) and ``dataset.h5`` (splits, failures).  The
dataset's wall time is from the first file of the experiment (the structures) to
``dataset.h5``; pass ``--wall-s`` to override it when the run was resumed.

``--progress`` reads a simulation stage still running (no chunk files or ``dataset.h5``
needed): per item its run's done marker, failure record or nothing yet, the median wall
seconds of the runs made here, their rate over the wall time since the chunk plan was
written, and the time the pending items need at that rate.  It writes
``benchmarks/results/xanes_dataset_progress.json``.

Writes ``benchmarks/results/xanes_dataset.json``; the CPU cost per site of the chosen
FEFF10 setting is the one measured by ``bench_xanes_feff_cost.py`` (the FEFF10 runs here
share the machine with other jobs, so their wall time is not CPU time).

    .venv/bin/python benchmarks/bench_xanes_dataset.py --experiment xanes_geometry_small
    .venv/bin/python benchmarks/bench_xanes_dataset.py --experiment xanes_geometry --progress
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result


def _runs(sim: Path) -> dict:
    """Per-item FEFF10 seconds and status from the chunk files; reused runs apart."""
    from mlxas.simulation.chunk import read_chunk
    from mlxas.workflow.layout import DONE_MARKER

    new, reused, failed = [], [], {}
    for path in sorted((sim / "chunks").glob("*.h5")):
        for item in read_chunk(path):
            if not item.ok:
                failed[item.item_id] = item.reason
                continue
            marker = json.loads((sim / "runs" / item.item_id / DONE_MARKER).read_text())
            (reused if "adopted_from" in marker else new).append(item.seconds)
    return {"new": new, "reused": reused, "failed": failed}


def _composition(root: Path) -> dict:
    """Sites per class, prototype and element (label and site tables)."""
    import pandas as pd
    import pyarrow.parquet as pq

    sites = pd.read_parquet(root / "sites/prototypes.parquet")
    labels = pd.read_parquet(root / "labels/prototypes.parquet")
    meta = json.loads(pq.read_schema(root / "labels/prototypes.parquet").metadata[b"mlxas.labels"])
    classes = meta["columns"]["geometry"]["classes"]
    table = sites.merge(labels, on="site_id")
    proto = table["name"].str.split("_", n=1).str[1]
    return {
        "sites": len(table),
        "compounds": int(table["name"].nunique()),
        "structures": int(table["structure_id"].nunique()),
        "per_class": {c: int((table["geometry"] == i).sum()) for i, c in enumerate(classes)},
        "per_prototype": {str(k): int(v) for k, v in proto.value_counts().items()},
        "per_element": {str(k): int(v) for k, v in table["element"].value_counts().items()},
        "oxidation_states": {str(k): int(v) for k, v in
                             table["oxidation_state"].value_counts().sort_index().items()},
    }  # fmt: skip


def _progress(sim: Path) -> dict:
    """Items of a simulation folder by state, from the run folders (chunks not needed)."""
    import pandas as pd

    from mlxas.workflow.layout import DONE_MARKER, FAILURE_FILE

    items = pd.read_parquet(sim / "inputs.parquet", columns=["item_id", "input_hash"])
    new, reused, failed, pending = [], 0, {}, 0
    for item_id, h in zip(items["item_id"], items["input_hash"], strict=True):
        done = _read(sim / "runs" / item_id / DONE_MARKER)
        fail = _read(sim / "quarantine" / item_id / FAILURE_FILE)
        if done and done.get("input_hash") == h:
            if "adopted_from" in done:
                reused += 1
            else:
                new.append(float(done["seconds"]))
        elif fail and fail.get("input_hash") == h:
            failed[item_id] = fail["reason"]
        else:
            pending += 1
    # from the chunk plan (written when the inputs were): the simulate jobs start after it
    span = time.time() - (sim / "chunks.json").stat().st_mtime
    rate = (len(new) + len(failed)) / span * 3600
    return {
        "items": len(items),
        "runs_new": len(new),
        "runs_reused_by_input_hash": reused,
        "runs_failed": failed,
        "pending": pending,
        "median_wall_s_new": float(np.median(new)) if new else float("nan"),
        "wall_s_new_runs_total": float(np.sum(new)),
        "simulation_wall_s_so_far": span,
        "items_per_hour_here": rate,
        "hours_left_at_this_rate": pending / rate if rate > 0 else float("nan"),
    }


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="xanes_geometry_small")
    ap.add_argument("--wall-s", type=float, default=None, help="dataset wall time (s)")
    ap.add_argument("--progress", action="store_true", help="a simulation still running")
    args = ap.parse_args()
    import mlxas.dataset

    root = ROOT / "results" / args.experiment
    if args.progress:
        prog = _progress(root / "simulation/prototypes")
        write_result(
            "xanes_dataset_progress",
            prog["median_wall_s_new"],
            "s wall per FEFF10 site run here so far (median; shared machine, nice 19)",
            experiment=args.experiment,
            config=f"config/experiments/{args.experiment}.yaml",
            **prog,
        )
        return
    runs = _runs(root / "simulation/prototypes")
    data = mlxas.dataset.open(root / "dataset.h5")
    start = (root / "structures/prototypes/structures.extxyz").stat().st_mtime
    wall = args.wall_s or (root / "dataset.h5").stat().st_mtime - start
    cost = json.loads((ROOT / "benchmarks/results/xanes_feff_cost.json").read_text())
    new = np.asarray(runs["new"])
    write_result(
        "xanes_dataset",
        float(np.median(new)) if len(new) else float("nan"),
        "s wall per FEFF10 site run here (median; shared machine, not CPU time)",
        experiment=args.experiment,
        config=f"config/experiments/{args.experiment}.yaml",
        cpu_s_per_site_benchmark=cost["value"],
        runs_new=len(new),
        runs_reused_by_input_hash=len(runs["reused"]),
        runs_failed=runs["failed"],
        wall_s_new_runs_total=float(new.sum()),
        dataset_wall_s=float(wall),
        dataset_sizes={k: int(v) for k, v in data.sizes.items()},
        dataset_failures=len(data.failures()),
        **_composition(root),
    )


if __name__ == "__main__":
    main()
