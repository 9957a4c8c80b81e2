"""Reliability under kills and bad input: counted cases, with 0 failures as the target.

Writes ``benchmarks/results/reliability.json`` as ``{"sections": {name: {...}}}``: each
section counts the cases it tried and its ``failures``; ``value`` is the sum of the
sections' failures.  Sections this script measures (``--sections`` picks some):

- ``kill``: FEFF jobs and the whole workflow killed (SIGKILL, SIGTERM) while FEFF runs,
  and the workflow killed during ``gather``.  Counted: FEFF processes left running one
  second after the kill, sites lost or duplicated in the resumed run's dataset, finished
  FEFF runs done again, and whether a killed gather's dataset is rebuilt (same hash) with
  no temporary file left.
- ``bad_input``: the malformed and oversized spectra of ``tests/_bad_spectra.py``, each
  read in a fresh interpreter.  Counted: refused with the file and a reason that matches
  the case; for the oversized ones the time of the read call (bound 1 s) and the
  process's peak memory (bound 200 MB); and, for scale, the cost of reading the largest
  accepted file in full.
- ``tampering`` and ``bad_config`` (``benchmarks/_reliability_contract.py``): tampered
  model folders refused before anything is deserialised, bad configs refused by
  ``mlxas config check`` and ``snakemake -n`` before any job.

Each section's ``summary`` counts what was ``tried``, ``refused`` (where refusing is the
right answer), ``lost`` and ``left_running``; ``totals`` sums them over the sections.
Other scripts may add their own sections with :func:`update_sections`; running some
sections keeps the others.

    .venv/bin/python benchmarks/bench_reliability.py [--sections kill,bad_input,...]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, ROOT, write_result
from _reliability_contract import bad_config_section, tampering_section

from mlxas.workflow.layout import Layout

sys.path.insert(0, str(ROOT / "tests"))

NAME = "reliability"
#: Bounds on refusing a file far larger than any spectrum (issue 16).
SECONDS_BOUND = 1.0
MEMORY_BOUND_MB = 200.0


def update_sections(sections: dict[str, dict], **extra) -> Path:
    """Write ``sections`` into reliability.json, keeping the sections other scripts wrote;
    ``value`` becomes the total of every section's ``failures``."""
    path = RESULTS / f"{NAME}.json"
    old = json.loads(path.read_text()).get("sections", {}) if path.is_file() else {}
    merged = {**old, **sections}
    total = sum(int(s.get("failures", 0)) for s in merged.values())
    totals: dict[str, int] = {}
    for section in merged.values():
        for key, n in section.get("summary", {}).items():
            totals[key] = totals.get(key, 0) + int(n)
    return write_result(
        NAME,
        total,
        "failures",
        totals={**totals, "failures": total},
        sections=merged,
        target="0 failures: nothing left running or lost after a kill, every bad file, "
        "tampered model folder and bad config refused with a reason (files within 1 s and "
        "200 MB, configs before any job)",
        **extra,
    )


# --- kills --------------------------------------------------------------------------------


def _settle_left(folder: Path) -> dict[int, str]:
    """Processes with their cwd under ``folder`` one second after a kill (then killed)."""
    from test_resume import _kill_leftovers

    return _kill_leftovers(folder)


def _kill_chunk_job(engine: str, sig: int, root: Path) -> dict:
    """Signal ``mlxas simulate`` while both its FEFF runs (SCF, minutes) are under way."""
    from test_feff_runner import kill_chunk_job

    seen, left = kill_chunk_job(engine, sig, root)
    return {
        "case": f"mlxas simulate ({engine}) killed with {signal.Signals(sig).name}",
        "feff_programs_running_at_kill": seen,
        "left_running": len(left),
    }


def _kill_workflow_during_scf(root: Path) -> dict:
    """SIGKILL the snakemake process group while two FEFF programs run SCF loops."""
    from test_resume import kill_workflow_during_feff

    seen, left = kill_workflow_during_feff(root)
    return {
        "case": "workflow process group killed with SIGKILL during SCF runs",
        "feff_programs_running_at_kill": seen,
        "left_running": len(left),
    }


