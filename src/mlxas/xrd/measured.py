"""Reading measured powder patterns and putting them on a model's grid.

Formats: two-column text (``.xy``, ``.dat``, ``.txt``), three-column ``.xye`` (2θ,
intensity, error), ``.csv`` (comma or semicolon, optional header row) and RRUFF's
powder files (``##KEY=value`` header lines, ``x, y`` rows, ``##END=``).  The x column is
2θ in degrees unless a header names Q (``q_A^-1``, ``q_nm^-1``, pyFAI style).

Every data row has the same number of columns, 2 or 3.  A third column is the standard
uncertainty of the intensity (checked, not used): finite and not negative, and in a file
not named ``.xye`` also below half the intensity (median against median), so that a
third column of something else (a calculated pattern, a second scan) is refused rather
than ignored.  More than 3 columns are refused: which one is the intensity is not known.

The wavelength is read from header fields when present: ``##X-RAY WAVELENGTH=1.5418``
(RRUFF), ``# Wavelength: 1.0e-10`` (pyFAI, in m), ``wavelength = 1.5406`` / ``lambda``
(Å, or with a unit ``nm``/``m``), ``Kalpha1 1.5406``, ``energy = 30 keV``, or an anode
(``Anode: Cu``, ``Target: Mo``: its Kα1 line).

Bad files raise :class:`MeasuredPatternError` naming the file and the reason; nothing
is sorted, dropped or repaired silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlxas.xrd.settings import HC_KEV_A, SOURCES, XRDSettings

__all__ = [
    "MeasuredPattern",
    "MeasuredPatternError",
    "on_model_grid",
    "read_pattern",
]

SUFFIXES = (".xy", ".xye", ".csv", ".txt", ".dat")
MIN_POINTS = 20

_NUM = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?)"
_WAVE = re.compile(
    r"(?:x-ray\s+wavelength|wavelength|wave\s*length|lambda|k-?alpha\s*1|alpha1)"
    r"\s*(?:\[[^\]]*\]|\([^)]*\))?\s*[:=]?\s*" + _NUM + r"\s*(nm|m|Å|A|angstrom)?",
    re.IGNORECASE,
)
_ENERGY = re.compile(r"energy\s*[:=]?\s*" + _NUM + r"\s*kev", re.IGNORECASE)
_ANODE = re.compile(r"(?i:anode|target|tube)(?i:\s+material)?\s*[:=]?\s*([A-Z][a-z]?)\b")


class MeasuredPatternError(ValueError):
    """A measured pattern that cannot be used; the message names the file and reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass
class MeasuredPattern:
    path: str
    x: np.ndarray  #: 2θ in degrees (axis two_theta) or Q in Å⁻¹ (axis q)
    intensity: np.ndarray
    axis: str  #: two_theta | q
    wavelength: float | None  #: Å, from the header; None if it gives none
    header: dict[str, str] = field(default_factory=dict)


def _wavelength(lines: list[str], path: Path) -> float | None:
    for line in lines:
        m = _WAVE.search(line)
        if m:
            value, unit = float(m.group(1)), (m.group(2) or "").lower()
            if unit == "nm":
                value *= 10.0
            elif unit == "m" or value < 1e-6:  # SI metres (pyFAI writes 1.54e-10)
                value *= 1e10
            if not 0.05 < value < 20.0:
                raise MeasuredPatternError(
                    path, f"wavelength {value:g} Å in the header is implausible"
                )
            return value
        m = _ENERGY.search(line)
        if m:
            return HC_KEV_A / float(m.group(1))
        m = _ANODE.search(line)
        if m and f"{m.group(1)}Ka1" in SOURCES:
            return SOURCES[f"{m.group(1)}Ka1"][0]
    return None


def _axis(lines: list[str]) -> tuple[str, float]:
    """Axis of the x column and its factor to 2θ-degrees or Å⁻¹."""
    text = " ".join(lines).lower()
    if re.search(r"\bq_nm\^-1|q\s*\(nm", text):
        return "q", 0.1
    if re.search(r"\bq_a\^-1|\bq\s*\((?:a|å)|\bq_å", text):
        return "q", 1.0
    return "two_theta", 1.0


def _split(line: str) -> list[str]:
    return [p for p in re.split(r"[,;\s]+", line.strip()) if p]


