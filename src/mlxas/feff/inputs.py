"""FEFF input files for absorbing sites, and the per-source input table with chunks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import atomic_numbers

from mlxas.feff.cards import merged_cards, render_card
from mlxas.feff.engines import Engine, get_engine
from mlxas.provenance import hash_bytes, hash_json

__all__ = [
    "InputError",
    "build_inputs",
    "cluster_around",
    "feff_input_text",
    "input_hash",
    "read_chunks_json",
]

# Potentials are written with the card lines first: the order FEFF expects.
_CARD_ORDER = [
    "TITLE",
    "EDGE",
    "HOLE",
    "S02",
    "CONTROL",
    "PRINT",
    "EXAFS",
    "XANES",
    "RPATH",
    "RMAX",
    "NLEGS",
    "DEBYE",
    "SIG2",
    "SCF",
    "FMS",
    "EXCHANGE",
    "CORRECTIONS",
    "CRITERIA",
]


class InputError(ValueError):
    """A site for which no valid FEFF input can be written (reason is machine-readable)."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(detail)


def cluster_around(atoms: Atoms, index: int, radius: float) -> tuple[list[str], np.ndarray]:
    """Symbols and positions (absorber at the origin, first) of atoms within ``radius``.

    Periodic structures are expanded through ASE's neighbour list, so images count.
    """
    symbols = atoms.get_chemical_symbols()
    if np.any(atoms.pbc):
        from ase.neighborlist import neighbor_list

        i, j, D = neighbor_list("ijD", atoms, radius)
        mask = i == index
        vecs = D[mask]
        syms = [symbols[k] for k in j[mask]]
    else:
        vecs = atoms.positions - atoms.positions[index]
        d = np.linalg.norm(vecs, axis=1)
        mask = (d <= radius) & (np.arange(len(atoms)) != index)
        vecs = vecs[mask]
        syms = [symbols[k] for k in np.nonzero(mask)[0]]
    order = np.argsort(np.linalg.norm(vecs, axis=1), kind="stable")
    positions = np.vstack([np.zeros((1, 3)), vecs[order]])
    return [symbols[index]] + [syms[k] for k in order], positions


def feff_input_text(
    symbols: list[str],
    positions: np.ndarray,
    cards: dict,
    title: str,
    max_atoms: int | None = None,
    max_potentials: int | None = None,
) -> str:
    """A complete feff.inp: cards, POTENTIALS with stoichiometry, ATOMS with ipots."""
    if max_atoms is not None and len(symbols) > max_atoms:
        raise InputError(
            "too_many_atoms", f"cluster has {len(symbols)} atoms, engine allows {max_atoms}"
        )
    scatterers = sorted(set(symbols[1:]), key=lambda s: (atomic_numbers[s], s))
    if max_potentials is not None and len(scatterers) + 1 > max_potentials:
        raise InputError(
            "too_many_potentials",
            f"{len(scatterers) + 1} unique potentials, engine allows {max_potentials}",
        )
    ipot = {el: i + 1 for i, el in enumerate(scatterers)}
    counts = {el: symbols[1:].count(el) for el in scatterers}
    lines = [f"TITLE {title}"]
    for name in sorted(cards, key=lambda c: (_CARD_ORDER.index(c) if c in _CARD_ORDER else 99, c)):
        if name != "TITLE":
            line = render_card(name, cards[name])
            if line:
                lines.append(line)
    lines.append("POTENTIALS")
    lines.append("*  ipot   Z  tag  lmax1  lmax2  stoichiometry")
    # Stoichiometry is the number of atoms of each potential in the cluster (it weighs the
    # charge balance of SCF potentials); the single absorber is an impurity, so it gets a
    # token 0.001 and is not counted again with its element's scatterers.
    lines.append(f"   0  {atomic_numbers[symbols[0]]:3d}  {symbols[0]:<3}  -1  -1  0.001")
    for el in scatterers:
        lines.append(f"   {ipot[el]}  {atomic_numbers[el]:3d}  {el:<3}  -1  -1  {counts[el]}")
    lines.append("ATOMS")
    lines.append("*        x           y           z      ipot  tag     distance")
    for k, (el, p) in enumerate(zip(symbols, positions, strict=True)):
        pot = 0 if k == 0 else ipot[el]
        lines.append(
            f"  {p[0]:11.5f} {p[1]:11.5f} {p[2]:11.5f}  {pot:3d}  {el:<3} {np.linalg.norm(p):9.5f}"
        )
    lines.append("END")
    return "\n".join(lines) + "\n"


