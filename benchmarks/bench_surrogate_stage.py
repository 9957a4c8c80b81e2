"""The surrogate engine in a workflow run: the split between surrogate and FEFF, and how
good the spectra it kept are.

Reads the chunk files of a finished run of an experiment with ``simulation.engine:
surrogate`` (default: benchmarks/surrogate/cu_surrogate_stage.yaml, Cu nanoparticles with
the bulk-cell graph surrogate), counts the rows per engine and routing reason
(:func:`mlxas.surrogate.routing.routing_report`), then runs FEFF (the surrogate's own FEFF
engine and settings, through the workflow's runner) on every site the surrogate kept and
measures the normalised residual Σ(Δ(k²chi))²/Σ(k²chi)² of the kept spectra on the
surrogate's grid.

    nice -n 15 .venv/bin/snakemake --profile profiles/local \\
        --configfile benchmarks/surrogate/cu_surrogate_stage.yaml --until gather
    nice -n 15 .venv/bin/python benchmarks/bench_surrogate_stage.py

Writes benchmarks/results/surrogate_stage.json.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from _common import write_result
from _surrogate_common import RESULTS


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from mlxas.simulation.chunk import read_chunk
    from mlxas.structures.index import read_structures
    from mlxas.surrogate.data import feff_spectra_on_grid
    from mlxas.surrogate.feff_runs import run_sites
    from mlxas.surrogate.metrics import normalised_residual
    from mlxas.surrogate.model import Surrogate
    from mlxas.surrogate.routing import is_surrogate, routing_report
    from mlxas.workflow.layout import Layout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="cu_surrogate_stage")
    a = ap.parse_args(argv)
    layout = Layout(RESULTS / a.experiment)
    chunks = sorted(layout.simulation_root().glob("*/chunks/*.h5"))
    if not chunks:
        raise SystemExit(f"{layout.simulation_root()}: no chunk files; run the workflow first")
    report = routing_report(chunks)
    kept, items = [], []
    for path in chunks:
        source = path.parent.parent.name
        sites = pd.read_parquet(layout.sites(source)).set_index("site_id")
        frames = {str(x.info["structure_id"]): x
                  for x in read_structures(layout.structures_frames(source))}  # fmt: skip
        for r in read_chunk(path):
            if is_surrogate(r):
                site = sites.loc[r.item_id]
                kept.append(r)
                items.append((r.item_id, frames[site["structure_id"]], int(site["site_index"])))
    if not kept:
        raise SystemExit("the surrogate kept no site; nothing to compare")
    sur = Surrogate.load(_model_dir(kept[0].engine_version))
    grid = sur.grid
    with tempfile.TemporaryDirectory(prefix="surrogate-stage-", dir=RESULTS) as tmp:
        feff, _ = run_sites(items, sur.feff_engine(), tmp, threads=2)
    feff_y, ok = feff_spectra_on_grid(feff, grid)
    sur_y, _ = feff_spectra_on_grid(kept, grid)
    res = normalised_residual(grid.weight(sur_y[ok]), grid.weight(feff_y[ok]))
    write_result(
        "surrogate_stage",
        report["n_feff"] / report["n_items"],
        "fraction of sites sent to FEFF",
        routing=report,
        kept_sites_residual={
            "n": int(ok.sum()),
            "median": float(np.median(res)),
            "max": float(res.max()),
            "per_site": dict(
                zip(
                    [r.item_id for r, o in zip(kept, ok, strict=True) if o],
                    res.tolist(),
                    strict=True,
                )
            ),
        },
        model_id=sur.model_id,
        experiment=a.experiment,
    )


def _model_dir(model_id: str):
    """The saved surrogate of that id under results/surrogate/models."""
    from _surrogate_common import MODELS

    found = sorted((MODELS / "models").glob(f"*/{model_id}"))
    if not found:
        raise SystemExit(f"no model folder {model_id} under {MODELS / 'models'}")
    return found[0]


if __name__ == "__main__":
    main()
