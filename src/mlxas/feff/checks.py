"""Judge a FEFF run from its log and outputs; failures carry machine-readable reasons.

FEFF exits 0 after fatal errors and only warns about some bad inputs, so the exit code
is never used.  The log is searched for the messages below (each one copied from what
FEFF8L, FEFF6L or FEFF10 print on a bad input); then the output files are read.

Reason codes (also listed in docs/feff.md):

=====================  ===============================================================
``unknown_card``       the engine rejected a card of feff.inp
``no_absorber``        no atom with potential 0 (the absorber)
``unused_potential``   a POTENTIALS line whose potential no atom uses
``multiple_absorbers`` more than one atom with potential 0
``too_many_atoms``     the ATOMS list is longer than the engine's limit
``cluster_too_large``  the FMS/SCF cluster exceeds FEFF's hard-wired limit (FEFF shrinks
                       it and carries on)
``atoms_very_close``   two atoms closer than FEFF accepts (FEFF warns and carries on)
``fatal_message``      any other fatal message (STOP, Fatal error, runtime error)
``crashed``            a program died on a signal or a Python error
``timeout``            the run passed its wall-clock limit and was killed
``missing_output``     an output file was not written
``truncated_output``   an output file is empty, cut short or has a malformed row
``nan_in_output``      an output holds NaN, inf or an overflowed (``****``) number
``non_monotonic_grid`` the k or energy grid does not strictly increase
``all_zero``           chi(k) or mu(E) is identically zero
=====================  ===============================================================
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "LOG_REASONS",
    "OUTPUT_REASONS",
    "FeffOutput",
    "RunFailure",
    "check_log",
    "check_outputs",
    "first_fatal",
    "read_chi_dat",
    "read_xmu_dat",
]

# (reason, pattern), most specific first: a bad input often triggers a warning and then a
# generic fatal message (two atoms 0.5 Å apart: the warning, then "FOLP ... too big" and
# STOP), and the first reason of this list that matches anywhere in the log is reported.
_LOG_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (reason, re.compile(pattern, re.M))
    for reason, pattern in [
        # FEFF8L: "Keyword unrecognized."; FEFF6L: 'Unknown keyword: "X"';
        # FEFF10: "unrecognized keyword 'X'"
        (
            "unknown_card",
            r"^\s*Keyword unrecognized\.|Unknown keyword: \"|unrecognized keyword '",
        ),
        # All three: "No atoms or overlap cards for unique pot     0";
        # FEFF10 (wheel): "no atom with ipot=0 (absorber) found in ATOMS list"
        (
            "no_absorber",
            r"No atoms or overlap cards for unique pot\s+0\s*$"
            r"|no atom with ipot=0 \(absorber\)|no absorber potential \(ipot=0\)"
            r"|No absorbing atom \(unique pot 0",
        ),
        ("unused_potential", r"No atoms or overlap cards for unique pot\s+[1-9][0-9]*\s*$"),
        (
            "multiple_absorbers",
            r"More than one absorbing atom|Only one absorbing atom allowed"
            r"|More than one atom in the extended cluster has ipot=0",
        ),
        # FEFF8L: "Too many atoms, max is 1000"; FEFF10: "... maximum is 4000";
        # FEFF6L: "Too many atoms in ATOMS list. Maximum is 500"
        ("too_many_atoms", r"Too many atoms, max(imum)? is|Too many atoms in ATOMS list"),
        # FEFF8L/FEFF10 FMS (also inside SCF): "This exceeds the hard wired limit of 100
        # atoms. The cluster size was reset to 100 and the calculation will continue."
        ("cluster_too_large", r"exceeds the hard wired limit of\s+\d+\s+atoms"),
        # FEFF8L, FEFF6L: "WARNING:  TWO ATOMS VERY CLOSE TOGETHER.  CHECK INPUT.";
        # FEFF10: ":WARNING  TWO ATOMS VERY CLOSE TOGETHER. CHECK INPUT."
        ("atoms_very_close", r"TWO ATOMS VERY CLOSE TOGETHER"),
        ("crashed", r"Program received signal|Segmentation fault|^Traceback \(most recent"),
        # gfortran prints "STOP" (alone or with a message) when FEFF stops on an error;
        # FEFF8L/FEFF10: "Fatal error"; FEFF6L: "Fatal Error: ..."; the feff10 driver:
        # "feff10 error: ..."; modules after a failed one: "failed to read geom.json".
        (
            "fatal_message",
            r"^\s*STOP\b|Fatal [Ee]rror|^ *FATAL error|Fortran runtime error"
            r"|^feff10 error: |Error reading input|failed to read \S+\.json",
        ),
    ]
]

LOG_REASONS = [reason for reason, _ in _LOG_PATTERNS]
OUTPUT_REASONS = [
    "missing_output",
    "truncated_output",
    "nan_in_output",
    "non_monotonic_grid",
    "all_zero",
]

# Tokens FEFF writes for values it cannot print: NaN, Infinity, or Fortran's asterisks.
_NONFINITE = re.compile(r"^[-+]?(nan|inf|infinity)$|^\*+$", re.I)


class RunFailure(Exception):
    """A FEFF run that must not be used; ``reason`` is a short code, ``detail`` a sentence."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class FeffOutput:
    """Arrays of one successful run: k (Å⁻¹), chi(k), energy (eV), mu, mu0; E0 in eV."""

    k: np.ndarray
    chi: np.ndarray
    energy: np.ndarray
    mu: np.ndarray
    mu0: np.ndarray
    e0: float


