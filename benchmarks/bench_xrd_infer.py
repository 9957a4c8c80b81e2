"""xrd_infer: classifier throughput, patterns per second on 2 threads.

Loads each trained model of a workflow run (``results/<experiment>/models/<name>.json``),
tiles the test patterns of its dataset to ``--n`` rows and times
``mlxas.models.inference.predict_array`` with 2 threads, for the model loaded by Keras
(the trained classifier as TensorFlow runs it) and by ``mlxas.models.numpy_net`` (the
path ``mlxas predict`` takes: no TensorFlow import; as many threads as BLAS may use,
2 here), in one process, alternating; the median of ``--repeats`` runs after one warm-up
each.  Value: the primary model's Keras rate (target of issue 20: >= 10,000 patterns/s
on 2 cores); the numpy rate, the numpy/Keras ratio of the same run and the largest
difference between the two outputs are recorded beside it.  The machine is shared, so
the 1-minute load average is recorded with the result, and the CPU seconds of each run:
measure with other jobs paused.

``--untrained``: no workflow run needed.  The ``--primary`` kind (default ``npcnn``) is
built with random weights by the project's own code and saved as training saves it
(``benchmarks/_untrained_model.py``, in ``--workdir``), and timed on random patterns of
the same shape.  Speed only: the outputs of untrained weights mean nothing.  Written as
``xrd_infer_untrained`` with the numpy rate as its value (the path users run).

    nice -n 15 .venv/bin/python benchmarks/bench_xrd_infer.py \
        [--results results/xrd_spacegroup] [--primary npcnn] [--n 20000]
    nice -n 15 .venv/bin/python benchmarks/bench_xrd_infer.py --untrained [--n 20000]
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
    from mlxas.models.numpy_net import load_model as load_numpy

    loaded = {"keras": load_model(pointer), "numpy": load_numpy(pointer)}
    card = loaded["keras"][1]
    base = x_test[card["preprocessing"]["input"]]
    x = np.resize(base, (n, *base.shape[1:])).astype(np.float32)
    for model, c in loaded.values():
        predict_array(model, c, x[:1024])  # warm-up: graph tracing, first allocations
    times: dict[str, list[float]] = {k: [] for k in loaded}
    cpu: dict[str, list[float]] = {k: [] for k in loaded}
    outputs = {}
    for _ in range(repeats):
        for name, (model, c) in loaded.items():
            c0, t0 = time.process_time(), time.perf_counter()
            outputs[name] = predict_array(model, c, x)[0]
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    rates = {k: round(n / float(np.median(v)), 1) for k, v in times.items()}
    return {
        "kind": card["kind"],
        "patterns_per_second": rates["keras"],
        "patterns_per_second_numpy": rates["numpy"],
        # Both from the same run, alternating: less sensitive to the load than either rate.
        "numpy_over_keras": round(rates["numpy"] / rates["keras"], 3),
        "seconds": [round(t, 3) for t in times["keras"]],
        "seconds_numpy": [round(t, 3) for t in times["numpy"]],
        "cpu_seconds": [round(t, 3) for t in cpu["keras"]],
        "cpu_seconds_numpy": [round(t, 3) for t in cpu["numpy"]],
        "max_abs_difference_numpy_keras": float(np.abs(outputs["numpy"] - outputs["keras"]).max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results/xrd_spacegroup", help="a workflow run")
    ap.add_argument("--primary", default="npcnn", help="model name (--untrained: its kind)")
    ap.add_argument("--n", type=int, default=20000, help="patterns per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--untrained",
        action="store_true",
        help="time the --primary kind with random weights (speed only)",
    )
    ap.add_argument(
        "--workdir",
        default="/tmp/mlxas-bench-xrd-untrained",
        help="where --untrained writes its model folder",
    )
    args = ap.parse_args()

    from mlxas.models.train import set_threads

    set_threads(2)
    if args.untrained:
        from _untrained_model import random_patterns, untrained_model

        pointer = untrained_model(args.primary, Path(args.workdir))
        result = rate(pointer, {"intensity": random_patterns(1024)}, args.n, args.repeats)
        write_result(
            "xrd_infer_untrained",
            result["patterns_per_second_numpy"],
            "patterns/s (2 threads, numpy path, untrained weights)",
            weights="untrained (random initial weights): speed only, outputs meaningless",
            inputs="random patterns",
            primary=args.primary,
            n_patterns=args.n,
            input_points=1401,
            models={args.primary: result},
            target_issue_20=10000,
        )
        return

    from mlxas.dataset import open as open_dataset

    results = Path(args.results)
    with open_dataset(results / "dataset.h5") as ds:
        x_test = {"intensity": ds.features("intensity", "test")}
    models = {p.stem: rate(p, x_test, args.n, args.repeats)
              for p in sorted((results / "models").glob("*.json"))}  # fmt: skip
    write_result(
        "xrd_infer",
        models[args.primary]["patterns_per_second"],
        "patterns/s (2 threads, Keras)",
        primary=args.primary,
        n_patterns=args.n,
        input_points=int(x_test["intensity"].shape[1]),
        models=models,
        target_issue_20=10000,
    )


if __name__ == "__main__":
    main()
