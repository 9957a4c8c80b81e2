"""Measured single-crystal data: SHELX HKLF 4 reflections and the cell and space group of
the ``.ins``/``.res`` beside them.

HKLF 4 is fixed format: ``h k l`` in three 4-character fields, F² and σ(F²) in two
8-character fields, an optional 4-character batch number; a line with h = k = l = 0
ends the data.  mlxas reads it itself rather than with iotbx's reader because that
reader takes a truncated line as zeros and names no line in its errors; here every
line must hold at least the five fields, and a bad one stops the read with the file
name, the line number and the reason.  The cell and space group of the ``.ins``/``.res``
come from iotbx (``crystal_symmetry_from_ins``), after a check of the CELL line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HklData", "ShelxError", "read_hklf4", "read_ins_symmetry"]


class ShelxError(ValueError):
    """A SHELX file that cannot be read; the message names the file and line."""


@dataclass
class HklData:
    """Reflections as measured (unmerged), in the file's order."""

    path: Path
    hkl: np.ndarray  #: [n, 3] int
    intensity: np.ndarray  #: F² [n]
    sigma: np.ndarray  #: σ(F²) [n]


def _field(line: str, start: int, width: int, kind: type, path: Path, lineno: int, name: str):
    text = line[start : start + width]
    try:
        return kind(text)
    except ValueError:
        raise ShelxError(
            f"{path}:{lineno}: {name} (columns {start + 1}-{start + width}) is {text.strip()!r}, "
            f"not {'an integer' if kind is int else 'a number'} (HKLF 4 is 3I4,2F8.2)"
        ) from None


def read_hklf4(path: str | Path) -> HklData:
    """Read a SHELX HKLF 4 file; :class:`ShelxError` names the file and line of any
    malformed line, a file without reflections, or one without the end line before
    the end of the file (a missing end line is accepted: the data simply end)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ShelxError(f"{path}: cannot read: {exc}") from exc
    hkl, data = [], []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if len(line.rstrip()) < 13:
            raise ShelxError(f"{path}:{lineno}: line too short for h k l F² σ: {raw!r}")
        h = [_field(line, 4 * i, 4, int, path, lineno, "hkl"[i]) for i in range(3)]
        if h == [0, 0, 0]:
            break
        if len(line.rstrip()) < 20:
            raise ShelxError(f"{path}:{lineno}: no σ(F²) field (columns 21-28): {raw!r}")
        i_obs = _field(line, 12, 8, float, path, lineno, "F²")
        sig = _field(line, 20, 8, float, path, lineno, "σ(F²)")
        if not (np.isfinite(i_obs) and np.isfinite(sig)) or sig < 0:
            raise ShelxError(f"{path}:{lineno}: F² {i_obs} and σ {sig} are not usable")
        hkl.append(h)
        data.append((i_obs, sig))
    if not hkl:
        raise ShelxError(f"{path}: no reflections (HKLF 4: 3I4,2F8.2 lines)")
    d = np.array(data)
    return HklData(path, np.array(hkl, dtype=int), d[:, 0].copy(), d[:, 1].copy())


def read_ins_symmetry(path: str | Path):
    """Cell and space group of a SHELX ``.ins``/``.res`` as a cctbx ``crystal.symmetry``."""
    from iotbx.shelx import crystal_symmetry_from_ins

    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ShelxError(f"{path}: cannot read: {exc}") from exc
    cells = [(i, ln) for i, ln in enumerate(lines, start=1) if ln.upper().startswith("CELL")]
    if not cells:
        raise ShelxError(f"{path}: no CELL line")
    lineno, line = cells[0]
    parts = line.split()[1:]
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 7 or min(values[1:4]) <= 0 or not all(0 < a < 180 for a in values[4:]):
        raise ShelxError(f"{path}:{lineno}: CELL needs λ a b c α β γ (Å, degrees): {line!r}")
    try:
        sym = crystal_symmetry_from_ins.extract_from(str(path))
    except Exception as exc:  # iotbx raises several types; the message says which
        raise ShelxError(f"{path}: iotbx cannot read the symmetry: {exc}") from exc
    if sym is None or sym.space_group_info() is None:
        raise ShelxError(f"{path}: no space group (LATT/SYMM)")
    return sym
