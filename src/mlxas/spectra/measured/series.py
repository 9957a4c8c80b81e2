"""Reading many files of one scan definition: larch for the first, numpy for the rest.

larch's text parser costs several ms per file.  Files of one scan definition have the
same header, so :class:`SeriesReader` reads the first file of each header layout with
larch, checks that a numpy parse of the same file gives identical arrays, and then parses
the numbers of later files with that header by numpy alone.  Any file the fast parse
cannot take whole goes through larch.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlxas.spectra.measured.files import (
    MAX_FILE_BYTES,
    check_file,
    read_athena_project,
    read_columns,
)
from mlxas.spectra.measured.spectrum import Spectrum, SpectrumError, check_arrays, find_columns

__all__ = ["SeriesReader"]

#: XDI header fields that change from scan to scan without changing the columns.
_VOLATILE = re.compile(r"^#\s*scan\.(start_time|end_time|time)\s*:", re.IGNORECASE)


@dataclass
class _Template:
    labels: list[str]
    ncols: int
    element: str | None
    edge: str | None
    notes: list[str]
    energy_scale: float
    fast: bool


class SeriesReader:
    """Reads many files; files sharing a header layout are parsed without larch after the
    first one (see the module docstring).  One reader per process; not thread-safe."""

    def __init__(
        self,
        mu_label: str | None = None,
        energy_label: str | None = None,
        repair: bool = False,
        fast: bool = True,
        max_bytes: int = MAX_FILE_BYTES,
    ):
        self.mu_label, self.energy_label, self.repair, self.fast = (
            mu_label,
            energy_label,
            repair,
            fast,
        )
        self.max_bytes = max_bytes
        self._templates: dict[str, _Template] = {}
        self.n_fast = 0
        self.n_larch = 0

    def read(self, path: str | Path) -> list[Spectrum]:
        """The checked spectra of one file (see :mod:`mlxas.spectra.measured`)."""
        path = Path(path)
        src = str(path)
        kind = check_file(path, self.max_bytes)  # size and shape, before any parsing
        if kind == "athena":
            return self._athena(path)
        text = None
        if self.fast:
            try:
                text = path.read_bytes().decode("latin-1")
            except OSError as err:
                raise SpectrumError(src, f"cannot read ({err.strerror or err})") from None
            split = _split_header(text)
            if split is not None:
                key = _header_key(split[0], kind)
                tpl = self._templates.get(key)
                if tpl is not None and tpl.fast:
                    cols = _parse_numbers(split[1], tpl.ncols)
                    if cols is not None:
                        self.n_fast += 1
                        return [
                            self._build(
                                src, tpl.labels, cols, tpl.element, tpl.edge,
                                list(tpl.notes), tpl.energy_scale,
                            )
                        ]  # fmt: skip
        labels, data, el, edge, notes, scale = self._larch_columns(path, kind)
        self.n_larch += 1
        if text is not None:
            self._learn(
                text, kind, _Template(labels, data.shape[0], el, edge, notes, scale, False), data
            )
        return [self._build(src, labels, data, el, edge, notes, scale)]

    def _larch_columns(self, path: Path, kind: str):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return read_columns(path, kind)
        except SpectrumError:
            raise
        except Exception as err:  # larch's readers raise many types for malformed files
            msg = str(err).strip().splitlines()
            raise SpectrumError(
                str(path), f"cannot read as {kind} ({msg[-1] if msg else err})"
            ) from None

    def _learn(self, text: str, kind: str, tpl: _Template, data: np.ndarray) -> None:
        """Remember the header layout; the fast parse is enabled only if it reproduces
        larch's numbers for this very file."""
        split = _split_header(text)
        if split is None:
            return
        key = _header_key(split[0], kind)
        if key in self._templates:
            return
        cols = _parse_numbers(split[1], tpl.ncols)
        tpl.fast = (
            cols is not None
            and cols.shape == data.shape
            and bool(np.array_equal(cols, data, equal_nan=True))
        )
        self._templates[key] = tpl

    def _athena(self, path: Path) -> list[Spectrum]:
        return read_athena_project(path, self.repair)

    def _build(self, src, labels, data, el, edge, notes, energy_scale) -> Spectrum:
        energy, mu, how = find_columns(src, labels, data, self.mu_label, self.energy_label)
        if energy_scale != 1.0:
            energy = energy * energy_scale
        spec = Spectrum(src, energy, mu, how, el, edge, notes)
        return check_arrays(spec, self.repair)


def _split_header(text: str) -> tuple[str, str] | None:
    """(header, body): the header ends at the first line that starts like a number."""
    pos = 0
    n = len(text)
    while pos < n:
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end].lstrip()
        if line and (line[0].isdigit() or line[0] in "-+."):
            return text[:pos], text[pos:]
        pos = end + 1
    return None


def _header_key(header: str, kind: str) -> str:
    if kind != "xdi":
        return kind + "\n" + header
    keep, in_comment = [], False
    for line in header.split("\n"):
        s = line.strip()
        if s.startswith("# ///") or s == "#///":
            in_comment = True
            continue
        if in_comment and s.startswith("#---"):
            in_comment = False
        if in_comment or _VOLATILE.match(s):
            continue
        keep.append(s)
    return kind + "\n" + "\n".join(keep)


def _parse_numbers(body: str, ncols: int) -> np.ndarray | None:
    """data[ncols, nrows] of a whitespace-separated block, or None if any line is not
    exactly ``ncols`` numbers (larch then reads the file and explains the problem)."""
    if any(c in body for c in ",;#"):
        return None
    try:
        vals = np.loadtxt(io.StringIO(body), ndmin=2, comments=None, dtype=float)
    except ValueError:
        return None
    if vals.shape[1] != ncols or len(vals) == 0:
        return None
    return np.ascontiguousarray(vals.T)
