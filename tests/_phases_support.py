"""Small hand-made P-1 crystals for the phase tests (no pyxtal: fast and fixed)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

CELL = (6.3, 7.1, 7.9, 84.0, 98.0, 103.0)


def p1bar_crystal(seed=0, elements=("C", "N", "O", "C", "S"), cell=CELL, name="c") -> Atoms:
    """Atoms at random x and their inversion images -x, at least 1.3 Å apart."""
    rng = np.random.default_rng(seed)
    els = list(elements)
    while True:
        x = rng.random((len(els), 3))
        atoms = Atoms(els * 2, scaled_positions=np.vstack([x, -x]) % 1.0, cell=cell, pbc=True)
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        if d.min() > 1.3:
            atoms.info.update(name=f"{name}{seed}", structure_id=f"{seed + 1:016x}")
            return atoms
