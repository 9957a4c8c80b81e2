"""Build one structure source: its structures, the index and the refused inputs.

:func:`build_source` writes three files, named by the caller (the workflow's
:class:`~mlxas.workflow.layout.Layout`): all structures as extended XYZ, ``index`` (one
CSV row per structure) and ``rejected`` (one CSV row per refused file or structure).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from mlxas.provenance import structure_hash
from mlxas.structures.checks import Rejection, check_structure

__all__ = [
    "INDEX_COLUMNS",
    "PER_ATOM_ARRAYS",
    "REJECTED_COLUMNS",
    "build_source",
    "format_rejected",
    "read_index",
    "read_rejected",
    "read_structures",
]

INDEX_COLUMNS = [
    "structure_id",
    "source",
    "name",
    "frame",
    "n_atoms",
    "formula",
    "periodic",
    "origin",
]
REJECTED_COLUMNS = ["origin", "frame", "reason", "detail"]
#: Per-atom arrays a source may set and later stages read, kept in ``structures.extxyz``:
#: ``absorbing`` (multiplicity of an atom chosen as absorbing site, 0 otherwise; read by
#: ``sites.mode: marked``) and ``oxidation_state`` (read by the ``geometry`` label set).
PER_ATOM_ARRAYS = ("absorbing", "oxidation_state")


def build_source(
    source: Any,
    absorber: str | None,
    frames: str | Path,
    index: str | Path,
    rejected_csv: str | Path,
    work_dir: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate or read the structures of ``source`` (a typed source of
    :mod:`mlxas.structures.sources`) and write ``frames``, ``index`` and ``rejected_csv``.

    Every structure passes :func:`~mlxas.structures.checks.check_structure` and must
    differ from the ones before it; refused inputs go to ``rejected_csv`` with the file
    (or generator), frame, reason and detail.  ``work_dir`` keeps a generator's
    restartable state (MD checkpoints); None: ``work`` beside ``frames``.
    """
    import ase.io

    frames, index, rejected_csv = Path(frames), Path(index), Path(rejected_csv)
    for path in (frames, index, rejected_csv):
        path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir is not None else frames.parent / "work"
    identify = getattr(source, "structure_id", _geometry_id)
    rows, rejected, images = [], [], []
    seen: dict[str, str] = {}
    for name, frame, origin, item in source.generate(work):
        if isinstance(item, Rejection):
            rejected.append(item.row())
            continue
        problem = check_structure(item, absorber)
        sid = None
        if problem is None:
            sid = identify(item)
            if sid in seen:
                problem = ("duplicate", f"same structure as {seen[sid]} (structure id {sid})")
        if problem is not None:
            rejected.append(Rejection(origin, frame, *problem).row())
            continue
        seen[sid] = name
        atoms = _stored(item)
        atoms.info.update(
            structure_id=sid,
            source=source.name,
            name=name,
            frame=-1 if frame is None else int(frame),
            origin=origin,
        )
        images.append(atoms)
        rows.append(
            {
                "structure_id": sid,
                "source": source.name,
                "name": name,
                "frame": frame,
                "n_atoms": len(atoms),
                "formula": atoms.get_chemical_formula(),
                "periodic": bool(np.any(atoms.pbc)),
                "origin": origin,
            }
        )
    table = pd.DataFrame(rows, columns=INDEX_COLUMNS).astype({"frame": "Int64"})
    rej = pd.DataFrame(rejected, columns=REJECTED_COLUMNS).astype({"frame": "Int64"})
    tmp = frames.with_name(f".{frames.name}.tmp")
    ase.io.write(tmp, images, format="extxyz")
    tmp.replace(frames)
    table.to_csv(index, index=False)
    rej.to_csv(rejected_csv, index=False)
    return table, rej


def _geometry_id(atoms: Atoms) -> str:
    return structure_hash(
        atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, atoms.pbc
    )


def _stored(atoms: Atoms) -> Atoms:
    """A clean copy for ``structures.extxyz``: symbols, positions, cell, the scalar
    ``info`` entries (a generator's provenance: numbers, text, booleans) and the numeric
    per-atom arrays.  Other ``info`` values (a reader's space-group object, stress
    tensors, ...) are not structure provenance and stay out, as before; the stage's own
    keys are set by the caller, so a generator cannot set them."""
    out = Atoms(
        atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
    )
    for key, value in atoms.info.items():
        scalar = isinstance(value, str | bool | int | float | np.integer | np.floating)
        if key not in _STAGE_KEYS and scalar:
            out.info[key] = value.item() if isinstance(value, np.generic) else value
    for key, value in atoms.arrays.items():
        value = np.asarray(value)
        if key not in _ASE_ARRAYS and value.dtype.kind in "biuf":
            out.arrays[key] = value.copy()
    return out


def format_rejected(rejected: pd.DataFrame) -> str:
    """The rejected inputs as an aligned text table (empty string if there are none)."""
    if rejected.empty:
        return ""
    table = rejected.astype(object).where(rejected.notna(), "")
    cols = REJECTED_COLUMNS
    widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in cols[:-1]}
    lines = ["  ".join(c.ljust(widths.get(c, 0)) for c in cols).rstrip()]
    for row in table.itertuples(index=False):
        cells = [str(getattr(row, c)).ljust(widths[c]) for c in cols[:-1]]
        lines.append("  ".join([*cells, str(row.detail)]))
    return "\n".join(lines)


def read_index(path: str | Path) -> pd.DataFrame:
    """``index.csv`` of a source: one row per structure or frame."""
    return pd.read_csv(
        path,
        dtype={"structure_id": str, "source": str, "name": str, "frame": "Int64", "origin": str},
        keep_default_na=False,
        na_values={"frame": [""]},
    )


def read_rejected(path: str | Path) -> pd.DataFrame:
    """``rejected.csv`` of a source: one row per refused file, structure or frame."""
    return pd.read_csv(path, dtype={"origin": str, "frame": "Int64", "reason": str, "detail": str})


#: ASE's own per-atom arrays: geometry and dynamics, not provenance.
_ASE_ARRAYS = ("numbers", "positions", "momenta", "masses", "initial_magmoms",
               "initial_charges", "tags", "forces")  # fmt: skip
#: ``info`` keys the structures stage writes (a source's own entries of these are dropped).
_STAGE_KEYS = ("structure_id", "source", "name", "frame", "origin")
#: ``info`` keys holding text: ASE's extxyz reader would turn a hex structure id such as
#: ``9437347514e45165`` into a float (here inf) and ``0123...`` into an integer, and a
#: provenance text such as ``T`` into a boolean.
_TEXT_KEYS = (
    "structure_id",
    "source",
    "name",
    "origin",
    "parent",
    "parent_spacegroup",
    "shape",
    "defect",
    "thermal",
)
_TEXT_VALUE = {key: re.compile(rf'(?:^|\s){key}=(?:"([^"]*)"|(\S+))') for key in _TEXT_KEYS}


def _comment_line_info(line: str) -> dict:
    """ASE's parse of an extxyz comment line, with the id and name keys kept as written."""
    from ase.io.extxyz import key_val_str_to_dict

    info = key_val_str_to_dict(line)
    for key, pattern in _TEXT_VALUE.items():
        m = pattern.search(line)
        if m:
            info[key] = m.group(1) if m.group(1) is not None else m.group(2)
    return info


def read_structures(path: str | Path) -> list[Atoms]:
    """All structures of a source, in index order."""
    import ase.io

    if Path(path).stat().st_size == 0:
        return []
    return ase.io.read(str(path), index=":", format="extxyz", properties_parser=_comment_line_info)
