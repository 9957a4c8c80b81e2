"""Run the FEFF jobs of one chunk: one directory per site, resumable, in parallel.

Layout under a source's FEFF folder (``results/<experiment>/feff/<source>/``)::

    runs/<site_id>/          feff.inp, feff.log, chi.dat, xmu.dat, .mlxas-done.json
    quarantine/<site_id>/    every file of a failed run, and mlxas-failure.json
    chunks/<nnnnn>.h5        the chunk file (written last, atomically)

A site is finished when its run directory holds ``.mlxas-done.json`` with the site's
input hash (written atomically after the outputs passed the checks), or when its
quarantine folder holds ``mlxas-failure.json`` with that hash and a reason that rerunning
cannot change.  A resumed chunk reuses finished sites and runs the others from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from mlxas.feff.checks import RunFailure, check_log, check_outputs
from mlxas.feff.chunk import SiteResult, write_chunk
from mlxas.feff.engines import Engine, EngineTimeout, get_engine
from mlxas.feff.layout import DONE_MARKER, FAILURE_FILE

__all__ = [
    "DONE_MARKER",
    "FAILURE_FILE",
    "RETRY_REASONS",
    "read_chunk_rows",
    "run_chunk",
    "run_site",
]

#: Failures that may pass on a second try (load, node trouble); others are deterministic.
RETRY_REASONS = frozenset({"timeout", "crashed"})
#: Files a finished run keeps; FEFF's scratch files (phase.pad ~100 kB, ...) are deleted.
_KEEP = frozenset({"feff.inp", "feff.log", "chi.dat", "xmu.dat", DONE_MARKER})


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write ``obj`` atomically: a killed job leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def _quarantine_root(rundir: Path) -> Path:
    return rundir.parent.parent / "quarantine"


def _move_to_quarantine(rundir: Path, qdir: Path, record: dict[str, Any]) -> None:
    _write_json(rundir / FAILURE_FILE, record)
    if qdir.exists():
        shutil.rmtree(qdir)
    qdir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(rundir, qdir)


def _remove_scratch(rundir: Path) -> None:
    for p in rundir.iterdir():
        if p.name not in _KEEP:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()


def run_site(
    row: dict[str, Any],
    rundir: Path,
    engine: str | Engine,
    timeout: float,
    keep_files: bool = False,
    quarantine: Path | None = None,
) -> SiteResult:
    """Run one site in ``rundir``, or reuse its finished run; never raises for FEFF trouble.

    ``row`` is one row of the input table (``site_id``, ``input_hash``, ``card_hash``,
    ``feff_inp``, ``reason``, ``detail``).  A failed run is moved to
    ``quarantine/<site_id>`` (default: ``quarantine`` beside the runs folder).
    """
    eng = get_engine(engine) if isinstance(engine, str) else engine
    rundir = Path(rundir)
    qdir = (Path(quarantine) if quarantine else _quarantine_root(rundir)) / row["site_id"]
    result = SiteResult(
        site_id=row["site_id"],
        status="failed",
        input_hash=row["input_hash"],
        card_hash=row["card_hash"],
        engine=eng.name,
        engine_version=eng.version,
    )
    if row.get("reason"):  # refused when the inputs were written: nothing to run
        result.reason, result.detail = row["reason"], row["detail"]
        return result
    kmax = eng.expected_kmax(row["feff_inp"])
    outputs = eng.outputs(row["feff_inp"])

    done = _read_json(rundir / DONE_MARKER)
    if done and done.get("input_hash") == row["input_hash"]:
        try:
            out = check_outputs(rundir, outputs, kmax)
        except RunFailure:
            pass  # damaged after it finished: run it again
        else:
            return _ok(result, out, float(done.get("seconds", 0.0)))
    failed = _read_json(qdir / FAILURE_FILE)
    if (
        failed
        and failed.get("input_hash") == row["input_hash"]
        and failed.get("reason") not in RETRY_REASONS
    ):
        result.reason, result.detail = failed["reason"], failed.get("detail", "")
        result.seconds = float(failed.get("seconds", 0.0))
        return result

    if rundir.exists():
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    (rundir / "feff.inp").write_text(row["feff_inp"])
    seconds = 0.0
    try:
        try:
            seconds = eng.run(rundir, timeout, rundir / "feff.log")
        finally:
            # FEFF10 rewrites feff.inp in its own layout; keep the text the hash is of.
            (rundir / "feff.inp").write_text(row["feff_inp"])
        check_log((rundir / "feff.log").read_text(errors="replace"))
        out = check_outputs(rundir, outputs, kmax)
    except EngineTimeout as err:
        reason, detail, seconds = "timeout", str(err), float(timeout)
    except RunFailure as err:
        reason, detail = err.reason, err.detail
    else:
        if not keep_files:
            _remove_scratch(rundir)
        _write_json(
            rundir / DONE_MARKER,
            {
                "site_id": row["site_id"],
                "input_hash": row["input_hash"],
                "engine_version": eng.version,
                "seconds": seconds,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        if qdir.exists():
            shutil.rmtree(qdir)  # an earlier failure (e.g. a timeout) is superseded
        return _ok(result, out, seconds)

    _move_to_quarantine(
        rundir,
        qdir,
        {
            "site_id": row["site_id"],
            "input_hash": row["input_hash"],
            "engine_version": eng.version,
            "reason": reason,
            "detail": detail,
            "seconds": seconds,
            "failed": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    result.reason, result.detail, result.seconds = reason, detail, seconds
    return result


def _ok(result: SiteResult, out: Any, seconds: float) -> SiteResult:
    result.status, result.seconds = "ok", seconds
    result.k, result.chi = out.k, out.chi
    result.energy, result.mu, result.mu0, result.e0 = out.energy, out.mu, out.mu0, out.e0
    return result


def read_chunk_rows(inputs: str | Path, chunk: int) -> list[dict[str, Any]]:
    """The input-table rows of one chunk; only the row groups that can hold it are read.

    The row groups are picked from their statistics by hand: ``read_table(filters=...)``
    would import pyarrow.dataset, which imports pandas (~1 s for every FEFF job).
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(inputs)
    col = pf.schema_arrow.get_field_index("chunk")
    groups = []
    for i in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max or stats.min <= chunk <= stats.max:
            groups.append(i)
    rows = pf.read_row_groups(groups).to_pylist() if groups else []
    return [r for r in rows if r["chunk"] == chunk]


