"""dag_100k: wall time of ``snakemake -n`` on 10⁵ sites whose FEFF inputs are written.

Builds an experiment whose ``inputs`` checkpoint has run for ``--sites`` sites:
``--sources`` sources, each a series of 1000-atom Cu spheres (frames of a trajectory;
every atom an absorbing site), structures and site tables in place, and each source's
``inputs.parquet`` and ``chunks.json`` written by the real
:func:`mlxas.simulation.inputs.build_inputs`. The dry run therefore plans every ``simulate``
chunk job (``sites / chunk_size`` of them), then gather, train and evaluate. Reported:
the median wall time of ``snakemake -n`` (the documented command, output to a pipe)
over ``--repeats`` runs, its CPU time (the wall time on an idle core; the process is
single-threaded), and the wall time with ``--quiet rules`` for comparison.

    .venv/bin/python benchmarks/bench_dag_100k.py [--sites 100000] [--chunk-size 100]

Target: ≤ 30 s. The experiment is built once under ``--work`` and reused. The default
of 100 sites per FEFF job is what 10⁵ sites would use on a cluster (a job of minutes);
``--chunk-size 25`` plans four times as many jobs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result

VENV_BIN = Path(sys.executable).parent
ELEMENT, A = "Cu", 3.61
#: Atoms per structure; every atom is a site. Small structures keep building fast.
STRUCTURE_ATOMS = 1000


def sphere_for(n_atoms: int):
    """A Cu sphere (ASE fcc) with at least ``n_atoms`` atoms, trimmed to exactly that many."""
    from ase import Atoms

    from mlxas.structures.nanoparticles import nanoparticle

    # fcc: 4 atoms per a³; radius of a ball holding n_atoms, plus a margin
    radius = (3 * n_atoms * A**3 / (16 * np.pi)) ** (1 / 3) + A
    atoms = nanoparticle(ELEMENT, "sphere", radius, A)
    keep = np.argsort(np.linalg.norm(atoms.positions, axis=1), kind="stable")[:n_atoms]
    return Atoms(atoms.get_chemical_symbols()[: len(keep)], positions=atoms.positions[keep])


def build(work: Path, n_sites: int, n_sources: int, chunk_size: int) -> Path:
    """Write the experiment and return its config path; reuse one built before."""
    from ase.io import write

    from mlxas.provenance import structure_hash
    from mlxas.simulation.inputs import build_inputs
    from mlxas.sites import write_sites
    from mlxas.structures.index import INDEX_COLUMNS
    from mlxas.workflow.checks import check_config
    from mlxas.workflow.layout import Layout

    exp = f"dag_{n_sites}_{n_sources}_{chunk_size}_f{STRUCTURE_ATOMS}"
    cfg_path = work / f"{exp}.yaml"
    per_source = -(-n_sites // n_sources)
    names = [f"sphere{i:02d}" for i in range(n_sources)]
    raw = {
        "experiment": exp,
        "absorber": ELEMENT,
        "edge": "K",
        "structures": [
            {
                "name": n,
                "kind": "nanoparticles",
                "element": ELEMENT,
                "lattice_constant": A,
                "shape": "sphere",
                "sizes": [30.0 + i],
            }
            for i, n in enumerate(names)
        ],
        "sites": {"mode": "all"},
        "simulation": {"chunk_size": chunk_size},
        "feff": {"cards": {"RPATH": 5.0, "NLEGS": 4}, "cluster_radius": 5.0},
    }
    experiment = check_config(raw)
    L = Layout(work / experiment.layout.root)
    done = L.root / "built.ok"
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    if done.is_file():
        return cfg_path
    t0 = time.time() - 3600
    made = 0
    for k, name in enumerate(names):
        n = min(per_source, n_sites - made)
        made += n
        # Structures of at most STRUCTURE_ATOMS atoms, like the frames of a trajectory:
        # one sphere, its positions displaced a little (0.05 Å) for each frame.
        base = sphere_for(min(n, STRUCTURE_ATOMS))
        rng = np.random.default_rng(k)
        images, site_rows, index_rows = {}, [], []
        for j, start in enumerate(range(0, n, STRUCTURE_ATOMS)):
            m = min(STRUCTURE_ATOMS, n - start)
            atoms = base[:m].copy()
            atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
            sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions)
            atoms.info.update(structure_id=sid, source=name, name=f"{name}-{j}", frame=j)
            images[sid] = atoms
            index_rows.append([sid, name, f"{name}-{j}", j, m, f"Cu{m}", False, "generated"])
            site_rows += [(f"{sid}-{i:05d}", sid, f"{name}-{j}", j, i) for i in range(m)]
        frames, index, rejected = (
            L.structures_frames(name),
            L.structures_index(name),
            L.structures_rejected(name),
        )
        frames.parent.mkdir(parents=True, exist_ok=True)
        write(frames, list(images.values()), format="extxyz")
        pd.DataFrame(index_rows, columns=INDEX_COLUMNS).to_csv(index, index=False)
        rejected.write_text("origin,frame,reason,detail\n")
        sites = pd.DataFrame(
            site_rows, columns=["site_id", "structure_id", "name", "frame", "site_index"]
        ).assign(source=name, element=ELEMENT, multiplicity=1)
        write_sites(sites, L.sites(name), experiment.sites)
        folder = L.simulation(name)
        build_inputs(sites, images, experiment.engine, chunk_size, folder)
        # Each stage's files newer than the previous stage's: nothing upstream reruns
        # (the labels stage, not needed here, is planned: one job per source).
        for step, paths in enumerate(
            [
                [frames, index, rejected],
                [L.sites(name)],
                [folder.inputs_table, folder.chunk_plan],
            ]
        ):
            for p in paths:
                os.utime(p, (t0 + 60 * step + k, t0 + 60 * step + k))
        print(f"built {name}: {n} sites", flush=True)
    done.write_text("ok\n")
    return cfg_path


def dry_run(work: Path, cfg: Path, *extra: str) -> tuple[float, float, str]:
    """Wall time (s), CPU time of the snakemake process (s) and its output."""
    cmd = [
        str(VENV_BIN / "snakemake"),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(cfg),
        "-n",
        *extra,
    ]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, proc.stdout + proc.stderr


def job_counts(log: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    counts, inside = {}, False
    for line in log.splitlines():
        parts = line.split()
        if line.startswith("job ") and "count" in line:
            inside = True
        elif inside and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif inside and counts and not line.strip():
            break
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--sources", type=int, default=10)
    ap.add_argument("--chunk-size", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/mlxas-bench-dag"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    cfg = build(args.work, args.sites, args.sources, args.chunk_size)
    build_s = time.perf_counter() - t
    full, cpu, quiet = [], [], []
    counts = {}
    for _ in range(args.repeats):
        s, c, log = dry_run(args.work, cfg)
        full.append(s)
        cpu.append(c)
        counts = job_counts(log)
        quiet.append(dry_run(args.work, cfg, "--quiet", "rules")[0])
    expected_chunks = sum(-(-n // args.chunk_size) for n in _per_source(args.sites, args.sources))
    if counts.get("simulate") != expected_chunks:
        raise SystemExit(f"dry run planned {counts} jobs, expected {expected_chunks} simulate")
    write_result(
        "dag_100k",
        round(statistics.median(full), 2),
        "s",
        target="<= 30 s",
        sites=args.sites,
        sources=args.sources,
        chunk_size=args.chunk_size,
        jobs=counts,
        runs_s=[round(x, 2) for x in full],
        # The dry run is one single-threaded process: its CPU time is the wall time it
        # needs on an idle core, whatever else the machine is doing.
        cpu_median_s=round(statistics.median(cpu), 2),
        cpu_runs_s=[round(x, 2) for x in cpu],
        quiet_median_s=round(statistics.median(quiet), 2),
        quiet_runs_s=[round(x, 2) for x in quiet],
        build_s=round(build_s, 1),
        load_average=os.getloadavg()[0],
    )


def _per_source(n_sites: int, n_sources: int) -> list[int]:
    per = -(-n_sites // n_sources)
    return [min(per, n_sites - per * k) for k in range(n_sources) if n_sites - per * k > 0]


if __name__ == "__main__":
    main()
