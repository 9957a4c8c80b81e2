"""Build ``dataset.h5`` from chunk files, site tables, label tables and refusals.

Steps:

1. every chunk file becomes a cache entry (:mod:`mlxas.dataset.cache`) in parallel
   worker processes: the engine named in the chunk file checks and featurizes its
   successful items; entries from an earlier gather are reused;
2. the successful items are joined with their site rows and labels, split by group and
   ordered by split (:mod:`mlxas.dataset.plan`); failed items, refused inputs (input
   tables) and refused structures (carried in the site tables) go to the failures table;
3. the file is written under a temporary name (:mod:`mlxas.dataset.writer`), reopened
   and checked, then renamed over ``out``.  A kill at any point leaves the previous
   ``out`` untouched; the next gather removes the temporary files of killed ones.

With ``averaging.k`` > 1 the examples are means of k items; their model inputs are
computed from the mean signals (:meth:`~mlxas.engines.base.SignalEngine.featurize_signals`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlxas import __version__
from mlxas.dataset.cache import ChunkSummary, engine_targets, process_chunk
from mlxas.dataset.plan import gather_plan, plain_strings
from mlxas.dataset.schema import SCHEMA_VERSION, DatasetError
from mlxas.dataset.settings import DatasetSettings
from mlxas.dataset.writer import write_dataset
from mlxas.provenance import hash_json

__all__ = ["GatherReport", "gather"]


@dataclass
class GatherReport:
    """Outcome of :func:`gather`; ``n_computed`` items were featurized now, ``n_cached``
    came from the cache of an earlier gather."""

    path: Path
    dataset_hash: str
    n_sites: int
    n_examples: int
    n_failures: int
    n_computed: int
    n_cached: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.n_sites} items, {self.n_examples} examples, "
            f"{self.n_failures} failures; {self.n_computed} items featurized, "
            f"{self.n_cached} from cache; {self.seconds:.1f} s; hash {self.dataset_hash}"
        )


class _SerialPool:
    """Stand-in for a process pool when one worker is asked for."""

    def imap(self, func: Callable, tasks: Iterable, chunksize: int = 1) -> Iterator:
        return map(func, tasks)

    def __enter__(self) -> _SerialPool:
        return self

    def __exit__(self, *exc) -> None:
        return None


def _pool(workers: int):
    if workers <= 1:
        return _SerialPool()
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method).Pool(workers)


def _remove_stale_temps(out: Path) -> None:
    """Delete temporary files left by gathers that were killed (their process is gone)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
            if pid == os.getpid():
                raise ProcessLookupError
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's live process


def _read_tables(
    site_files: list[str], label_files: list[str]
) -> tuple[pd.DataFrame, dict, list[dict], list]:
    """Site tables joined with their labels (indexed by site id), the target labels'
    metadata, the refused structures carried in the site tables, and the label and
    site settings of every source (for the dataset hash)."""
    from mlxas.sites.labelsets import read_labels
    from mlxas.sites.table import read_sites

    if not site_files:
        raise DatasetError("gather: no site tables given")
    if len(label_files) != len(site_files):
        raise DatasetError(
            f"gather: {len(site_files)} site tables but {len(label_files)} label tables"
        )
    frames, targets, rejected, provenance = [], {}, [], []
    for spath, lpath in zip(site_files, label_files, strict=True):
        try:
            sites, sinfo = read_sites(spath)
            labels, lmeta = read_labels(lpath)
        except (OSError, ValueError) as err:
            raise DatasetError(f"{spath} / {lpath}: cannot read ({err})") from None
        if not sites["site_id"].astype(str).equals(labels["site_id"].astype(str)):
            raise DatasetError(f"{lpath}: its items are not those of {spath}")
        frames.append(pd.concat([sites, labels.drop(columns=["site_id"])], axis=1))
        for name, col in lmeta.get("columns", {}).items():
            if col.get("target"):
                targets[name] = {"unit": col.get("unit", ""), "grid": col.get("grid")}
                if col.get("classes") is not None:
                    targets[name]["classes"] = list(col["classes"])
        rejected += sinfo["rejected"]
        provenance.append({"sites": sinfo["settings"], "labels": lmeta.get("settings", {})})
    table = plain_strings(pd.concat(frames, ignore_index=True))
    dup = table["site_id"][table["site_id"].duplicated()]
    if len(dup):
        twice = table[table["site_id"] == dup.iloc[0]]
        where = " and ".join(f"{r.source} ({r.name})" for r in twice.itertuples())
        raise DatasetError(
            f"{site_files}: item {dup.iloc[0]} appears in two site tables: the same "
            f"structure (id {twice['structure_id'].iloc[0]}) comes from {where}; a source "
            "rejects a structure it draws twice (reason duplicate), two sources do not: "
            "make them one source, or change one source's seed or range"
        )
    return table.set_index("site_id", drop=False), targets, rejected, provenance


def _input_tables(inputs_files: list[str]) -> pd.DataFrame:
    cols = ["item_id", "structure_id", "reason", "detail"]
    frames = []
    for path in inputs_files:
        try:
            df = pd.read_parquet(path, columns=cols)
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot read input table ({err})") from None
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    return out.rename(columns={"item_id": "site_id"})


