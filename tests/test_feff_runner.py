"""FEFF engines on a real Cu cluster through the engine-blind simulation stage: run
folders, timeouts, quarantine, chunks and resume."""

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

from mlxas.engines import ItemInput, engine_class, get_engine
from mlxas.engines.feff import Feff8LEngine, FeffSettings
from mlxas.feff.cards import merged_cards
from mlxas.feff.engines import Feff8L, _larch_bindir
from mlxas.feff.engines import get_engine as programs_of
from mlxas.feff.inputs import cluster_around, feff_input_text
from mlxas.provenance import structure_hash
from mlxas.simulation.chunk import chunk_summary, read_chunk
from mlxas.simulation.inputs import build_inputs, read_chunk_items
from mlxas.simulation.runner import run_chunk, run_item
from mlxas.workflow.layout import DONE_MARKER, FAILURE_FILE, RESULT_FILE, SimulationFolder

A_CU = 3.61  # Å, fcc Cu lattice constant
R1 = A_CU / np.sqrt(2)  # Å, first-shell distance


def cu_particle() -> Octahedron:
    return Octahedron("Cu", 5, 1, latticeconstant=A_CU)


def centre_index(atoms) -> int:
    return int(np.argmin(np.linalg.norm(atoms.positions - atoms.positions.mean(0), axis=1)))


def site_item(engine: str, item_id: str = "cu", cards: dict | None = None, radius=6.0):
    atoms = cu_particle()
    syms, xyz = cluster_around(atoms, centre_index(atoms), radius)
    default = {"feff6l": {"RMAX": 4.5, "NLEG": 4}}.get(engine, {"RPATH": 4.5, "NLEGS": 4})
    text = feff_input_text(syms, xyz, merged_cards(engine, "K", cards or default), "Cu")
    return ItemInput(item_id, "s", 0, text, f"h-{engine}")


def engine(name: str, **settings):
    return get_engine(name, FeffSettings(**settings))


def run_site(item: ItemInput, folder: Path, name, timeout: float):
    """One item through the shared runner; its run folder is ``folder/runs/<item id>``."""
    eng = engine(name) if isinstance(name, str) else name
    return run_item(item, eng, SimulationFolder(folder), timeout)


ENGINE_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="module")
def engine_runs(tmp_path_factory) -> dict:
    """The same Cu site (bulk-like centre of an octahedron) run by all three engines.

    The run folders are ``ENGINE_RUNS[engine]``.
    """
    root = tmp_path_factory.mktemp("engines")
    for e in ("feff8l", "feff6l", "feff10"):
        ENGINE_RUNS[e] = root / e / "runs" / "cu"
    return {e: run_site(site_item(e), root / e, e, timeout=300) for e in ENGINE_RUNS}


def test_engines_run_and_agree(engine_runs):
    from larch import Group
    from larch.xafs import xftf
    from larch.xray import xray_edge

    grid = np.arange(3.0, 12.0, 0.05)
    chis = {}
    for name, res in engine_runs.items():
        assert res.ok, (name, res.reason, res.detail)
        assert res.engine == name and res.engine_version == programs_of(name).version
        k, chi = res.arrays["k"], res.arrays["chi"]
        assert k[-1] == pytest.approx(20.0) and np.all(np.diff(k) > 0)
        # |chi(R)| peaks at the first shell (2.55 Å) less the scattering phase shift.
        group = Group(k=k, chi=chi)
        xftf(group, kweight=2, kmin=3, kmax=12, dk=1, window="hanning")
        r_peak = group.r[np.argmax(group.chir_mag)]
        assert R1 - 0.45 < r_peak < R1 - 0.1, (name, r_peak)
        chis[name] = np.interp(grid, k, chi) * grid**2
    # Same physics, three codes: the k²-weighted spectra agree closely.
    for other in ("feff6l", "feff10"):
        assert np.corrcoef(chis["feff8l"], chis[other])[0, 1] > 0.95, other
    # FEFF8L and FEFF10 E0 (where their k is zero) near the tabulated Cu K edge.
    edge = xray_edge("Cu", "K").energy
    for name in ("feff8l", "feff10"):
        assert abs(engine_runs[name].scalars["e0"] - edge) < 15
    assert np.isnan(engine_runs["feff6l"].scalars["e0"])  # FEFF6L writes no xmu.dat


def test_feff10_xanes(tmp_path):
    # Full multiple scattering within 3 Å; no SCF (seconds instead of minutes).
    cards = merged_cards("feff10", "K", {"FMS": 3.0, "SCF": None}, "xanes")
    assert cards["XANES"] == 4.0 and "EXAFS" not in cards
    atoms = cu_particle()
    text = feff_input_text(*cluster_around(atoms, centre_index(atoms), 3.0), cards, "Cu XANES")
    item = ItemInput("cu", "s", 0, text, "h-xanes")
    res = run_site(item, tmp_path, "feff10", timeout=300)
    assert res.ok, (res.reason, res.detail)
    assert res.arrays["k"].size == 0 and res.arrays["energy"].size > 50
    mu = res.arrays["mu"]
    assert mu[0] < 0.1 and 0.8 < mu[-1] < 1.2  # FEFF normalises the edge step to 1


