"""The spectrum file itself: bounded-cost checks before parsing, its kind, larch's readers.

A beamline file holds one spectrum of at most some 10⁴ points (quick-EXAFS scans
included); a few hundred kB.  Before anything parses a file in full,
:func:`check_file` refuses, in milliseconds and without reading more than a few kB at a
time:

- files larger than :data:`MAX_FILE_BYTES` (Athena projects, which hold many spectra:
  :data:`MAX_PROJECT_BYTES`, uncompressed, counted while decompressing with a cap);
- binary data (a NUL byte or control characters in the first 64 kB);
- more lines than :data:`MAX_POINTS` data points and a long header could fill.

larch's parsers keep every line and value as Python objects, so a 50 MB file of random
bytes used to cost 17 s and 1 GB of memory before it was refused.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
import zlib
from pathlib import Path

import numpy as np

from mlxas.spectra.measured.spectrum import (
    COMMENT_CHARS,
    ENERGY_LABELS,
    Spectrum,
    SpectrumError,
    check_arrays,
    find_column,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_POINTS",
    "MAX_PROJECT_BYTES",
    "check_file",
    "check_file_content",
    "read_athena_project",
    "read_columns",
]

#: Largest XDI or column file read (bytes): 100 000 points of 10 columns of 16 characters.
MAX_FILE_BYTES = 16 * 2**20
#: Largest Athena project, uncompressed (bytes): a project holds many spectra.
MAX_PROJECT_BYTES = 2 * MAX_FILE_BYTES
#: Most data points of one spectrum in an XDI or column file.
MAX_POINTS = 100_000
#: Header and comment lines allowed beside the data points.
MAX_HEADER_LINES = 10_000
#: Bytes read at a time, and looked at for binary data.
_BLOCK = 64 * 1024
#: Bytes that never occur in a text file (controls other than tab, newlines, form feed).
_CONTROL = bytes(set(range(32)) - {9, 10, 12, 13}) + b"\x7f"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def check_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Refuse what no spectrum file looks like, before parsing; returns the file's kind.

    ``max_bytes``: the largest XDI or column file; projects may be twice as large
    (uncompressed).  Reads at most ``max_bytes`` + 64 kB, in 64 kB blocks.
    """
    return check_file_content(path, max_bytes)[0]


