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
from mlxas.predict.predictor import TOP_K, TOP_K_FROM

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


def columns(
    targets: Sequence[str],
    with_model: bool = False,
    classes: dict[str, Sequence[str]] | None = None,
) -> list[str]:
    """CSV columns: source, status, reason (``model`` when models are picked per file),
    each target and its spread (a class target: the most probable class, then one
    ``target[class]`` column per class with its probability, and ``target_top5`` for a
    target of many classes), then diagnostics."""
    cols = ["source", "status", "reason", *(["model"] if with_model else [])]
    for t in targets:
        cols += [t, f"{t}_std"]
        names = (classes or {}).get(t, ())
        cols += [f"{t}[{c}]" for c in names]
        if len(names) > TOP_K_FROM:
            cols.append(f"{t}_top{TOP_K}")
    return cols + list(_TAIL)


def _flat(rec: dict[str, Any]) -> dict[str, Any]:
    """A record for one CSV row: class probabilities ``{t}_probabilities`` spread over
    ``t[class]`` columns."""
    out = dict(rec)
    for key, v in rec.items():
        if key.endswith("_probabilities") and isinstance(v, dict):
            t = key[: -len("_probabilities")]
            out.update({f"{t}[{c}]": p for c, p in v.items()})
    return out


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
        classes: dict[str, Sequence[str]] | None = None,
    ):
        self.path = Path(path)
        self.fmt = fmt or guess_format(self.path)
        self.cols = columns(targets, with_model, classes)
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
            for rec in map(_flat, recs):
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


def _class_cell(v: dict[str, Any], t: str) -> str:
    """'octahedral 0.62': a class target's most probable class and its probability."""
    probs = v.get(f"{t}_probabilities")
    if not isinstance(probs, dict) or v.get(t) not in probs:
        return "-"
    return f"{v[t]} {probs[v[t]]:.2f}"


def _table_columns(results: Sequence[Result]) -> list[tuple[str, Any]]:
    """(heading, cell of a result's values) of the value columns: class targets (class
    and probability; the five most probable classes of a target with many), CN and R
    (unless no result has them: a model on powder patterns), the shells when a model
    predicts one per neighbour shell, the oxidation state when a model predicts one, OOD."""
    ok = [r.values for r in results if r.status == "ok"]
    classes = [k[: -len("_probabilities")] for v in ok for k in v if k.endswith("_probabilities")]
    cols: list[tuple[str, Any]] = [
        (f"{t} (p)", lambda v, t=t: _class_cell(v, t)) for t in dict.fromkeys(classes)
    ]
    tops = [k for v in ok for k in v if k.endswith("_top5") and isinstance(v[k], list)]
    cols += [(f"{k[:-5]} top-5", lambda v, k=k: _top_cell(v.get(k))) for k in dict.fromkeys(tops)]
    if not ok or any(t in v for v in ok for t in ("cn", "r")):
        cols += [
            ("CN", lambda v: _pm(v.get("cn"), v.get("cn_std"), 2)),
            ("R (Å)", lambda v: _pm(v.get("r"), v.get("r_std"), 3)),
        ]
    if any(_shells(v) for v in ok):
        cols.append(("shells: CN El R (Å)", _shell_cell))
    if any("oxidation_state" in v for v in ok):
        ox = ("oxidation_state", "oxidation_state_std")
        cols.append(("ox. state", lambda v: _pm(v.get(ox[0]), v.get(ox[1]), 1)))
    cols.append(("OOD", _ood_cell))
    return cols


def _top_cell(top: Any) -> str:
    """'14 P2_1/c .41, 15 C2/c .20, …': the most probable classes with their probability."""
    if not isinstance(top, list):
        return "-"
    return ", ".join(f"{name} {p:.2f}".replace(" 0.", " .") for name, p in top)


def _shells(v: dict[str, Any]) -> list[tuple[int, str]]:
    """(shell number, neighbour element) of the per-shell targets ``cn_s<i>_<El>`` and
    ``r_s<i>_<El>`` a model predicts, nearest shell first."""
    import re

    found = {(int(m[1]), m[2]) for k in v if (m := re.fullmatch(r"cn_s(\d+)_([A-Z][a-z]?)", k))}
    return sorted(s for s in found if f"r_s{s[0]}_{s[1]}" in v)


def _shell_cell(v: dict[str, Any]) -> str:
    """'5.33 O 2.094; 8.28 Ni 2.962': CN, neighbour and R of each shell."""
    cells = [
        f"{v[f'cn_s{i}_{el}']:.2f} {el} {v[f'r_s{i}_{el}']:.3f}"
        for i, el in _shells(v)
        if isinstance(v[f"cn_s{i}_{el}"], float) and isinstance(v[f"r_s{i}_{el}"], float)
    ]
    return "; ".join(cells) or "-"


def _ood_cell(v: dict[str, Any]) -> str:
    ood = v.get("ood")
    return "-" if ood is None else (f"YES ({v['ood_score']:.1f})" if ood else "no")


def format_table(results: Sequence[Result], header: bool = True, width: int | None = None) -> str:
    """Aligned text table: file, the class and its probability for class targets, CN, R,
    the oxidation state (when predicted), OOD flag and notes (or the reason for a
    refusal); the model of each file leads the notes when models are picked per file."""
    cols = _table_columns(results)
    rows = []
    for r in results:
        v = r.values
        if r.status != "ok":
            rows.append((r.source, "refused", r.reason))
            continue
        notes = list(r.notes)
        lead = f"model {v['model']}" if v.get("model") else ""
        # A note that already names the model ("model X chosen from E0 ...") stands alone.
        if lead and not any(n.startswith(f"{lead} ") for n in notes):
            notes.insert(0, lead)
        rows.append((r.source, *(cell(v) for _, cell in cols), "; ".join(notes)))
    head = ("file", *(h for h, _ in cols), "notes")
    ok_rows = [row for row in rows if row[1] != "refused"]
    n = len(head) - 1  # aligned columns: all but the notes
    w = [max([len(head[i])] + [len(row[i]) for row in ok_rows]) for i in range(n)]
    w[0] = max([w[0]] + [len(row[0]) for row in rows])
    if width:
        w[0] = min(w[0], max(20, width - sum(w[1:]) - 3 * n))
    lines = []
    # first column and text columns left-aligned, numbers right-aligned
    left = {0, n - 1} | {i + 1 for i, (h, _) in enumerate(cols) if h.endswith("(p)")}
    fmt = "  ".join(f"{{:{'<' if i in left else '>'}{w[i]}}}" for i in range(n)) + "  {}"
    if header:
        lines.append(fmt.format(*head).rstrip())
    for row in rows:
        src = row[0] if len(row[0]) <= w[0] else "…" + row[0][-(w[0] - 1) :]
        if row[1] == "refused":
            lines.append(f"{src:<{w[0]}}  refused: {row[2]}")
        else:
            lines.append(fmt.format(src, *row[1:]).rstrip())
    return "\n".join(lines)