def read_pattern(path: str | Path) -> MeasuredPattern:
    """Read one measured pattern (format from the content; see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise MeasuredPatternError(path, "no such file")
    try:
        text = path.read_text(errors="strict")
    except UnicodeDecodeError:
        raise MeasuredPatternError(path, "not a text file (cannot decode as UTF-8)") from None
    header_lines, header, rows = [], {}, []
    line_of_row: list[int] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("##"):  # RRUFF / JCAMP-style key=value
            key, _, value = line[2:].partition("=")
            if key.strip().upper() == "END":
                break
            header[key.strip()] = value.strip()
            header_lines.append(line)
            continue
        if line[0] in "#!;%'\"" or line[0].isalpha():
            if rows:
                raise MeasuredPatternError(
                    path, f"line {n}: text after the data rows: {line[:60]!r}"
                )
            header_lines.append(line)
            continue
        parts = _split(line)
        try:
            values = [float(p) for p in parts]
        except ValueError:
            if not rows and re.search(r"[A-Za-z]", line):  # a column header such as 2theta,I
                header_lines.append(line)
                continue
            raise MeasuredPatternError(path, f"line {n}: not numbers: {line[:60]!r}") from None
        if len(values) < 2:
            raise MeasuredPatternError(path, f"line {n}: one column; need x and intensity")
        if len(values) > 3:
            raise MeasuredPatternError(
                path,
                f"line {n}: {len(values)} columns; a pattern has 2 (x, intensity) or 3 "
                "(x, intensity, its uncertainty, as in .xye): keep only those columns",
            )
        if rows and len(values) != len(rows[0]):
            raise MeasuredPatternError(
                path, f"line {n}: {len(values)} columns; the rows before it have {len(rows[0])}"
            )
        rows.append(values)
        line_of_row.append(n)
    if not rows:
        raise MeasuredPatternError(path, "no data rows")
    data = np.asarray(rows, dtype=float)
    if data.shape[1] == 3:
        _check_uncertainty(path, data, line_of_row)
    return _checked(path, data[:, :2], header_lines, header)


def _check_uncertainty(path: Path, data: np.ndarray, line_of_row: list[int]) -> None:
    """Refuse a third column that is not plausible as the intensity's uncertainty."""
    y, sigma = data[:, 1], data[:, 2]
    bad = ~np.isfinite(sigma) | (sigma < 0)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise MeasuredPatternError(
            path,
            f"line {line_of_row[i]}: third column {sigma[i]:g} is not a standard uncertainty "
            "(must be finite and not negative); keep only x and intensity if it is "
            "something else",
        )
    # Counting statistics give σ/I = 1/√counts: half the intensity at the median point
    # would be 4 counts.  A third column that large is more likely another pattern.
    if path.suffix.lower() != ".xye" and np.median(sigma) >= 0.5 * np.median(np.abs(y)):
        raise MeasuredPatternError(
            path,
            f"third column (median {np.median(sigma):g}) is not small beside the intensity "
            f"(median {np.median(np.abs(y)):g}), so it is not read as its uncertainty; keep "
            "only x and intensity, or name the file .xye if it is the uncertainty",
        )


def _checked(
    path: Path, data: np.ndarray, header_lines: list[str], header: dict
) -> MeasuredPattern:
    x, y = data[:, 0], data[:, 1]
    if len(x) < MIN_POINTS:
        raise MeasuredPatternError(path, f"{len(x)} data rows; need at least {MIN_POINTS}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise MeasuredPatternError(path, "non-finite values (nan/inf) in the data")
    if np.any(np.diff(x) <= 0):
        i = int(np.argmax(np.diff(x) <= 0))
        raise MeasuredPatternError(
            path, f"x is not strictly increasing at row {i + 2} ({x[i + 1]:g})"
        )
    axis, factor = _axis(header_lines)
    x = x * factor
    if axis == "two_theta" and (x[0] < 0 or x[-1] >= 180):
        raise MeasuredPatternError(path, f"2θ range {x[0]:g}..{x[-1]:g}° is outside 0..180°")
    if np.all(y <= 0):
        raise MeasuredPatternError(path, "no positive intensity")
    lam = _wavelength(header_lines, path)
    return MeasuredPattern(str(path), x, y, axis, lam, header)


def on_model_grid(
    pattern: MeasuredPattern, settings: XRDSettings, wavelength: float | None = None
) -> tuple[np.ndarray, dict]:
    """The pattern on the model's grid (``settings`` of the training data) and notes:
    ``wavelength`` used (Å), ``wavelength_source`` (argument | header | model),
    ``coverage`` (share of the grid inside the measured range; the rest is 0).

    2θ measured at another wavelength is converted through d = λ / (2 sin θ).  Grid
    points outside the measured range are 0, except those less than half a grid step
    beyond its ends, which take the end values.
    """
    from mlxas.xrd.pattern import axis_grid

    if settings.source == "synchrotron":  # axis two_theta needs one fixed energy
        lam_model = HC_KEV_A / settings.energy_kev[0]
    else:
        lam_model = SOURCES[settings.source][0]
    lam, src = wavelength, "argument"
    if lam is None:
        lam, src = pattern.wavelength, "header"
    if lam is None and pattern.axis == "two_theta":
        if settings.axis == "q" and settings.source == "synchrotron":
            raise MeasuredPatternError(
                pattern.path, "no wavelength in the header; give one to convert 2θ to Q"
            )
        lam, src = lam_model, "model"
    x, intensity = pattern.x, pattern.intensity
    q = 4 * math.pi * np.sin(np.radians(x / 2)) / lam if pattern.axis == "two_theta" else x
    if settings.axis == "q":
        target = q
    else:
        s = q * lam_model / (4 * math.pi)
        keep = s <= 1.0  # beyond the limiting sphere of the model's wavelength
        target, intensity = 2 * np.degrees(np.arcsin(s[keep])), intensity[keep]
        if len(target) < 2:
            raise MeasuredPatternError(pattern.path, "no point falls on the model's 2θ grid")
    grid = axis_grid(settings)
    # Grid points less than half a step beyond the measured ends take the end values: a
    # file on the model's grid at a wavelength quoted to fewer digits (1.5406 for
    # 1.540593 Å), or after 2θ -> Q -> 2θ, must not lose its end points to rounding.
    tol = 0.5 * (grid[1] - grid[0])
    lo, hi = target[0], target[-1]
    grid = np.where((grid < lo) & (grid > lo - tol), lo, grid)
    grid = np.where((grid > hi) & (grid < hi + tol), hi, grid)
    y = np.interp(grid, target, intensity, left=0.0, right=0.0)
    inside = (grid >= lo) & (grid <= hi)
    notes = {"wavelength": lam, "wavelength_source": src, "coverage": float(inside.mean())}
    return y, notes
