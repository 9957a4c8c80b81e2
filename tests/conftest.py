"""Shared fixtures.  FEFF is real everywhere; the tiny experiment runs the real workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# mlxas before the rest: it loads cctbx's C++ runtime before pandas, scipy, gemmi, ... would load
# the system's, which crashes cctbx (see src/mlxas/_native.py).
import mlxas  # noqa: F401
from _cu_config import cu_nanoparticles_config

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXPERIMENTAL = DATA / "experimental"
VENV_BIN = Path(sys.executable).parent

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

#: A few Cu nanoparticle sites with short FEFF settings: the whole workflow in ~40 s.
TINY_CONFIG = {
    **cu_nanoparticles_config("tiny", [4, 5], [2], chunk_size=4, threads=2),
    "dataset": {"split": {"group_by": "site", "seed": 1}},
    "models": [{"name": "mlp", "kind": "mlp", "epochs": 3, "patience": 2}],
}


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with the venv's snakemake."""
    cmd = [
        str(VENV_BIN / "snakemake"),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    full_env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory) -> Path:
    """The tiny workflow run once per session; returns its working directory.

    Results are in ``<workdir>/results/tiny/``.  Tests must not modify them; copy first.
    """
    workdir = tmp_path_factory.mktemp("tiny_experiment")
    cfg = write_config(workdir, TINY_CONFIG)
    snakemake(workdir, "--configfile", str(cfg), "--cores", "2", "--quiet")
    return workdir


@pytest.fixture(scope="session")
def synthetic_models(tmp_path_factory) -> dict:
    """Small Keras models trained once on EXAFS-equation spectra (tests/synthetic_exafs.py)."""
    from synthetic_exafs import train_session_models

    return train_session_models(tmp_path_factory.mktemp("synthetic_models"))
