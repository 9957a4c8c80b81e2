"""Build one structure source into its folder: structures.extxyz, index.csv, rejected.csv."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from mlxas.provenance import structure_hash
from mlxas.structures.checks import Rejection, check_structure
from mlxas.structures.readers import StructureReadError, read_file

__all__ = ["INDEX_COLUMNS", "build_source", "read_index", "read_structures"]

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

        for name, atoms in nanoparticles(spec):
            yield name, None, f"nanoparticles:{spec['shape']}", atoms
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
                images = list(read_file(path, spec.get("format"), spec.get("frames")))
            except StructureReadError as err:
                yield "", None, str(path), Rejection(str(path), None, err.reason, err.detail)
                continue
            multi = len(images) > 1
            for i, atoms in enumerate(images):
                name = Path(path).stem + (f"_{i:06d}" if multi else "")
                yield name, (i if multi else None), str(path), atoms
    else:
        raise ValueError(f"unknown structure source kind {kind!r}")


def _expand(patterns: list[str]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        out.extend(matches if matches else [pattern])  # a missing file is rejected, not dropped
    return out


def build_source(
    spec: dict, absorber: str, out_dir: str | Path, max_potentials: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate or read the structures of one source and write them to ``out_dir``."""
    import ase.io

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, rejected, images = [], [], []
    for name, frame, origin, item in _generate(spec, out_dir / "md"):
        if isinstance(item, Rejection):
            rejected.append(item.row())
            continue
        atoms = item
        problem = check_structure(atoms, absorber, max_potentials)
        if problem is not None:
            rejected.append(Rejection(origin, frame, *problem).row())
            continue
        sid = structure_hash(
            atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, atoms.pbc
        )
        atoms = atoms.copy()
        atoms.info = {
            "structure_id": sid,
            "source": spec["name"],
            "name": name,
            "frame": -1 if frame is None else int(frame),
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


def read_index(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"structure_id": str, "frame": "Int64"})


def read_structures(path: str | Path) -> list[Atoms]:
    """All structures of a source, in index order."""
    import ase.io

    if Path(path).stat().st_size == 0:
        return []
    return ase.io.read(str(path), index=":", format="extxyz")
