"""Accuracy of a class model on a user's labelled files (``mlxas predict --truth``).

A labelled folder of measured patterns (or XANES spectra) gives the same accuracy table
as the workflow's evaluation of the simulated test split: :func:`mlxas.metrics.
classification_metrics` over the predicted probabilities, per class target.

The truth file is a CSV with a ``file`` column (the file name, or its path relative to
the CSV) and one column per class target of the model, holding the class as the card
names it (``cubic``, ``225 Fm-3m``, ``octahedral``).  A space group may also be given by
its number alone (``225``).  An empty cell means "not known" for that target.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.predict.spec import Result

__all__ = ["TruthError", "accuracy", "format_accuracy", "read_truth"]


class TruthError(ValueError):
    """A truth file that cannot be used; the message names the file, row and reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def _class_index(names: Sequence[str], value: str) -> int | None:
    """Index of ``value`` among ``names``; a bare number matches '<number> <symbol>'."""
    if value in names:
        return list(names).index(value)
    hits = [i for i, n in enumerate(names) if n.split(" ", 1)[0] == value]
    return hits[0] if len(hits) == 1 else None


def read_truth(path: str | Path, classes: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """{file key: {target: class index}} of a truth CSV for a model with ``classes``.

    File keys are resolved paths (relative paths from the CSV's folder); an unknown class,
    a row without a file, a file listed twice or a file with no known target is a
    :class:`TruthError` naming the row."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise TruthError(path, f"cannot read ({err})") from None
    if not rows or "file" not in rows[0]:
        raise TruthError(path, "needs a header with a 'file' column")
    known = [t for t in classes if t in rows[0]]
    if not known:
        raise TruthError(
            path, f"no column for a class target of the model (targets: {', '.join(classes)})"
        )
    out: dict[str, dict[str, int]] = {}
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        name = (row.get("file") or "").strip()
        if not name:
            raise TruthError(path, f"line {n}: no file")
        key = str((path.parent / name).resolve())
        if key in out:
            raise TruthError(path, f"line {n}: {name} is listed twice")
        labels = {}
        for t in known:
            value = (row.get(t) or "").strip()
            if not value:
                continue
            idx = _class_index(classes[t], value)
            if idx is None:
                raise TruthError(path, f"line {n}: {t} '{value}' is not a class of the model")
            labels[t] = idx
        if not labels:
            raise TruthError(path, f"line {n}: {name} has no known class")
        out[key] = labels
    return out


def accuracy(
    results: Sequence[Result], truth: dict[str, dict[str, int]], classes: dict[str, list[str]]
) -> dict[str, Any]:
    """Per class target: :func:`mlxas.metrics.classification_metrics` over the predicted
    files that the truth labels, and the counts of labelled files refused or missing."""
    from mlxas.metrics import classification_metrics

    by_file = {str(Path(r.source).resolve()): r for r in results}
    report: dict[str, Any] = {"targets": {}}
    missing = sorted(k for k in truth if k not in by_file)
    refused = sorted(k for k in truth if k in by_file and by_file[k].status != "ok")
    report.update(
        labelled=len(truth), missing=missing, refused=refused,
        unlabelled=sorted(k for k in by_file if k not in truth),
    )  # fmt: skip
    for t, names in classes.items():
        rows = [(lab[t], by_file[k]) for k, lab in truth.items()
                if t in lab and k in by_file and by_file[k].status == "ok"]  # fmt: skip
        if not rows:
            continue
        codes = np.array([c for c, _ in rows])
        probs = np.array([[r.values[f"{t}_probabilities"][c] for c in names] for _, r in rows])
        report["targets"][t] = classification_metrics(codes, probs, names)
    return report


def format_accuracy(report: dict[str, Any]) -> str:
    """The accuracy table printed by ``mlxas predict --truth``."""
    lines = ["target            n  accuracy  top-5  balanced  macro F1"]
    for t, m in report["targets"].items():
        top5 = m.get("top5_accuracy")
        lines.append(
            f"{t:<15} {m['n']:>3}  {m['accuracy']:>8.3f}  "
            f"{'-' if top5 is None else f'{top5:.3f}':>5}  "
            f"{m['balanced_accuracy']:>8.3f}  {m['macro_f1']:>8.3f}"
        )
    extra = [f"{len(report[k])} {k}" for k in ("missing", "refused", "unlabelled") if report[k]]
    if extra:
        lines.append(f"labelled files: {report['labelled']} ({', '.join(extra)})")
    return "\n".join(lines)
