"""xrd_infer: powder patterns per second through the XRD classifiers on 2 CPU cores.

Each kind (``npcnn``, ``cnn_pool``, ``logq_cnn``) is timed on model inputs already on
the grid (1401 points), batch 4096, TensorFlow limited to ``--threads`` threads.  A
trained model directory is used when ``--models`` holds one for the kind (loaded as a
user loads it); otherwise the kind's default network with fresh weights (the weights do
not change the speed).  The value is the fastest kind's median over ``--repeats``
passes; every kind is listed.

    .venv/bin/python benchmarks/bench_xrd_infer.py [--n 20000] [--repeats 5] [--threads 2]
        [--models benchmarks/work/xrd/models]

Target: ≥ 10,000 patterns/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import write_result

TARGET = 10_000


def _model(kind: str, models: Path):
    from mlxas.xrd.labels import structure_types
    from mlxas.xrd.models import build_classifier, log_q_matrix, resolve_classifier
    from mlxas.xrd.pattern import axis_grid
    from mlxas.xrd.settings import XRDSettings
    from mlxas.xrd.train import load_classifier

    if (models / kind / "model.keras").is_file():
        return load_classifier(models / kind)[0], "trained"
    spec = resolve_classifier(kind)
    extras = {}
    if kind == "logq_cnn":
        extras["log_q_matrix"] = log_q_matrix(
            axis_grid(XRDSettings()), "deg", 1.54056, spec["params"]["n_log_q"]
        )[0]
    heads = {"crystal_system": 7, "space_group": 230, "structure_type": len(structure_types())}
    return build_classifier(kind, (1401,), heads, spec["params"], extras), "untrained"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--models", default="benchmarks/work/xrd/models")
    args = ap.parse_args()

    from mlxas.models.train import set_threads

    set_threads(args.threads)
    x = np.random.default_rng(0).uniform(0, 1, (args.n, 1401)).astype(np.float32)
    kinds = {}
    for kind in ("npcnn", "cnn_pool", "logq_cnn"):
        model, origin = _model(kind, Path(args.models))
        model.predict(x[: args.batch], batch_size=args.batch, verbose=0)  # trace + warm
        rates = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model.predict(x, batch_size=args.batch, verbose=0)
            rates.append(args.n / (time.perf_counter() - t))
        kinds[kind] = {
            "patterns_per_s": round(float(np.median(rates)), 1),
            "weights": origin,
            "all_passes": [round(r, 1) for r in rates],
            "params": int(model.count_params()),
        }
        print(kind, kinds[kind], flush=True)
    best = max(kinds, key=lambda k: kinds[k]["patterns_per_s"])
    value = kinds[best]["patterns_per_s"]
    write_result(
        "xrd_infer",
        value,
        "patterns/s",
        fastest_kind=best,
        kinds=kinds,
        threads=args.threads,
        batch=args.batch,
        n=args.n,
        target=TARGET,
        target_met=bool(value >= TARGET),
    )


if __name__ == "__main__":
    main()
