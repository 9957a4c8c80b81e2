"""FEFF runs of chosen sites outside the workflow, through the workflow's own code.

The surrogate needs FEFF for sites that no workflow run holds: the sites of a speed
benchmark, a small XANES set, the sites a batch routing sends to FEFF.  Each site's
input is written by the FEFF engine of the simulation stage
(:meth:`mlxas.engines.feff.FeffEngine.input_text`, settings read from a ``feff``
section exactly as the workflow reads it) and run by the stage's runner
(:func:`mlxas.simulation.runner.run_item`: run folders, checks, quarantine, resume), so
these spectra are the spectra the workflow would compute for the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ase import Atoms

from mlxas.engines.base import InputError, ItemInput, ItemResult, SignalEngine

__all__ = ["feff_engine", "feff_items", "provenance", "run_sites"]


def feff_engine(
    name: str, section: Mapping[str, Any] | None, edge: str = "K", absorber: str | None = None
) -> SignalEngine:
    """The FEFF engine ``name`` (feff8l, feff6l, feff10) with the settings a ``feff``
    config section gives (cards merged over the template, cluster radius)."""
    from mlxas.engines.base import engine_class

    cls = engine_class(name)
    return cls(cls.settings_from_config(section, absorber=absorber, edge=edge))


def provenance(engine: SignalEngine) -> dict[str, Any]:
    """``engine``, ``settings`` (plain data) and ``settings_hash`` of a FEFF engine, as the
    chunk plan records them: what a surrogate card keeps to rebuild the engine."""
    from mlxas.simulation.inputs import settings_hash

    return {
        "engine": engine.name,
        "settings": engine.settings_dict(),
        "settings_hash": settings_hash(engine),
    }


def feff_items(items: Sequence[tuple[str, Atoms, int]], engine: SignalEngine) -> list[ItemInput]:
    """Input rows of ``(site_id, atoms, atom index)`` items, exactly as the ``inputs``
    stage writes them (items the engine refuses carry its reason)."""
    from mlxas.provenance import structure_hash
    from mlxas.simulation.inputs import input_hash

    out = []
    for site_id, atoms, index in items:
        sid = structure_hash(
            atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array, atoms.pbc
        )
        try:
            text = engine.input_text(atoms, int(index), site_id)
            out.append(ItemInput(site_id, sid, 0, text, input_hash(engine, text)))
        except InputError as err:
            out.append(ItemInput(site_id, sid, 0, "", "", err.reason, err.detail))
    return out


def run_sites(
    items: Sequence[tuple[str, Atoms, int]],
    engine: SignalEngine,
    workdir: str | Path,
    threads: int = 2,
    timeout: float = 900.0,
) -> tuple[list[ItemResult], float]:
    """Run FEFF for every item, ``threads`` runs at a time, in ``workdir/runs/<site_id>``
    (failed runs in ``workdir/quarantine``).

    Returns (results in item order, wall seconds).  Finished runs with the same input
    hash are reused (their recorded FEFF seconds are kept).
    """
    from mlxas.simulation.runner import run_item
    from mlxas.workflow.layout import SimulationFolder

    engine.prepare()
    rows = feff_items(items, engine)
    folder = SimulationFolder(Path(workdir))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [pool.submit(run_item, r, engine, folder, timeout) for r in rows]
        results = [f.result() for f in futures]
    return results, time.perf_counter() - start