def test_run_dir_keeps_only_results(engine_runs):
    item = site_item("feff8l")
    rundir = ENGINE_RUNS["feff8l"]
    assert sorted(p.name for p in rundir.iterdir()) == sorted(
        ["feff.inp", "feff.log", "chi.dat", "xmu.dat", RESULT_FILE, DONE_MARKER]
    )
    marker = json.loads((rundir / DONE_MARKER).read_text())
    assert marker["input_hash"] == item.input_hash
    assert marker["seconds"] == engine_runs["feff8l"].seconds
    assert (rundir / "feff.inp").read_text() == item.text
    # FEFF10 rewrites feff.inp in its own layout; the run keeps the text that was hashed.
    assert (ENGINE_RUNS["feff10"] / "feff.inp").read_text() == site_item("feff10").text


def test_finished_site_is_reused_by_input_hash(engine_runs):
    item = site_item("feff8l")
    rundir = ENGINE_RUNS["feff8l"]
    folder = rundir.parent.parent
    first = engine_runs["feff8l"]
    log_mtime = (rundir / "feff.log").stat().st_mtime_ns
    again = run_site(item, folder, "feff8l", timeout=120)
    assert again.ok and again.seconds == first.seconds
    assert (rundir / "feff.log").stat().st_mtime_ns == log_mtime  # FEFF did not run
    for name, arr in first.arrays.items():
        assert np.array_equal(again.arrays[name], arr), name
    assert again.scalars == first.scalars
    # A different input hash (new cards or engine version) runs FEFF again.
    changed = ItemInput(item.item_id, "s", 0, item.text, "other")
    third = run_site(changed, folder, "feff8l", timeout=120)
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


class HangingFeff(Feff8LEngine):
    """The FEFF8L engine running :class:`HangingEngine`'s program."""

    @property
    def programs(self):
        base = programs_of("feff8l")
        return HangingEngine(
            name=base.name,
            label=base.label,
            version=base.version,
            max_atoms=base.max_atoms,
            max_potentials=base.max_potentials,
            template=base.template,
        )


def test_hanging_run_is_killed_at_its_timeout(tmp_path):
    eng = HangingFeff(FeffSettings())
    start = time.monotonic()
    res = run_site(site_item("feff8l", "h"), tmp_path, eng, timeout=1.5)
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
    res = run_site(site_item("feff10", "t"), tmp_path, "feff10", timeout=1.0)
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
    folder = _source(root, 4, 4, engine)
    table = pd.read_parquet(folder.inputs_table)
    slow = site_item(engine, cards={"RPATH": 4.5, "NLEGS": 4, "SCF": 4.5})
    table["text"] = slow.text
    table.to_parquet(folder.inputs_table)
    cmd = [
        *(str(Path(sys.executable).parent / "mlxas"), "simulate", "--spec", '{"timeout": 900}'),
        *("--folder", str(folder.path), "--chunk", "0", "--threads", "2", "--quiet"),
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
    good = site_item("feff8l")
    text = good.text.replace("POTENTIALS", "FOOBAR 1\nPOTENTIALS")
    bad = ItemInput("cu", "s", 0, text, "h-bad")
    first = run_site(bad, tmp_path, "feff8l", timeout=60)
    assert first.reason == "unknown_card"
    log = tmp_path / "quarantine" / "cu" / "feff.log"
    mtime = log.stat().st_mtime_ns
    again = run_site(bad, tmp_path, "feff8l", timeout=60)
    assert again.reason == "unknown_card" and log.stat().st_mtime_ns == mtime  # reused
    # A timed-out site is tried again, and success clears its quarantine folder.
    record = tmp_path / "quarantine" / "cu" / FAILURE_FILE
    record.write_text(json.dumps({"input_hash": good.input_hash, "reason": "timeout"}))
    third = run_site(good, tmp_path, "feff8l", timeout=60)
    assert third.ok and not (tmp_path / "quarantine" / "cu").exists()


def test_refused_site_is_not_run(tmp_path):
    row = ItemInput("r", "s", 0, "", "", reason="too_many_atoms", detail="big")
    res = run_site(row, tmp_path, "feff8l", timeout=60)
    assert (res.status, res.reason, res.detail) == ("failed", "too_many_atoms", "big")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "quarantine").exists()


# --- chunks -----------------------------------------------------------------------------


