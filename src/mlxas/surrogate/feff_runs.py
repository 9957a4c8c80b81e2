"""FEFF runs of chosen sites outside the workflow, through the workflow's own code.

The surrogate needs FEFF for sites that no workflow run holds: the sites it is unsure of
(routing), the sites of a speed benchmark, a small XANES set.  Each site's ``feff.inp``
is written by :func:`mlxas.feff.inputs.feff_input_text` from
:func:`mlxas.feff.inputs.cluster_around` with the merged cards of the engine's template,
and run by :func:`mlxas.feff.runner.run_site` (run folders, checks, quarantine, resume),
so these spectra are the spectra the workflow would compute for the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

__all__ = ["FeffSettings", "feff_rows", "run_sites"]


@dataclass(frozen=True)
class FeffSettings:
    """``engine`` (feff8l, feff6l, feff10), ``edge``, ``cards`` (merged over the engine's
    template as in the config's ``feff.cards``), ``spectroscopy`` (exafs, xanes),
    ``cluster_radius`` (Å), ``timeout`` (s per site)."""

    engine: str
    edge: str
    cards: dict
    spectroscopy: str = "exafs"
    cluster_radius: float = 7.0
    timeout: float = 900.0

    def card_hash(self) -> str:
        """The workflow's card hash of these settings (engine, merged cards, radius)."""
        from mlxas.feff.cards import merged_cards
        from mlxas.provenance import hash_json

        cards = merged_cards(self.engine, self.edge, self.cards, self.spectroscopy)
        return hash_json({"engine": self.engine, "cards": cards, "radius": self.cluster_radius})


def feff_rows(items: Sequence[tuple[str, Atoms, int]], settings: FeffSettings) -> list[dict]:
    """Input-table rows (``site_id, input_hash, card_hash, feff_inp, reason, detail``) of
    ``(site_id, atoms, atom index)`` items, exactly as the ``feff_inputs`` stage writes them."""
    from mlxas.feff.cards import merged_cards
    from mlxas.feff.engines import get_engine
    from mlxas.feff.inputs import InputError, cluster_around, feff_input_text, input_hash

    eng = get_engine(settings.engine)
    cards = merged_cards(eng.name, settings.edge, settings.cards, settings.spectroscopy)
    card_hash = settings.card_hash()
    rows = []
    for site_id, atoms, index in items:
        syms, xyz = cluster_around(atoms, int(index), settings.cluster_radius)
        row = {
            "site_id": site_id,
            "card_hash": card_hash,
            "feff_inp": "",
            "input_hash": "",
            "reason": "",
            "detail": "",
        }
        try:
            text = feff_input_text(
                syms, xyz, cards, f"mlxas site {site_id}", eng.max_atoms, eng.max_potentials
            )
            row.update(feff_inp=text, input_hash=input_hash(eng, text))
        except InputError as err:
            row.update(reason=err.reason, detail=err.detail)
        rows.append(row)
    return rows


def run_sites(
    items: Sequence[tuple[str, Atoms, int]],
    settings: FeffSettings,
    workdir: str | Path,
    threads: int = 2,
) -> tuple[list, float]:
    """Run FEFF for every item, ``threads`` runs at a time, in ``workdir/runs/<site_id>``.

    Returns (``SiteResult`` list in item order, wall seconds).  Finished runs with the
    same input hash are reused (their recorded FEFF seconds are kept).
    """
    from mlxas.feff.engines import get_engine
    from mlxas.feff.runner import run_site

    eng = get_engine(settings.engine)
    eng.prepare()
    rows = feff_rows(items, settings)
    root = Path(workdir)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [
            pool.submit(
                run_site,
                r,
                root / "runs" / r["site_id"],
                eng,
                settings.timeout,
                False,
                root / "quarantine",
            )
            for r in rows
        ]
        results = [f.result() for f in futures]
    return results, time.perf_counter() - start
