"""FEFF engines on a real Cu cluster, run directories, timeouts, chunks and resume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase.cluster import Octahedron

from mlxas.feff.cards import merged_cards
from mlxas.feff.chunk import chunk_summary, read_chunk, summary_path
from mlxas.feff.engines import Feff8L, _larch_bindir, get_engine
from mlxas.feff.inputs import build_inputs, cluster_around, feff_input_text
from mlxas.feff.runner import DONE_MARKER, FAILURE_FILE, read_chunk_rows, run_chunk, run_site
from mlxas.provenance import structure_hash

A_CU = 3.61  # Å, fcc Cu lattice constant
R1 = A_CU / np.sqrt(2)  # Å, first-shell distance


def cu_particle() -> Octahedron:
    return Octahedron("Cu", 5, 1, latticeconstant=A_CU)


def centre_index(atoms) -> int:
    return int(np.argmin(np.linalg.norm(atoms.positions - atoms.positions.mean(0), axis=1)))


def site_row(engine: str, site_id: str = "cu", cards: dict | None = None, radius=6.0) -> dict:
    atoms = cu_particle()
    syms, xyz = cluster_around(atoms, centre_index(atoms), radius)
    default = {"feff6l": {"RMAX": 4.5, "NLEG": 4}}.get(engine, {"RPATH": 4.5, "NLEGS": 4})
    text = feff_input_text(syms, xyz, merged_cards(engine, "K", cards or default), "Cu")
    return {
        "site_id": site_id,
        "input_hash": f"h-{engine}",
        "card_hash": "c",
        "feff_inp": text,
        "reason": "",
        "detail": "",
    }


ENGINE_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def engine_runs(tmp_path_factory) -> dict:
    """The same Cu site (bulk-like centre of an octahedron) run by all three engines.

    The run directories are ``ENGINE_RUNS[engine]``.
    """
    root = tmp_path_factory.mktemp("engines")
    for e in ("feff8l", "feff6l", "feff10"):
        ENGINE_RUNS[e] = root / "runs" / e
    return {e: run_site(site_row(e), ENGINE_RUNS[e], e, timeout=300) for e in ENGINE_RUNS}


def test_engines_run_and_agree(engine_runs):
    from larch import Group
    from larch.xafs import xftf
    from larch.xray import xray_edge

    grid = np.arange(3.0, 12.0, 0.05)
    chis = {}
    for name, res in engine_runs.items():
        assert res.ok, (name, res.reason, res.detail)
        assert res.engine == name and res.engine_version == get_engine(name).version
        assert res.k[-1] == pytest.approx(20.0) and np.all(np.diff(res.k) > 0)
        # |chi(R)| peaks at the first shell (2.55 Å) less the scattering phase shift.
        group = Group(k=res.k, chi=res.chi)
        xftf(group, kweight=2, kmin=3, kmax=12, dk=1, window="hanning")
        r_peak = group.r[np.argmax(group.chir_mag)]
        assert R1 - 0.45 < r_peak < R1 - 0.1, (name, r_peak)
        chis[name] = np.interp(grid, res.k, res.chi) * grid**2
    # Same physics, three codes: the k²-weighted spectra agree closely.
    for other in ("feff6l", "feff10"):
        assert np.corrcoef(chis["feff8l"], chis[other])[0, 1] > 0.95, other
    # FEFF8L and FEFF10 E0 (where their k is zero) near the tabulated Cu K edge.
    edge = xray_edge("Cu", "K").energy
    for name in ("feff8l", "feff10"):
        assert abs(engine_runs[name].e0 - edge) < 15
    assert np.isnan(engine_runs["feff6l"].e0)  # FEFF6L writes no xmu.dat


def test_feff10_xanes(tmp_path):
    # Full multiple scattering within 3 Å; no SCF (seconds instead of minutes).
    cards = merged_cards("feff10", "K", {"FMS": 3.0, "SCF": None}, "xanes")
    assert cards["XANES"] == 4.0 and "EXAFS" not in cards
    atoms = cu_particle()
    text = feff_input_text(*cluster_around(atoms, centre_index(atoms), 3.0), cards, "Cu XANES")
    row = {**site_row("feff10"), "feff_inp": text}
    res = run_site(row, tmp_path / "runs" / "cu", "feff10", timeout=300)
    assert res.ok, (res.reason, res.detail)
    assert res.k.size == 0 and res.energy.size > 50
    assert res.mu[0] < 0.1 and 0.8 < res.mu[-1] < 1.2  # FEFF normalises the edge step to 1


def test_run_dir_keeps_only_results(engine_runs):
    row = site_row("feff8l")
    rundir = ENGINE_RUNS["feff8l"]
    assert sorted(p.name for p in rundir.iterdir()) == sorted(
        ["feff.inp", "feff.log", "chi.dat", "xmu.dat", DONE_MARKER]
    )
    marker = json.loads((rundir / DONE_MARKER).read_text())
    assert marker["input_hash"] == row["input_hash"]
    assert marker["seconds"] == engine_runs["feff8l"].seconds
    assert (rundir / "feff.inp").read_text() == row["feff_inp"]
    # FEFF10 rewrites feff.inp in its own layout; the run keeps the text that was hashed.
    assert (ENGINE_RUNS["feff10"] / "feff.inp").read_text() == site_row("feff10")["feff_inp"]


def test_finished_site_is_reused_by_input_hash(engine_runs):
    row = site_row("feff8l")
    rundir = ENGINE_RUNS["feff8l"]
    first = engine_runs["feff8l"]
    log_mtime = (rundir / "feff.log").stat().st_mtime_ns
    again = run_site(row, rundir, "feff8l", timeout=120)
    assert again.ok and again.seconds == first.seconds
    assert (rundir / "feff.log").stat().st_mtime_ns == log_mtime  # FEFF did not run
    assert np.array_equal(again.chi, first.chi)
    # A different input hash (new cards or engine version) runs FEFF again.
    changed = {**row, "input_hash": "other"}
    third = run_site(changed, rundir, "feff8l", timeout=120)
    assert third.ok and (rundir / "feff.log").stat().st_mtime_ns != log_mtime
    assert json.loads((rundir / DONE_MARKER).read_text())["input_hash"] == "other"


@dataclass(frozen=True)
class HangingEngine(Feff8L):
    """FEFF8L's interface with a program that never finishes (records its pid)."""

    def commands(self, rundir: Path) -> list[list[str]]:
        return [["sh", "-c", "echo $$ > hang.pid; exec sleep 300"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hanging_run_is_killed_at_its_timeout(tmp_path):
    base = get_engine("feff8l")
    eng = HangingEngine(
        name=base.name,
        label=base.label,
        version=base.version,
        max_atoms=base.max_atoms,
        max_potentials=base.max_potentials,
        template=base.template,
    )
    start = time.monotonic()
    res = run_site(site_row("feff8l", "h"), tmp_path / "runs" / "h", eng, timeout=1.5)
    elapsed = time.monotonic() - start
    assert res.reason == "timeout" and "1.5 s" in res.detail
    assert 1.5 <= elapsed < 10
    qdir = tmp_path / "quarantine" / "h"
    assert json.loads((qdir / FAILURE_FILE).read_text())["reason"] == "timeout"
    assert not _alive(int((qdir / "hang.pid").read_text()))
    assert "killed sh at the 1.5 s timeout" in (qdir / "feff.log").read_text()


def _processes_under(folder: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_feff10_timeout_kills_its_workers(tmp_path):
    res = run_site(site_row("feff10"), tmp_path / "runs" / "t", "feff10", timeout=1.0)
    assert res.reason == "timeout"
    time.sleep(0.2)
    assert _processes_under(tmp_path) == []


def kill_chunk_job(engine: str, sig: int, root: Path) -> tuple[int, list[int]]:
    """Start ``mlxas run-feff`` on two SCF runs (minutes each) under ``root``, send it
    ``sig`` once both are well into their FEFF programs, and return the number of FEFF
    programs seen running then and the processes still running under ``root`` a second
    later (SIGKILLed here, so that nothing is left even when a check fails).

    Also used by ``benchmarks/bench_reliability.py``.
    """
    folder = _source(root, 4, 4)
    table = pd.read_parquet(folder / "inputs.parquet")
    slow = site_row(engine, cards={"RPATH": 4.5, "NLEGS": 4, "SCF": 4.5})
    table["feff_inp"] = slow["feff_inp"]
    table.to_parquet(folder / "inputs.parquet")
    cmd = [
        *(str(Path(sys.executable).parent / "mlxas"), "run-feff", "--engine", engine),
        *("--inputs", str(folder / "inputs.parquet"), "--chunk", "0", "--threads", "2"),
        *("--workdir", str(folder / "runs"), "--out", str(folder / "00000.h5"), "--quiet"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # FEFF8L's modules, or FEFF10's workers (started by the driver: grandchildren).
    program = {"feff8l": "feff8l_", "feff10": "feff10._worker"}[engine]
    deadline = time.monotonic() + 300
    seen: list[int] = []
    try:
        while len(seen) < 2 and proc.poll() is None and time.monotonic() < deadline:
            seen = [p for p in _processes_under(root) if program in _cmdline(p)]
            time.sleep(0.01)
        # Well into the computation: a FEFF10 worker that has not got its task yet, or
        # that ends a stage, exits by itself once the driver is gone.
        time.sleep(2.0)
    finally:
        proc.send_signal(sig)
        proc.wait()
    left = _processes_under(root)
    # The kernel's signal is immediate; reaping takes a moment.  Not longer: a program
    # left running could end by itself and pass for one that was killed.
    end = time.monotonic() + 1.0
    while left and time.monotonic() < end:
        time.sleep(0.05)
        left = _processes_under(root)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(seen), left


@pytest.mark.parametrize("engine", ["feff8l", "feff10"])
def test_killed_chunk_job_leaves_no_feff_process(engine, tmp_path):
    """SIGKILL a FEFF job while its programs run: they die with it (FEFF10: its workers
    too), although each runs in a session of its own, out of reach of a group kill.

    The runs compute self-consistent potentials (minutes each), so a program left running
    is still there when the test looks, however slow the machine.
    """
    seen, left = kill_chunk_job(engine, signal.SIGKILL, tmp_path)
    assert seen == 2, "the FEFF runs were not seen running"
    assert left == [], f"FEFF processes left running: {left}"


def test_timeout_is_retried_but_deterministic_failures_are_not(tmp_path):
    row = site_row("feff8l")
    row["feff_inp"] = row["feff_inp"].replace("POTENTIALS", "FOOBAR 1\nPOTENTIALS")
    rundir = tmp_path / "runs" / "cu"
    first = run_site(row, rundir, "feff8l", timeout=60)
    assert first.reason == "unknown_card"
    log = tmp_path / "quarantine" / "cu" / "feff.log"
    mtime = log.stat().st_mtime_ns
    again = run_site(row, rundir, "feff8l", timeout=60)
    assert again.reason == "unknown_card" and log.stat().st_mtime_ns == mtime  # reused
    # A timed-out site is tried again, and success clears its quarantine folder.
    good = site_row("feff8l")
    record = tmp_path / "quarantine" / "cu" / FAILURE_FILE
    record.write_text(json.dumps({"input_hash": good["input_hash"], "reason": "timeout"}))
    third = run_site(good, rundir, "feff8l", timeout=60)
    assert third.ok and not (tmp_path / "quarantine" / "cu").exists()


def test_refused_site_is_not_run(tmp_path):
    row = {**site_row("feff8l"), "feff_inp": "", "reason": "too_many_atoms", "detail": "big"}
    res = run_site(row, tmp_path / "runs" / "r", "feff8l", timeout=60)
    assert (res.status, res.reason, res.detail) == ("failed", "too_many_atoms", "big")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "quarantine").exists()


# --- chunks -----------------------------------------------------------------------------


def _source(tmp_path: Path, n_sites: int, chunk_size: int) -> Path:
    """An input table of ``n_sites`` sites of one Cu octahedron, as the workflow writes it."""
    atoms = cu_particle()
    sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions)
    sites = pd.DataFrame(
        {
            "site_id": [f"{sid}-{i:05d}" for i in range(n_sites)],
            "structure_id": sid,
            "site_index": range(n_sites),
        }
    )
    folder = tmp_path / "feff" / "octa"
    folder.mkdir(parents=True)
    cfg = {
        "engine": "feff8l",
        "cards": {"RPATH": 4.0, "NLEGS": 4},
        "cluster_radius": 5.0,
        "chunk_size": chunk_size,
    }
    build_inputs(sites, {sid: atoms}, cfg, "K", folder / "inputs.parquet", folder / "chunks.json")
    return folder


def test_input_table_has_one_row_group_per_chunk(tmp_path):
    import pyarrow.parquet as pq

    folder = _source(tmp_path, 7, 3)
    meta = pq.ParquetFile(folder / "inputs.parquet").metadata
    assert meta.num_row_groups == 3
    rows = read_chunk_rows(folder / "inputs.parquet", 2)
    assert [r["chunk"] for r in rows] == [2] and rows[0]["site_id"].endswith("-00006")
    # A FEFF job imports neither pandas nor larch (each ~1 s per job, see docs/feff.md).
    probe = (
        "import sys; from mlxas.feff.runner import read_chunk_rows; "
        "from mlxas.feff.engines import get_engine; get_engine('feff8l').prepare(); "
        f"assert len(read_chunk_rows({str(folder / 'inputs.parquet')!r}, 1)) == 3; "
        "print(sorted(m for m in ('pandas', 'larch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    plan = json.loads((folder / "chunks.json").read_text())
    assert plan["n_chunks"] == 3 and plan["engine_version"] == get_engine("feff8l").version
    assert plan["sites_per_chunk"] == [3, 3, 1] and plan["refused_per_chunk"] == {}


def test_chunk_file_round_trip_and_summary(tmp_path):
    folder = _source(tmp_path, 3, 3)
    rows = read_chunk_rows(folder / "inputs.parquet", 0)
    rows[1] = {**rows[1], "feff_inp": rows[1]["feff_inp"].replace("EDGE K", "EDGE K\nFOO 1")}
    pd.DataFrame(rows).to_parquet(folder / "broken.parquet")
    out = folder / "chunks" / "00000.h5"
    results = run_chunk(folder / "broken.parquet", 0, folder / "runs", out, "feff8l", 60, 2)
    assert [r.ok for r in results] == [True, False, True]
    back = read_chunk(out)
    assert [r.site_id for r in back] == [r["site_id"] for r in rows]
    assert back[1].reason == "unknown_card" and back[1].k.size == 0
    assert np.array_equal(back[2].chi, results[2].chi) and back[0].e0 == results[0].e0
    summary = chunk_summary(out)
    assert summary["n_sites"] == 3 and summary["n_ok"] == 2
    assert summary["reasons"] == {"unknown_card": 1}
    assert summary["feff_seconds"] == pytest.approx(sum(r.seconds for r in results))
    # The JSON beside the chunk holds the same summary; a stale one is not trusted.
    side = json.loads(summary_path(out).read_text())
    assert side["chunk_bytes"] == out.stat().st_size and side["n_ok"] == 2
    summary_path(out).write_text(json.dumps({**side, "n_ok": 3, "chunk_bytes": 1}))
    assert chunk_summary(out)["n_ok"] == 2


def test_feff_binaries_are_larchs():
    from larch.utils import bindir

    assert _larch_bindir() == Path(bindir)


def test_killed_chunk_job_resumes_without_loss(tmp_path):
    """kill -9 mid-chunk: no chunk file, valid markers; the rerun reuses finished sites."""
    folder = _source(tmp_path, 4, 4)
    out = folder / "chunks" / "00000.h5"
    cmd = [
        *(str(Path(sys.executable).parent / "mlxas"), "run-feff"),
        *("--inputs", str(folder / "inputs.parquet"), "--chunk", "0"),
        *("--workdir", str(folder / "runs"), "--out", str(out), "--threads", "1", "--quiet"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((folder / "runs").glob(f"*/{DONE_MARKER}")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {
        p.parent.name: p.parent.joinpath("feff.log").stat().st_mtime_ns
        for p in (folder / "runs").glob(f"*/{DONE_MARKER}")
    }
    assert not out.exists() and not list((folder / "chunks").glob("*.h5"))
    for site in finished:
        json.loads((folder / "runs" / site / DONE_MARKER).read_text())  # complete JSON
    results = run_chunk(folder / "inputs.parquet", 0, folder / "runs", out, "feff8l", 60, 2)
    ids = [r.site_id for r in read_chunk(out)]
    assert len(ids) == len(set(ids)) == 4 and all(r.ok for r in results)
    for site, mtime in finished.items():  # reused, not rerun
        assert (folder / "runs" / site / "feff.log").stat().st_mtime_ns == mtime
