"""``mlxas status``: done, pending and failed items per source, from the files on disk.

Reads, per source, the chunk plan (items and refusals per chunk) and the small summary
JSON beside each chunk file, never the results, so it stays fast for 10⁵ items in
thousands of chunks; the input table is read only for the item ids of chunks not written
yet.  An item counts as

- done: ``ok`` in its chunk file;
- failed: failed in its chunk file, or refused when the inputs were written;
- pending: its chunk file does not exist yet.  With ``--resumable``, pending items whose
  run folder already holds a done marker (a killed or running job) are counted as
  ``resumable``: the next run of their chunk reuses them.  This reads the input table
  and one marker per pending item, so it is off by default.

Paths come from :class:`mlxas.workflow.layout.Layout`.
"""

from __future__ import annotations

import glob
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlxas.workflow.layout import DONE_MARKER, Layout, SimulationFolder, chunk_name

__all__ = ["SourceStatus", "collect_status", "print_status"]


@dataclass
class SourceStatus:
    """Item counts of one source; ``reasons`` maps failure reason → number of items."""

    source: str
    sites: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    resumable: int | None = None
    chunks: int = 0
    chunks_done: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _results_dir(target: str | Path | None) -> tuple[Layout, list[str]]:
    """The layout of ``target`` (a results folder, or a config file; None: the default
    experiment) and its sources.

    A folder that does not exist is refused rather than reported as "nothing has run":
    a mistyped path must not look like a fresh experiment.  An experiment that has not
    run yet is named by its config file, whose results folder may well not exist.
    """
    if target is not None:
        path = Path(target)
        if path.is_dir():
            return Layout(path), []
        if not path.exists() and path.suffix not in (".yaml", ".yml"):
            raise FileNotFoundError(
                f"{path}: no such results folder or config file (for an experiment that "
                "has not run yet, give its config file)"
            )
    from mlxas.workflow.checks import load_experiment

    exp = load_experiment([] if target is None else [target])
    return exp.layout, list(exp.sources)


def _plan(folder: SimulationFolder) -> tuple[list[int], dict[str, dict[str, int]]]:
    """Items per chunk and refusals per chunk, from the chunk plan."""
    plan = json.loads(folder.chunk_plan.read_text())
    return plan["items_per_chunk"], plan["refused_per_chunk"]


def _resumable(folder: SimulationFolder, chunks: list[int]) -> int:
    """Items of ``chunks`` whose run already finished (their done marker exists)."""
    import pyarrow.parquet as pq

    table = pq.read_table(
        folder.inputs_table, columns=["item_id"], filters=[("chunk", "in", chunks)]
    )
    runs = folder.runs_dir
    return sum(os.path.exists(runs / s / DONE_MARKER) for s in table.column("item_id").to_pylist())


def _source_status(folder: SimulationFolder, resumable: bool = False) -> SourceStatus:
    from mlxas.simulation.chunk import chunk_summary

    sizes, refused = _plan(folder)
    st = SourceStatus(source=folder.source, sites=sum(sizes), chunks=len(sizes))
    reasons: Counter[str] = Counter()
    # Chunk file name -> size (bytes), from one directory scan.
    existing = (
        {e.name: e.stat().st_size for e in os.scandir(folder.chunks_dir) if e.name.endswith(".h5")}
        if folder.chunks_dir.is_dir()
        else {}
    )
    pending = []
    for i, n_sites in enumerate(sizes):
        name = chunk_name(i)
        if name in existing:
            summary = chunk_summary(folder.chunk(i), folder.chunk_summary(i), existing[name])
            st.chunks_done += 1
            st.done += summary["n_ok"]
            st.failed += summary["n_items"] - summary["n_ok"]
            reasons.update(summary["reasons"])
        else:
            pending.append(i)
            refusals = refused.get(str(i), {})
            reasons.update(refusals)
            st.failed += sum(refusals.values())
            st.pending += n_sites - sum(refusals.values())
    if resumable:
        st.resumable = _resumable(folder, pending) if pending and folder.runs_dir.is_dir() else 0
    st.reasons = dict(reasons.most_common())
    return st


def collect_status(layout: Layout, resumable: bool = False) -> list[SourceStatus]:
    """One :class:`SourceStatus` per source whose chunk plan is written."""
    root = layout.simulation_root()
    folders = [SimulationFolder(p) for p in sorted(root.iterdir())] if root.is_dir() else []
    return [_source_status(f, resumable) for f in folders if f.chunk_plan.is_file()]


def print_status(
    target: str | Path | None = None, as_json: bool = False, resumable: bool = False
) -> int:
    """Print the progress table (or JSON) of a config's experiment or a results folder."""
    layout, sources = _results_dir(target)
    results = layout.root
    stats = collect_status(layout, resumable) if results.is_dir() else []
    if as_json:
        print(json.dumps([asdict(s) for s in stats], indent=1))
        return 0
    if not results.is_dir():
        print(f"{results}: no results yet (nothing has run)")
        return 0
    known = {s.source for s in stats}
    pattern = str(layout.structures_dir("*"))
    built = [Path(p).name for p in sorted(glob.glob(pattern))]
    built = [n for n in sources or built if layout.structures_frames(n).is_file()]
    for name in sources or built:
        if name not in known:
            state = "structures built" if name in built else "not started"
            print(f"{name}: {state}, simulation inputs not written yet")
    if not stats:
        print(f"{results}: no simulation inputs yet")
        return 0
    head = ["source", "items", "done", "failed", "pending", "chunks"]
    rows = [
        [s.source, s.sites, s.done, s.failed, s.pending, f"{s.chunks_done}/{s.chunks}"]
        for s in stats
    ]
    if resumable:
        head.insert(5, "resumable")
        for row, st in zip(rows, stats, strict=True):
            row.insert(5, st.resumable)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print(
            "  ".join(
                str(v).rjust(w) if i else str(v).ljust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    for s in stats:
        if s.reasons:
            print(f"{s.source} failures: " + ", ".join(f"{k} ×{v}" for k, v in s.reasons.items()))
    tot = {k: sum(getattr(s, k) for s in stats) for k in ("sites", "done", "failed", "pending")}
    print(
        f"total: {tot['done']} done, {tot['pending']} pending, {tot['failed']} failed "
        f"of {tot['sites']} items"
    )
    return 0