def run_chunk(
    inputs: str | Path,
    chunk: int,
    workdir: str | Path,
    out: str | Path,
    engine: str | Engine,
    timeout: float,
    threads: int = 1,
    keep_files: bool = False,
    progress: bool = True,
    quarantine: str | Path | None = None,
) -> list[SiteResult]:
    """Run every site of ``chunk`` (``threads`` FEFF runs at a time); write the chunk file.

    Raises ``ValueError`` if the input table has no site in ``chunk``.
    """
    rows = read_chunk_rows(inputs, chunk)
    if not rows:
        raise ValueError(f"{inputs}: no site belongs to chunk {chunk}")
    eng = get_engine(engine) if isinstance(engine, str) else engine
    eng.prepare()
    workdir = Path(workdir)
    qroot = Path(quarantine) if quarantine else workdir.parent / "quarantine"
    results: dict[str, SiteResult] = {}
    n_failed = 0
    # Threads are enough: each FEFF run is a separate process, Python mostly waits.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [
            pool.submit(run_site, r, workdir / r["site_id"], eng, timeout, keep_files, qroot)
            for r in rows
        ]
        for n, fut in enumerate(as_completed(futures), start=1):
            res = fut.result()
            results[res.site_id] = res
            n_failed += not res.ok
            if progress and (n == len(rows) or n % max(1, len(rows) // 10) == 0):
                print(
                    f"chunk {chunk}: {n}/{len(rows)} sites, {n_failed} failed",
                    file=sys.stderr,
                    flush=True,
                )
    ordered = [results[r["site_id"]] for r in rows]
    write_chunk(out, ordered)
    return ordered
