"""predict_latency: one measured file → CN and R, once the model is loaded.

The measured Cu foil (``tests/data/experimental/cu_metal_rt.xdi``) is predicted again
and again by a loaded :class:`mlxas.predict.predictor.Predictor` in the calling process,
as ``mlxas predict --watch`` does for a file that just landed: larch reads it, larch's
``pre_edge`` + ``autobk`` remove the background (a single file has no series to batch
with), the features are computed and the model runs.  Reported: the median wall time
of many calls, with the stages' medians and larch's own read + pre_edge + autobk cost.

    .venv/bin/python benchmarks/bench_predict_latency.py [--repeats 200] [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _predict_model import CU_FOIL, larch_per_file, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--model", help="model pointer (default: build the benchmark model)")
    ap.add_argument("--workdir", default="/tmp/mlxas-bench-predict")
    a = ap.parse_args()

    from mlxas.predict.pipeline import process_paths
    from mlxas.predict.predictor import Predictor

    model_path = Path(a.model) if a.model else model(Path(a.workdir))
    with Predictor(model_path, jobs=1) as pred:
        (first,) = pred.predict([CU_FOIL])
        if first.status != "ok":
            raise SystemExit(f"{CU_FOIL}: {first.reason}")
        for _ in range(10):
            pred.predict([CU_FOIL])
        total, stage_process, stage_model = [], [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            (r,) = pred.predict([CU_FOIL])
            total.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            _, x = process_paths([str(CU_FOIL)], pred.spec)
            t2 = time.perf_counter()
            pred._run_model(x)
            pred._ood(x)
            t3 = time.perf_counter()
            stage_process.append(t2 - t1)
            stage_model.append(t3 - t2)
    larch = larch_per_file([CU_FOIL] * 40)
    ms = 1e3 * np.asarray(total)
    write_result(
        "predict_latency",
        round(float(np.median(ms)), 2),
        "ms",
        target="<= 50 ms",
        repeats=a.repeats,
        p10_ms=round(float(np.percentile(ms, 10)), 2),
        p90_ms=round(float(np.percentile(ms, 90)), 2),
        read_check_background_features_ms=round(1e3 * float(np.median(stage_process)), 2),
        model_and_ood_ms=round(1e3 * float(np.median(stage_model)), 2),
        larch_read_pre_edge_autobk_ms=round(larch["total"] * 1e3, 2),
        background=r.background,
        cn=round(r.values["cn"], 3),
        r=round(r.values["r"], 4),
        ood=r.values.get("ood"),
        model=str(model_path),
    )


if __name__ == "__main__":
    main()
