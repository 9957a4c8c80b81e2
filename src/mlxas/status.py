"""``mlxas status``: done, pending and failed FEFF sites per source, from the files on disk."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

__all__ = ["collect_status", "print_status"]


def _results_dir(target: str | Path) -> Path:
    target = Path(target)
    if target.is_dir():
        return target
    from mlxas.config import load_config

    cfg = load_config(target)
    return Path("results") / cfg["experiment"]


def collect_status(results: Path) -> pd.DataFrame:
    """One row per source: sites planned, done, failed, pending, and failure reasons."""
    from mlxas.feff.chunk import read_chunk

    rows = []
    for inputs in sorted((results / "feff").glob("*/inputs.parquet")):
        source = inputs.parent.name
        table = pd.read_parquet(inputs, columns=["site_id", "chunk", "reason"])
        done, failed = set(), Counter()
        seen: set[str] = set()
        for chunk_file in sorted((inputs.parent / "chunks").glob("*.h5")):
            for r in read_chunk(chunk_file):
                seen.add(r.site_id)
                if r.ok:
                    done.add(r.site_id)
                else:
                    failed[r.reason] += 1
        planned = set(table["site_id"])
        rows.append(
            {
                "source": source,
                "sites": len(planned),
                "done": len(done & planned),
                "failed": sum(failed.values()),
                "pending": len(planned - seen),
                "chunks": int(table["chunk"].max()) + 1 if len(table) else 0,
                "reasons": ", ".join(f"{k} ×{v}" for k, v in failed.most_common()),
            }
        )
    return pd.DataFrame(
        rows, columns=["source", "sites", "done", "failed", "pending", "chunks", "reasons"]
    )


def print_status(target: str | Path) -> int:
    results = _results_dir(target)
    if not results.is_dir():
        print(f"{results}: no results yet (nothing has run)")
        return 0
    df = collect_status(results)
    known = set(df["source"])
    structures = sorted(p.name for p in (results / "structures").glob("*") if p.is_dir())
    for s in structures:
        if s not in known:
            print(f"{s}: structures built, FEFF inputs not written yet")
    if df.empty:
        print(f"{results}: no FEFF inputs yet")
        return 0
    print(df.drop(columns="reasons").to_string(index=False))
    for row in df.itertuples(index=False):
        if row.reasons:
            print(f"{row.source} failures: {row.reasons}")
    total = df[["sites", "done", "failed", "pending"]].sum()
    print(
        f"total: {total['done']} done, {total['pending']} pending, {total['failed']} failed "
        f"of {total['sites']} sites"
    )
    return 0
