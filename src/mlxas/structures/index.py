"""Build one structure source into its folder: structures.extxyz, index.csv, rejected.csv."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from mlxas.provenance import structure_hash
from mlxas.structures.checks import FeffLimits, Rejection, check_structure
from mlxas.structures.readers import StructureReadError, read_frames

__all__ = [
    "INDEX_COLUMNS",
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


def _generate(
    spec: dict, work_dir: Path | None = None
) -> Iterator[tuple[str, int | None, str, Atoms | Rejection]]:
    """Yield ``(name, frame, origin, atoms-or-rejection)`` for one source spec.

    ``work_dir`` keeps a generator's restartable state (the MD checkpoints).
    """
    kind = spec["kind"]
    if kind == "nanoparticles":
        from mlxas.structures.nanoparticles import nanoparticles

        for name, item in nanoparticles(spec):
            yield name, None, f"nanoparticles:{name}", item
    elif kind == "md":
        from mlxas.structures.md import md_frames

        for frame, atoms in md_frames(spec, work_dir=work_dir):
            yield (
                f"{spec['name']}_{frame:06d}",
                frame,
                f"md:{spec['element']}{spec['n_atoms']}",
                atoms,
            )
    elif kind == "files":
        paths = _expand(spec["paths"])
        if not paths:
            yield (
                "",
                None,
                ",".join(spec["paths"]),
                Rejection(
                    ",".join(spec["paths"]), None, "unreadable", "no file matches these paths"
                ),
            )
        for path in paths:
            try:
                contents = read_frames(
                    path, spec.get("format"), spec.get("frames"), spec.get("species")
                )
            except StructureReadError as err:
                yield "", None, str(path), Rejection(str(path), None, err.reason, err.detail)
                continue
            for k, atoms in contents.items:
                name = Path(path).stem + (f"_{k:06d}" if contents.total > 1 else "")
                # Trajectory frames keep their index; independent structures have none.
                frame = k if contents.trajectory else None
                yield (
                    name,
                    frame,
                    str(path) + (f"@{k}" if frame is None and contents.total > 1 else ""),
                    atoms,
                )
    else:
        raise ValueError(f"unknown structure source kind {kind!r}")


def _expand(patterns: list[str]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        out.extend(matches if matches else [pattern])  # a missing file is rejected, not dropped
    return out


def build_source(
    spec: dict,
    absorber: str,
    out_dir: str | Path,
    limits: FeffLimits | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate or read the structures of one source and write them to ``out_dir``.

    Every structure passes :func:`~mlxas.structures.checks.check_structure` (with the FEFF
    engine's ``limits``) and must differ from the ones before it; refused inputs go to
    ``rejected.csv`` with the file (or generator), frame, reason and detail.
    """
    import ase.io

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, rejected, images = [], [], []
    seen: dict[str, str] = {}
    for name, frame, origin, item in _generate(spec, out_dir / "md"):
        if isinstance(item, Rejection):
            rejected.append(item.row())
            continue
        atoms = item
        problem = check_structure(atoms, absorber, limits)
        sid = None
        if problem is None:
            sid = structure_hash(
                atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, atoms.pbc
            )
            if sid in seen:
                problem = ("duplicate", f"same structure as {seen[sid]} (structure id {sid})")
        if problem is not None:
            rejected.append(Rejection(origin, frame, *problem).row())
            continue
        seen[sid] = name
        atoms = Atoms(
            atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc
        )
        atoms.info = {
            "structure_id": sid,
            "source": spec["name"],
            "name": name,
            "frame": -1 if frame is None else int(frame),
            "origin": origin,
        }
        images.append(atoms)
        rows.append(
            {
                "structure_id": sid,
                "source": spec["name"],
                "name": name,
                "frame": frame,
                "n_atoms": len(atoms),
                "formula": atoms.get_chemical_formula(),
                "periodic": bool(np.any(atoms.pbc)),
                "origin": origin,
            }
        )
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS).astype({"frame": "Int64"})
    rej = pd.DataFrame(rejected, columns=REJECTED_COLUMNS).astype({"frame": "Int64"})
    tmp = out_dir / "structures.extxyz.tmp"
    ase.io.write(tmp, images, format="extxyz")
    tmp.replace(out_dir / "structures.extxyz")
    index.to_csv(out_dir / "index.csv", index=False)
    rej.to_csv(out_dir / "rejected.csv", index=False)
    return index, rej


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


#: ``info`` keys holding text: ASE's extxyz reader would turn a hex structure id such as
#: ``9437347514e45165`` into a float (here inf) and ``0123...`` into an integer.
_TEXT_KEYS = ("structure_id", "source", "name", "origin")
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