def check_file_content(path: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[str, bytes | None]:
    """:func:`check_file`, and the file's bytes when the check read all of them (a file
    of up to 64 kB: one quick-EXAFS scan), so that the parser need not read it again."""
    src = str(path)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        raise SpectrumError(src, "no such file" if not path.exists() else "not a regular file")
    size = st.st_size
    if size == 0:
        raise SpectrumError(src, "empty file")
    project_bytes = 2 * max_bytes
    try:
        with open(path, "rb") as fh:
            head = fh.read(_BLOCK)
            if head[:2] == b"\x1f\x8b":  # gzip: only Athena projects are compressed
                _check_gzip(src, fh, head, project_bytes)
                return _kind(path, head), None
            kind = _kind(path, head)
            limit = project_bytes if kind == "athena" else max_bytes
            if size > limit:
                what = "an Athena project" if kind == "athena" else "one spectrum file"
                raise SpectrumError(
                    src,
                    f"file is {_mb(size)}, larger than {what} can be ({_mb(limit)}; "
                    f"{MAX_POINTS} points at most): not a spectrum",
                )
            # In C (bytes.translate): a Python loop over 64 kB cost 2 ms per file.
            if len(head.translate(None, _CONTROL)) != len(head):
                raise SpectrumError(src, "binary data, not a text spectrum file (XDI, columns)")
            if kind != "athena":
                _check_lines(src, fh, head)
    except OSError as err:
        raise SpectrumError(src, f"cannot read ({err.strerror or err})") from None
    return kind, head if len(head) == size else None


def _check_lines(src: str, fh, head: bytes) -> None:
    lines = head.count(b"\n")
    limit = MAX_POINTS + MAX_HEADER_LINES
    more = len(head) == _BLOCK  # a shorter first block is the whole file
    while more and lines <= limit and (block := fh.read(_BLOCK)):
        lines += block.count(b"\n")
    if lines > limit:
        raise SpectrumError(
            src, f"more than {limit} lines: more than the {MAX_POINTS} points of any spectrum"
        )


def _check_gzip(src: str, fh, head: bytes, limit: int) -> None:
    """Decompress in blocks, counting, and stop past ``limit`` bytes (a gzip bomb)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total, block = 0, head
    try:
        while block and not inflate.eof:
            out = inflate.decompress(block, _BLOCK)
            total += len(out)
            while inflate.unconsumed_tail and total <= limit:
                out = inflate.decompress(inflate.unconsumed_tail, _BLOCK)
                total += len(out)
            if total > limit:
                raise SpectrumError(
                    src,
                    f"compressed file holds more than {_mb(limit)}, more than an Athena "
                    "project can be: not a spectrum",
                )
            block = fh.read(_BLOCK)
    except zlib.error as err:
        raise SpectrumError(src, f"damaged gzip data ({err})") from None
    if not inflate.eof:  # larch says only 'failed to read'
        raise SpectrumError(
            src,
            "cannot read as Athena project: the compressed data end before their end "
            "marker (the file is cut short: an incomplete copy or transfer?)",
        )


def _kind(path: Path, head: bytes) -> str:
    """'athena', 'xdi' or 'ascii': ``.prj`` files are Athena projects; otherwise the first
    bytes decide (gzip or an Athena comment, confirmed by larch's ``is_athena_project``)."""
    first = head[:256].split(b"\n")[0]
    if path.suffix.lower() == ".prj":
        return "athena"
    if head[:2] == b"\x1f\x8b" or b"Athena" in first:
        from larch.io import is_athena_project

        if is_athena_project(str(path)):
            return "athena"
    return "xdi" if first.lstrip().startswith(b"#") and b"XDI/" in first else "ascii"


def _xdi_meta(g) -> tuple[str | None, str | None]:
    attrs = getattr(g, "attrs", {}) or {}
    el = (attrs.get("element", {}) or {}).get("symbol") or (attrs.get("scan", {}) or {}).get(
        "element"
    )
    edge = (attrs.get("element", {}) or {}).get("edge") or (attrs.get("scan", {}) or {}).get("edge")
    return (el.strip() if el else None), (edge.strip() if edge else None)


def read_columns(
    path: Path, kind: str
) -> tuple[list[str], np.ndarray, str | None, str | None, list[str], float]:
    """Labels, data[ncol, npts] as written in the file, element, edge, notes and the
    factor that turns the energy column into eV, for an XDI or column file."""
    from mlxas.spectra.xdi import read_xdi_columns

    notes: list[str] = []
    scale = 1.0
    if kind == "xdi":
        # A clean XDI file is read without larch (same labels, units, metadata and
        # numbers: mlxas.spectra.xdi); any other goes to larch.
        g = read_xdi_columns(path)
        if g is None:
            if not _has_data_line(path):  # larch fails with an unpacking error
                raise SpectrumError(str(path), "no numeric data found (header only)")
            from larch.io import read_xdi

            g = read_xdi(str(path))
        labels = list(g.array_labels)
        data = np.array(g.data, dtype=float, ndmin=2)
        el, edge = _xdi_meta(g)
        units = [str(u).lower() for u in getattr(g, "array_units", [])]
        ie = find_column(labels, ENERGY_LABELS)
        if ie is not None and ie < len(units) and units[ie] == "kev":
            scale = 1000.0
        if ie is None and hasattr(g, "energy") and "angle" in [lab.lower() for lab in labels]:
            # XDI files in mono angle: larch converts with the header's d-spacing.
            labels = [*labels, "energy"]
            data = np.vstack([data, np.asarray(g.energy, float)])
            notes.append("energy computed by larch from the mono angle and d-spacing")
    else:
        from larch.io import read_ascii

        g = read_ascii(str(path))
        data = np.array(getattr(g, "data", []), dtype=float, ndmin=2)
        labels = list(g.array_labels)
        el = edge = None
        footer = getattr(g, "footer", None)
        if footer:
            notes.append(f"{len(footer)} text line(s) after the data ignored")
        if str(getattr(g, "energy_units", "eV")).lower() == "kev":
            scale = 1000.0
    if data.size == 0:
        raise SpectrumError(str(path), "no numeric data found")
    _check_all_rows_read(str(path), data.shape[1])
    if scale != 1.0:
        notes.append("energy converted from keV")
    return labels, data, el, edge, notes, scale


def _has_data_line(path: Path) -> bool:
    """Whether the file holds any line besides comments and blank lines."""
    text = path.read_bytes().decode("latin-1")
    return any(ln.strip() and ln.strip()[0] not in COMMENT_CHARS for ln in text.split("\n"))


_NUM = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _check_all_rows_read(source: str, npts: int) -> None:
    """larch reads column files from the bottom up, so a damaged line in the middle of the
    data turns every line above it into 'header' and drops it without a word.  Count the
    lines that look like data and refuse the file if larch kept fewer."""
    text = Path(source).read_bytes().decode("latin-1")
    rows = [
        (i + 1, ln.strip())
        for i, ln in enumerate(text.split("\n"))
        if ln.strip() and ln.strip()[0] not in COMMENT_CHARS and _mostly_numbers(ln)
    ]
    if len(rows) > npts:
        bad = _first_unreadable(text, rows)
        raise SpectrumError(
            source,
            f"{len(rows) - npts} data line(s) would be lost: larch stops at {bad} and "
            "drops the lines above it",
        )


def _first_unreadable(text: str, rows: list[tuple[int, str]]) -> str:
    """The line at which larch's bottom-up reader leaves the data section."""
    lines = text.split("\n")
    in_data = False
    for i in range(len(lines) - 1, -1, -1):
        ln = lines[i].strip()
        if not ln:
            continue
        words = ln.replace(",", " ").replace(";", " ").split()
        numeric = ln[0] not in COMMENT_CHARS and all(_NUM.match(w) for w in words)
        if numeric:
            in_data = True
        elif in_data:
            return f"line {i + 1} ('{ln[:30]}')"
    return "a line that is not numbers"


def _mostly_numbers(line: str) -> bool:
    words = line.replace(",", " ").replace(";", " ").split()
    return len(words) >= 2 and sum(bool(_NUM.match(w)) for w in words) >= len(words) - 1


def read_athena_project(path: Path, repair: bool = False) -> list[Spectrum]:
    """Every group of an Athena project as a checked spectrum (``file#group``)."""
    from larch.io import read_athena

    src = str(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proj = read_athena(src, do_preedge=False, do_bkg=False, do_fft=False)
    except Exception as err:  # larch raises bare Exception/ValueError/JSON errors
        raise SpectrumError(src, f"cannot read as Athena project ({err})") from None
    names = list(getattr(proj, "groups", {}) or {})
    if not names:
        raise SpectrumError(src, "Athena project holds no groups")
    out = []
    for name in names:
        g = getattr(proj, name)
        gsrc = f"{src}#{getattr(g, 'label', name) or name}"
        energy = getattr(g, "energy", None)
        mu = getattr(g, "mu", None)
        if energy is None or mu is None:
            raise SpectrumError(gsrc, "missing columns: group has no energy or mu")
        spec = Spectrum(
            gsrc,
            np.asarray(energy, float),
            np.asarray(mu, float),
            "Athena mu",
            (getattr(g, "atsym", None) or None),
            (getattr(g, "edge", None) or None),
        )
        out.append(check_arrays(spec, repair))
    return out