def input_hash(engine: Engine, feff_inp: str) -> str:
    """Hash of the exact feff.inp text and the engine's version: equal hashes, equal runs."""
    return hash_bytes((engine.version + "\n" + feff_inp).encode())


def build_inputs(
    sites: pd.DataFrame,
    images: dict[str, Atoms],
    feff_cfg: dict,
    edge: str,
    out_table: str | Path,
    out_chunks: str | Path,
) -> pd.DataFrame:
    """Write the input table of one source (one row per site) and its chunk plan."""
    engine = get_engine(feff_cfg["engine"])
    cards = merged_cards(
        engine.name, edge, feff_cfg["cards"], feff_cfg.get("spectroscopy", "exafs")
    )
    card_hash = hash_json(
        {"engine": engine.name, "cards": cards, "radius": feff_cfg["cluster_radius"]}
    )
    rows = []
    for pos, site in enumerate(sites.itertuples(index=False)):
        atoms = images[site.structure_id]
        syms, xyz = cluster_around(atoms, int(site.site_index), feff_cfg["cluster_radius"])
        row = {
            "site_id": site.site_id,
            "structure_id": site.structure_id,
            "chunk": pos // feff_cfg["chunk_size"],
            "n_atoms": len(syms),
            "card_hash": card_hash,
        }
        try:
            text = feff_input_text(
                syms,
                xyz,
                cards,
                f"mlxas site {site.site_id}",
                engine.max_atoms,
                engine.max_potentials,
            )
            row.update(
                feff_inp=text,
                input_hash=input_hash(engine, text),
                reason="",
                detail="",
            )
        except InputError as err:
            row.update(feff_inp="", input_hash="", reason=err.reason, detail=err.detail)
        rows.append(row)
    table = pd.DataFrame(
        rows,
        columns=[
            "site_id",
            "structure_id",
            "chunk",
            "n_atoms",
            "card_hash",
            "feff_inp",
            "input_hash",
            "reason",
            "detail",
        ],
    )
    tmp = Path(f"{out_table}.tmp")
    # One row group per chunk: a FEFF job reads only its own rows (feff.inp texts are
    # most of the table, ~5 kB per site).
    table.to_parquet(tmp, index=False, row_group_size=feff_cfg["chunk_size"])
    tmp.replace(out_table)
    n_chunks = int(table["chunk"].max()) + 1 if len(table) else 0
    # Per-chunk site counts and refusals: `mlxas status` reads these instead of the table.
    refused: dict[str, dict[str, int]] = {}
    for chunk, reason in table.loc[table["reason"] != "", ["chunk", "reason"]].itertuples(
        index=False
    ):
        per_chunk = refused.setdefault(str(chunk), {})
        per_chunk[reason] = per_chunk.get(reason, 0) + 1
    plan = {
        "n_chunks": n_chunks,
        "n_sites": len(table),
        "chunk_size": feff_cfg["chunk_size"],
        "engine": engine.name,
        "engine_version": engine.version,
        "card_hash": card_hash,
        "sites_per_chunk": table["chunk"].value_counts().sort_index().tolist(),
        "refused_per_chunk": refused,
    }
    tmp_plan = Path(f"{out_chunks}.tmp")
    tmp_plan.write_text(json.dumps(plan))
    tmp_plan.replace(out_chunks)
    return table


def read_chunks_json(path: str | Path) -> dict:
    """The chunk plan of a source (``chunks.json``)."""
    return json.loads(Path(path).read_text())
