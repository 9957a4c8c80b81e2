"""Small hand-made P-1 crystals for the phase tests (no pyxtal: fast and fixed)."""

from __future__ import annotations

import math

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


def gemmi_structure_factors(atoms: Atoms, b_by_element: dict, hkl: np.ndarray) -> np.ndarray:
    """Complex F(hkl) of the whole cell by gemmi (IT92 form factors), an independent
    library: the cell in P1, isotropic B (Å²) per element."""
    import gemmi

    st = gemmi.SmallStructure()
    st.cell = gemmi.UnitCell(*atoms.cell.cellpar())
    st.spacegroup_hm = "P 1"
    for el, f in zip(atoms.get_chemical_symbols(), atoms.get_scaled_positions(), strict=True):
        site = gemmi.SmallStructure.Site()
        site.label, site.type_symbol, site.element = el, el, gemmi.Element(el)
        site.fract = gemmi.Fractional(*f)
        site.u_iso = b_by_element[el] / (8 * math.pi**2)
        site.occ = 1.0
        st.add_site(site)
    st.setup_cell_images()
    calc = gemmi.StructureFactorCalculatorX(st.cell)
    return np.array([calc.calculate_sf_from_small_structure(st, tuple(map(int, h))) for h in hkl])
