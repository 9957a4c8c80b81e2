"""FEFF engines behind one small interface: how to run one prepared run directory.

An engine runs a sequence of programs in a directory that holds ``feff.inp`` and writes
their output to one log.  The whole sequence shares one wall-clock deadline; a program
past it is killed with its whole process group (the process handling, environment
included, is in :mod:`mlxas.feff.process`).  Exit codes are written to the log but
never trusted (FEFF exits 0 after fatal errors): :mod:`mlxas.feff.checks` decides.

- ``feff8l``: the six FEFF8L modules shipped in the xraylarch wheel.
- ``feff6l``: the FEFF6L program from the same wheel; it writes one file per path, and
  mlxas sums them into ``chi.dat`` with larch's ``ff2chi``.
- ``feff10``: the FEFF10 modules of the feff10-rs wheel, driven by
  ``python -m mlxas.feff.feff10_driver`` so that a timeout can kill it like any program.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import IO

from mlxas.feff.cards import CardError, engine_names, engine_template
from mlxas.feff.process import GUARD, ExitWaiter, kill_group, program_env, read_from

__all__ = ["Engine", "EngineTimeout", "Feff6L", "Feff8L", "Feff10", "get_engine"]

#: Marker at the start of the lines mlxas itself writes into a run's log.
LOG_MARK = "#= mlxas:"


class EngineTimeout(RuntimeError):
    """The run exceeded its wall-clock limit and was killed."""


@dataclass(frozen=True)
class Engine:
    """One FEFF code.  Subclasses say which programs to run and how to finish a run."""

    name: str
    label: str
    version: str
    max_atoms: int | None
    max_potentials: int | None
    template: dict = field(default_factory=dict, repr=False, compare=False)
    #: How often (s) a running program's log is scanned for a failure.
    poll_interval: float = 0.5

    def commands(self, rundir: Path) -> list[list[str]]:
        """The programs to run in ``rundir``, in order."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Imports and look-ups done once per process, before the first run is timed."""

    def finish(self, rundir: Path, log: IO[str]) -> None:
        """Work after the programs (e.g. summing paths); errors go to the log, not raised."""

    def spectroscopy(self, feff_inp: str) -> str:
        """``xanes`` if the input has a XANES card, else ``exafs``."""
        xanes = re.search(r"^\s*XANES\b", feff_inp, re.M | re.I)
        return "xanes" if xanes and "xanes" in self.template["outputs"] else "exafs"

    def outputs(self, feff_inp: str) -> tuple[str, ...]:
        """Output files a complete run of this input writes."""
        return tuple(self.template["outputs"][self.spectroscopy(feff_inp)])

    def expected_kmax(self, feff_inp: str) -> float:
        """Last k (Å⁻¹) of a complete output: the EXAFS (XANES) card's value or the default."""
        kind = self.spectroscopy(feff_inp)
        card = self.template["kmax_card"].get(kind)
        if card:
            m = re.search(rf"^\s*{card}\s+([-+0-9.eEdD]+)", feff_inp, re.M | re.I)
            if m:
                return float(m.group(1).replace("d", "e").replace("D", "e"))
        return float(self.template["kmax_default"][kind])

    def run(self, rundir: Path, timeout: float, log: Path) -> float:
        """Run in ``rundir`` (which holds feff.inp); stdout and stderr go to ``log``.

        Returns the wall time in s.  Raises :class:`EngineTimeout` past ``timeout`` s.
        A program whose output shows a failure (see :mod:`mlxas.feff.checks`) is stopped
        there and the later programs are not started: the run has failed already, and
        a long SCF loop need not finish first.
        """
        from mlxas.feff.checks import first_fatal

        start = time.monotonic()
        deadline = start + timeout
        with open(log, "w") as fh:
            for cmd in self.commands(rundir):
                prog = _program_name(cmd)
                if time.monotonic() >= deadline:
                    fh.write(f"{LOG_MARK} timeout of {timeout:g} s reached before {prog}\n")
                    raise EngineTimeout(f"timed out after {timeout:g} s before {prog}")
                fh.write(f"{LOG_MARK} running {prog}\n")
                fh.flush()
                offset = fh.tell()
                proc = subprocess.Popen(
                    cmd,
                    cwd=rundir,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=program_env(),
                )
                failed = False
                with GUARD.watching(proc), ExitWaiter(proc) as waiter:
                    while not waiter.wait(min(self.poll_interval, deadline - time.monotonic())):
                        if time.monotonic() >= deadline:
                            kill_group(proc)
                            fh.write(f"\n{LOG_MARK} killed {prog} at the {timeout:g} s timeout\n")
                            raise EngineTimeout(f"timed out after {timeout:g} s in {prog}")
                        if first_fatal(read_from(log, offset)) is not None:
                            kill_group(proc)
                            failed = True
                            break
                    rc = proc.wait()
                fh.write(f"\n{LOG_MARK} {prog} exit code {rc}\n")
                fh.flush()
                if failed or first_fatal(read_from(log, offset)) is not None:
                    fh.write(f"{LOG_MARK} stopped after {prog}: failure message above\n")
                    break
            else:
                self.finish(rundir, fh)
        return time.monotonic() - start


def _program_name(cmd: list[str]) -> str:
    return cmd[cmd.index("-m") + 1].rsplit(".")[-1] if "-m" in cmd else Path(cmd[0]).name


