"""predict_batch: raw measured files per second through ``mlxas predict``, end to end.

Each file is read, checked, normalised (pre-edge), background-subtracted (AUTOBK),
put on the model's k grid, turned into the model input and predicted, with the OOD score,
using all cores.  The series is a quick-EXAFS-like run: noisy copies of the measured Cu
foil, one XDI file per scan, all on one energy grid (see ``_predict_model``).

Reported value: the median over ``--repeats`` runs of files per second of
``Predictor.predict(files)`` on a started predictor (model loaded, worker processes
running, having read a warm-up series as large as the measured one); every run's rate
is recorded, and the warm-up series' own rate too (``first_run_files_per_s``: the
workers' first large batch also pays for growing their memory; ``cold_files_per_s``
adds the start of the predictor and its workers).  Also recorded, from the same run:
``--e0 file`` (larch's
find_e0 on every file instead of once for the series), the batched background removal
alone, and larch's own per-file cost (read_xdi + pre_edge + autobk, measured before and
after our runs, the mean of the two) for the ratio; and the
CPU time per file of the pipeline and of larch in one process (``files_per_s_from_cpu_time``
= cores / CPU time per file: what an otherwise idle machine gives, as the CPU time hardly
changes with the load from other programs).

    .venv/bin/python benchmarks/bench_predict_batch.py [--files 5000] [--model PATH]
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
from _predict_model import add_model_arguments, larch_per_file, model_from_args, write_series


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=5000)
    add_model_arguments(ap)
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of the whole series")
    a = ap.parse_args()

    from mlxas.predict.predictor import Predictor, available_cores

    model_path = model_from_args(a)
    load_before = os.getloadavg()[0]
    jobs = a.jobs or available_cores()
    tmp = Path(tempfile.mkdtemp(prefix="mlxas-bench-batch-"))
    try:
        # A warm-up series as large as the measured one: the workers' first large batch
        # also pays for growing their memory (recorded as first_run_files_per_s).
        warm = write_series(tmp / "warm", a.files, seed=1)
        files = write_series(tmp / "run", a.files, seed=2)
        larch_before = larch_per_file(files)

        t0 = time.perf_counter()
        with Predictor(model_path, jobs=jobs) as pred:
            t_start = time.perf_counter() - t0
            t_w = time.perf_counter()
            pred.predict(warm)
            t_first = time.perf_counter() - t_w
            t_cold = time.perf_counter() - t0

            runs = []
            for _ in range(max(1, a.repeats)):
                t1 = time.perf_counter()
                results = pred.predict(files)
                runs.append(time.perf_counter() - t1)
            t_run = float(np.median(runs))
            ok = sum(r.status == "ok" for r in results)
            if ok != len(files):
                bad = next(r for r in results if r.status != "ok")
                raise SystemExit(
                    f"{len(files) - ok} files refused, e.g. {bad.source}: {bad.reason}"
                )
            bkg = {r.background for r in results}
            cn = np.array([r.values["cn"] for r in results])
            ood = np.array([r.values.get("ood", False) for r in results])

            from dataclasses import replace

            pred.spec = replace(pred.spec, e0="file")
            pred.predict(warm[:64])
            t2 = time.perf_counter()
            pred.predict(files)
            t_per_file_e0 = time.perf_counter() - t2

        # larch again after our runs: the ratio uses the mean of its two medians, so that a
        # change of the shared machine's speed during the runs weighs on both sides.
        larch_after = larch_per_file(files)
        larch = {k: 0.5 * (larch_before[k] + larch_after[k]) for k in larch_before}

        # CPU time per file of the whole pipeline in this process (model excluded): with
        # larch's CPU time per file it gives a ratio that the machine's load hardly moves.
        from mlxas.predict.pipeline import process_paths

        spec = replace(pred.spec, e0="auto")
        process_paths([str(p) for p in warm[:64]], spec)
        c0 = time.process_time()
        process_paths([str(p) for p in files[:2000]], spec)
        cpu_per_file = (time.process_time() - c0) / len(files[:2000])

        # Background removal alone, one process: batched vs larch.
        from mlxas.spectra.background import operator_for, pre_edge_batch
        from mlxas.spectra.measured import read_spectra

        spectra = [read_spectra(p)[0] for p in files[:1000]]
        energy = spectra[0].energy
        mu = np.stack([s.mu for s in spectra])
        e0 = results[0].e0
        op = operator_for(energy, e0, pred.spec.background)
        t3 = time.perf_counter()
        pre = pre_edge_batch(energy, mu, e0)
        op.apply(mu, pre.edge_step)
        t_bkg = (time.perf_counter() - t3) / len(mu)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rate = len(files) / t_run
    larch_rate_1 = 1.0 / larch["total"]
    write_result(
        "predict_batch",
        round(rate, 1),
        "files/s",
        target=">= 3000 files/s and >= 40x larch on the same cores",
        targets_met={
            "files_per_s": rate >= 3000,
            "speedup_vs_larch": rate / (larch_rate_1 * jobs) >= 40,
        },
        files=len(files),
        jobs=jobs,
        seconds=round(t_run, 3),
        background=sorted(bkg),
        runs_files_per_s=[round(len(files) / t, 1) for t in runs],
        first_run_files_per_s=round(len(warm) / t_first, 1),
        cold_files_per_s=round(len(warm) / t_cold, 1),
        startup_s=round(t_start, 2),
        per_file_e0_files_per_s=round(len(files) / t_per_file_e0, 1),
        batched_background_ms_per_spectrum=round(t_bkg * 1e3, 4),
        larch_ms_per_file=round(larch["total"] * 1e3, 2),
        larch_ms_per_file_before_after=[
            round(larch_before["total"] * 1e3, 2),
            round(larch_after["total"] * 1e3, 2),
        ],
        larch_read_xdi_ms=round(larch["read"] * 1e3, 2),
        larch_pre_edge_ms=round(larch["pre_edge"] * 1e3, 2),
        larch_autobk_ms=round(larch["autobk"] * 1e3, 2),
        larch_background_ms_per_spectrum=round((larch["pre_edge"] + larch["autobk"]) * 1e3, 2),
        larch_files_per_s_all_cores=round(larch_rate_1 * jobs, 1),
        speedup_vs_larch_all_cores=round(rate / (larch_rate_1 * jobs), 1),
        cpu_ms_per_file=round(cpu_per_file * 1e3, 3),
        larch_cpu_ms_per_file=round(larch["cpu_total"] * 1e3, 2),
        cpu_speedup_vs_larch=round(larch["cpu_total"] / cpu_per_file, 1),
        files_per_s_from_cpu_time=round(jobs / cpu_per_file, 1),
        cn_mean=round(float(cn.mean()), 3),
        ood_fraction=round(float(ood.mean()), 3),
        model=str(model_path),
        load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )


if __name__ == "__main__":
    main()
