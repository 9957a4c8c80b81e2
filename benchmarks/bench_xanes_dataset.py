"""Size, composition and cost of a XANES geometry dataset built by the workflow.

Reads what ``snakemake --configfile config/experiments/xanes_geometry*.yaml`` wrote
(nothing is run here): the simulation folder of the ``prototypes`` source (per-item FEFF10
wall seconds from the chunk files; items whose run was reused from an earlier run with
the same input hash are counted apart, their seconds are the earlier run's), the label
table (classes, prototypes, elements) and ``dataset.h5`` (splits, failures).  The
dataset's wall time is from the first file of the experiment (the structures) to
``dataset.h5``; pass ``--wall-s`` to override it when the run was resumed.

Writes ``benchmarks/results/xanes_dataset.json``; the CPU cost per site of the chosen
FEFF10 setting is the one measured by ``bench_xanes_feff_cost.py`` (the FEFF10 runs here
share the machine with other jobs, so their wall time is not CPU time).

    .venv/bin/python benchmarks/bench_xanes_dataset.py --experiment xanes_geometry_small
"""

from __future__ import annotations

import argparse
import json
import sys
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="xanes_geometry_small")
    ap.add_argument("--wall-s", type=float, default=None, help="dataset wall time (s)")
    args = ap.parse_args()
    import mlxas.dataset

    root = ROOT / "results" / args.experiment
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
