"""xrd_infer: classifier throughput, patterns per second on 2 threads.

Loads each trained model of a workflow run (``results/<experiment>/models/<name>.json``),
tiles the test patterns of its dataset to ``--n`` rows and times
``mlxas.models.inference.predict_array`` (the path ``mlxas predict`` takes) with 2
threads; the median of ``--repeats`` runs after one warm-up.  Value: the primary model's
rate (target of issue 20: >= 10,000 patterns/s on 2 cores).  The machine is shared, so
the 1-minute load average is recorded with the result.

    nice -n 15 .venv/bin/python benchmarks/bench_xrd_infer.py \
        [--results results/xrd_spacegroup] [--primary npcnn] [--n 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result


def rate(pointer: Path, x_test: dict[str, np.ndarray], n: int, repeats: int) -> dict:
    from mlxas.models import load_model
    from mlxas.models.inference import predict_array

    model, card = load_model(pointer)
    base = x_test[card["preprocessing"]["input"]]
    x = np.resize(base, (n, *base.shape[1:])).astype(np.float32)
    predict_array(model, card, x[:1024])  # warm-up: graph tracing
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict_array(model, card, x)
        times.append(time.perf_counter() - t0)
    return {
        "kind": card["kind"],
        "patterns_per_second": round(n / float(np.median(times)), 1),
        "seconds": [round(t, 3) for t in times],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/xrd_spacegroup", help="a workflow run")
    ap.add_argument("--primary", default="npcnn")
    ap.add_argument("--n", type=int, default=20000, help="patterns per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from mlxas.dataset import open as open_dataset
    from mlxas.models.train import set_threads

    set_threads(2)
    results = Path(args.results)
    with open_dataset(results / "dataset.h5") as ds:
        x_test = {"intensity": ds.features("intensity", "test")}
    models = {p.stem: rate(p, x_test, args.n, args.repeats)
              for p in sorted((results / "models").glob("*.json"))}  # fmt: skip
    write_result(
        "xrd_infer",
        models[args.primary]["patterns_per_second"],
        "patterns/s (2 threads)",
        primary=args.primary,
        n_patterns=args.n,
        input_points=int(x_test["intensity"].shape[1]),
        models=models,
        target_issue_20=10000,
    )


if __name__ == "__main__":
    main()
