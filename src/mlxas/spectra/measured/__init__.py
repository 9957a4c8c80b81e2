"""Measured spectra: reading beamline files through larch and refusing bad ones.

Accepted files: XDI (``larch.io.read_xdi``), Athena projects (``read_athena``; every group
is one spectrum) and plain column files (``read_ascii``).  mu(E) is taken from a column
named like mu (``mutrans``, ``mu``, ``xmu``, ``mufluor``, ...) or computed from the
intensities: ln(i0/itrans) for transmission, ifluor/i0 for fluorescence.

Every check raises :class:`SpectrumError` with a message that starts with the file name.
Nothing is repaired silently: larch sorts energies and nudges duplicated ones without a
word, so such files are refused unless the caller asks for the repair, and then the repair
is written into the spectrum's notes.

The module is split by what each part looks at:

- :mod:`.spectrum`: the :class:`Spectrum`, its columns and the checks on its arrays;
- :mod:`.files`: the file itself: size and shape checked before anything is parsed (a file
  far larger than any spectrum, or binary data, is refused in milliseconds), its kind, and
  larch's readers;
- :mod:`.series`: :class:`SeriesReader`, which parses later files of a known header layout
  without larch.

Units: energy in eV.
"""

from __future__ import annotations

from pathlib import Path

from mlxas.spectra.measured.files import MAX_FILE_BYTES, MAX_POINTS, MAX_PROJECT_BYTES
from mlxas.spectra.measured.series import SeriesReader
from mlxas.spectra.measured.spectrum import (
    MIN_POINTS,
    Spectrum,
    SpectrumError,
    check_arrays,
    find_columns,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_POINTS",
    "MAX_PROJECT_BYTES",
    "MIN_POINTS",
    "SeriesReader",
    "Spectrum",
    "SpectrumError",
    "check_arrays",
    "find_columns",
    "read_spectra",
]


def read_spectra(
    path: str | Path,
    mu_label: str | None = None,
    energy_label: str | None = None,
    repair: bool = False,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[Spectrum]:
    """All spectra of one file, read by larch and checked (:func:`check_arrays`).

    ``max_bytes``: the largest XDI or column file read (Athena projects: twice that,
    uncompressed); larger files are refused before they are parsed.
    """
    return SeriesReader(mu_label, energy_label, repair, fast=False, max_bytes=max_bytes).read(path)
