"""``mlxas status``: done, pending and failed FEFF sites per source, from the files on disk.

Reads, per source, three columns of ``feff/<source>/inputs.parquet`` and the summary
attributes of each chunk file (never the spectra), so it stays fast for 10⁵ sites in
thousands of chunks.  A site counts as

- done: ``ok`` in its chunk file;
- failed: failed in its chunk file, or refused when the inputs were written;
- pending: its chunk file does not exist yet.  Pending sites whose run directory already
  holds a done marker (a killed or running job) are counted as ``resumable``: the next
  run of their chunk reuses them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["SourceStatus", "collect_status", "print_status"]


@dataclass
class SourceStatus:
    """Site counts of one source; ``reasons`` maps failure reason → number of sites."""

    source: str
    sites: int = 0
    done: int = 0
    failed: int = 0
    pending: int = 0
    resumable: int = 0
    chunks: int = 0
    chunks_done: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _results_dir(target: str | Path) -> tuple[Path, list[str]]:
    """The results folder of ``target`` (a folder, or a config file) and its sources."""
    target = Path(target)
    if target.is_dir():
        return target, []
    from mlxas.config import load_config

    cfg = load_config(target)
    return Path("results") / cfg["experiment"], [s["name"] for s in cfg["structures"]]


def _source_status(folder: Path) -> SourceStatus:
    import numpy as np
    import pyarrow.parquet as pq

    from mlxas.feff.chunk import chunk_summary
    from mlxas.feff.runner import DONE_MARKER

    table = pq.read_table(folder / "inputs.parquet", columns=["site_id", "chunk", "reason"])
    chunk = table.column("chunk").to_numpy()
    refused = np.array([bool(r) for r in table.column("reason").to_pylist()], dtype=bool)
    n_chunks = int(chunk.max()) + 1 if len(chunk) else 0
    st = SourceStatus(source=folder.name, sites=len(chunk), chunks=n_chunks)
    reasons: Counter[str] = Counter()
    existing = (
        {p.name for p in os.scandir(folder / "chunks")} if (folder / "chunks").is_dir() else set()
    )
    pending_chunks = []
    for i in range(n_chunks):
        name = f"{i:05d}.h5"
        if name in existing:
            summary = chunk_summary(folder / "chunks" / name)
            st.chunks_done += 1
            st.done += summary["n_ok"]
            st.failed += summary["n_sites"] - summary["n_ok"]
            reasons.update(summary["reasons"])
        else:
            pending_chunks.append(i)
    if pending_chunks:
        in_pending = np.isin(chunk, pending_chunks)
        refused_pending = in_pending & refused
        st.failed += int(refused_pending.sum())
        for reason in table.filter(refused_pending).column("reason").to_pylist():
            reasons[reason] += 1
        waiting = in_pending & ~refused
        st.pending = int(waiting.sum())
        runs = folder / "runs"
        st.resumable = sum(
            os.path.exists(runs / site / DONE_MARKER)
            for site in table.filter(waiting).column("site_id").to_pylist()
        )
    st.reasons = dict(reasons.most_common())
    return st


def collect_status(results: Path) -> list[SourceStatus]:
    """One :class:`SourceStatus` per source with an input table under ``results/feff``."""
    return [
        _source_status(inputs.parent)
        for inputs in sorted((Path(results) / "feff").glob("*/inputs.parquet"))
    ]


def print_status(target: str | Path, as_json: bool = False) -> int:
    """Print the progress table (or JSON) of a config's experiment or a results folder."""
    results, sources = _results_dir(target)
    stats = collect_status(results) if results.is_dir() else []
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
    head = ("source", "sites", "done", "failed", "pending", "resumable", "chunks")
    rows = [
        (s.source, s.sites, s.done, s.failed, s.pending, s.resumable, f"{s.chunks_done}/{s.chunks}")
        for s in stats
    ]
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
