"""feff_overhead: workflow wall time over the FEFF time it orchestrates (Cu sites, FEFF8L).

    feff_overhead = W / (F / P)

- W: wall time of one ``snakemake --cores P`` run on a fresh folder that builds the
  structures, the sites, the FEFF inputs and every FEFF chunk file (targets: the chunk
  files), DAG building and job start-up included;
- F: the sum over sites of the FEFF seconds recorded in the chunk files (wall time of
  each site's FEFF programs, measured by ``mlxas simulate``);
- P: FEFF runs that can proceed at once (``--cores``).

1.0 would mean that no time is spent outside FEFF.  The sites: ``--sites`` Cu sites, 100
drawn from each of ``--sites / 100`` fcc Cu spheres (radii from 8 Å up in 0.5 Å steps),
with the default experiment's FEFF settings (FEFF8L, RPATH 6.0, NLEGS 6, 7 Å cluster).
Target ≤ 1.15 for 1000 sites on 2 cores.

    .venv/bin/python benchmarks/bench_feff_overhead.py [--sites 1000] [--cores 2]
        [--chunk-size 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result

PER_STRUCTURE = 100


def config(n_sites: int, chunk_size: int, threads: int, timeout: float) -> dict:
    n_structures = math.ceil(n_sites / PER_STRUCTURE)
    per_frame = math.ceil(n_sites / n_structures)
    return {
        "experiment": "feff_overhead",
        "absorber": "Cu",
        "edge": "K",
        "structures": [
            {
                "name": "spheres",
                "kind": "nanoparticles",
                "element": "Cu",
                "lattice_constant": 3.61,
                "shape": "sphere",
                "sizes": [8.0 + 0.5 * i for i in range(n_structures)],
            }
        ],
        "sites": {"mode": "sample", "per_frame": per_frame, "seed": 0},
        "simulation": {
            "engine": "feff8l",
            "chunk_size": chunk_size,
            "threads": threads,
            "timeout": timeout,
        },
        "feff": {"cards": {"RPATH": 6.0, "NLEGS": 6}, "cluster_radius": 7.0},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="FEFF runs per job (simulation.threads)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--workdir", default="/tmp/mlxas-bench-feff-overhead")
    a = ap.parse_args()

    work = Path(a.workdir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cfg = config(a.sites, a.chunk_size, a.threads, a.timeout)
    n_sites = cfg["sites"]["per_frame"] * len(cfg["structures"][0]["sizes"])
    n_chunks = math.ceil(n_sites / a.chunk_size)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # Relative to the workflow's directory, as the rules name their outputs.
    from mlxas.workflow.layout import Layout

    folder = Layout.for_experiment(cfg["experiment"]).simulation("spheres")
    targets = [str(folder.chunk(i)) for i in range(n_chunks)]
    bindir = Path(sys.executable).parent
    cmd = [
        str(bindir / "snakemake"),
        *("--snakefile", str(ROOT / "Snakefile"), "--directory", str(work)),
        *("--quiet", "all", "--configfile", str(work / "config.yaml"), "--cores", str(a.cores)),
        *targets,
    ]
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )

    from mlxas.simulation.chunk import read_chunk

    results = [r for t in targets for r in read_chunk(work / t)]
    ok = [r for r in results if r.ok]
    if len(results) != n_sites:
        sys.exit(f"expected {n_sites} sites in {n_chunks} chunks, found {len(results)}")
    feff_seconds = sum(r.seconds for r in results)
    ideal = feff_seconds / a.cores
    write_result(
        "feff_overhead",
        round(wall / ideal, 3),
        "ratio",
        sites=n_sites,
        sites_ok=len(ok),
        chunks=n_chunks,
        chunk_size=a.chunk_size,
        threads_per_job=a.threads,
        cores=a.cores,
        workflow_wall_s=round(wall, 1),
        feff_seconds_sum=round(feff_seconds, 1),
        feff_seconds_per_site_median=round(sorted(r.seconds for r in ok)[len(ok) // 2], 3),
        definition="W / (F / P): W snakemake wall time (structures -> sites -> inputs -> "
        "all simulate chunks), F sum of per-site FEFF seconds, P = cores",
        target="<= 1.15 for 1000 sites on 2 cores",
        load_average_after=os.getloadavg(),
    )


if __name__ == "__main__":
    main()
