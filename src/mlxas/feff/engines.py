"""FEFF engines behind one small interface: how to run one prepared run directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

from mlxas.feff.cards import engine_template

__all__ = ["Engine", "EngineTimeout", "get_engine"]


class EngineTimeout(RuntimeError):
    """The run exceeded its wall-clock limit and was killed."""


@dataclass(frozen=True)
class Engine:
    name: str
    version: str
    max_atoms: int | None
    max_potentials: int | None

    def commands(self) -> list[list[str]]:
        raise NotImplementedError

    def run(self, rundir: Path, timeout: float, log: Path) -> float:
        """Run in ``rundir`` (which holds feff.inp); stdout+stderr go to ``log``.

        Returns the wall time.  The whole sequence of programs shares one deadline; a
        run past it is killed with its process group.  Exit codes are recorded in the
        log but not trusted: the output checks decide.
        """
        start = time.monotonic()
        with open(log, "w") as fh:
            for cmd in self.commands():
                remaining = timeout - (time.monotonic() - start)
                if remaining <= 0:
                    raise EngineTimeout(f"timed out after {timeout:g} s")
                fh.write(f"#= mlxas: running {Path(cmd[0]).name}\n")
                fh.flush()
                proc = subprocess.Popen(
                    cmd, cwd=rundir, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
                )
                try:
                    rc = proc.wait(timeout=remaining)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    fh.write(f"#= mlxas: killed {Path(cmd[0]).name} at the {timeout:g} s timeout\n")
                    raise EngineTimeout(
                        f"timed out after {timeout:g} s in {Path(cmd[0]).name}"
                    ) from None
                fh.write(f"#= mlxas: {Path(cmd[0]).name} exit code {rc}\n")
        return time.monotonic() - start


@dataclass(frozen=True)
class Feff8L(Engine):
    def commands(self) -> list[list[str]]:
        from larch.utils import bindir

        return [
            [str(Path(bindir) / f"feff8l_{m}")]
            for m in ("rdinp", "pot", "xsph", "pathfinder", "genfmt", "ff2x")
        ]


_ENGINES = {"feff8l": Feff8L}


@cache
def get_engine(name: str) -> Engine:
    if name not in _ENGINES:
        raise ValueError(
            f"feff.engine: engine {name!r} is not available (have: {sorted(_ENGINES)})"
        )
    tpl = engine_template(name)
    # The binaries ship inside the xraylarch wheel, so its version pins them.
    ver = f"{tpl['version']}+xraylarch{version('xraylarch')}"
    return _ENGINES[name](
        name=name,
        version=ver,
        max_atoms=tpl["limits"]["max_atoms"],
        max_potentials=tpl["limits"]["max_potentials"],
    )
