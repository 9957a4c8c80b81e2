"""The first-shell reference path: one FEFF run of the element's reference crystal.

The run goes through the simulation stage's engine interface
(:class:`mlxas.engines.feff.FeffEngine` run by :func:`mlxas.simulation.runner.run_item`),
like every FEFF run of mlxas (timeout, log checks, output checks, quarantine of a failed
run, the done marker), in a temporary folder that is renamed into the cache once it
passed.  The cache key is the hash of the exact ``feff.inp`` and the engine version.

Units: distances in Å.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BaselineError",
    "ReferencePath",
    "default_cache_dir",
    "first_shell_path",
    "read_reference_path",
]

#: Cluster radius (Å) of the reference FEFF run, at least this and twice the first shell:
#: the muffin-tin potentials need the neighbours of the first shell too.
MIN_CLUSTER_RADIUS = 5.5
#: FEFF's path file of the first shell.
PATH_FILE = "feff0001.dat"
#: Files a reference run keeps: the run's own record and the path file.
_KEEP = ("feff.inp", "feff.log", "chi.dat", "xmu.dat", PATH_FILE)


class BaselineError(RuntimeError):
    """The baseline cannot run: no reference crystal, a failed FEFF run, a bad path file."""


@dataclass(frozen=True)
class ReferencePath:
    """A first-shell FEFF path ready for ``feffit``.

    ``reff``: half path length (Å); ``degeneracy``: neighbours in the shell; ``s02``: S0²
    computed by FEFF (NaN for a user's path file without it); ``feff_seconds``: wall time
    of the FEFF run (0 when read from the cache).
    """

    file: Path
    element: str
    edge: str
    reff: float
    degeneracy: float
    s02: float
    lattice_constant: float | None = None
    engine: str = ""
    engine_version: str = ""
    feff_seconds: float = 0.0
    cached: bool = False


def default_cache_dir() -> Path:
    """Where reference paths are kept: ``$MLXAS_CACHE/feff_paths`` or a per-user temp folder."""
    root = os.environ.get("MLXAS_CACHE")
    if root:
        return Path(root) / "feff_paths"
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"mlxas-{user}" / "feff_paths"


def _reference_crystal(element: str, lattice_constant: float | None):
    from ase.build import bulk
    from ase.data import atomic_numbers, reference_states

    if element not in atomic_numbers:
        raise BaselineError(f"unknown element {element!r}")
    state = reference_states[atomic_numbers[element]]
    if state is None or state.get("symmetry") not in ("fcc", "bcc", "hcp", "diamond", "sc"):
        raise BaselineError(
            f"ASE has no reference crystal for {element}; give a FEFF path file (--path)"
        )
    try:
        return bulk(element, a=lattice_constant) if lattice_constant else bulk(element)
    except (ValueError, KeyError) as err:
        raise BaselineError(f"no reference crystal for {element} ({err})") from None


def _engine(name: str, edge: str):
    """The FEFF engine ``name`` (a :class:`~mlxas.engines.feff.FeffEngine`) keeping every
    file of its run: the path file is not among the files a workflow run keeps."""
    from mlxas.engines import EngineError, get_engine
    from mlxas.engines.feff import FeffEngine, FeffSettings

    try:
        eng = get_engine(name, FeffSettings(edge=edge, keep_files=True))
    except EngineError as err:
        raise BaselineError(f"reference path: {err}") from None
    if not isinstance(eng, FeffEngine):
        raise BaselineError(f"reference path: engine {name!r} is not a FEFF code")
    return eng


def _feff_input(element: str, edge: str, lattice_constant: float | None, engine) -> str:
    from mlxas.feff.cards import merged_cards
    from mlxas.feff.inputs import cluster_around, feff_input_text

    crystal = _reference_crystal(element, lattice_constant)
    _, probe = cluster_around(crystal, 0, 4.5)
    if len(probe) < 2:
        raise BaselineError(f"the reference crystal of {element} has no neighbour within 4.5 Å")
    r1 = float(np.linalg.norm(probe[1]))
    symbols, positions = cluster_around(crystal, 0, max(MIN_CLUSTER_RADIUS, 2.0 * r1))
    cards = merged_cards(
        engine.name,
        edge,
        {
            # The first shell only, single scattering.
            "RPATH": round(r1 + 0.1, 3),
            "NLEGS": 2,
            # FEFF computes S0² from atomic overlap integrals.
            "S02": 0,
            # ff2x print level 3 writes the path file feff0001.dat.
            "PRINT": [1, 0, 0, 0, 0, 3],
            "DEBYE": None,
            "SIG2": None,
        },
    )
    title = (
        f"mlxas baseline: {element} {edge} first shell of the {element} reference crystal, "
        f"R1 = {r1:.4f}"
    )
    return feff_input_text(symbols, positions, cards, title)


_S02_LINE = re.compile(r"S02\s*=?\s*([0-9.]+)", re.IGNORECASE)


def _feff_s02(rundir: Path) -> float:
    """S0² that FEFF used, from the header of ``chi.dat`` (or the log)."""
    for name in ("chi.dat", "feff.log"):
        p = rundir / name
        if p.is_file():
            m = _S02_LINE.search(p.read_text(errors="replace"))
            if m:
                return float(m.group(1))
    return math.nan


def read_reference_path(
    file: str | Path, element: str = "", edge: str = "", s02: float = math.nan
) -> ReferencePath:
    """A user's FEFF path file (``feffNNNN.dat``) as a :class:`ReferencePath`."""
    from larch.xafs.feffdat import FeffDatFile

    file = Path(file)
    if not file.is_file():
        raise BaselineError(f"{file}: no such FEFF path file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dat = FeffDatFile(str(file))
    except Exception as err:  # larch raises several kinds on a damaged file
        raise BaselineError(f"{file}: not a FEFF path file ({type(err).__name__}: {err})") from None
    if int(dat.nleg) != 2:
        raise BaselineError(
            f"{file}: a path with {int(dat.nleg)} legs; the baseline fits a single-scattering "
            "first-shell path"
        )
    return ReferencePath(
        file=file, element=element, edge=edge, reff=float(dat.reff),
        degeneracy=float(dat.degen), s02=s02,
    )  # fmt: skip


def first_shell_path(
    element: str,
    edge: str = "K",
    cache_dir: str | Path | None = None,
    lattice_constant: float | None = None,
    engine: str = "feff8l",
    timeout: float = 300.0,
) -> ReferencePath:
    """The first-shell path of ``element``'s reference crystal, computed by FEFF once.

    ``lattice_constant`` (Å): None takes ASE's reference value (fitted R does not depend
    on it; it only sets R_eff).  The run folder ``<cache>/<element>_<edge>_<hash>/`` keeps
    ``feff.inp``, ``feff.log``, ``chi.dat``, ``xmu.dat``, ``feff0001.dat`` and the done
    marker; a folder whose marker holds the same input hash is reused.  A failed run is
    kept in ``<cache>/quarantine/<element>_<edge>_<hash>/``.
    """
    from mlxas.simulation.inputs import input_hash

    edge = edge.strip().upper()
    eng = _engine(engine, edge)
    text = _feff_input(element, edge, lattice_constant, eng)
    key = input_hash(eng, text)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"{element}_{edge}_{key}"
    seconds = _finished_seconds(final, key)
    cached = seconds is not None
    if not cached:
        seconds = _run_reference(text, key, final, eng, timeout, f"{element} {edge}")
    s02 = _feff_s02(final)
    path = read_reference_path(final / PATH_FILE, element, edge, s02)
    return ReferencePath(
        file=path.file, element=element, edge=edge, reff=path.reff,
        degeneracy=path.degeneracy, s02=s02, lattice_constant=lattice_constant,
        engine=eng.name, engine_version=eng.version,
        feff_seconds=0.0 if cached else seconds, cached=cached,
    )  # fmt: skip


def _finished_seconds(folder: Path, key: str) -> float | None:
    """FEFF seconds of a finished reference run of input hash ``key``, else None."""
    from mlxas.workflow.layout import DONE_MARKER

    try:
        done = json.loads((folder / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if done.get("input_hash") != key or not (folder / PATH_FILE).is_file():
        return None
    return float(done.get("seconds", 0.0))


def _run_reference(text: str, key: str, final: Path, eng, timeout: float, what: str) -> float:
    """Run the reference input with :func:`mlxas.simulation.runner.run_item` in a
    temporary folder, keep its path file and records, and rename it to ``final``; FEFF
    seconds.  A failed run is moved to ``<cache>/quarantine/<final name>/``."""
    from mlxas.engines import ItemInput
    from mlxas.simulation.runner import run_item
    from mlxas.workflow.layout import DONE_MARKER, SimulationFolder

    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    work = SimulationFolder(Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root)))
    item = ItemInput(final.name, final.name, 0, text, key)
    try:
        res = run_item(item, eng, work, timeout)
        if not res.ok:
            kept = root / "quarantine" / final.name
            if kept.exists():
                shutil.rmtree(kept)
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work.quarantine_dir / final.name, kept)
            raise BaselineError(
                f"FEFF ({eng.programs.label}) failed for the {what} reference path: "
                f"{res.reason} ({res.detail}); run folder {kept}"
            )
        rundir = work.runs_dir / final.name
        if not (rundir / PATH_FILE).is_file():
            raise BaselineError(
                f"FEFF ({eng.programs.label}) wrote no {PATH_FILE} for the {what} reference "
                "path (the PRINT card asks for it)"
            )
        for p in rundir.iterdir():  # FEFF's scratch files: phase.pad, paths.dat, ...
            if p.name not in (*_KEEP, DONE_MARKER):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if final.exists():  # another process finished the same run first
            shutil.rmtree(final, ignore_errors=True)
        os.replace(rundir, final)
    finally:
        shutil.rmtree(work.path, ignore_errors=True)
    return res.seconds