def first_fatal(log_text: str) -> RunFailure | None:
    """The first failure found in a log (see the reason table), or ``None``."""
    for reason, pattern in _LOG_PATTERNS:
        m = pattern.search(log_text)
        if m:
            start = log_text.rfind("\n", 0, m.start()) + 1
            end = log_text.find("\n", m.end())
            line = log_text[start : end if end >= 0 else len(log_text)].strip()
            return RunFailure(reason, f"FEFF log: {line[:200]}")
    return None


def check_log(log_text: str) -> None:
    """Raise :class:`RunFailure` if the log holds a fatal message or a failing warning."""
    failure = first_fatal(log_text)
    if failure is not None:
        raise failure


def _load_columns(path: Path, ncols: int) -> np.ndarray:
    if not path.is_file():
        raise RunFailure("missing_output", f"{path.name} was not written")
    text = path.read_text(errors="replace")
    rows = [ln.split() for ln in text.splitlines() if ln.strip() and ln.lstrip()[0] != "#"]
    if not rows:
        raise RunFailure("truncated_output", f"{path.name} has no data rows")
    for i, row in enumerate(rows):
        if len(row) < ncols:
            raise RunFailure(
                "truncated_output",
                f"{path.name} row {i + 1} has {len(row)} of {ncols} columns",
            )
        for tok in row[:ncols]:
            if _NONFINITE.match(tok):
                raise RunFailure(
                    "nan_in_output", f"{path.name} row {i + 1} holds the value {tok!r}"
                )
    try:
        data = np.array([[float(t) for t in row[:ncols]] for row in rows])
    except ValueError as err:
        raise RunFailure("truncated_output", f"{path.name} has a malformed row ({err})") from None
    if not np.all(np.isfinite(data)):
        raise RunFailure("nan_in_output", f"{path.name} holds NaN or inf")
    return data


def _check_grid(name: str, what: str, grid: np.ndarray) -> None:
    steps = np.diff(grid)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise RunFailure(
            "non_monotonic_grid",
            f"{name}: {what} does not increase after row {i + 1} "
            f"({grid[i]:g} then {grid[i + 1]:g})",
        )


def _check_kmax(name: str, k: np.ndarray, kmax: float) -> None:
    if math.isnan(kmax) or len(k) < 2:
        return
    step = float(np.median(np.diff(k)))
    if k[-1] < kmax - 0.5 * step:
        raise RunFailure(
            "truncated_output", f"{name} ends at k = {k[-1]:g} Å⁻¹, expected {kmax:g} Å⁻¹"
        )


def read_chi_dat(path: Path, kmax: float = float("nan")) -> tuple[np.ndarray, np.ndarray]:
    """k (Å⁻¹) and chi(k) from chi.dat, checked (grid, completeness up to ``kmax``, zeros)."""
    data = _load_columns(path, 2)
    k, chi = data[:, 0], data[:, 1]
    if len(k) < 10:
        raise RunFailure("truncated_output", f"{path.name} has only {len(k)} rows")
    _check_grid(path.name, "k", k)
    _check_kmax(path.name, k, kmax)
    if not np.any(chi != 0):
        raise RunFailure("all_zero", f"{path.name}: chi(k) is zero everywhere")
    return k, chi


def read_xmu_dat(
    path: Path, kmax: float = float("nan")
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Energy (eV), mu, mu0 and E0 (eV, the energy where FEFF's k is zero) from xmu.dat.

    Columns: omega (eV), e (eV, from the edge), k (Å⁻¹), mu, mu0, chi.
    """
    data = _load_columns(path, 6)
    energy, k, mu, mu0 = data[:, 0], data[:, 2], data[:, 3], data[:, 4]
    if len(energy) < 10:
        raise RunFailure("truncated_output", f"{path.name} has only {len(energy)} rows")
    _check_grid(path.name, "energy", energy)
    _check_kmax(path.name, k, kmax)
    if not np.any(mu != 0):
        raise RunFailure("all_zero", f"{path.name}: mu(E) is zero everywhere")
    # k = sqrt((E - E0) / 3.81 eV·Å²) with the sign of E - E0 (FEFF's convention).
    i = int(np.argmin(np.abs(k)))
    e0 = float(energy[i] - k[i] * abs(k[i]) * 3.80998212)
    return energy, mu, mu0, e0


def check_outputs(rundir: Path, outputs: tuple[str, ...], kmax: float) -> FeffOutput:
    """Read and check the outputs of a run (``chi.dat`` and/or ``xmu.dat``).

    ``kmax`` (Å⁻¹) is where a complete output ends; NaN skips that check.  Raises
    :class:`RunFailure` with the first problem found.
    """
    for name in outputs:
        if not (rundir / name).is_file():
            raise RunFailure("missing_output", f"{name} was not written")
    empty = np.zeros(0)
    k, chi = read_chi_dat(rundir / "chi.dat", kmax) if "chi.dat" in outputs else (empty, empty)
    if "xmu.dat" in outputs:
        energy, mu, mu0, e0 = read_xmu_dat(rundir / "xmu.dat", kmax)
    else:
        energy, mu, mu0, e0 = empty, empty, empty, float("nan")
    return FeffOutput(k=k, chi=chi, energy=energy, mu=mu, mu0=mu0, e0=e0)
