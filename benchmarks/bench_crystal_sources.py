"""The crystal-source experiments before any workflow run: structures, sites, labels and an
estimate of their FEFF time on this machine.

For every ``config/experiments/*.yaml`` whose structures are ``kind: crystal`` entries,
this script generates the structures through :mod:`mlxas.structures.crystal` (timed),
chooses the sites as the config says (``mlxas.sites.table.choose_sites``), labels them
with the config's shells (:mod:`mlxas.sites.shells`, timed), and runs a few real FEFF
inputs per experiment (the config's cards plus each structure's own DEBYE card, through
the experiment's FEFF engine, as the simulate stage runs them) to estimate the full FEFF time:
n_sites × median seconds per run / ``feff.threads``.

    nice -n 10 .venv/bin/python benchmarks/bench_crystal_sources.py [--runs 4] [--only nio]

Writes ``benchmarks/results/crystal_sources.json`` (``value``: the largest estimated FEFF
time of one experiment, in minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result
from _crystal import experiment, feff_site, source_images

from mlxas.feff.inputs import cluster_around
from mlxas.sites.shells import shell_table
from mlxas.sites.table import choose_sites


def crystal_configs() -> list[Path]:
    out = []
    for path in sorted((ROOT / "config" / "experiments").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if cfg["structures"] and all(s.get("kind") == "crystal" for s in cfg["structures"]):
            out.append(path)
    return out


def measure(path: Path, runs: int, workdir: Path) -> dict:
    exp = experiment(path)
    t0 = time.perf_counter()
    images = source_images(exp)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    chosen = choose_sites(images, exp.absorber, exp.sites)
    t_sites = time.perf_counter() - t0
    n_sites = int(sum(len(idx) for idx, _ in chosen))
    shells = exp.labels.settings.get("shells")
    labels: dict[str, list] = {}
    t0 = time.perf_counter()
    if shells is not None:
        for atoms, (idx, _) in zip(images, chosen, strict=True):
            if len(idx):
                for key, value in shell_table(atoms, idx, shells).items():
                    labels.setdefault(key, []).append(value)
    t_labels = time.perf_counter() - t0
    ranges = {
        k: [float(np.nanmin(np.concatenate(v))), float(np.nanmax(np.concatenate(v)))]
        for k, v in labels.items()
    }
    temps = [a.info["temperature"] for a in images if "temperature" in a.info]

    # A few real FEFF runs: the structure holding the most sites first, then a seeded draw.
    flat = [(k, int(i)) for k, (idx, _) in enumerate(chosen) for i in idx]
    rng = np.random.default_rng(0)
    pick = [flat[j] for j in rng.choice(len(flat), size=min(runs, len(flat)), replace=False)]
    seconds, sizes = [], []
    for n, (k, i) in enumerate(pick):
        atoms = images[k]
        res = feff_site(exp, atoms, i, workdir / path.stem / str(n), f"{path.stem}-{n}")
        seconds.append(res.seconds)
        sizes.append(len(cluster_around(atoms, i, exp.engine.settings.cluster_radius)[0]))
    median = float(np.median(seconds))
    threads = int(exp.simulation.threads)
    return {
        "config": str(path.relative_to(ROOT)),
        "n_structures": len(images),
        "n_atoms_range": [min(map(len, images)), max(map(len, images))],
        "generation_seconds": round(t_gen, 2),
        "site_choice_seconds": round(t_sites, 2),
        "n_sites": n_sites,
        "shell_label_seconds": round(t_labels, 2),
        "label_ranges": ranges,
        "temperature_range_K": [min(temps), max(temps)] if temps else None,
        "feff_runs": len(seconds),
        "feff_seconds_median": round(median, 2),
        "feff_seconds": [round(s, 2) for s in seconds],
        "feff_cluster_atoms": sizes,
        "feff_threads": threads,
        "feff_minutes_estimate": round(n_sites * median / threads / 60.0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4, help="FEFF runs per experiment")
    ap.add_argument("--only", nargs="*", help="experiment names (config stems)")
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in crystal_configs():
            if args.only and path.stem not in args.only:
                continue
            out[path.stem] = measure(path, args.runs, Path(tmp))
            print(path.stem, out[path.stem], flush=True)
    worst = max(v["feff_minutes_estimate"] for v in out.values())
    write_result(
        "crystal_sources",
        worst,
        "min",
        description="largest estimated FEFF time of one crystal-source experiment on this "
        "machine (n_sites x median FEFF seconds / threads)",
        experiments=out,
    )


if __name__ == "__main__":
    main()
