"""Printing and writing predictions: a table on the terminal, CSV, JSON or JSON Lines."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from mlxas.predict.pipeline import Result

__all__ = ["FORMATS", "OutputFile", "columns", "format_table", "record"]

FORMATS = ("csv", "json", "jsonl")
_TAIL = (
    "ood",
    "ood_score",
    "distance_score",
    "error_score",
    "e0",
    "edge_step",
    "k_max",
    "mu_from",
    "background",
    "notes",
)


def columns(targets: Sequence[str], with_model: bool = False) -> list[str]:
    """CSV columns: source, status, reason (``model`` when models are picked per file),
    each target and its spread, then diagnostics."""
    cols = ["source", "status", "reason", *(["model"] if with_model else [])]
    for t in targets:
        cols += [t, f"{t}_std"]
    return cols + list(_TAIL)


def record(r: Result) -> dict[str, Any]:
    """A JSON-ready dict of one result (NaN becomes null)."""
    out: dict[str, Any] = {"source": r.source, "status": r.status, "reason": r.reason}
    out.update(r.values)
    out.update(
        e0=r.e0,
        edge_step=r.edge_step,
        k_max=r.k_max,
        mu_from=r.mu_from,
        background=r.background,
        notes=list(r.notes),
    )
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()
    }


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return "; ".join(str(x) for x in v) if all(isinstance(x, str) for x in v) else json.dumps(v)
    return v


class OutputFile:
    """Results written to ``path`` as they come: CSV and JSON Lines append, JSON is
    rewritten whole (atomically) after every batch."""

    def __init__(
        self,
        path: str | Path,
        fmt: str | None,
        targets: Sequence[str],
        meta: dict,
        with_model: bool = False,
    ):
        self.path = Path(path)
        self.fmt = fmt or guess_format(self.path)
        self.cols = columns(targets, with_model)
        self.meta = meta
        self._all: list[dict[str, Any]] = []
        self._fh: IO[str] | None = None
        self._writer: csv.DictWriter | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.fmt == "csv":
            self._fh = open(self.path, "w", newline="")  # noqa: SIM115 (kept open while watching)
            self._writer = csv.DictWriter(self._fh, fieldnames=self.cols, extrasaction="ignore")
            self._writer.writeheader()
            self._fh.flush()
        elif self.fmt == "jsonl":
            self._fh = open(self.path, "w")  # noqa: SIM115 (kept open while watching)

    def write(self, results: Sequence[Result]) -> None:
        recs = [record(r) for r in results]
        if self.fmt == "csv":
            for rec in recs:
                self._writer.writerow({k: _csv_value(rec.get(k)) for k in self.cols})
            self._fh.flush()
        elif self.fmt == "jsonl":
            for rec in recs:
                self._fh.write(json.dumps(rec) + "\n")
            self._fh.flush()
        else:
            self._all.extend(recs)
            tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"model": self.meta, "results": self._all}, indent=1) + "\n")
            tmp.replace(self.path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def guess_format(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    if ext in FORMATS:
        return ext
    if ext == "ndjson":
        return "jsonl"
    raise ValueError(f"{path}: cannot tell the output format from the extension; use --format")


def _pm(v: Any, s: Any, digits: int) -> str:
    if v is None or not isinstance(v, float):
        return "-"
    return f"{v:.{digits}f}" + (f" ± {s:.{digits}f}" if isinstance(s, float) else "")


def format_table(results: Sequence[Result], header: bool = True, width: int | None = None) -> str:
    """Aligned text table: file, CN, R, OOD flag and notes (or the reason for a refusal);
    the model of each file leads the notes when models are picked per file."""
    rows = []
    for r in results:
        v = r.values
        if r.status != "ok":
            rows.append((r.source, "refused", "", "", r.reason))
            continue
        ood = v.get("ood")
        flag = "-" if ood is None else (f"YES ({v['ood_score']:.1f})" if ood else "no")
        notes = ([f"model {v['model']}"] if v.get("model") else []) + list(r.notes)
        rows.append(
            (
                r.source,
                _pm(v.get("cn"), v.get("cn_std"), 2),
                _pm(v.get("r"), v.get("r_std"), 3),
                flag,
                "; ".join(notes),
            )
        )
    head = ("file", "CN", "R (Å)", "OOD", "notes")
    w = [max([len(head[i])] + [len(row[i]) for row in rows]) for i in range(4)]
    if width:
        w[0] = min(w[0], max(20, width - sum(w[1:]) - 12))
    lines = []
    fmt = f"{{:<{w[0]}}}  {{:>{w[1]}}}  {{:>{w[2]}}}  {{:<{w[3]}}}  {{}}"
    if header:
        lines.append(fmt.format(*head).rstrip())
    for row in rows:
        src = row[0] if len(row[0]) <= w[0] else "…" + row[0][-(w[0] - 1) :]
        if row[1] == "refused":
            lines.append(f"{src:<{w[0]}}  refused: {row[4]}")
        else:
            lines.append(fmt.format(src, *row[1:]).rstrip())
    return "\n".join(lines)
