"""Training data for the surrogate from a finished workflow run: site, neighbours, spectrum.

The workflow leaves, per structure source of ``results/<experiment>/``:

- ``structures/<source>/structures.extxyz``: the structures (``info["structure_id"]``);
- ``sites/<source>.parquet``: the absorbing sites (``site_id``, ``structure_id``,
  ``site_index``, ``multiplicity``, ...);
- ``feff/<source>/chunks/*.h5``: FEFF's spectrum of every site (``read_chunk``).

:func:`load_results` joins them: each successful FEFF site becomes one example whose input
is the site's environment (cut from the structure exactly as for ``feff.inp``) and whose
target is FEFF's spectrum on the surrogate's grid:

- EXAFS: chi(k) interpolated onto the k grid (Å⁻¹);
- XANES: mu(E) normalised by larch's ``pre_edge`` (``mlxas.spectra.xanes``) on E − E0.

Splits are grouped (:func:`grouped_split`): all sites of one structure (one MD frame) land
in one split, so a test site never has a training site of the same structure beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from mlxas.surrogate.environments import Environments, SurrogateInputError, environments
from mlxas.surrogate.grids import SpectrumGrid

__all__ = [
    "SiteData",
    "feff_spectra_on_grid",
    "from_feff_results",
    "grouped_split",
    "load_results",
]


@dataclass
class SiteData:
    """Examples: environments, spectra on ``grid`` and who they are.

    ``spectra`` float32 [n, n_grid]; the table ``sites`` has one row per example
    (``site_id, structure_id, source, name, site_index, multiplicity, engine,
    engine_version, card_hash, input_hash, seconds``).
    """

    env: Environments
    spectra: np.ndarray
    grid: SpectrumGrid
    sites: pd.DataFrame

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
        )

    @staticmethod
    def concat(parts: list[SiteData]) -> SiteData:
        return SiteData(
            Environments.concat([p.env for p in parts]),
            np.concatenate([p.spectra for p in parts]),
            parts[0].grid,
            pd.concat([p.sites for p in parts], ignore_index=True),
        )


def feff_spectra_on_grid(results: list, grid: SpectrumGrid) -> tuple[np.ndarray, np.ndarray]:
    """Spectra of FEFF results (``SiteResult``) on ``grid``; (spectra [n, n_grid], ok [n]).

    A site whose spectrum cannot be put on the grid (no chi for EXAFS; mu(E) that
    ``pre_edge`` cannot normalise for XANES) is not ok; its row is zero.
    """
    out = np.zeros((len(results), len(grid)), dtype=np.float32)
    ok = np.zeros(len(results), dtype=bool)
    for i, r in enumerate(results):
        if not r.ok:
            continue
        try:
            if grid.target == "exafs":
                if len(r.k) < 2 or not np.all(np.isfinite(r.chi)):
                    continue
                out[i] = np.interp(grid.values, r.k, r.chi, left=0.0, right=0.0)
            else:
                out[i] = grid.xanes_from_mu(r.energy, r.mu)
        except ValueError:
            continue
        ok[i] = True
    return out, ok


def load_results(
    experiment: str | Path, grid: SpectrumGrid, cutoff: float, sources: list[str] | None = None
) -> SiteData:
    """Every successful FEFF site of a workflow run, as surrogate examples.

    ``experiment``: the folder ``results/<experiment>``; ``cutoff`` (Å): neighbour radius
    of the environments; ``sources``: restrict to these sources (default: all).
    Raises :class:`SurrogateInputError` naming the file when a table or structure is
    missing or inconsistent.
    """
    from mlxas.feff.chunk import read_chunk
    from mlxas.structures.index import read_structures

    root = Path(experiment)
    tables = sorted((root / "sites").glob("*.parquet"))
    if not tables:
        raise SurrogateInputError(f"{root / 'sites'}: no site tables (*.parquet)")
    parts = []
    for table in tables:
        source = table.stem
        if sources is not None and source not in sources:
            continue
        sites = pd.read_parquet(
            table,
            columns=["site_id", "structure_id", "source", "name", "site_index", "multiplicity"],
        )
        chunks = sorted((root / "feff" / source / "chunks").glob("*.h5"))
        if not chunks:
            raise SurrogateInputError(f"{root / 'feff' / source / 'chunks'}: no chunk files")
        results = [r for c in chunks for r in read_chunk(c)]
        spectra, ok = feff_spectra_on_grid(results, grid)
        feff = pd.DataFrame(
            {
                "site_id": [r.site_id for r in results],
                "engine": [r.engine for r in results],
                "engine_version": [r.engine_version for r in results],
                "card_hash": [r.card_hash for r in results],
                "input_hash": [r.input_hash for r in results],
                "seconds": [r.seconds for r in results],
                "row": np.arange(len(results)),
            }
        )[ok]
        merged = sites.merge(feff, on="site_id", how="inner", validate="one_to_one")
        path = root / "structures" / source / "structures.extxyz"
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
            )
        )
    if not parts:
        raise SurrogateInputError(f"{root}: none of the sources {sources} has a site table")
    return SiteData.concat(parts)


def from_feff_results(
    items: list[tuple[str, str, Atoms, int]], results: list, grid: SpectrumGrid, cutoff: float
) -> SiteData:
    """Examples from FEFF runs made outside the workflow (:mod:`mlxas.surrogate.feff_runs`).

    ``items``: ``(site_id, group, atoms, atom index)`` in the order of ``results``; the
    group (e.g. the structure's name) is the split group.  Failed runs are left out.
    """
    spectra, ok = feff_spectra_on_grid(results, grid)
    keep = np.nonzero(ok)[0]
    envs = [environments(items[i][2], [items[i][3]], cutoff) for i in keep]
    sites = pd.DataFrame(
        {
            "site_id": [items[i][0] for i in keep],
            "structure_id": [items[i][1] for i in keep],
            "source": "feff_runs",
            "name": [items[i][1] for i in keep],
            "site_index": [int(items[i][3]) for i in keep],
            "multiplicity": 1,
            "engine": [results[i].engine for i in keep],
            "engine_version": [results[i].engine_version for i in keep],
            "card_hash": [results[i].card_hash for i in keep],
            "input_hash": [results[i].input_hash for i in keep],
            "seconds": [results[i].seconds for i in keep],
        }
    )
    if not envs:
        raise SurrogateInputError("none of the FEFF runs succeeded")
    return SiteData(Environments.concat(envs), spectra[keep], grid, sites)


def grouped_split(
    groups: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> np.ndarray:
    """Split code per example (0 train, 1 validation, 2 test); no group spans two splits."""
    from mlxas.dataset.splitting import split_groups

    return split_groups(np.asarray(groups).astype(str), list(fractions), seed)
