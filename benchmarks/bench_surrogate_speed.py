"""Surrogate against FEFF per site, on the same sites and the same 2 cores, in one run.

1. FEFF8L (the workflow's Cu K EXAFS settings: RPATH 6, NLEGS 6, 7 Å clusters) on
   ``--feff8l-sites`` held-out test sites, two runs at a time, from scratch in a fresh
   folder (the inputs are checked to be the workflow's own: same input hashes).
2. FEFF10 XANES with the settings the XANES surrogate imitates (FMS 4 Å, no SCF, XANES to
   k = 5 Å⁻¹, 6.5 Å clusters; the template's SCF 4.5 Å + FMS 6 Å costs minutes per site)
   on the first ``--feff10-sites`` of those sites, two at a time.
3. The surrogate (graph ensemble of bench_surrogate_exafs.py) end to end from the
   structures: neighbour search, graphs, network, for all atoms of the test structures,
   repeated to at least ``--batch-sites`` sites, TensorFlow on 2 threads.

Per-site time = wall time / sites for each; speed-up = FEFF's per-site time divided by
the surrogate's.  Target ≥ 10⁴ against both.

    .venv/bin/python benchmarks/bench_surrogate_speed.py

Writes benchmarks/results/surrogate_speed.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_result
from _surrogate_common import MODELS, RESULTS, load_set, structures_of


def surrogate_throughput(sur, atoms_list: list, min_sites: int) -> dict:
    """Per-site wall time of structures → spectra for all atoms of ``atoms_list``."""
    from mlxas.surrogate.environments import Environments, environments

    reps = max(1, -(-min_sites // sum(len(a) for a in atoms_list)))
    work = [a for _ in range(reps) for a in atoms_list]
    sur.predict(environments(work[0], None, sur.kind.cutoff))  # warm-up: tracing, threads
    t0 = time.perf_counter()
    env = Environments.concat([environments(a, None, sur.kind.cutoff) for a in work])
    t1 = time.perf_counter()
    x = sur.featurize(env)
    t2 = time.perf_counter()
    sur.predict_inputs(x, batch_size=4096)
    t3 = time.perf_counter()
    n = len(env)
    return {
        "sites": n,
        "wall_s": t3 - t0,
        "per_site_s": (t3 - t0) / n,
        "neighbours_s": t1 - t0,
        "graphs_s": t2 - t1,
        "network_s": t3 - t2,
    }


def main(argv: list[str] | None = None) -> None:
    from mlxas.models.train import set_threads
    from mlxas.surrogate.feff_runs import FeffSettings, feff_rows, run_sites
    from mlxas.surrogate.model import Surrogate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feff8l-sites", type=int, default=24)
    ap.add_argument("--feff10-sites", type=int, default=4)
    ap.add_argument("--batch-sites", type=int, default=20000)
    ap.add_argument("--model", default=str(MODELS / "cu_graph"))
    a = ap.parse_args(argv)
    set_threads(2)
    data, split = load_set("cu")
    test = data.take(split == 2)
    structures = structures_of("cu")
    pick = np.linspace(0, len(test) - 1, a.feff8l_sites).round().astype(int)
    items = [
        (
            str(test.sites["site_id"][i]),
            structures[test.sites["structure_id"][i]],
            int(test.sites["site_index"][i]),
        )
        for i in pick
    ]
    f8 = FeffSettings("feff8l", "K", {"RPATH": 6.0, "NLEGS": 6}, "exafs", 7.0)
    hashes = [r["input_hash"] for r in feff_rows(items, f8)]
    if hashes != test.sites["input_hash"].iloc[pick].tolist():
        raise SystemExit("FEFF8L inputs differ from the workflow's: not the same sites")
    with tempfile.TemporaryDirectory(prefix="surrogate-speed-", dir=RESULTS) as tmp:
        res8, wall8 = run_sites(items, f8, Path(tmp) / "feff8l", threads=2)
        f10 = FeffSettings("feff10", "K", {"FMS": 4.0, "SCF": None, "XANES": 5.0}, "xanes", 6.5)
        res10, wall10 = run_sites(items[: a.feff10_sites], f10, Path(tmp) / "feff10", threads=2)
    ok8, ok10 = sum(r.ok for r in res8), sum(r.ok for r in res10)
    sur = Surrogate.load(a.model)
    sur.use_xla()
    test_structures = [structures[s] for s in dict.fromkeys(test.sites["structure_id"])]
    thr = surrogate_throughput(sur, test_structures, a.batch_sites)
    per8, per10 = wall8 / len(items), wall10 / max(1, a.feff10_sites)
    speed8, speed10 = per8 / thr["per_site_s"], per10 / thr["per_site_s"]
    write_result(
        "surrogate_speed",
        float(min(speed8, speed10)),
        "x (FEFF per-site wall time / surrogate per-site wall time, smaller of the two)",
        target="≥ 1e4 against FEFF8L and FEFF10",
        speedup_feff8l=float(speed8),
        speedup_feff10_xanes=float(speed10),
        feff8l={
            "sites": len(items),
            "ok": ok8,
            "wall_s": wall8,
            "per_site_s": per8,
            "median_single_run_s": float(np.median([r.seconds for r in res8])),
            "threads": 2,
        },
        feff10_xanes={
            "sites": a.feff10_sites,
            "ok": ok10,
            "wall_s": wall10,
            "per_site_s": per10,
            "single_run_s": [float(r.seconds) for r in res10],
            "threads": 2,
        },
        surrogate={
            **thr,
            "model_id": sur.model_id,
            "members": sur.members,
            "kind": sur.card["kind"]["kind"],
            "tensorflow_threads": 2,
        },
        note="surrogate time includes the neighbour search and graph building from the "
        "ASE structures; FEFF runs two sites at a time on the 2 cores",
    )


if __name__ == "__main__":
    main()
