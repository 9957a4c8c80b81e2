"""Measured spectra: reading beamline files through larch and refusing bad ones.

Accepted files: XDI (``larch.io.read_xdi``), Athena projects (``read_athena``; every group
is one spectrum) and plain column files (``read_ascii``).  mu(E) is taken from a column
named like mu (``mutrans``, ``mu``, ``xmu``, ``mufluor``, ...) or computed from the
intensities: ln(i0/itrans) for transmission, ifluor/i0 for fluorescence.

Every check raises :class:`SpectrumError` with a message that starts with the file name.
Nothing is repaired silently: larch sorts energies and nudges duplicated ones without a
word, so such files are refused unless the caller asks for the repair, and then the repair
is written into the spectrum's notes.

Series reader: larch's text parser costs several ms per file.  Files of one scan
definition have the same header, so :class:`SeriesReader` reads the first file of each
header layout with larch, checks that a numpy parse of the same file gives identical
arrays, and then parses the numbers of later files with that header by numpy alone.  Any
file the fast parse cannot take whole goes through larch.

Units: energy in eV.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "MIN_POINTS",
    "SeriesReader",
    "Spectrum",
    "SpectrumError",
    "check_arrays",
    "find_columns",
    "read_spectra",
]

#: Fewest points a spectrum may have: a scan cut short is refused, not extrapolated.
MIN_POINTS = 30
#: Energies closer than this (eV) count as duplicated; larch's own threshold (TINY_ENERGY).
DUPLICATE_EV = 5e-4

ENERGY_LABELS = ("energy", "energy_ev", "e", "en", "ene", "mono_energy", "enc", "energy_enc")
MU_LABELS = (
    "mutrans", "mu", "xmu", "mu_trans", "mut", "mu_t", "mufluor", "mu_fluor", "muf", "mufl",
    "mutey", "mu_tey",
)  # fmt: skip
I0_LABELS = ("i0", "io", "imon", "i_0", "izero")
IT_LABELS = ("itrans", "it", "i1", "itr", "i_t", "itransmission")
IF_LABELS = ("ifluor", "if", "_if", "if_", "ifl", "iff", "fluor", "fluo", "ifluo")
COMMENT_CHARS = "#;!*%<"


class SpectrumError(ValueError):
    """A measured spectrum that mlxas refuses; the message names the file and the reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass
class Spectrum:
    """One measured mu(E).  ``source`` is the file, ``file#group`` for Athena groups."""

    source: str
    energy: np.ndarray
    mu: np.ndarray
    mu_from: str
    element: str | None = None
    edge: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.source.split("#", 1)[0] if "#" in self.source else self.source


# --- columns ----------------------------------------------------------------------------


def _find(labels: list[str], names: tuple[str, ...]) -> int | None:
    low = [lab.lower() for lab in labels]
    for name in names:
        if name in low:
            return low.index(name)
    return None