def _rejected_rows(rejected: list[dict]) -> list[dict]:
    rows = []
    for r in rejected:
        frame = f" frame {r['frame']}" if r.get("frame") else ""
        rows.append(
            {
                "site_id": "",
                "structure_id": "",
                "source": r.get("source") or "",
                "stage": "structures",
                "reason": r["reason"],
                "detail": f"{r['origin']}{frame}: {r['detail']}",
            }
        )
    return rows


def gather(
    chunk_files: Iterable[str | Path],
    site_files: Iterable[str | Path],
    label_files: Iterable[str | Path],
    out: str | Path,
    settings: DatasetSettings,
    inputs_files: Iterable[str | Path] = (),
    absorber: str | None = None,
    edge: str | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> GatherReport:
    """Build ``out`` from chunk files, site tables and their label tables.

    Failed items are never gathered; they, refused inputs (``inputs_files``: the input
    tables) and the refused structures carried in the site tables are listed in
    ``/failures``.  ``cache_dir`` (default ``<out stem>.cache`` beside ``out``) keeps
    per-chunk results for the next gather; ``workers`` processes featurize.
    """
    t0 = time.perf_counter()
    say = log or (lambda msg: None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out.with_name(f"{out.stem}.cache")
    _remove_stale_temps(out)
    k_avg = int(settings.averaging.k)
    chunks = sorted({str(c) for c in chunk_files})
    table, targets, rejected, provenance = _read_tables(
        [str(p) for p in site_files], [str(p) for p in label_files]
    )
    inputs = _input_tables([str(p) for p in inputs_files])
    features = dict(settings.features)
    tasks = [(c, str(cache_dir), features, k_avg == 1) for c in chunks]

    with _pool(workers) as pool:
        # The pool is forked before the output file is opened: children never hold it.
        summaries: list[ChunkSummary] = []
        for i, summary in enumerate(pool.imap(process_chunk, tasks, chunksize=1)):
            summaries.append(summary)
            if (i + 1) % 50 == 0 or i + 1 == len(tasks):
                say(f"chunks processed: {i + 1}/{len(tasks)}")
        engine = _engine_of(summaries) if summaries else None
        extra = engine_targets(summaries, engine, features, targets)
        plan = gather_plan(summaries, table, inputs, settings, targets, extra)
        plan.failures.extend(_rejected_rows(rejected))
        if plan.n_sites == 0:
            raise DatasetError(
                f"{out}: no successful simulation to gather "
                f"({len(plan.failures)} failures, {len(chunks)} chunk files)"
            )
        if k_avg > 1 and not engine.signal_names(features):
            raise DatasetError(f"averaging.k = {k_avg}: engine {engine.name} does not average")
        dataset_hash = _write_verified(
            out, plan, summaries, settings, engine, provenance, absorber, edge, pool, workers, say
        )
    used = {Path(s.cache).name for s in summaries}
    for entry in cache_dir.glob("*.h5"):
        if entry.name not in used:
            entry.unlink(missing_ok=True)
    n_computed = sum(s.n_ok for s in summaries if s.computed)
    return GatherReport(
        path=out,
        dataset_hash=dataset_hash,
        n_sites=plan.n_sites,
        n_examples=len(plan.members),
        n_failures=len(plan.failures),
        n_computed=n_computed,
        n_cached=sum(s.n_ok for s in summaries) - n_computed,
        seconds=time.perf_counter() - t0,
    )


def _write_verified(
    out: Path,
    plan,
    summaries: list[ChunkSummary],
    settings: DatasetSettings,
    engine,
    provenance: list,
    absorber: str | None,
    edge: str | None,
    pool,
    workers: int,
    say: Callable[[str], None],
) -> str:
    """Write the dataset under a temporary name, verify it, rename it over ``out``;
    returns its hash."""
    from mlxas.settings import to_dict

    settings_dict = to_dict(settings)
    dataset_hash = hash_json(
        {
            "inputs": sorted(plan.table["input_hash"]),
            "settings": settings_dict,
            "provenance": sorted(json.dumps(p, sort_keys=True) for p in provenance),
            "schema": SCHEMA_VERSION,
        }
    )
    attrs = {
        "schema_version": SCHEMA_VERSION,
        "mlxas_version": __version__,
        "dataset_hash": dataset_hash,
        "absorber": absorber or "",
        "edge": edge or "",
        "engine": engine.name,
        # the engine's settings, for a model that must rebuild its inputs (reflections)
        "engine_settings": json.dumps(engine.settings_dict(), sort_keys=True),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "settings": json.dumps(settings_dict, sort_keys=True),
        "labels": json.dumps(provenance[0]["labels"], sort_keys=True),
    }
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        write_dataset(tmp, plan, summaries, settings, engine, pool, workers, attrs, say)
        say("verifying")
        from mlxas.dataset.reader import Dataset

        Dataset(tmp).verify()
        _fsync(tmp)
        tmp.replace(out)
        _fsync(out.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dataset_hash


def _engine_of(summaries: list[ChunkSummary]):
    from mlxas.simulation.chunk import chunk_engine

    engines = {
        (e, v) for s in summaries for e, v in zip(s.sites["engine"], s.sites["engine_version"],
                                                   strict=True)
    }  # fmt: skip
    names = sorted({e for e, _ in engines if e})
    engine = chunk_engine(summaries[0].chunk)[0]
    if len(names) > 1 and not set(names) <= set(engine.item_engines()):
        raise DatasetError(f"gather: chunk files of several engines ({', '.join(names)})")
    return engine


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
