"""predict_latency: one measured file → CN and R, once the model is loaded.

Files of a quick-EXAFS-like series (noisy copies of the measured Cu foil) are predicted
one at a time by a loaded :class:`mlxas.predict.predictor.Predictor` in the calling
process, as ``mlxas predict --watch`` does for each file that lands: read (numpy parse
after the first file of the header layout), checks, larch's ``find_e0``, pre-edge and
AUTOBK (the factorisation shared with the earlier files of the scan), features, model,
OOD score.  Reported: the median wall time of many calls.  Also recorded: the stages'
medians; ``cold_single_file_ms``, a file that shares nothing with earlier ones (larch's
``read_xdi``, ``find_e0``, ``preedge`` and ``autobk``, then features and model); and
larch's own read_xdi + pre_edge + autobk cost.

    .venv/bin/python benchmarks/bench_predict_latency.py [--repeats 200] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _predict_model import (
    CU_FOIL,
    add_model_arguments,
    larch_per_file,
    model_from_args,
    write_series,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    add_model_arguments(ap)
    a = ap.parse_args()

    from mlxas.predict import pipeline
    from mlxas.predict.predictor import Predictor
    from mlxas.spectra import background

    model_path = model_from_args(a)
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="mlxas-bench-latency-"))
    try:
        files = write_series(tmp, a.repeats + 40, seed=4)
        with Predictor(model_path, jobs=1) as pred:
            (first,) = pred.predict([CU_FOIL])
            if first.status != "ok":
                raise SystemExit(f"{CU_FOIL}: {first.reason}")
            for f in files[:10]:
                pred.predict([f])
            total, stage_process, stage_model = [], [], []
            for f in files[10 : 10 + a.repeats]:
                t0 = time.perf_counter()
                (r,) = pred.predict([f])
                total.append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                _, x = pipeline.process_paths([str(f)], pred.spec)
                t2 = time.perf_counter()
                pred._run_model(x)
                pred._ood(x)
                t3 = time.perf_counter()
                stage_process.append(t2 - t1)
                stage_model.append(t3 - t2)
            # A file with nothing shared with earlier ones: larch reads it and removes its
            # background (read_xdi, find_e0, preedge, autobk).
            first_file, first_file_cpu = [], []
            for f in files[10 + a.repeats :]:
                pipeline._READERS.clear()
                pipeline._SEEN.clear()
                background._CACHE.clear()
                background._PRE_SETTINGS.clear()
                t0, c0 = time.perf_counter(), time.process_time()
                pred.predict([f])
                first_file.append(time.perf_counter() - t0)
                first_file_cpu.append(time.process_time() - c0)
            (foil,) = pred.predict([CU_FOIL])
        larch = larch_per_file(files[:40])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
        cold_single_file_ms=round(1e3 * float(np.median(first_file)), 2),
        cold_single_file_cpu_ms=round(1e3 * float(np.median(first_file_cpu)), 2),
        larch_read_pre_edge_autobk_ms=round(larch["total"] * 1e3, 2),
        background=r.background,
        cu_foil={
            "cn": round(foil.values["cn"], 3),
            "r": round(foil.values["r"], 4),
            "ood": foil.values.get("ood"),
            "ood_score": foil.values.get("ood_score"),
        },
        model=str(model_path),
        load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )


if __name__ == "__main__":
    main()
