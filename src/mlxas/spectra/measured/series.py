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
    check_file_content,
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
        kind, text, tpl, body = self._open(path)
        if tpl is not None:
            cols = _parse_numbers(body, tpl.ncols)
            if cols is not None:
                return self._fast_build(str(path), tpl, cols)
        return self._slow(path, kind, text)

    def read_many(self, paths: list[str | Path]) -> list[list[Spectrum] | Exception]:
        """:meth:`read` of every path, in order, with the exception a file raised in
        its place.  The data blocks of the files that take the fast parse are parsed
        together, in one call of pandas' C parser per header layout (numpy's parser
        costs more per number than the rest of the pipeline per file)."""
        out: list = [None] * len(paths)
        waiting: dict[int, tuple[_Template, list[tuple]]] = {}
        for i, p in enumerate(paths):
            path = Path(p)
            try:
                kind, text, tpl, body = self._open(path)
                if tpl is None:
                    out[i] = self._slow(path, kind, text)
                else:
                    waiting.setdefault(id(tpl), (tpl, []))[1].append((i, path, kind, text, body))
            except Exception as err:  # the caller turns it into a refusal of this file
                out[i] = err
        for tpl, items in waiting.values():
            blocks = _parse_blocks([item[4] for item in items], tpl.ncols)
            for (i, path, kind, text, body), cols in zip(items, blocks, strict=True):
                try:
                    if cols is None:
                        cols = _parse_numbers(body, tpl.ncols)
                    if cols is None:
                        out[i] = self._slow(path, kind, text)
                    else:
                        out[i] = self._fast_build(str(path), tpl, cols)
                except Exception as err:
                    out[i] = err
        return out

    def _open(self, path: Path) -> tuple[str, str | None, _Template | None, str | None]:
        """(kind, text, template, data block) of a file after its size and shape checks;
        template and block are None unless a known header layout allows the fast parse."""
        # size and shape, before any parsing
        kind, content = check_file_content(path, self.max_bytes)
        if kind == "athena" or not self.fast:
            return kind, None, None, None
        try:
            text = (path.read_bytes() if content is None else content).decode("latin-1")
        except OSError as err:
            raise SpectrumError(str(path), f"cannot read ({err.strerror or err})") from None
        split = _split_header(text)
        if split is None:
            return kind, text, None, None
        tpl = self._templates.get(_header_key(split[0], kind))
        if tpl is None or not tpl.fast:
            return kind, text, None, None
        return kind, text, tpl, split[1]

    def _fast_build(self, src: str, tpl: _Template, cols: np.ndarray) -> list[Spectrum]:
        self.n_fast += 1
        return [
            self._build(
                src, tpl.labels, cols, tpl.element, tpl.edge, list(tpl.notes), tpl.energy_scale
            )
        ]

    def _slow(self, path: Path, kind: str, text: str | None) -> list[Spectrum]:
        """larch reads the file; its header layout is learnt for the fast parse."""
        if kind == "athena":
            return self._athena(path)
        labels, data, el, edge, notes, scale = self._larch_columns(path, kind)
        self.n_larch += 1
        if text is not None:
            self._learn(
                text, kind, _Template(labels, data.shape[0], el, edge, notes, scale, False), data
            )
        return [self._build(str(path), labels, data, el, edge, notes, scale)]

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


#: Lines that cannot start the data block: blank or starting with '#' (skipped in C).
_NOT_DATA = re.compile(r"^[^\S\n]*[^#\s]", re.MULTILINE)


def _split_header(text: str) -> tuple[str, str] | None:
    """(header, body): the header ends at the first line that starts like a number."""
    for m in _NOT_DATA.finditer(text):
        first = m.group()[-1]
        if first.isdigit() or first in "-+.":
            return text[: m.start()], text[m.start() :]
    return None


#: The volatile lines, to drop before the memo of :func:`_header_key` looks a header up.
_VOLATILE_LINE = re.compile(
    r"^[^\S\n]*#\s*scan\.(start_time|end_time|time)\s*:.*$", re.IGNORECASE | re.MULTILINE
)
_KEYS: dict[str, str] = {}


def _header_key(header: str, kind: str) -> str:
    """The header without what changes from scan to scan, as the template key."""
    if kind != "xdi":
        return kind + "\n" + header
    steady = _VOLATILE_LINE.sub("", header)
    key = _KEYS.get(steady)
    if key is None:
        if len(_KEYS) > 1000:  # many different layouts: keep the memo small
            _KEYS.clear()
        key = _KEYS[steady] = _xdi_key(steady)
    return key


def _xdi_key(header: str) -> str:
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
    return "xdi\n" + "\n".join(keep)


#: Fewer fast-parse files than this are parsed one by one (pandas is not even imported:
#: a single file at the beamline must start fast).
BLOCK_PARSE_MIN = 32


def _parse_blocks(bodies: list[str], ncols: int) -> list[np.ndarray | None]:
    """data[ncols, nrows] of each whitespace-separated block, parsed in one pandas call
    over their concatenation; all None (each block then parsed alone) unless the joint
    parse splits cleanly into the blocks: exactly ``ncols`` numbers on every line, no
    blank line, no missing value, and the first block equal to its own numpy parse."""
    none: list[np.ndarray | None] = [None] * len(bodies)
    if len(bodies) < BLOCK_PARSE_MIN:
        return none
    rows = [b.count("\n") + (not b.endswith("\n")) for b in bodies]
    text = "".join(b if b.endswith("\n") else b + "\n" for b in bodies)
    if any(c in text for c in ",;#"):
        return none
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep=r"\s+", header=None, dtype=float)
    except (ValueError, pd.errors.ParserError):  # a stray word or a long line
        return none
    vals = frame.to_numpy()
    # A short line gives NaN, a blank line one row fewer: either sends all blocks to the
    # one-by-one parse, which reports the file.
    if vals.shape != (sum(rows), ncols) or np.isnan(vals).any():
        return none
    blocks = np.split(np.ascontiguousarray(vals.T), np.cumsum(rows)[:-1], axis=1)
    first = _parse_numbers(bodies[0], ncols)
    if first is None or not np.array_equal(first, blocks[0]):
        return none
    return blocks


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
