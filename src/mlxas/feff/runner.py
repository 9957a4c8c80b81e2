"""Run the FEFF jobs of one chunk: one directory per site, resumable, in parallel."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from mlxas.feff.checks import RunFailure, check_run
from mlxas.feff.chunk import SiteResult, write_chunk
from mlxas.feff.engines import EngineTimeout, get_engine

__all__ = ["run_chunk", "run_site"]

DONE_MARKER = ".mlxas-done.json"
# Scratch files FEFF writes that no later stage reads; large (phase.pad is ~100 kB per site).
_SCRATCH = ("*.pad", "*.bin", "log*.dat", "feff????.dat", "*.json")


def run_site(
    row: dict, rundir: Path, engine_name: str, timeout: float, keep_files: bool = False
) -> SiteResult:
    """Run (or reuse) one site.  A finished run with the same input hash is not rerun."""
    engine = get_engine(engine_name)
    base = SiteResult(
        site_id=row["site_id"],
        status="failed",
        input_hash=row["input_hash"],
        card_hash=row["card_hash"],
        engine=engine.name,
        engine_version=engine.version,
    )
    if row.get("reason"):
        base.reason, base.detail = row["reason"], row["detail"]
        return base
    marker = rundir / DONE_MARKER
    seconds = 0.0
    reuse = False
    if marker.is_file():
        try:
            info = json.loads(marker.read_text())
            reuse = info.get("input_hash") == row["input_hash"]
            seconds = float(info.get("seconds", 0.0))
        except (OSError, ValueError):
            reuse = False
    if not reuse:
        if rundir.exists():
            shutil.rmtree(rundir)
        rundir.mkdir(parents=True)
        (rundir / "feff.inp").write_text(row["feff_inp"])
        try:
            seconds = engine.run(rundir, timeout, rundir / "feff.log")
        except EngineTimeout as err:
            base.reason, base.detail = "timeout", str(err)
            base.seconds = timeout
            return base
    log_text = (
        (rundir / "feff.log").read_text(errors="replace") if (rundir / "feff.log").exists() else ""
    )
    try:
        out = check_run(rundir, log_text)
    except RunFailure as err:
        base.reason, base.detail, base.seconds = err.reason, err.detail, seconds
        marker.unlink(missing_ok=True)
        return base
    if not reuse:
        if not keep_files:
            for pattern in _SCRATCH:
                for p in rundir.glob(pattern):
                    p.unlink()
        marker.write_text(
            json.dumps(
                {
                    "input_hash": row["input_hash"],
                    "seconds": seconds,
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
        )
    base.status = "ok"
    base.seconds = seconds
    base.k, base.chi, base.energy, base.mu, base.mu0, base.e0 = (
        out.k,
        out.chi,
        out.energy,
        out.mu,
        out.mu0,
        out.e0,
    )
    return base


def run_chunk(
    inputs: str | Path,
    chunk: int,
    workdir: str | Path,
    out: str | Path,
    engine: str,
    timeout: float,
    threads: int = 1,
    keep_files: bool = False,
    progress: bool = True,
) -> list[SiteResult]:
    """Run every site of ``chunk`` from the input table and write the chunk file."""
    table = pd.read_parquet(inputs)
    rows = table[table["chunk"] == chunk].to_dict("records")
    workdir = Path(workdir)
    from tqdm import tqdm

    # Threads are enough: each FEFF run is a separate process, Python only waits.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [
            pool.submit(run_site, r, workdir / r["site_id"], engine, timeout, keep_files)
            for r in rows
        ]
        results = [
            f.result()
            for f in tqdm(futures, desc=f"FEFF chunk {chunk}", unit="site", disable=not progress)
        ]
    write_chunk(out, results)
    return results