def find_columns(
    source: str,
    labels: list[str],
    data: np.ndarray,
    mu_label: str | None = None,
    energy_label: str | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(energy, mu, how mu was obtained) from labelled columns ``data[i]``.

    ``mu_label``/``energy_label`` choose a column by name; otherwise the first label of
    :data:`MU_LABELS` wins, then ln(i0/itrans), then ifluor/i0.
    """
    cols = ", ".join(labels) or "none"
    if energy_label:
        ie = _find(labels, (energy_label.lower(),))
        if ie is None:
            raise SpectrumError(source, f"missing column '{energy_label}' (columns: {cols})")
    else:
        ie = _find(labels, ENERGY_LABELS)
        if ie is None:
            raise SpectrumError(
                source,
                f"missing energy column (columns: {cols}); name it with --energy LABEL",
            )
    energy = data[ie]
    if mu_label:
        im = _find(labels, (mu_label.lower(),))
        if im is None:
            raise SpectrumError(source, f"missing column '{mu_label}' (columns: {cols})")
        return energy, data[im], f"column {labels[im]}"
    im = _find(labels, MU_LABELS)
    if im is not None:
        return energy, data[im], f"column {labels[im]}"
    i0 = _find(labels, I0_LABELS)
    it = _find(labels, IT_LABELS)
    ifl = _find(labels, IF_LABELS)
    if i0 is not None and it is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = np.log(data[i0] / data[it])
        return energy, mu, f"ln({labels[i0]}/{labels[it]})"
    if i0 is not None and ifl is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = data[ifl] / data[i0]
        return energy, mu, f"{labels[ifl]}/{labels[i0]}"
    raise SpectrumError(
        source,
        f"missing columns: no mu column and no i0 with itrans or ifluor (columns: {cols}); "
        "choose one with --mu LABEL",
    )


# --- checks -----------------------------------------------------------------------------


def _show(e: float) -> str:
    return f"{e:.4g} eV" if abs(e) < 1e4 else f"{e:.1f} eV"


def check_arrays(spec: Spectrum, repair: bool = False) -> Spectrum:
    """Refuse NaNs, too few points, unsorted or duplicated energies.

    With ``repair`` the energies are sorted and duplicates nudged the way larch does it
    (``argsort``, then ``larch.math.remove_dups``), and each repair is added to the notes.
    """
    from mlxas.spectra.xafsmath import remove_dups  # larch's, without importing larch

    src, e, mu = spec.source, np.asarray(spec.energy, float), np.asarray(spec.mu, float)
    if len(e) != len(mu):
        raise SpectrumError(src, f"energy has {len(e)} points but mu has {len(mu)}")
    if len(e) < MIN_POINTS:
        raise SpectrumError(src, f"too few points: {len(e)} (need at least {MIN_POINTS})")
    bad_e, bad_mu = ~np.isfinite(e), ~np.isfinite(mu)
    if bad_e.any() or bad_mu.any():
        which = []
        if bad_e.any():
            which.append(f"{int(bad_e.sum())} in energy")
        if bad_mu.any():
            at = e[np.nonzero(bad_mu)[0][0]]
            which.append(
                f"{int(bad_mu.sum())} in mu ({spec.mu_from}), first at {_show(at)}"
                if np.isfinite(at)
                else f"{int(bad_mu.sum())} in mu ({spec.mu_from})"
            )
        raise SpectrumError(src, "NaN or infinite values: " + "; ".join(which))
    top = float(np.max(e))
    if top < 200.0:
        raise SpectrumError(
            src,
            f"energies end at {top:.4g}: not eV (keV without a declared unit?); declare the "
            "unit (XDI 'Column.1: energy keV') or write the energies in eV",
        )
    step = np.diff(e)
    back = np.nonzero(step < 0)[0]
    if len(back):
        i = back[0]
        msg = (
            f"energies are not increasing: {len(back)} step(s) go down, first "
            f"{_show(e[i])} -> {_show(e[i + 1])} at point {i + 1}"
        )
        if not repair:
            raise SpectrumError(src, msg + "; larch would sort them silently (--repair sorts)")
        order = np.argsort(e, kind="stable")
        e, mu = e[order], mu[order]
        spec.notes.append(f"repaired: energies sorted ({len(back)} out of order)")
        step = np.diff(e)
    dup = np.nonzero(np.abs(step) < DUPLICATE_EV)[0]
    if len(dup):
        msg = f"{len(dup)} duplicated energies, first {_show(e[dup[0]])}"
        if not repair:
            raise SpectrumError(
                src, msg + "; larch would shift them by 0.0005 eV silently (--repair does)"
            )
        e = remove_dups(e, tiny=DUPLICATE_EV)
        spec.notes.append(f"repaired: {len(dup)} duplicated energies shifted by larch remove_dups")
    spec.energy, spec.mu = e, mu
    return spec


# --- reading ----------------------------------------------------------------------------


def _kind(path: Path) -> str:
    """'athena', 'xdi' or 'ascii': ``.prj`` files are Athena projects; otherwise the first
    bytes decide (gzip or an Athena comment, confirmed by larch's ``is_athena_project``)."""
    with open(path, "rb") as fh:
        head = fh.read(256)
    first = head.split(b"\n")[0]
    if path.suffix.lower() == ".prj":
        return "athena"
    if head[:2] == b"\x1f\x8b" or b"Athena" in first:
        from larch.io import is_athena_project  # only for files that may be projects

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


def _columns_larch(
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
            from larch.io import read_xdi

            g = read_xdi(str(path))
        labels = list(g.array_labels)
        data = np.array(g.data, dtype=float, ndmin=2)
        el, edge = _xdi_meta(g)
        units = [str(u).lower() for u in getattr(g, "array_units", [])]
        ie = _find(labels, ENERGY_LABELS)
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


def read_spectra(
    path: str | Path,
    mu_label: str | None = None,
    energy_label: str | None = None,
    repair: bool = False,
) -> list[Spectrum]:
    """All spectra of one file, read by larch and checked (:func:`check_arrays`)."""
    return SeriesReader(mu_label, energy_label, repair, fast=False).read(path)


# --- series reader ----------------------------------------------------------------------

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
    ):
        self.mu_label, self.energy_label, self.repair, self.fast = (
            mu_label,
            energy_label,
            repair,
            fast,
        )
        self._templates: dict[str, _Template] = {}
        self.n_fast = 0
        self.n_larch = 0

    def read(self, path: str | Path) -> list[Spectrum]:
        path = Path(path)
        src = str(path)
        if not path.is_file():
            raise SpectrumError(src, "no such file")
        if path.stat().st_size == 0:
            raise SpectrumError(src, "empty file")
        try:
            kind = _kind(path)
        except OSError as err:
            raise SpectrumError(src, f"cannot read ({err.strerror or err})") from None
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
                return _columns_larch(path, kind)
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

    def _build(self, src, labels, data, el, edge, notes, energy_scale) -> Spectrum:
        energy, mu, how = find_columns(src, labels, data, self.mu_label, self.energy_label)
        if energy_scale != 1.0:
            energy = energy * energy_scale
        spec = Spectrum(src, energy, mu, how, el, edge, notes)
        return check_arrays(spec, self.repair)

    def _athena(self, path: Path) -> list[Spectrum]:
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
            out.append(check_arrays(spec, self.repair))
        return out


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