def _env() -> dict:
    from conftest import VENV_BIN

    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _kill_and_resume(root: Path, seed: int) -> dict:
    """Kill the workflow mid-FEFF (some chunks written, one half done), resume, and count
    sites lost or duplicated in the dataset and finished FEFF runs done again."""
    import h5py

    from conftest import write_config
    from mlxas.workflow.layout import DONE_MARKER
    from test_resume import (
        RESUME_CONFIG,
        _chunk_files,
        _half_done_chunks,
        _n_sources,
        _snakemake_cmd,
        _with_sources,
    )

    config = copy.deepcopy(RESUME_CONFIG)
    config["dataset"]["split"]["seed"] = seed
    cfg = write_config(root, config)
    layout = Layout.for_experiment("resume")
    feff = root / layout.simulation_root()
    target = str(layout.dataset)
    proc = subprocess.Popen(
        _snakemake_cmd(root, cfg, target),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        start_new_session=True,
    )
    import pandas as pd

    table, killed = pd.DataFrame(), False
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if _n_sources(table) < len(config["structures"]):
                with contextlib.suppress(OSError, ValueError):
                    table = _with_sources(feff)
            elif _chunk_files(feff) and _half_done_chunks(feff, table):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = _settle_left(root)
    markers = {p: p.stat().st_mtime_ns for p in feff.glob(f"*/runs/*/{DONE_MARKER}")}

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [*_snakemake_cmd(root, cfg, target), *args]
        return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1200)

    run("--unlock")
    resumed = run()
    with h5py.File(root / layout.dataset, "r") as f:
        ids = list(f["sites/site_id"].asstr()[()])
    expected = set(table.loc[table["reason"] == "", "site_id"])
    rerun = sum(p.stat().st_mtime_ns != t for p, t in markers.items() if p.exists())
    return {
        "case": "workflow killed with SIGKILL mid-FEFF, then resumed",
        "caught_half_done": killed,
        "resume_exit_code": resumed.returncode,
        "left_running": len(left),
        "sites_expected": len(expected),
        "sites_lost": len(expected - set(ids)),
        "sites_duplicated": len(ids) - len(set(ids)),
        "finished_runs_before_kill": len(markers),
        "finished_runs_done_again": rerun,
    }


