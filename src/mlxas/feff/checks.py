"""Judge a FEFF run from its outputs and logs.  Reasons are machine-readable codes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FeffOutput", "RunFailure", "check_run", "read_chi_dat", "read_xmu_dat"]

# Messages that mean the run is unusable, whatever the exit code says.
_FATAL = [
    (re.compile(r"fatal error", re.I), "fatal_message"),
    (re.compile(r"^\s*error", re.I | re.M), "fatal_message"),
    (re.compile(r"STOP\s", re.M), "fatal_message"),
    (re.compile(r"Segmentation fault|SIGSEGV|Program received signal", re.I), "crashed"),
    (
        re.compile(r"atoms? (are )?very close|atoms are too close|too close", re.I),
        "atoms_very_close",
    ),
    (re.compile(r"cluster too (large|big)|too many atoms|nclusx|natx", re.I), "cluster_too_large"),
]


class RunFailure(Exception):
    """A FEFF run that must not be used; ``reason`` is a short code, ``detail`` a sentence."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class FeffOutput:
    k: np.ndarray
    chi: np.ndarray
    energy: np.ndarray
    mu: np.ndarray
    mu0: np.ndarray
    e0: float


def _load_columns(path: Path, ncols: int) -> np.ndarray:
    if not path.is_file():
        raise RunFailure("missing_output", f"{path.name} was not written")
    text = path.read_text(errors="replace")
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        raise RunFailure("truncated_output", f"{path.name} has no data rows")
    try:
        data = np.array([[float(x) for x in ln.split()] for ln in rows])
    except ValueError:
        if any(
            tok.lower() in ("nan", "-nan", "inf", "-inf", "infinity")
            for ln in rows
            for tok in ln.split()
        ):
            raise RunFailure("nan_in_output", f"{path.name} contains NaN or inf") from None
        raise RunFailure(
            "truncated_output", f"{path.name} has a malformed or truncated row"
        ) from None
    if data.ndim != 2 or data.shape[1] < ncols:
        raise RunFailure(
            "truncated_output", f"{path.name} has rows with fewer than {ncols} columns"
        )
    if not np.all(np.isfinite(data)):
        raise RunFailure("nan_in_output", f"{path.name} contains NaN or inf")
    return data


def read_chi_dat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """k (Å^-1) and chi(k) from FEFF's chi.dat."""
    data = _load_columns(path, 2)
    return data[:, 0], data[:, 1]


def read_xmu_dat(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Energy (eV), mu, mu0 and the edge energy E0 (eV) from FEFF's xmu.dat."""
    data = _load_columns(path, 6)
    energy, k, mu, mu0 = data[:, 0], data[:, 2], data[:, 3], data[:, 4]
    # E0 is where FEFF's k column crosses zero; interpolate between grid points.
    i = int(np.argmin(np.abs(k)))
    e0 = float(energy[i] - k[i] * abs(k[i]) / 0.2624682917)  # E - E0 = k^2 / (2m/hbar^2)
    return energy, mu, mu0, e0


def check_run(rundir: Path, log_text: str) -> FeffOutput:
    """Raise :class:`RunFailure` with the first problem found, or return the parsed output."""
    for pattern, reason in _FATAL:
        m = pattern.search(log_text)
        if m:
            line = log_text[log_text.rfind("\n", 0, m.start()) + 1 : log_text.find("\n", m.end())]
            raise RunFailure(reason, f"FEFF log: {line.strip()[:200]}")
    k, chi = read_chi_dat(rundir / "chi.dat")
    energy, mu, mu0, e0 = read_xmu_dat(rundir / "xmu.dat")
    if len(k) < 10:
        raise RunFailure("truncated_output", f"chi.dat has only {len(k)} points")
    if np.any(np.diff(k) <= 0):
        raise RunFailure("non_monotonic_grid", "k grid of chi.dat is not strictly increasing")
    if np.any(np.diff(energy) <= 0):
        raise RunFailure("non_monotonic_grid", "energy grid of xmu.dat is not strictly increasing")
    if not np.any(chi != 0):
        raise RunFailure("all_zero", "chi.dat is identically zero")
    return FeffOutput(k=k, chi=chi, energy=energy, mu=mu, mu0=mu0, e0=e0)
