"""FEFF input files (``feff.inp``) for absorbing sites.

The input table and chunk plan around them are the simulation stage's, engine-blind
(:mod:`mlxas.simulation.inputs`); :class:`mlxas.engines.feff.FeffEngine` calls these
functions for the text of one site.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from mlxas.engines.base import InputError
from mlxas.feff.cards import render_card

__all__ = ["InputError", "cluster_around", "feff_input_text"]

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


def cluster_around(atoms: Atoms, index: int, radius: float) -> tuple[list[str], np.ndarray]:
    """Symbols and positions (absorber at the origin, first) of atoms within ``radius``.

    Periodic structures are expanded through ASE's neighbour list, so images count.
    """
    symbols = atoms.get_chemical_symbols()
    if np.any(atoms.pbc):
        i, j, D = _periodic_neighbours(atoms, radius)
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


#: ASE neighbour lists of the last few periodic structures, by content: the stage writes
#: the inputs of a structure's sites one after the other, and each needs the whole list.
_NEIGHBOURS: OrderedDict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
_NEIGHBOURS_KEEP = 4
_NEIGHBOURS_LOCK = threading.Lock()


def _periodic_neighbours(atoms: Atoms, radius: float):
    """ASE's ``neighbor_list("ijD", atoms, radius)``, computed once per structure content.

    It stays ASE's list of the whole structure (not a search around one site) because
    its order decides the order of equidistant atoms in ``feff.inp``, hence the input
    hashes of existing runs.  The arrays are shared: read-only.
    """
    parts = (atoms.numbers, atoms.positions, atoms.cell.array, np.asarray(atoms.pbc))
    key = hashlib.sha256(
        b"".join(np.ascontiguousarray(a).tobytes() for a in parts) + repr(float(radius)).encode()
    ).digest()
    with _NEIGHBOURS_LOCK:
        if key in _NEIGHBOURS:
            _NEIGHBOURS.move_to_end(key)
            return _NEIGHBOURS[key]
    from ase.neighborlist import neighbor_list

    found = neighbor_list("ijD", atoms, radius)
    for a in found:
        a.setflags(write=False)
    with _NEIGHBOURS_LOCK:
        _NEIGHBOURS[key] = found
        while len(_NEIGHBOURS) > _NEIGHBOURS_KEEP:
            _NEIGHBOURS.popitem(last=False)
    return found


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
