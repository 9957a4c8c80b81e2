"""``mlxas status``: done, pending and failed FEFF sites per source, from the files on disk.

Reads, per source, the chunk plan (``chunks.json``: sites and refusals per chunk) and
the small summary JSON beside each chunk file, never the spectra, so it stays fast for
10⁵ sites in thousands of chunks; the input table is read only for the site ids of
chunks not written yet.  A site counts as

- done: ``ok`` in its chunk file;
- failed: failed in its chunk file, or refused when the inputs were written;
- pending: its chunk file does not exist yet.  With ``--resumable``, pending sites whose
  run directory already holds a done marker (a killed or running job) are counted as
  ``resumable``: the next run of their chunk reuses them.  This reads the input table
  and one marker per pending site, so it is off by default.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlxas.feff.layout import DONE_MARKER, chunk_name

__all__ = ["SourceStatus", "collect_status", "print_status"]


@dataclass
class SourceStatus:
    """Site counts of one source; ``reasons`` maps failure reason → number of sites."""

    source: str
    sites: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    resumable: int | None = None
    chunks: int = 0
    chunks_done: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _results_dir(target: str | Path) -> tuple[Path, list[str]]:
    """The results folder of ``target`` (a folder, or a config file) and its sources."""
    target = Path(target)
    if target.is_dir() or (not target.exists() and target.suffix not in (".yaml", ".yml")):
        return target, []
    from mlxas.config import load_config

    cfg = load_config(target)
    return Path("results") / cfg["experiment"], [s["name"] for s in cfg["structures"]]


def _plan(folder: Path) -> tuple[list[int], dict[str, dict[str, int]]]:
    """Sites per chunk and refusals per chunk, from chunks.json (or the input table)."""
    try:
        plan = json.loads((folder / "chunks.json").read_text())
        return plan["sites_per_chunk"], plan["refused_per_chunk"]
    except (OSError, ValueError, KeyError):
        pass
    import pyarrow.parquet as pq  # a plan written before it held these counts

    table = pq.read_table(folder / "inputs.parquet", columns=["chunk", "reason"]).to_pylist()
    sizes: Counter[int] = Counter(r["chunk"] for r in table)
    refused: dict[str, dict[str, int]] = {}
    for r in table:
        if r["reason"]:
            per = refused.setdefault(str(r["chunk"]), {})
            per[r["reason"]] = per.get(r["reason"], 0) + 1
    return [sizes[c] for c in range(max(sizes, default=-1) + 1)], refused


def _resumable(folder: Path, chunks: list[int]) -> int:
    """Sites of ``chunks`` whose run already finished (their done marker exists)."""
    import pyarrow.parquet as pq

    table = pq.read_table(
        folder / "inputs.parquet", columns=["site_id"], filters=[("chunk", "in", chunks)]
    )
    runs = folder / "runs"
    return sum(os.path.exists(runs / s / DONE_MARKER) for s in table.column("site_id").to_pylist())


def _source_status(folder: Path, resumable: bool = False) -> SourceStatus:
    from mlxas.feff.chunk import chunk_summary

    sizes, refused = _plan(folder)
    st = SourceStatus(source=folder.name, sites=sum(sizes), chunks=len(sizes))
    reasons: Counter[str] = Counter()
    # Chunk file name -> size (bytes), from one directory scan.
    existing = (
        {e.name: e.stat().st_size for e in os.scandir(folder / "chunks") if e.name.endswith(".h5")}
        if (folder / "chunks").is_dir()
        else {}
    )
    pending = []
    for i, n_sites in enumerate(sizes):
        name = chunk_name(i)
        if name in existing:
            summary = chunk_summary(folder / "chunks" / name, existing[name])
            st.chunks_done += 1
            st.done += summary["n_ok"]
            st.failed += summary["n_sites"] - summary["n_ok"]
            reasons.update(summary["reasons"])
        else:
            pending.append(i)
            refusals = refused.get(str(i), {})
            reasons.update(refusals)
            st.failed += sum(refusals.values())
            st.pending += n_sites - sum(refusals.values())
    if resumable:
        st.resumable = _resumable(folder, pending) if pending and (folder / "runs").is_dir() else 0
    st.reasons = dict(reasons.most_common())
    return st


def collect_status(results: Path, resumable: bool = False) -> list[SourceStatus]:
    """One :class:`SourceStatus` per source with an input table under ``results/feff``."""
    return [
        _source_status(inputs.parent, resumable)
        for inputs in sorted((Path(results) / "feff").glob("*/inputs.parquet"))
    ]


def print_status(target: str | Path, as_json: bool = False, resumable: bool = False) -> int:
    """Print the progress table (or JSON) of a config's experiment or a results folder."""
    results, sources = _results_dir(target)
    stats = collect_status(results, resumable) if results.is_dir() else []
    if as_json:
        print(json.dumps([asdict(s) for s in stats], indent=1))
        return 0
    if not results.is_dir():
        print(f"{results}: no results yet (nothing has run)")
        return 0
    known = {s.source for s in stats}
    built = sorted(p.name for p in (results / "structures").glob("*") if p.is_dir())
    for name in sources or built:
        if name not in known:
            state = "structures built" if name in built else "not started"
            print(f"{name}: {state}, FEFF inputs not written yet")
    if not stats:
        print(f"{results}: no FEFF inputs yet")
        return 0
    head = ["source", "sites", "done", "failed", "pending", "chunks"]
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
        f"of {tot['sites']} sites"
    )
    return 0
