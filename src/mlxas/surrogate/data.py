"""Training data for the surrogate from a finished workflow run: site, neighbours, spectrum.

The workflow leaves, per structure source of ``results/<experiment>/``
(:class:`mlxas.workflow.layout.Layout`):

- ``structures/<source>/structures.extxyz``: the structures (``info["structure_id"]``);
- ``sites/<source>.parquet``: the absorbing sites (``site_id``, ``structure_id``,
  ``site_index``, ``multiplicity``, ...);
- ``simulation/<source>/chunks/*.h5``: the engine's result of every site
  (:func:`mlxas.simulation.chunk.read_chunk`); the chunk file names its engine and
  settings.

:func:`load_results` joins them: each successful FEFF site becomes one example whose input
is the site's environment (cut from the structure exactly as for ``feff.inp``) and whose
target is FEFF's spectrum on the surrogate's grid:

- EXAFS: chi(k) interpolated onto the k grid (Å⁻¹);
- XANES: mu(E) normalised by larch's ``pre_edge`` (``mlxas.spectra.xanes``) on E − E0.

Chunks written by the surrogate engine are refused: a surrogate is never trained on
another surrogate's output mistaken for FEFF's.

Splits are grouped (:func:`grouped_split`): all sites of one structure (one MD frame) land
in one split, so a test site never has a training site of the same structure beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from mlxas.engines.base import ItemResult
from mlxas.surrogate.environments import Environments, SurrogateInputError, environments
from mlxas.surrogate.grids import SpectrumGrid

__all__ = [
    "SiteData",
    "feff_spectra_on_grid",
    "from_feff_results",
    "grouped_split",
    "load_results",
]

#: Columns of :attr:`SiteData.sites`.
SITE_COLUMNS = ("site_id", "structure_id", "source", "name", "site_index", "multiplicity")


@dataclass
class SiteData:
    """Examples: environments, spectra on ``grid`` and who they are.

    ``spectra`` float32 [n, n_grid]; the table ``sites`` has one row per example
    (``site_id, structure_id, source, name, site_index, multiplicity, engine,
    engine_version, input_hash, seconds``); ``feff``: the FEFF engine the spectra came
    from (``engine``, ``settings`` as plain data, ``settings_hash``), recorded in the
    surrogate's card so that routed sites are run with the same settings.
    """

    env: Environments
    spectra: np.ndarray
    grid: SpectrumGrid
    sites: pd.DataFrame
    feff: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.spectra)

    def take(self, rows: np.ndarray) -> SiteData:
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.nonzero(rows)[0]
        return SiteData(
            self.env.take(rows),
            self.spectra[rows],
            self.grid,
            self.sites.iloc[rows].reset_index(drop=True),
            self.feff,
        )

    @staticmethod
    def concat(parts: list[SiteData]) -> SiteData:
        feffs = {json_key(p.feff) for p in parts}
        if len(feffs) > 1:
            raise SurrogateInputError(
                f"examples from different FEFF settings cannot be mixed: {sorted(feffs)}"
            )
        return SiteData(
            Environments.concat([p.env for p in parts]),
            np.concatenate([p.spectra for p in parts]),
            parts[0].grid,
            pd.concat([p.sites for p in parts], ignore_index=True),
            parts[0].feff,
        )


def json_key(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True)


def feff_spectra_on_grid(
    results: list[ItemResult], grid: SpectrumGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Spectra of FEFF results on ``grid``; (spectra [n, n_grid], ok [n]).

    A site whose spectrum cannot be put on the grid (no chi for EXAFS; mu(E) that
    ``pre_edge`` cannot normalise for XANES) is not ok; its row is zero.
    """
    out = np.zeros((len(results), len(grid)), dtype=np.float32)
    ok = np.zeros(len(results), dtype=bool)
    for i, r in enumerate(results):
        if not r.ok:
            continue
        a = r.arrays
        try:
            if grid.target == "exafs":
                k, chi = a.get("k", np.zeros(0)), a.get("chi", np.zeros(0))
                if len(k) < 2 or len(k) != len(chi) or not np.all(np.isfinite(chi)):
                    continue
                out[i] = np.interp(grid.values, k, chi, left=0.0, right=0.0)
            else:
                out[i] = grid.xanes_from_mu(a["energy"], a["mu"])
        except (ValueError, KeyError):
            continue
        ok[i] = True
    return out, ok


