"""Run the items of one chunk with any engine: one folder per item, resumable, in parallel.

Layout of a source's folder (:class:`~mlxas.workflow.layout.SimulationFolder`)::

    runs/<item_id>/          the engine's files, the result and the done marker
    quarantine/<item_id>/    every file of a failed run, and the failure record
    chunks/<nnnnn>.h5        the chunk file (written last, atomically)

An item is finished when its run folder holds the done marker with the item's input hash
(written atomically after the result), or when its quarantine folder holds a failure
record with that hash and a reason that rerunning cannot change.  A resumed chunk reuses
finished items and runs the others from scratch.  Engines never raise for trouble with
one item (:meth:`~mlxas.engines.base.SignalEngine.run` returns ``status="failed"``);
an exception from an engine is recorded as ``crashed``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.engines.base import ItemInput, ItemResult, SignalEngine
from mlxas.simulation.chunk import write_chunk
from mlxas.simulation.inputs import read_chunk_items, read_plan
from mlxas.workflow.layout import DONE_MARKER, FAILURE_FILE, RESULT_FILE, SimulationFolder

__all__ = ["RETRY_REASONS", "run_chunk", "run_item"]

#: Failures that may pass on a second try (load, node trouble); others are deterministic.
RETRY_REASONS = frozenset({"timeout", "crashed"})


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


def _save_result(rundir: Path, result: ItemResult) -> None:
    tmp = rundir / f".result.tmp-{os.getpid()}.npz"
    arrays = {f"a_{k}": np.asarray(v) for k, v in result.arrays.items()}
    scalars = {f"s_{k}": np.float64(v) for k, v in result.scalars.items()}
    np.savez(tmp, **arrays, **scalars)
    tmp.replace(rundir / RESULT_FILE)


def _load_result(item: ItemInput, rundir: Path, done: dict[str, Any]) -> ItemResult | None:
    try:
        with np.load(rundir / RESULT_FILE) as npz:
            arrays = {k[2:]: npz[k] for k in npz.files if k.startswith("a_")}
            scalars = {k[2:]: float(npz[k]) for k in npz.files if k.startswith("s_")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # damaged after it finished: run it again
    return ItemResult(
        item.item_id, "ok", item.input_hash, done.get("engine", ""),
        done.get("engine_version", ""), detail=str(done.get("detail", "")),
        seconds=float(done.get("seconds", 0.0)),
        scalars=scalars, arrays=arrays,
    )  # fmt: skip


def run_item(
    item: ItemInput,
    engine: SignalEngine,
    folder: SimulationFolder,
    timeout: float,
) -> ItemResult:
    """Run one item in ``folder.runs_dir/<item_id>``, or reuse its finished run.

    A failed run is moved to ``folder.quarantine_dir/<item_id>`` with its record.
    """
    rundir = folder.runs_dir / item.item_id
    qdir = folder.quarantine_dir / item.item_id
    failed = ItemResult(item.item_id, "failed", item.input_hash, engine.name, engine.version)
    if item.reason:  # refused when the inputs were written: nothing to run
        failed.reason, failed.detail = item.reason, item.detail
        return failed
    done = _read_json(rundir / DONE_MARKER)
    if done and done.get("input_hash") == item.input_hash:
        reused = _load_result(item, rundir, done)
        if reused is not None:
            return reused
    record = _read_json(qdir / FAILURE_FILE)
    known = record and record.get("input_hash") == item.input_hash
    if known and record.get("reason") not in RETRY_REASONS:
        failed.reason, failed.detail = record["reason"], record.get("detail", "")
        failed.seconds = float(record.get("seconds", 0.0))
        return failed

    if rundir.exists():
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    try:
        result = engine.run(item, rundir, timeout)
    except Exception as err:  # an engine bug must not take the whole chunk down
        result = failed
        result.reason = "crashed"
        result.detail = f"{type(err).__name__}: {err}"
        (rundir / "mlxas-traceback.txt").write_text(traceback.format_exc())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    if result.ok:
        _save_result(rundir, result)
        _write_json(
            rundir / DONE_MARKER,
            {
                "item_id": item.item_id,
                "input_hash": item.input_hash,
                # The result's own: an engine may hand an item to another code (the
                # surrogate routes unsure sites to FEFF); a resumed item keeps its mark.
                "engine": result.engine,
                "engine_version": result.engine_version,
                "detail": result.detail,
                "seconds": result.seconds,
                "finished": stamp,
            },
        )
        if qdir.exists():
            shutil.rmtree(qdir)  # an earlier failure (e.g. a timeout) is superseded
        return result
    record = {
        "item_id": item.item_id,
        "input_hash": item.input_hash,
        "engine_version": engine.version,
        "reason": result.reason,
        "detail": result.detail,
        "seconds": result.seconds,
        "failed": stamp,
    }
    _write_json(rundir / FAILURE_FILE, record)
    if qdir.exists():
        shutil.rmtree(qdir)
    qdir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(rundir, qdir)
    return result


def run_chunk(
    folder: SimulationFolder,
    chunk: int,
    timeout: float,
    threads: int = 1,
    engine: SignalEngine | None = None,
    progress: bool = True,
) -> list[ItemResult]:
    """Run every item of ``chunk`` (``threads`` at a time) and write the chunk file.

    ``engine`` defaults to the one of the chunk plan.  Raises ``ValueError`` if the input
    table has no item in ``chunk``.
    """
    from mlxas.engines.base import engine_from_plan

    items = read_chunk_items(folder.inputs_table, chunk)
    if not items:
        raise ValueError(f"{folder.inputs_table}: no item belongs to chunk {chunk}")
    plan = read_plan(folder.chunk_plan)
    engine = engine or engine_from_plan(plan)
    engine.prepare()
    results: dict[str, ItemResult] = {}
    n_failed = 0
    # Threads are enough: FEFF runs are separate processes, Python mostly waits.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(run_item, it, engine, folder, timeout) for it in items]
        for n, fut in enumerate(as_completed(futures), start=1):
            res = fut.result()
            results[res.item_id] = res
            n_failed += not res.ok
            if progress and (n == len(items) or n % max(1, len(items) // 10) == 0):
                print(
                    f"chunk {chunk}: {n}/{len(items)} items, {n_failed} failed",
                    file=sys.stderr,
                    flush=True,
                )
    ordered = [results[it.item_id] for it in items]
    write_chunk(
        folder.chunk(chunk),
        ordered,
        folder.chunk_summary(chunk),
        engine.name,
        engine.settings_dict(),
        plan.get("settings_hash", ""),
    )
    return ordered
