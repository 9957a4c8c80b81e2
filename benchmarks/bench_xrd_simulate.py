"""xrd_simulate: powder patterns per second per core with the ``xrd`` engine.

Times, in one process (CPU time, so the figure is per core whatever else runs on the
machine), the structure sources and the engine on default settings (10-80° 2θ, 1401
points, every effect drawn):

- random crystals with pyxtal, one per space group of a sweep over the 230 groups;
- prototype instances;
- patterns: ``--patterns`` per structure through ``XRDEngine.input_text`` + ``run``
  (the cost the simulation stage pays), and the same with pymatgen's reflections
  reused for unstrained, unalloyed patterns of a structure (the default share).

With ``--results`` the per-item seconds that a workflow run recorded in its chunk
files are added (``from_workflow``).

    .venv/bin/python benchmarks/bench_xrd_simulate.py [--groups 46] [--patterns 6]
        [--results results/xrd_spacegroup]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def _workflow_rates(results: Path) -> dict | None:
    """Per-item engine seconds recorded in the chunk files of a workflow run (wall time
    of each item inside its job, so a busy machine lowers the rate)."""
    from mlxas.simulation.chunk import read_chunk

    files = sorted(results.glob("simulation/*/chunks/*.h5"))
    if not files:
        return None
    seconds = [r.seconds for f in files for r in read_chunk(f) if r.ok]
    return {
        "results": str(results),
        "n_patterns": len(seconds),
        "engine_seconds": round(float(np.sum(seconds)), 1),
        "patterns_per_second_in_jobs": round(len(seconds) / float(np.sum(seconds)), 2),
        "median_ms_per_pattern": round(1000 * float(np.median(seconds)), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", type=int, default=46, help="space groups in the sweep")
    ap.add_argument("--patterns", type=int, default=6, help="patterns per structure")
    ap.add_argument("--results", default="results/xrd_spacegroup", help="a workflow run")
    args = ap.parse_args()

    from mlxas.sites.table import pattern_id
    from mlxas.xrd.engine import XRDEngine, item_input
    from mlxas.xrd.labels import structure_labels
    from mlxas.xrd.prototypes import prototype_names, prototype_structure
    from mlxas.xrd.random_crystals import random_crystal
    from mlxas.xrd.settings import XRDSettings

    engine = XRDEngine(XRDSettings())
    engine.prepare()
    # Warm-up: imports, pymatgen's space-group tables, the impurity phases.
    warm = random_crystal(225, 0)
    for p in range(3):
        engine.run(item_input(engine, warm, pattern_id("w", p), "w"), Path("."), 60)

    groups = np.linspace(1, 230, args.groups).round().astype(int)
    t = time.process_time()
    crystals = [random_crystal(int(g), 1000 + int(g)) for g in groups]
    t_random = time.process_time() - t
    crystals = [c for c in crystals if c is not None]
    t = time.process_time()
    protos = [
        prototype_structure(n, np.random.default_rng(i)) for i, n in enumerate(prototype_names())
    ]
    t_proto = time.process_time() - t
    t = time.process_time()
    for s in crystals:
        structure_labels(s)
    t_labels = time.process_time() - t

    per_pattern = []
    t = time.process_time()
    for n, s in enumerate(crystals + protos):
        for p in range(args.patterns):
            t0 = time.process_time()
            item = item_input(engine, s, pattern_id(f"s{n}", p), f"s{n}")
            res = engine.run(item, Path("."), 60)
            per_pattern.append(time.process_time() - t0)
            assert res.ok, res.detail
    t_patterns = time.process_time() - t
    n_patterns = len(per_pattern)
    rate = n_patterns / t_patterns
    write_result(
        "xrd_simulate",
        round(rate, 2),
        "patterns/s per core",
        settings="default XRDSettings: 10-80° 2θ, 1401 points, all effects drawn",
        n_patterns=n_patterns,
        median_ms_per_pattern=round(1000 * float(np.median(per_pattern)), 2),
        p90_ms_per_pattern=round(1000 * float(np.quantile(per_pattern, 0.9)), 2),
        random_crystals_per_cpu_second=round(len(groups) / t_random, 3),
        random_crystal_failures=int(len(groups) - len(crystals)),
        prototypes_per_cpu_second=round(len(protos) / t_proto, 2),
        labels_per_cpu_second=round(len(crystals) / t_labels, 2),
        mean_atoms_random=float(np.mean([len(c) for c in crystals])),
        from_workflow=_workflow_rates(Path(args.results)),
    )


if __name__ == "__main__":
    main()