def _feff_chunks(folder, source: str) -> tuple[list[ItemResult], dict[str, Any]]:
    """Results of every chunk of a source and the FEFF engine that wrote them."""
    from mlxas.simulation.chunk import chunk_engine, read_chunk
    from mlxas.surrogate.routing import SURROGATE_ENGINE

    chunks = sorted(folder.chunks_dir.glob("*.h5"))
    if not chunks:
        raise SurrogateInputError(f"{folder.chunks_dir}: no chunk files")
    feff: dict[str, Any] = {}
    results: list[ItemResult] = []
    for c in chunks:
        engine, settings_hash = chunk_engine(c)
        if engine.name == SURROGATE_ENGINE:
            raise SurrogateInputError(f"{c}: written by the surrogate, not by FEFF")
        this = {"engine": engine.name, "settings": engine.settings_dict(),
                "settings_hash": settings_hash}  # fmt: skip
        if feff and json_key(feff) != json_key(this):
            raise SurrogateInputError(f"{c}: other FEFF settings than the source's first chunk")
        feff = this
        part = read_chunk(c)
        if any(r.engine == SURROGATE_ENGINE for r in part):
            raise SurrogateInputError(f"{c}: holds surrogate rows, not only FEFF's")
        results.extend(part)
    return results, feff


def load_results(
    experiment: str | Path, grid: SpectrumGrid, cutoff: float, sources: list[str] | None = None
) -> SiteData:
    """Every successful FEFF site of a workflow run, as surrogate examples.

    ``experiment``: the folder ``results/<experiment>``; ``cutoff`` (Å): neighbour radius
    of the environments; ``sources``: restrict to these sources (default: all).
    Raises :class:`SurrogateInputError` naming the file when a table or structure is
    missing or inconsistent.
    """
    from mlxas.structures.index import read_structures
    from mlxas.workflow.layout import Layout

    layout = Layout(Path(experiment))
    pattern = layout.sites("*")
    tables = sorted(pattern.parent.glob(pattern.name))
    if not tables:
        raise SurrogateInputError(f"{pattern.parent}: no site tables ({pattern.name})")
    parts = []
    for table in tables:
        source = table.stem
        if sources is not None and source not in sources:
            continue
        sites = pd.read_parquet(table, columns=list(SITE_COLUMNS))
        results, feff = _feff_chunks(layout.simulation(source), source)
        spectra, ok = feff_spectra_on_grid(results, grid)
        table_feff = _result_table(results).assign(row=np.arange(len(results)))[ok]
        merged = sites.merge(table_feff, on="site_id", how="inner", validate="one_to_one")
        path = layout.structures_frames(source)
        by_id = {str(a.info["structure_id"]): a for a in read_structures(path)}
        envs = []
        for sid, group in merged.groupby("structure_id", sort=False):
            if sid not in by_id:
                raise SurrogateInputError(f"{path}: no structure {sid} (named in {table})")
            envs.append(
                (
                    group.index.to_numpy(),
                    environments(by_id[sid], group["site_index"].to_numpy(), cutoff),
                )
            )
        order = np.concatenate([rows for rows, _ in envs])
        merged = merged.loc[order].reset_index(drop=True)
        parts.append(
            SiteData(
                Environments.concat([e for _, e in envs]),
                spectra[merged.pop("row").to_numpy()],
                grid,
                merged,
                feff,
            )
        )
    if not parts:
        raise SurrogateInputError(f"{layout.root}: none of the sources {sources} has a site table")
    return SiteData.concat(parts)


def _result_table(results: list[ItemResult]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": [r.item_id for r in results],
            "engine": [r.engine for r in results],
            "engine_version": [r.engine_version for r in results],
            "input_hash": [r.input_hash for r in results],
            "seconds": [r.seconds for r in results],
        }
    )


def from_feff_results(
    items: list[tuple[str, str, Atoms, int]],
    results: list[ItemResult],
    grid: SpectrumGrid,
    cutoff: float,
    feff: dict[str, Any] | None = None,
) -> SiteData:
    """Examples from FEFF runs made outside the workflow (:mod:`mlxas.surrogate.feff_runs`).

    ``items``: ``(site_id, group, atoms, atom index)`` in the order of ``results``; the
    group (e.g. the structure's name) is the split group; ``feff``: the FEFF engine
    (:func:`mlxas.surrogate.feff_runs.provenance`).  Failed runs are left out.
    """
    spectra, ok = feff_spectra_on_grid(results, grid)
    keep = np.nonzero(ok)[0]
    if not len(keep):
        raise SurrogateInputError("none of the FEFF runs succeeded")
    envs = [environments(items[i][2], [items[i][3]], cutoff) for i in keep]
    sites = pd.DataFrame(
        {
            "site_id": [items[i][0] for i in keep],
            "structure_id": [items[i][1] for i in keep],
            "source": "feff_runs",
            "name": [items[i][1] for i in keep],
            "site_index": [int(items[i][3]) for i in keep],
            "multiplicity": 1,
        }
    )
    table = _result_table([results[i] for i in keep]).drop(columns="site_id")
    sites = pd.concat([sites, table], axis=1)
    return SiteData(Environments.concat(envs), spectra[keep], grid, sites, feff or {})


def grouped_split(
    groups: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> np.ndarray:
    """Split code per example (0 train, 1 validation, 2 test); no group spans two splits."""
    from mlxas.dataset.splitting import split_groups

    return split_groups(np.asarray(groups).astype(str), list(fractions), seed)