@cache
def _larch_bindir() -> Path:
    """The folder of the FEFF binaries inside the installed xraylarch wheel.

    Found from the package's location without importing it: ``import larch`` takes ~1 s
    (numpy, h5py, urllib3, ...), paid by every FEFF job; the overhead benchmark counts
    it.  Falls back to larch's own ``larch.utils.bindir`` if the lookup is ambiguous.
    """
    spec = importlib.util.find_spec("larch")
    # The wheel ships binaries for several systems, in folders named like "linux64".
    system = {"linux": "linux", "darwin": "darwin", "win32": "win"}.get(sys.platform, "?")
    if spec is not None and spec.origin is not None:
        found = [
            p.parent
            for p in (Path(spec.origin).parent / "bin").glob(f"{system}*/feff8l_rdinp")
            if os.access(p, os.X_OK)
        ]
        if len(found) == 1:
            return found[0]
    from larch.utils import bindir

    return Path(bindir)


@dataclass(frozen=True)
class Feff8L(Engine):
    def prepare(self) -> None:
        _larch_bindir()

    def commands(self, rundir: Path) -> list[list[str]]:
        return [[str(_larch_bindir() / f"feff8l_{m}")] for m in self.template["programs"]]


@dataclass(frozen=True)
class Feff6L(Engine):
    def prepare(self) -> None:
        _larch_bindir()
        import larch.xafs.feffdat  # noqa: F401  (slow import, used by finish)

    def commands(self, rundir: Path) -> list[list[str]]:
        return [[str(_larch_bindir() / "feff6l")]]

    def finish(self, rundir: Path, log: IO[str]) -> None:
        """Sum FEFF6L's path files into chi.dat with larch's ff2chi.

        S02 (second value of HOLE), DEBYE (correlated Debye model, larch's
        ``sigma2_debye``) and SIG2 (added to every path) are applied as FEFF's own
        summation would; without them chi(k) has no disorder damping.
        """
        paths = sorted(rundir.glob("feff[0-9][0-9][0-9][0-9].dat"))
        if not paths:
            log.write(f"{LOG_MARK} no feffNNNN.dat path files to sum\n")
            return
        from larch.xafs.feffdat import feffpath, ff2chi

        s02, sigma2 = _feff6_path_settings((rundir / "feff.inp").read_text())
        group = ff2chi(
            [feffpath(str(p), s02=s02, sigma2=sigma2) for p in paths],
            kmax=float(self.template["kmax_default"]["exafs"]),
        )
        _write_columns(
            rundir / "chi.dat",
            f"chi(k) of {len(paths)} FEFF6L paths summed by larch ff2chi "
            f"(S02 {s02:g}, sigma2 {sigma2})",
            "k chi",
            [group.k, group.chi],
        )
        log.write(f"{LOG_MARK} summed {len(paths)} paths into chi.dat\n")


@dataclass(frozen=True)
class Feff10(Engine):
    def commands(self, rundir: Path) -> list[list[str]]:
        kind = self.spectroscopy((rundir / "feff.inp").read_text())
        stages = ",".join(self.template["stages"][kind])
        return [[sys.executable, "-m", "mlxas.feff.feff10_driver", "--stages", stages]]


def _feff6_path_settings(feff_inp: str) -> tuple[float, str]:
    """S02 and the sigma² expression (Å², larch syntax) from FEFF6L's HOLE, DEBYE, SIG2."""
    cards: dict[str, list[str]] = {}
    for line in feff_inp.splitlines():
        words = line.split()
        if words and words[0].isalpha():
            cards.setdefault(words[0].upper(), words[1:])
    hole = cards.get("HOLE", [])
    s02 = float(hole[1]) if len(hole) > 1 else 1.0
    terms = []
    if len(cards.get("DEBYE", [])) >= 2:
        temp, theta = (float(v) for v in cards["DEBYE"][:2])
        terms.append(f"sigma2_debye({temp:g}, {theta:g})")
    if cards.get("SIG2"):
        terms.append(f"{float(cards['SIG2'][0]):g}")
    return s02, " + ".join(terms) or "0"


def _write_columns(path: Path, title: str, header: str, columns: list) -> None:
    import numpy as np

    tmp = path.with_name(f".{path.name}.tmp")
    np.savetxt(tmp, np.column_stack(columns), fmt="%14.7e", header=f"{title}\n{header}")
    tmp.replace(path)


_CLASSES: dict[str, type[Engine]] = {"feff8l": Feff8L, "feff6l": Feff6L, "feff10": Feff10}
_WHEEL = {"feff8l": "xraylarch", "feff6l": "xraylarch", "feff10": "feff10-rs"}


@cache
def get_engine(name: str) -> Engine:
    """The engine called ``name``; its version names the FEFF code and the wheel it ships in."""
    if name not in _CLASSES:
        raise CardError(
            f"feff.engine: engine {name!r} is not available (have: {', '.join(engine_names())})"
        )
    tpl = engine_template(name)
    wheel = _WHEEL[name]
    return _CLASSES[name](
        name=name,
        label=tpl["label"],
        version=f"{tpl['version']}+{wheel}{dist_version(wheel)}",
        max_atoms=tpl["limits"]["max_atoms"],
        max_potentials=tpl["limits"]["max_potentials"],
        template=tpl,
    )
