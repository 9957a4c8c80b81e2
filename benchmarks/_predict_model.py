"""A small real model and a realistic measured series for the ``predict_*`` benchmarks.

The model comes from the real workflow (FEFF8L on a few Cu nanoparticle sites, a short
MLP training) with a k grid that measured spectra cover (0.05 … 16 Å⁻¹), built once into
``/tmp/mlxas-bench-predict`` (or ``--workdir``) and reused.  The series is the measured Cu
foil (``tests/data/experimental/cu_metal_rt.xdi``) with noise added, every copy on the
foil's energy grid, as a quick-EXAFS run writes it: one XDI file per scan.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
CU_FOIL = ROOT / "tests" / "data" / "experimental" / "cu_metal_rt.xdi"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))

from _cu_config import cu_nanoparticles_config  # noqa: E402

CONFIG = {
    **cu_nanoparticles_config("bench_predict", [4, 5], [2, 3], chunk_size=8, threads=2),
    "features": {"k_grid": {"kmin": 0.05, "kmax": 16.0, "dk": 0.05}, "kweight": 2},
    "dataset": {"split": {"group_by": "site", "seed": 1}},
    "models": [{"name": "mlp", "kind": "mlp", "input": "chi_k", "epochs": 20, "patience": 5}],
}


def model(workdir: Path) -> Path:
    """Pointer to the benchmark model, running the workflow if it is not there yet."""
    from mlxas.workflow.layout import Layout

    pointer = workdir / Layout.for_experiment(CONFIG["experiment"]).model_pointer("mlp")
    if pointer.is_file():
        return pointer
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(VENV_BIN / "snakemake"), "--snakefile", str(ROOT / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(cfg), "--cores", "2", "--quiet"]  # fmt: skip
    print("building the benchmark model:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, env=env)
    return pointer


def add_model_arguments(ap: argparse.ArgumentParser) -> None:
    """``--model`` and ``--workdir``, read by :func:`model_from_args`."""
    ap.add_argument("--model", help="model pointer (default: build the benchmark model)")
    ap.add_argument("--workdir", default="/tmp/mlxas-bench-predict")


def model_from_args(a: argparse.Namespace) -> Path:
    """The ``--model`` pointer, else the benchmark model in ``--workdir`` (see :func:`model`)."""
    return Path(a.model) if a.model else model(Path(a.workdir))


def write_series(directory: Path, n: int, sigma: float = 0.002, seed: int = 0) -> list[Path]:
    """n XDI files: the Cu foil with Gaussian noise (sigma, units of mu) on mutrans; the
    scan start time differs from file to file as in a real run."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = CU_FOIL.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    cols = np.array([ln.split() for ln in lines if ln.strip() and not ln.startswith("#")], float)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        mu = cols[:, 3] + rng.normal(0.0, sigma, len(cols))
        stamp = f"2001-06-26T{22 + i // 3600 % 2:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        h = [f"# Scan.start_time: {stamp}" if "Scan.start_time" in ln else ln for ln in header]
        body = "\n".join(
            f"  {e:.1f}  {a:.1f}  {b:.6f}  {m:.7f}"
            for e, a, b, m in zip(*cols[:, :3].T, mu, strict=True)
        )
        p = directory / f"qexafs_{i:05d}.xdi"
        p.write_text("\n".join(h) + "\n" + body + "\n")
        paths.append(p)
    return paths


def larch_per_file(paths: list[Path], n: int = 40) -> dict[str, float]:
    """Median seconds per file of larch alone: read_xdi, pre_edge, autobk (defaults)."""
    import time

    from larch.io import read_xdi
    from larch.xafs import autobk, pre_edge

    times = {"read": [], "pre_edge": [], "autobk": []}
    for p in paths[:n]:
        t0 = time.perf_counter()
        g = read_xdi(str(p))
        t1 = time.perf_counter()
        pre_edge(g.energy, g.mutrans, group=g)
        t2 = time.perf_counter()
        autobk(g.energy, g.mutrans, group=g)
        t3 = time.perf_counter()
        times["read"].append(t1 - t0)
        times["pre_edge"].append(t2 - t1)
        times["autobk"].append(t3 - t2)
    out = {k: float(np.median(v)) for k, v in times.items()}
    out["total"] = float(np.median(np.sum([times[k] for k in times], axis=0)))
    # CPU time hardly depends on what else runs on the machine: the ratio to ours is robust.
    c0 = time.process_time()
    for p in paths[:n]:
        g = read_xdi(str(p))
        pre_edge(g.energy, g.mutrans, group=g)
        autobk(g.energy, g.mutrans, group=g)
    out["cpu_total"] = (time.process_time() - c0) / len(paths[:n])
    return out
