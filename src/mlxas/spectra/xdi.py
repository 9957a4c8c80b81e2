"""XDI files read without larch, for the prediction path's cold start.

larch's ``read_xdi`` (its Python reader) takes the header of ``read_ascii`` and reads:
``Column.N: label [units]`` lines for the column labels and units, ``Family.field: value``
lines (before the ``///`` comment block) as metadata, lower-cased.  For a *clean* file (a
header of ``#`` lines, then rows of exactly one number per labelled column) this module
gives the same labels, units, metadata and numbers; the tests compare the two on every
XDI file in ``tests/data/experimental``.  Anything else — a missing ``Column.N`` line,
a damaged or short row, comma-separated values, energies given as mono angles — returns
None, and the caller reads the file with larch, which then explains the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["XdiColumns", "read_xdi_columns"]


@dataclass
class XdiColumns:
    """Labels and units of the columns, ``data[ncol, npts]`` and the header metadata
    (``attrs[family][field]``, both lower case), under the names of larch's group."""

    array_labels: list[str]
    array_units: list[str]
    data: np.ndarray
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)


def _header_lines(text: str) -> tuple[list[str], int] | None:
    """Header lines (without '#') and the offset where the numbers start."""
    lines: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end].strip()
        if line.startswith("#"):
            lines.append(line[1:].strip())
        elif line:
            return lines, pos
        pos = end + 1
    return None


def _parse_header(lines: list[str]) -> tuple[dict[int, tuple[str, str]], dict] | None:
    columns: dict[int, tuple[str, str]] = {}
    attrs: dict[str, dict[str, str]] = {"column": {}}
    in_comment = False
    for line in lines:
        if line.startswith("XDI/"):
            continue
        if line.startswith("Column."):
            num, value = line.split(":", 1)
            attrs["column"][num.replace("Column.", "")] = value.strip()
            try:
                idx = int(num.replace("Column.", "")) - 1
            except ValueError:
                return None
            if "#" in value:
                value = value[: value.find("#")]
            words = value.split()
            if idx < 0 or not words:
                return None
            columns[idx] = (words[0], words[1] if len(words) > 1 else "")
        elif line.startswith("///"):
            in_comment = True
        elif not in_comment and ":" in line:
            name, value = (x.strip() for x in line.split(":", 1))
            name = name.lower()
            if "." in name:
                family, key = name.split(".", 1)
                attrs.setdefault(family, {})[key] = value
    return columns, attrs


def read_xdi_columns(path: str | Path, text: str | None = None) -> XdiColumns | None:
    """The columns of a clean XDI file, or None when larch must read it (see module doc).

    ``text``: the file's contents when the caller has read them already (latin-1).
    """
    if text is None:
        text = Path(path).read_bytes().decode("latin-1")
    if len(text) < 256 or text.count("\n") < 5:
        return None  # larch refuses files this small as XDI
    first = text[: text.find("\n")] if "\n" in text else text
    if not (first.lstrip().startswith("#") and "XDI/" in first):
        return None
    split = _header_lines(text)
    if split is None:
        return None
    header, start = split
    parsed = _parse_header(header)
    if parsed is None:
        return None
    columns, attrs = parsed
    ncol = len(columns)
    if ncol == 0 or sorted(columns) != list(range(ncol)):
        return None
    body = text[start:]
    if any(c in body for c in "#,;"):  # comments or other separators: larch decides
        return None
    rows = [ln.split() for ln in body.split("\n") if ln.strip()]
    if not rows or any(len(r) != ncol for r in rows):
        return None
    try:
        data = np.array(rows, dtype=float).T
    except ValueError:
        return None
    labels = [columns[i][0] for i in range(ncol)]
    units = [columns[i][1] for i in range(ncol)]
    if "angle" in (lab.lower() for lab in labels) and "energy" not in labels:
        return None  # larch converts mono angles with the d-spacing
    return XdiColumns(labels, units, np.ascontiguousarray(data), attrs)
