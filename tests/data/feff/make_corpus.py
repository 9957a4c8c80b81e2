"""Write the bad-input corpus of tests/test_feff_checks.py (run from the repository root).

Each case starts from a valid feff.inp written by mlxas for a Cu (or Au) fcc cluster and
breaks it in one way.  The expected reason of each file is in ``bad_inputs/cases.yaml``.

    .venv/bin/python tests/data/feff/make_corpus.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import bulk

from mlxas.feff.cards import merged_cards
from mlxas.feff.inputs import cluster_around, feff_input_text

HERE = Path(__file__).resolve().parent / "bad_inputs"


def cluster(element: str, a: float, radius: float) -> tuple[list[str], np.ndarray]:
    """fcc cluster of ``radius`` Å around an atom, absorber first."""
    crystal = bulk(element, "fcc", a=a, cubic=True).repeat(int(2 * radius / a) + 3)
    crystal.pbc = False
    centre = int(np.argmin(np.linalg.norm(crystal.positions - crystal.positions.mean(0), axis=1)))
    return cluster_around(crystal, centre, radius)


def text(engine: str, edge: str, cards: dict, element="Cu", a=3.61, radius=5.0) -> str:
    syms, xyz = cluster(element, a, radius)
    return feff_input_text(syms, xyz, merged_cards(engine, edge, cards), f"{element} corpus")


def atom_rows(inp: str) -> list[str]:
    """The rows of the ATOMS section."""
    rows = inp.splitlines()
    start = rows.index("ATOMS") + 1
    return [r for r in rows[start:] if r.strip() and not r.startswith(("*", "END"))]


def insert_atom(inp: str, line: str) -> str:
    """Add an ATOMS row right after the absorber's."""
    return inp.replace(atom_rows(inp)[0], atom_rows(inp)[0] + "\n" + line, 1)


def absorber_row(inp: str) -> str:
    return atom_rows(inp)[0]


def cases(engine: str) -> dict[str, str]:
    short = {
        "feff8l": {"RPATH": 4.0, "NLEGS": 4},
        "feff6l": {"RMAX": 4.0, "NLEG": 4},
        "feff10": {"RPATH": 4.0, "NLEGS": 4},
    }[engine]
    good = text(engine, "K", short)
    first = atom_rows(good)[1]
    z_line = next(r for r in good.splitlines() if r.split()[:3] == ["1", "29", "Cu"])
    out = {
        "good": good,
        # A card the engine rejects (FEFF6L knows no EDGE; FEFF8L and FEFF10 no FOOBAR).
        "unknown_card": good.replace("POTENTIALS", "FOOBAR 3\nPOTENTIALS", 1)
        if engine != "feff6l"
        else good.replace("CONTROL", "EDGE K\nCONTROL", 1),
        # The absorber's row relabelled as an ordinary Cu scatterer.
        "no_absorber": good.replace(
            absorber_row(good), absorber_row(good).replace("    0  Cu", "    1  Cu")
        ),
        # A potential (Au) that no atom uses.
        "unused_potential": good.replace(z_line, z_line + "\n   2   79  Au   -1  -1  1"),
        # Two absorbers.
        "multiple_absorbers": insert_atom(good, "      5.00000     5.00000     5.00000    0  Cu"),
        # An extra atom 0.5 Å from the absorber (FEFF warns, then FEFF8L/FEFF10 stop in POT).
        "atoms_0.5A": insert_atom(good, "      0.50000     0.00000     0.00000    1  Cu"),
        # An extra atom 0.9 Å from a neighbour: FEFF warns and carries on to a chi.dat.
        "atoms_0.9A": insert_atom(
            good,
            "  "
            + "  ".join(f"{float(v):10.5f}" for v in first.split()[:2])
            + f"  {float(first.split()[2]) + 0.9:10.5f}    1  Cu",
        ),
    }
    limit = {"feff8l": 1000, "feff6l": 500, "feff10": None}[engine]
    if limit:
        radius = {1000: 14.3, 500: 11.5}[limit]
        syms, xyz = cluster("Cu", 3.61, radius)
        assert len(syms) > limit
        out["too_many_atoms"] = feff_input_text(
            syms, xyz, merged_cards(engine, "K", short), "Cu corpus, too many atoms"
        )
    if engine == "feff8l":
        # SCF over 12 Å of an Au cluster: more atoms than FEFF's FMS limit of 100.
        out["cluster_too_large"] = text(
            engine, "L3", {"SCF": 12.0, "RPATH": 4.0}, element="Au", a=4.08, radius=12.5
        )
    return out


if __name__ == "__main__":
    for engine in ("feff8l", "feff6l", "feff10"):
        folder = HERE / engine
        folder.mkdir(parents=True, exist_ok=True)
        for name, inp in cases(engine).items():
            (folder / f"{name}.inp").write_text(inp)
            print(folder / f"{name}.inp", len(inp.splitlines()), "lines")
