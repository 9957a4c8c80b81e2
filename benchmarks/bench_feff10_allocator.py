"""feff10_allocator: FEFF10 time per site with glibc's default malloc settings against the
settings the engines run with (``mlxas.feff.process.ALLOCATOR_ENV``), on the same inputs.

Takes ``--sites`` finished FEFF10 runs of a workflow run (their ``feff.inp``; by default
the XANES geometry experiment's), runs each twice in fresh folders through the engine
(``mlxas.feff.engines.get_engine("feff10").run``), alternating the two settings, and
records per run the wall time and the CPU time of the FEFF processes split into user and
system (``RUSAGE_CHILDREN``), and the largest difference between the two ``xmu.dat``
files.  Value: (CPU time of all the sites, default) / (CPU time of all the sites, mlxas),
the saving on a dataset; the median of the per-site ratios beside it (most sites gain
nothing, the ones whose large arrays cross glibc's mmap threshold lose half their time).  The
machine is shared: run it with other jobs paused, or read the user/system split, which
the load does not change.

    .venv/bin/python benchmarks/bench_feff10_allocator.py [--sites 6] [--runs DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

RUNS = "results/xanes_geometry/simulation/prototypes/runs"


def _one(src: Path, work: Path, allocator: dict[str, str]) -> dict:
    from mlxas.feff import engines, process

    rundir = work / ("mlxas" if allocator else "default")
    rundir.mkdir(parents=True)
    shutil.copy(src / "feff.inp", rundir / "feff.inp")
    saved = process.ALLOCATOR_ENV
    process.ALLOCATOR_ENV = allocator  # read by process.program_env at each program start
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        wall = engines.get_engine("feff10").run(rundir, 3600.0, rundir / "feff.log")
    finally:
        process.ALLOCATOR_ENV = saved
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": round(wall, 2),
        "user_s": round(after.ru_utime - before.ru_utime, 2),
        "system_s": round(after.ru_stime - before.ru_stime, 2),
        "xmu": np.loadtxt(rundir / "xmu.dat") if (rundir / "xmu.dat").exists() else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default=RUNS, help="folder of finished FEFF10 runs")
    ap.add_argument("--sites", type=int, default=6)
    ap.add_argument(
        "--include", nargs="*", default=[], metavar="RUN", help="runs (folder names) to add"
    )
    args = ap.parse_args()

    from mlxas.feff.process import ALLOCATOR_ENV

    done = sorted(p for p in Path(args.runs).iterdir() if (p / "xmu.dat").exists())
    if not done:
        raise SystemExit(f"{args.runs}: no finished FEFF10 runs (feff.inp and xmu.dat)")
    # Spread over the run's sites (sorted by name, i.e. by input hash: no size order).
    spread = np.linspace(0, len(done) - 1, min(args.sites, len(done))).astype(int)
    picked = [done[i] for i in spread]
    picked += [p for p in done if p.name in args.include and p not in picked]
    sites = []
    for n, src in enumerate(picked):
        with tempfile.TemporaryDirectory() as tmp:
            order = [{}, dict(ALLOCATOR_ENV)] if n % 2 == 0 else [dict(ALLOCATOR_ENV), {}]
            runs = {("mlxas" if a else "default"): _one(src, Path(tmp), a) for a in order}
        a, b = runs["default"]["xmu"], runs["mlxas"]["xmu"]
        same = a is not None and b is not None and a.shape == b.shape
        rec = {"site": src.name}
        for k, r in runs.items():
            rec[k] = {key: v for key, v in r.items() if key != "xmu"}
        rec["xmu_max_abs_difference"] = float(np.abs(a - b).max()) if same else None
        cpu = {k: r["user_s"] + r["system_s"] for k, r in runs.items()}
        rec["cpu_ratio"] = round(cpu["default"] / cpu["mlxas"], 3)
        sites.append(rec)
        print(f"{src.name}: default {runs['default']['user_s']:.1f} user + "
              f"{runs['default']['system_s']:.1f} sys s, mlxas {runs['mlxas']['user_s']:.1f} + "
              f"{runs['mlxas']['system_s']:.1f} s, xmu diff {rec['xmu_max_abs_difference']}",
              flush=True)  # fmt: skip
    total = {k: sum(s[k]["user_s"] + s[k]["system_s"] for s in sites) for k in ("default", "mlxas")}
    write_result(
        "feff10_allocator",
        round(total["default"] / total["mlxas"], 3),
        "x (FEFF10 CPU s of all the sites with glibc defaults / with mlxas' malloc settings)",
        cpu_ratio_median_per_site=float(np.median([s["cpu_ratio"] for s in sites])),
        cpu_total_s=total,
        allocator_env=dict(ALLOCATOR_ENV),
        runs=args.runs,
        sites=sites,
        cpu_per_site_default_median_s=float(
            np.median([s["default"]["user_s"] + s["default"]["system_s"] for s in sites])
        ),
        cpu_per_site_mlxas_median_s=float(
            np.median([s["mlxas"]["user_s"] + s["mlxas"]["system_s"] for s in sites])
        ),
        identical_outputs=all(s["xmu_max_abs_difference"] == 0.0 for s in sites),
    )


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