def _kill_gather(workdir: Path) -> dict:
    """Kill the workflow while ``gather`` runs (forced rerun); rerun; same dataset?"""
    import h5py

    from conftest import ROOT as REPO
    from conftest import VENV_BIN
    from test_workflow import _processes_with

    layout = Layout.for_experiment("resume")
    dataset = workdir / layout.dataset
    with h5py.File(dataset, "r") as f:
        old_hash = f.attrs["dataset_hash"]
    base = [
        str(VENV_BIN / "snakemake"),
        str(layout.dataset),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        "--cores",
        "2",
    ]
    proc = subprocess.Popen(
        [*base, "--forcerun", "gather"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        start_new_session=True,
    )
    marker = "gather --spec"  # the job's command line (paths are relative to workdir)
    deadline = time.monotonic() + 300
    try:
        while not _processes_with(marker, workdir) and proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in _processes_with(marker, workdir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    gone = not dataset.exists()
    subprocess.run([*base, "--unlock"], env=_env(), capture_output=True, timeout=300)
    start = time.monotonic()
    rerun = subprocess.run(base, env=_env(), capture_output=True, timeout=1200)
    seconds = time.monotonic() - start
    same = False
    if dataset.is_file():
        with h5py.File(dataset, "r") as f:
            same = f.attrs["dataset_hash"] == old_hash
    return {
        "case": "workflow killed with SIGKILL during gather, then rerun",
        "dataset_removed_by_snakemake": gone,
        "rerun_exit_code": rerun.returncode,
        "rebuilt_same_hash": same,
        "rebuild_seconds": round(seconds, 1),
        "temporary_files_left": len(list(dataset.parent.glob(f".{dataset.name}.tmp-*"))),
    }


def kill_section(root: Path) -> dict:
    cases = []
    for engine, sig in (
        ("feff8l", signal.SIGKILL),
        ("feff8l", signal.SIGTERM),
        ("feff10", signal.SIGKILL),
    ):
        cases.append(_kill_chunk_job(engine, sig, Path(tempfile.mkdtemp(dir=root))))
    cases.append(_kill_workflow_during_scf(Path(tempfile.mkdtemp(dir=root))))
    resumed = Path(tempfile.mkdtemp(dir=root))
    cases.append(_kill_and_resume(resumed, seed=1))
    cases.append(_kill_gather(resumed))
    left = sum(c.get("left_running", 0) for c in cases)
    lost = sum(c.get("sites_lost", 0) + c.get("sites_duplicated", 0) for c in cases)
    redone = sum(c.get("finished_runs_done_again", 0) for c in cases)
    gather_bad = sum(
        (not c["rebuilt_same_hash"]) + c["temporary_files_left"]
        for c in cases
        if "rebuilt_same_hash" in c
    )
    # A kill that came before the FEFF programs ran proves nothing: it counts as a failure.
    not_caught = sum(
        not c.get("caught_half_done", True) or c.get("feff_programs_running_at_kill", 2) < 2
        for c in cases
    )
    for c in cases:
        print(json.dumps(c), flush=True)
    return {
        "summary": {"tried": len(cases), "lost": lost, "left_running": left},
        "kills_tried": len(cases),
        "feff_processes_left": left,
        "results_lost": lost,
        "finished_runs_done_again": redone,
        "killed_gather_not_rebuilt_or_temp_left": gather_bad,
        "kills_not_at_the_intended_moment": not_caught,
        "failures": left + lost + redone + gather_bad + not_caught,
        "cases": cases,
    }


# --- bad input ------------------------------------------------------------------------------


def bad_input_section(root: Path) -> dict:
    import re

    from _bad_spectra import MALFORMED, OVERSIZED, read_in_child
    from mlxas.spectra.measured import MAX_POINTS

    cases = []
    for kind, corpus in (("malformed", MALFORMED), ("oversized", OVERSIZED)):
        for case, (name, make, pattern) in sorted(corpus.items()):
            path = make(root / name)
            out = read_in_child(path)
            ok = (
                out["refused"]
                and out["reason"].startswith(f"{path}: ")
                and re.search(pattern, out["reason"]) is not None
            )
            within = kind == "malformed" or (
                out["seconds"] < SECONDS_BOUND and out["peak_rss_mb"] < MEMORY_BOUND_MB
            )
            cases.append(
                {
                    "case": case,
                    "kind": kind,
                    "refused_with_reason": bool(ok),
                    "within_bounds": bool(within),
                    "reason": out["reason"],
                    "seconds": round(out["seconds"], 4),
                    "peak_rss_mb": round(out["peak_rss_mb"], 1),
                }
            )
            path.unlink(missing_ok=True)
    oversized = [c for c in cases if c["kind"] == "oversized"]
    worst_s = max(oversized, key=lambda c: c["seconds"])
    worst_m = max(oversized, key=lambda c: c["peak_rss_mb"])
    largest = _largest_accepted(root / "largest_accepted.xdi", MAX_POINTS)
    refused = sum(c["refused_with_reason"] for c in cases)
    outside = sum(not c["within_bounds"] for c in cases)
    for c in cases:
        print(json.dumps(c), flush=True)
    return {
        "summary": {"tried": len(cases), "refused": refused},
        "files_tried": len(cases),
        "refused_with_reason": refused,
        "oversized_outside_bounds": outside,
        "bounds": {"seconds": SECONDS_BOUND, "peak_rss_mb": MEMORY_BOUND_MB},
        "worst_oversized_seconds": {"case": worst_s["case"], "seconds": worst_s["seconds"]},
        "worst_oversized_memory": {"case": worst_m["case"], "peak_rss_mb": worst_m["peak_rss_mb"]},
        "largest_accepted_file": largest,
        "failures": (len(cases) - refused) + outside,
        "cases": cases,
    }


def _largest_accepted(path: Path, points: int) -> dict:
    """Cost of reading, in full, a file at the row limit (a long quick-EXAFS scan); larch
    is imported before the timer starts."""
    from _bad_spectra import CU, read_in_child

    lines = CU.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    rows = [ln.split() for ln in lines if ln.strip() and not ln.startswith("#")]
    e0, step = float(rows[0][0]), 1500.0 / points
    body = ["  ".join([f"{e0 + i * step:.5f}", *rows[i % len(rows)][1:]]) for i in range(points)]
    path.write_text("\n".join(header + body) + "\n")
    out = read_in_child(path, preload_larch=True)
    size = path.stat().st_size
    path.unlink()
    return {
        "points": points,
        "bytes": size,
        "refused": out["refused"],
        "seconds": round(out["seconds"], 2),
        "peak_rss_mb": round(out["peak_rss_mb"], 1),
        "rss_after_importing_larch_mb": round(out["rss_before_mb"], 1),
    }


SECTIONS = {
    "kill": kill_section,
    "bad_input": bad_input_section,
    "tampering": tampering_section,
    "bad_config": bad_config_section,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated sections")
    p.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: temp)")
    a = p.parse_args()
    names = [s for s in a.sections.split(",") if s]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections: {', '.join(sorted(unknown))} (have {', '.join(SECTIONS)})")
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        sections = {}
        for name in names:
            start = time.monotonic()
            folder = Path(tmp) / name
            folder.mkdir()
            sections[name] = SECTIONS[name](folder)
            sections[name]["seconds"] = round(time.monotonic() - start, 1)
    update_sections(sections)


if __name__ == "__main__":
    main()
