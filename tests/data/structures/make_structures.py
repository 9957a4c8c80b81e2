"""Regenerate the structure test files of this folder with ASE's and pymatgen's writers.

Run from the repository root: ``.venv/bin/python tests/data/structures/make_structures.py``.
The copied files (COD CIF, pymatgen JSON) and the hand-written LAMMPS dumps and broken
files are described in README.md and are not touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.cluster import Octahedron
from ase.io import write
from ase.io.trajectory import Trajectory
from ase.io.vasp import write_vasp_xdatcar
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

HERE = Path(__file__).resolve().parent


def main() -> None:
    # fcc Cu, conventional cell, a = 3.61 Å
    cu = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    CifWriter(cu, symprec=0.01).write_file(HERE / "Cu_fcc.cif")
    # rutile TiO2 (P4_2/mnm): a = 4.5937 Å, c = 2.9587 Å, O at (x, x, 0) with x = 0.3048
    # (Burdett, Hughbanks, Miller, Richardson, Smith, J. Am. Chem. Soc. 109, 3639 (1987))
    rutile = Structure.from_spacegroup(
        "P4_2/mnm",
        Lattice.tetragonal(4.5937, 2.9587),
        ["Ti", "O"],
        [[0, 0, 0], [0.3048, 0.3048, 0]],
    )
    CifWriter(rutile, symprec=0.01).write_file(HERE / "TiO2_rutile.cif")
    # chemically disordered fcc CuAu: every site half Cu, half Au (partial occupancy)
    disordered = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.87), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]]
    )
    CifWriter(disordered).write_file(HERE / "CuAu_disordered.cif")
    disordered.to(filename=str(HERE / "CuAu_disordered.json"))
    # L1_2 Cu3Au (POSCAR) and cuprite Cu2O (CONTCAR), through ASE's VASP writer
    cu3au = Atoms(
        "AuCu3",
        scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        cell=np.eye(3) * 3.75,
        pbc=True,
    )
    write(HERE / "Cu3Au_POSCAR", cu3au, format="vasp", direct=True)
    cu2o = Atoms(
        "O2Cu4",
        scaled_positions=[
            [0, 0, 0],
            [0.5, 0.5, 0.5],
            [0.25, 0.25, 0.25],
            [0.75, 0.75, 0.25],
            [0.75, 0.25, 0.75],
            [0.25, 0.75, 0.75],
        ],
        cell=np.eye(3) * 4.2696,
        pbc=True,
    )
    write(HERE / "Cu2O_CONTCAR", cu2o, format="vasp", direct=True)
    # a Cu13 cuboctahedron as plain xyz
    cu13 = Octahedron("Cu", 3, cutoff=1, latticeconstant=3.61)
    write(HERE / "Cu13.xyz", Atoms(cu13.get_chemical_symbols(), cu13.positions), format="xyz")
    # three thermal-like frames of a Cu38 truncated octahedron: extxyz and ASE .traj
    rng = np.random.default_rng(7)
    cu38 = Octahedron("Cu", 4, cutoff=1, latticeconstant=3.61)
    frames = []
    for _ in range(3):
        f = Atoms(cu38.get_chemical_symbols(), cu38.positions + rng.normal(0, 0.05, (38, 3)))
        frames.append(f)
    write(HERE / "Cu38_frames.extxyz", frames, format="extxyz")
    with Trajectory(HERE / "Cu38_frames.traj", "w") as traj:
        for f in frames:
            traj.write(f)
    # three frames of periodic fcc Cu (4-atom cell) as a VASP XDATCAR
    cell = bulk("Cu", "fcc", a=3.61, cubic=True)
    xd = []
    for _ in range(3):
        f = cell.copy()
        f.positions += rng.normal(0, 0.05, f.positions.shape)
        xd.append(f)
    with open(HERE / "Cu_XDATCAR", "w") as fh:
        write_vasp_xdatcar(fh, xd)
    # atoms closer than 0.9 Å
    close = Atoms("Cu3", positions=[[0, 0, 0], [0.5, 0, 0], [2.55, 0, 0]])
    write(HERE / "Cu3_too_close.xyz", close, format="xyz")
    # a 13-atom cluster of 12 elements: too many unique potentials for FEFF8L (8)
    shell = ["Cu", "Al", "Ni", "Co", "Fe", "Cr", "Mn", "Pd", "Ag", "Au", "Pt", "Zn"]
    hea = Atoms(
        ["Cu", *shell],
        positions=cu13.positions[
            np.argsort(np.linalg.norm(cu13.positions - cu13.positions.mean(0), axis=1))
        ],
    )
    write(HERE / "cluster_12_elements.xyz", hea, format="xyz")


if __name__ == "__main__":
    main()