def _source(
    tmp_path: Path, n_sites: int, chunk_size: int, engine: str = "feff8l"
) -> SimulationFolder:
    """An input table of ``n_sites`` sites of one Cu octahedron, as the workflow writes it
    (``engine``: the FEFF code of the chunk plan)."""
    atoms = cu_particle()
    sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions)
    sites = pd.DataFrame(
        {
            "site_id": [f"{sid}-{i:05d}" for i in range(n_sites)],
            "structure_id": sid,
            "site_index": range(n_sites),
        }
    )
    folder = SimulationFolder(tmp_path / "simulation" / "octa")
    cls = engine_class(engine)
    eng = cls.settings_from_config(
        {"cards": {"RPATH": 4.0, "NLEGS": 4}, "cluster_radius": 5.0}, absorber="Cu", edge="K"
    )
    build_inputs(sites, {sid: atoms}, cls(eng), chunk_size, folder)
    return folder


def test_input_table_has_one_row_group_per_chunk(tmp_path):
    import pyarrow.parquet as pq

    folder = _source(tmp_path, 7, 3)
    meta = pq.ParquetFile(folder.inputs_table).metadata
    assert meta.num_row_groups == 3
    items = read_chunk_items(folder.inputs_table, 2)
    assert [r.chunk for r in items] == [2] and items[0].item_id.endswith("-00006")
    # A simulation job imports neither pandas nor larch (each ~1 s per job, docs/feff.md).
    probe = (
        "import sys; from mlxas.simulation.runner import read_chunk_items, read_plan; "
        "from mlxas.engines import engine_from_plan; "
        f"engine_from_plan(read_plan({str(folder.chunk_plan)!r})).prepare(); "
        f"assert len(read_chunk_items({str(folder.inputs_table)!r}, 1)) == 3; "
        "print(sorted(m for m in ('pandas', 'larch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
    plan = json.loads(folder.chunk_plan.read_text())
    assert plan["n_chunks"] == 3 and plan["engine_version"] == programs_of("feff8l").version
    assert plan["items_per_chunk"] == [3, 3, 1] and plan["refused_per_chunk"] == {}
    assert plan["engine"] == "feff8l" and plan["settings"]["cards"]["RPATH"] == 4.0


def test_chunk_file_round_trip_and_summary(tmp_path):
    folder = _source(tmp_path, 3, 3)
    table = pd.read_parquet(folder.inputs_table)
    table.loc[1, "text"] = table.loc[1, "text"].replace("EDGE K", "EDGE K\nFOO 1")
    table.to_parquet(folder.inputs_table)
    out, side_path = folder.chunk(0), folder.chunk_summary(0)
    results = run_chunk(folder, 0, timeout=60, threads=2)
    assert [r.ok for r in results] == [True, False, True]
    back = read_chunk(out)
    assert [r.item_id for r in back] == table["item_id"].tolist()
    assert back[1].reason == "unknown_card" and "k" not in back[1].arrays
    assert np.array_equal(back[2].arrays["chi"], results[2].arrays["chi"])
    assert back[0].scalars["e0"] == results[0].scalars["e0"]
    summary = chunk_summary(out, side_path)
    assert summary["n_items"] == 3 and summary["n_ok"] == 2
    assert summary["reasons"] == {"unknown_card": 1}
    assert summary["seconds"] == pytest.approx(sum(r.seconds for r in results))
    # The JSON beside the chunk holds the same summary; a stale one is not trusted.
    side = json.loads(side_path.read_text())
    assert side["chunk_bytes"] == out.stat().st_size and side["n_ok"] == 2
    side_path.write_text(json.dumps({**side, "n_ok": 3, "chunk_bytes": 1}))
    assert chunk_summary(out, side_path)["n_ok"] == 2


def test_feff_binaries_are_larchs():
    from larch.utils import bindir

    assert _larch_bindir() == Path(bindir)


def test_killed_chunk_job_resumes_without_loss(tmp_path):
    """kill -9 mid-chunk: no chunk file, valid markers; the rerun reuses finished sites."""
    folder = _source(tmp_path, 4, 4)
    out = folder.chunk(0)
    cmd = [
        *(str(Path(sys.executable).parent / "mlxas"), "simulate", "--spec", '{"timeout": 60}'),
        *("--folder", str(folder.path), "--chunk", "0", "--threads", "1", "--quiet"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(folder.runs_dir.glob(f"*/{DONE_MARKER}")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {
        p.parent.name: p.parent.joinpath("feff.log").stat().st_mtime_ns
        for p in folder.runs_dir.glob(f"*/{DONE_MARKER}")
    }
    assert not out.exists() and not list(folder.chunks_dir.glob("*.h5"))
    for site in finished:
        json.loads((folder.runs_dir / site / DONE_MARKER).read_text())  # complete JSON
    results = run_chunk(folder, 0, timeout=60, threads=2)
    ids = [r.item_id for r in read_chunk(out)]
    assert len(ids) == len(set(ids)) == 4 and all(r.ok for r in results)
    for site, mtime in finished.items():  # reused, not rerun
        assert (folder.runs_dir / site / "feff.log").stat().st_mtime_ns == mtime
