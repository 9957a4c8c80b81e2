"""Readers for users' structure files, through ASE and pymatgen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ase import Atoms

__all__ = ["StructureReadError", "read_file"]


class StructureReadError(ValueError):
    """A structure file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str, detail: str):
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {detail}")


def _pymatgen_structure(path: Path):
    from pymatgen.core import Structure

    try:
        return Structure.from_file(str(path))
    except Exception as err:  # pymatgen raises many types for malformed files
        raise StructureReadError(path, "unreadable", f"cannot read with pymatgen: {err}") from None


def read_file(
    path: str | Path, fmt: str | None = None, frames: str | None = None
) -> Iterator[Atoms]:
    """Yield the structures (frames) in ``path``.

    CIF and pymatgen JSON go through pymatgen, which sees partial occupancies that
    ASE would silently round; everything else goes through ``ase.io.read``.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureReadError(path, "unreadable", "file does not exist")
    suffix = path.suffix.lower()
    if (
        fmt in (None, "cif", "json", "pymatgen") and suffix in (".cif", ".json")
    ) or fmt == "pymatgen":
        from pymatgen.io.ase import AseAtomsAdaptor

        structure = _pymatgen_structure(path)
        if not structure.is_ordered:
            raise StructureReadError(
                path, "partial_occupancy", "has partially occupied sites; give an ordered structure"
            )
        yield AseAtomsAdaptor.get_atoms(structure)
        return
    import ase.io

    index = frames if frames is not None else ":"
    try:
        images = ase.io.read(str(path), index=index, format=fmt)
    except Exception as err:  # ASE raises many types for malformed or unknown files
        raise StructureReadError(path, "unreadable", f"cannot read with ASE: {err}") from None
    if isinstance(images, Atoms):
        images = [images]
    if not images:
        raise StructureReadError(path, "unreadable", "file holds no structure")
    yield from images
