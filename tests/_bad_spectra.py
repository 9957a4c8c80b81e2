"""Bad spectrum files, and a reader run in a child process that reports its cost.

Used by ``tests/test_measured.py`` and ``benchmarks/bench_reliability.py`` (which puts
``tests/`` on ``sys.path``).  The malformed files are damaged copies of the real Cu foil;
the oversized ones are far larger than any spectrum.  Each case comes with a pattern that
the refusal's reason must match.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

EXPERIMENTAL = Path(__file__).resolve().parent / "data" / "experimental"
CU = EXPERIMENTAL / "cu_metal_rt.xdi"

#: One data row of the Cu foil's layout (energy, time, itrans, mutrans), 44 bytes.
_ROW = b"  8979.50   1.0   123456.789012   1.2345678\n"


def _split() -> tuple[list[str], list[str]]:
    lines = CU.read_text().splitlines()
    return [ln for ln in lines if ln.startswith("#")], [
        ln for ln in lines if ln.strip() and not ln.startswith("#")
    ]


def _text(path: Path, header: list[str], data: list[str]) -> Path:
    path.write_text("\n".join(header + data) + "\n")
    return path


def _with_value(line: str, col: int, value: str) -> str:
    words = line.split()
    words[col] = value
    return "  ".join(words)


def _nan(p: Path) -> Path:
    h, d = _split()
    d[100] = _with_value(d[100], 3, "nan")
    return _text(p, h, d)


def _unsorted(p: Path) -> Path:
    h, d = _split()
    d[150], d[151] = d[151], d[150]
    return _text(p, h, d)


def _duplicated(p: Path) -> Path:
    h, d = _split()
    d.insert(201, d[200])
    return _text(p, h, d)


def _damaged_line(p: Path) -> Path:
    h, d = _split()
    d[300] = "8990.0 -1.1 ### 151941.70"
    return _text(p, h, d)


def _partial(p: Path) -> Path:
    text = CU.read_text()
    p.write_text(text[: text.index("\n", len(text) // 2) - 12])
    return p


def _kev(p: Path) -> Path:
    h, d = _split()
    return _text(p, h, [_with_value(ln, 0, f"{float(ln.split()[0]) / 1000:.7f}") for ln in d])


def _no_energy(p: Path) -> Path:
    h, d = _split()
    return _text(p, [ln.replace("Column.1: energy eV", "Column.1: counter") for ln in h], d)


def _short(p: Path) -> Path:
    h, d = _split()
    return _text(p, h, d[:20])


def _empty(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _notes(p: Path) -> Path:
    p.write_text("beamtime notes\nsample changed at 14:00\n")
    return p


def _junk(p: Path) -> Path:
    p.write_bytes(os.urandom(3000))
    return p


#: Malformed spectra: name -> (file name, maker, pattern of the refusal's reason).
MALFORMED: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "nan": ("nan.xdi", _nan, r"NaN or infinite values"),
    "unsorted": ("unsorted.xdi", _unsorted, r"energies are not increasing"),
    "duplicated": ("dup.xdi", _duplicated, r"duplicated energies"),
    "damaged_line": ("damaged.xdi", _damaged_line, r"data line\(s\) would be lost"),
    "partial": ("partial.xdi", _partial, r"NaN or infinite values"),
    "kev_without_unit": ("kev.xdi", _kev, r"not eV \(keV without a declared unit"),
    "no_energy_column": ("noenergy.xdi", _no_energy, r"missing energy column"),
    "too_few_points": ("short.xdi", _short, r"too few points"),
    "empty": ("empty.xdi", _empty, r"empty file"),
    "text_only": ("notes.txt", _notes, r"no numeric data"),
    "random_bytes_3kB": ("junk.dat", _junk, r"binary data"),
}


def _random_50mb(p: Path) -> Path:
    with open(p, "wb") as fh:
        for _ in range(50):
            fh.write(os.urandom(2**20))
    return p


def _numbers_50mb(p: Path) -> Path:
    header = "".join(f"{ln}\n" for ln in _split()[0]).encode()
    with open(p, "wb") as fh:
        fh.write(header)
        block = _ROW * (2**20 // len(_ROW))
        for _ in range(50):
            fh.write(block)
    return p


def _many_rows(p: Path) -> Path:
    """4 MB, under the size limit, but 10⁵ points more than any spectrum has."""
    p.write_bytes(b"# energy mu\n" + b"8979.5 1.2\n" * 400_000)
    return p


def _gzip_bomb(p: Path) -> Path:
    """A small gzip file (Athena projects are gzipped) that inflates to 200 MB."""
    with gzip.open(p, "wb", compresslevel=9) as fh:
        block = b" " * 2**20
        for _ in range(200):
            fh.write(block)
    return p


#: Files far larger than any spectrum: name -> (file name, maker, reason pattern).
OVERSIZED: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "random_bytes_50MB": ("random.xdi", _random_50mb, r"file is 50\.0 MB, larger than one"),
    "numbers_50MB": ("numbers.dat", _numbers_50mb, r"file is 50\.\d MB, larger than one"),
    "rows_400k": ("rows.dat", _many_rows, r"more than 110000 lines"),
    "gzip_inflating_to_200MB": ("bomb.prj", _gzip_bomb, r"compressed file holds more than"),
}

_CHILD = """
import json, re, sys, time
from pathlib import Path
from mlxas.spectra.measured import SpectrumError, read_spectra

def peak_mb():
    # VmHWM: peak resident memory of this process image.  Not getrusage's ru_maxrss,
    # which Linux carries over from the parent through fork and exec.
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024

if sys.argv[2] == "preload":  # larch's import (seconds, ~250 MB) outside the measurement
    import larch.io, larch.xafs
before = peak_mb()
start = time.perf_counter()
try:
    read_spectra(sys.argv[1])
    out = {"refused": False, "reason": ""}
except SpectrumError as err:
    out = {"refused": True, "reason": str(err)}
out["seconds"] = time.perf_counter() - start
out["peak_rss_mb"] = peak_mb()
out["rss_before_mb"] = before
print(json.dumps(out))
"""


def read_in_child(path: Path, timeout: float = 600, preload_larch: bool = False) -> dict:
    """``read_spectra(path)`` in a fresh interpreter: ``refused``, ``reason`` (the whole
    message), ``seconds`` of the call and the child's peak resident memory in MB
    (``peak_rss_mb``, interpreter and numpy included; ``rss_before_mb`` before the call).
    ``preload_larch`` imports larch before the call, so that only the reading is timed."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), "preload" if preload_larch else "-"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"reader child failed on {path}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
