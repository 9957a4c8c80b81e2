"""Classify measured powder patterns with a trained model, and score a labelled folder.

:func:`predict_patterns` reads pattern files (``mlxas.xrd.measured``), puts them on the
model's grid (converting 2θ through d when the file's wavelength differs from the
training wavelength), and returns per file the top-k space groups, the crystal-system
probabilities, the structure type, the OOD score and flag (``mlxas.ood`` statistics of the
training inputs) and how the wavelength was decided.

:func:`evaluate_folder` scores a user's labelled folder: a CSV with a ``file`` column and
any of ``space_group`` (1..230), ``crystal_system`` (name) and ``structure_type`` (name)
gives the same accuracy / top-5 / macro-F1 table as the simulated test split.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.xrd.measured import SUFFIXES, MeasuredPatternError, on_model_grid, read_pattern

__all__ = ["evaluate_folder", "pattern_files", "predict_command", "predict_patterns"]


def pattern_files(paths: list[str | Path], exclude: str | Path | None = None) -> list[Path]:
    """Files named directly, and pattern files (known suffixes) inside folders, sorted;
    ``exclude`` (e.g. the labels CSV kept in the folder) is left out."""
    out: list[Path] = []
    skip = Path(exclude).resolve() if exclude else None
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.iterdir() if f.suffix.lower() in SUFFIXES and f.resolve() != skip
            )
        elif p.exists():
            out.append(p)
        else:
            raise MeasuredPatternError(p, "no such file or folder")
    return out


def _inputs(files: list[Path], card: dict, wavelength: float | None):
    from mlxas.xrd.engine import pattern_features
    from mlxas.xrd.settings import XRDFeatures, XRDSettings, settings_from_dict

    settings: XRDSettings = settings_from_dict(card["preprocessing"]["settings"])
    feats = settings_from_dict(card["preprocessing"]["features"], XRDFeatures)
    rows, notes = [], []
    for f in files:
        y, note = on_model_grid(read_pattern(f), settings, wavelength)
        rows.append(y)
        notes.append(note)
    return pattern_features(np.stack(rows), feats), notes


def predict_patterns(
    model_dir: str | Path, files: list[Path], wavelength: float | None = None, top: int = 5
) -> list[dict[str, Any]]:
    """One result per file (see the module docstring)."""
    from mlxas.ood import ood_scores
    from mlxas.xrd.evaluate import predict_proba
    from mlxas.xrd.train import load_classifier

    model, card = load_classifier(model_dir)
    x, notes = _inputs(files, card, wavelength)
    proba = predict_proba(model, x)
    scores, flags = ood_scores(x, card["ood"])
    heads = card["heads"]
    out = []
    for i, f in enumerate(files):
        sg = proba["space_group"][i]
        best = np.argsort(-sg)[:top]
        cs = proba["crystal_system"][i]
        st = proba["structure_type"][i]
        out.append(
            {
                "file": str(f),
                "space_groups": [{"space_group": int(c) + 1, "p": float(sg[c])} for c in best],
                "crystal_system": heads["crystal_system"][int(cs.argmax())],
                "crystal_system_p": {
                    n: float(p) for n, p in zip(heads["crystal_system"], cs, strict=True)
                },
                "structure_type": heads["structure_type"][int(st.argmax())],
                "structure_type_p": float(st.max()),
                "ood_score": float(scores[i]),
                "ood": bool(flags[i]),
                **notes[i],
            }
        )
    return out


def _read_labels(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "file" not in rows[0]:
        raise MeasuredPatternError(path, "labels CSV needs a header with a 'file' column")
    known = {"space_group", "crystal_system", "structure_type"}
    if not known & set(rows[0]):
        raise MeasuredPatternError(path, f"labels CSV has none of the columns {sorted(known)}")
    return {r["file"]: r for r in rows}


def evaluate_folder(
    model_dir: str | Path,
    files: list[Path],
    labels_csv: str | Path,
    wavelength: float | None = None,
) -> dict[str, Any]:
    """Accuracy table of labelled measured patterns (see the module docstring)."""
    from mlxas.xrd.evaluate import classification_metrics, predict_proba
    from mlxas.xrd.train import load_classifier

    labels_csv = Path(labels_csv)
    labels = _read_labels(labels_csv)
    by_name = {f.name: f for f in files}
    missing = [k for k in labels if k not in by_name]
    if missing:
        raise MeasuredPatternError(labels_csv, f"files listed but not found: {missing[:5]}")
    model, card = load_classifier(model_dir)
    chosen = [by_name[k] for k in labels]
    x, _ = _inputs(chosen, card, wavelength)
    proba = predict_proba(model, x)
    table: dict[str, Any] = {"n_files": len(chosen)}
    for head in ("crystal_system", "space_group", "structure_type"):
        rows = [(i, labels[f.name].get(head, "")) for i, f in enumerate(chosen)]
        rows = [(i, v.strip()) for i, v in rows if v and v.strip()]
        if not rows:
            continue
        names = card["heads"][head]
        if head == "space_group":
            y = np.array([int(v) - 1 for _, v in rows])
        else:
            unknown = sorted({v for _, v in rows if v not in names})
            if unknown:
                raise MeasuredPatternError(labels_csv, f"{head}: unknown class(es) {unknown}")
            y = np.array([names.index(v) for _, v in rows])
        idx = np.array([i for i, _ in rows])
        table[head] = classification_metrics(y, proba[head][idx])
    return table


def predict_command(args: argparse.Namespace) -> int:
    """``python -m mlxas.xrd predict``: print (and write) predictions or the accuracy table."""
    files = pattern_files(args.paths, exclude=args.labels)
    if not files:
        raise SystemExit("predict: no pattern files found")
    if args.labels:
        result: Any = evaluate_folder(args.model, files, args.labels, args.wavelength)
    else:
        result = predict_patterns(args.model, files, args.wavelength, args.top)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0
