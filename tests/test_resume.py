"""Kill the workflow with SIGKILL in the middle of the FEFF stage: nothing is left
running, and the resumed run loses nothing.

The workflow runs the real FEFF8L. It is killed (the whole process group, like a node
failure or a job hitting its wall time) once some chunk files exist and another chunk is
half done; the resumed run must produce a dataset with every site exactly once, without
rerunning the FEFF sites or chunks that had finished.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_CONFIG, VENV_BIN, write_config
from mlxas.simulation.chunk import read_chunk
from mlxas.workflow.layout import DONE_MARKER, Layout

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

#: The tiny experiment in small chunks run one site at a time: six or more chunk jobs,
#: two at once, so the FEFF stage lasts long enough to be caught in the middle.
RESUME_CONFIG = copy.deepcopy(TINY_CONFIG)
RESUME_CONFIG["experiment"] = "resume"
RESUME_CONFIG["simulation"].update(chunk_size=3, threads=1)


def _snakemake_cmd(workdir: Path, cfg: Path, target: str) -> list[str]:
    return [
        str(VENV_BIN / "snakemake"),
        target,
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(ROOT / "profiles" / "local"),
        "--cores",
        "2",
        "--configfile",
        str(cfg),
    ]


def _with_sources(feff: Path) -> pd.DataFrame:
    """The input tables of the sources written so far, with a ``source`` column."""
    tables = []
    for path in sorted(feff.glob("*/inputs.parquet")):
        t = pd.read_parquet(path, columns=["item_id", "chunk", "reason"])
        t = t.rename(columns={"item_id": "site_id"})
        t["source"] = path.parent.name
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _n_sources(table: pd.DataFrame) -> int:
    return table["source"].nunique() if len(table) else 0


def _chunk_files(feff: Path) -> list[Path]:
    return sorted(feff.glob("*/chunks/*.h5"))


def _half_done_chunks(feff: Path, table: pd.DataFrame) -> set[tuple[str, int]]:
    """(source, chunk) of chunks with a finished site but no chunk file yet."""
    out = set()
    for marker in feff.glob(f"*/runs/*/{DONE_MARKER}"):
        source, site = marker.parts[-4], marker.parts[-2]
        chunk = table.loc[table["site_id"] == site, "chunk"]
        if len(chunk) and not (feff / source / "chunks" / f"{int(chunk.iloc[0]):05d}.h5").exists():
            out.add((source, int(chunk.iloc[0])))
    return out


def _processes_under(workdir: Path) -> dict[int, str]:
    """pid -> command line of the processes whose working directory is under ``workdir``
    (FEFF programs run in their site folders, jobs in the workflow's directory)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(proc / "cwd")).is_relative_to(workdir):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
    return {pid: cmd.decode(errors="replace") for pid, cmd in found.items()}


def _kill_leftovers(workdir: Path) -> dict[int, str]:
    """The processes of the killed run still alive a second after the kill (the kernel
    kills FEFF programs with their job at once; reaping takes a moment).  They are
    SIGKILLed here, so that a failing check leaves nothing running either."""
    deadline = time.monotonic() + 1.0
    left = _processes_under(workdir)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _processes_under(workdir)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def test_kill_in_feff_stage_then_resume(tmp_path):
    cfg = write_config(tmp_path, RESUME_CONFIG)
    layout = Layout.for_experiment("resume")
    feff = tmp_path / layout.simulation_root()
    target = str(layout.dataset)  # relative to the working directory
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = open(tmp_path / "first_run.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        _snakemake_cmd(tmp_path, cfg, target),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    table = pd.DataFrame()
    n_sources = len(RESUME_CONFIG["structures"])
    killed_at = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _n_sources(table) < n_sources:
                try:
                    table = _with_sources(feff)
                except (OSError, ValueError):  # a table being written: try again
                    table = pd.DataFrame()
            elif _chunk_files(feff) and _half_done_chunks(feff, table):
                os.killpg(proc.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_at is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        left = _kill_leftovers(tmp_path)
    assert killed_at is not None, (
        "the FEFF stage was never caught half done:\n" + (tmp_path / "first_run.log").read_text()
    )
    # Nothing of the killed run goes on running: no job, no FEFF program.
    assert left == {}, f"left running after the kill: {left}"

    n_chunks = table.groupby("source")["chunk"].max().add(1).sum()
    done_chunks = _chunk_files(feff)
    assert 0 < len(done_chunks) < n_chunks
    # A chunk file is there complete or not at all (written under a temporary name).
    for path in done_chunks:
        source, chunk = path.parts[-3], int(path.stem)
        expected = table.loc[(table["source"] == source) & (table["chunk"] == chunk), "site_id"]
        assert [r.item_id for r in read_chunk(path)] == list(expected)
    # FEFF results in the chunk files before the kill, to compare with the final ones.
    before = {p: {r.item_id: r.arrays["chi"] for r in read_chunk(p)} for p in done_chunks}
    markers = {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in feff.glob(f"*/runs/*/{DONE_MARKER}")
    }
    half_done = _half_done_chunks(feff, table)
    assert half_done

    # Resume as a user would: remove the stale lock of the killed run, then run again;
    # the local profile has rerun-incomplete, so the killed jobs start over.
    subprocess.run(
        [*_snakemake_cmd(tmp_path, cfg, target), "--unlock"],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    proc = subprocess.run(
        _snakemake_cmd(tmp_path, cfg, target), capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    with h5py.File(tmp_path / layout.dataset, "r") as f:
        ids = list(f["sites/site_id"].asstr()[()])
        failures = list(f["failures/site_id"].asstr()[()])
    expected = set(table.loc[table["reason"] == "", "site_id"])
    assert len(ids) == len(set(ids)), "a site is counted twice"
    assert set(ids) == expected, f"lost: {expected - set(ids)}, extra: {set(ids) - expected}"
    assert failures == []
    # Finished work was reused: finished sites were not run again, and chunk files the
    # killed run had written hold the same spectra (a chunk whose job was killed after
    # the file was renamed into place, but before Snakemake recorded the job as done,
    # is rerun from the finished sites and rewritten with the same content).
    for path, spectra in before.items():
        after = {r.item_id: r.arrays["chi"] for r in read_chunk(path)}
        assert after.keys() == spectra.keys()
        assert all(np.array_equal(after[s], spectra[s]) for s in spectra), path
    for path, (content, stamp) in markers.items():
        assert path.read_bytes() == content and path.stat().st_mtime_ns == stamp, path
    # Every chunk file now holds exactly its sites.
    for path in _chunk_files(feff):
        source, chunk = path.parts[-3], int(path.stem)
        sel = table.loc[(table["source"] == source) & (table["chunk"] == chunk), "site_id"]
        assert [r.item_id for r in read_chunk(path)] == list(sel)
    assert len(_chunk_files(feff)) == n_chunks


#: FEFF runs that take minutes (self-consistent potentials): a FEFF program that outlived
#: the kill would still be running when the test looks.
SLOW_FEFF_CONFIG = copy.deepcopy(RESUME_CONFIG)
SLOW_FEFF_CONFIG["experiment"] = "slow_feff"
SLOW_FEFF_CONFIG["feff"]["cards"]["SCF"] = 4.5


def kill_workflow_during_feff(workdir: Path) -> tuple[int, dict[int, str]]:
    """Run SLOW_FEFF_CONFIG in ``workdir``, SIGKILL the workflow's process group once two
    FEFF programs are in their SCF loops; returns how many were seen and what was left
    running a second later (then killed).  Also used by benchmarks/bench_reliability.py."""
    cfg = write_config(workdir, SLOW_FEFF_CONFIG)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen(
        _snakemake_cmd(workdir, cfg, str(Layout.for_experiment("slow_feff").dataset)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    seen: dict[int, str] = {}
    try:
        # Two chunk jobs (2 cores), each in a FEFF program well into its SCF loop.
        while len(seen) < 2 and proc.poll() is None and time.monotonic() < deadline:
            seen = {p: c for p, c in _processes_under(workdir).items() if "feff8l_" in c}
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return len(seen), _kill_leftovers(workdir)


def test_kill_leaves_no_feff_program_running(tmp_path):
    """SIGKILL the workflow's process group while FEFF programs run: none is left.

    Each FEFF program runs in a session of its own (for its timeout), out of reach of the
    group kill; the kernel kills it when the job that started it dies.
    """
    seen, left = kill_workflow_during_feff(tmp_path)
    assert seen == 2, "no FEFF program seen running"
    assert left == {}, f"left running after the kill: {left}"
