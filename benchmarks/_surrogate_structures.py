"""Strained, thermal and defective bulk fcc structures for the surrogate benchmarks.

Each structure is a periodic fcc supercell (``repeat``³ conventional cells) at lattice
constant a = a0·(1 + strain), with ``vacancies`` atoms removed, equilibrated at
``temperature`` by ASE's Langevin dynamics with ASE's EMT potential at fixed cell (EMT
has Cu, Ni, Pd, Ag, Pt, Au parameters); the last frame is kept.  Temperature 0 keeps the
ideal lattice (vacancies included, unrelaxed).  Everything physical is ASE's: the
lattice (``ase.build.bulk``), the potential and the integrator.

    .venv/bin/python benchmarks/_surrogate_structures.py \
        --out results/surrogate_inputs/cu_bulk_train.extxyz
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk


@dataclass(frozen=True)
class BulkCondition:
    """strain (fraction of a0), temperature (K), vacancies (atoms removed), seed."""

    strain: float
    temperature: float
    vacancies: int
    seed: int

    @property
    def name(self) -> str:
        return (
            f"s{self.strain * 100:+.1f}_T{self.temperature:.0f}_v{self.vacancies}_seed{self.seed}"
        )


def thermal_bulk(
    element: str,
    a0: float,
    cond: BulkCondition,
    repeat: int = 3,
    steps: int = 400,
    timestep_fs: float = 4.0,
    friction_per_fs: float = 0.02,
) -> Atoms:
    """One equilibrated snapshot of a periodic fcc cell under ``cond`` (see module text)."""
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    rng = np.random.default_rng(cond.seed)
    atoms = bulk(element, "fcc", a=a0 * (1.0 + cond.strain), cubic=True).repeat(repeat)
    if cond.vacancies:
        for i in sorted(rng.choice(len(atoms), cond.vacancies, replace=False), reverse=True):
            del atoms[int(i)]
    if cond.temperature > 0:
        atoms.calc = EMT()
        MaxwellBoltzmannDistribution(atoms, temperature_K=cond.temperature, rng=rng)
        Stationary(atoms)
        dyn = Langevin(
            atoms,
            timestep_fs * units.fs,
            temperature_K=cond.temperature,
            friction=friction_per_fs / units.fs,
            rng=rng,
        )
        dyn.run(steps)
        atoms.calc = None
        atoms.set_momenta(np.zeros((len(atoms), 3)))
    atoms.wrap()
    atoms.info.update(
        name=cond.name,
        strain=cond.strain,
        temperature=cond.temperature,
        vacancies=cond.vacancies,
        seed=cond.seed,
    )
    return atoms


def training_conditions(seed0: int = 0) -> list[BulkCondition]:
    """7 strains (−3…+3 %) × 5 temperatures (0…600 K); every other one has 2 vacancies."""
    strains = np.round(np.arange(-0.03, 0.0301, 0.01), 4)
    temps = (0.0, 150.0, 300.0, 450.0, 600.0)
    out = []
    for n, (s, t) in enumerate(itertools.product(strains, temps)):
        out.append(BulkCondition(float(s), t, 2 * (n % 2), seed0 + n))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--element", default="Cu")
    ap.add_argument("--a0", type=float, default=3.61, help="Å")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    import ase.io

    images = [thermal_bulk(a.element, a.a0, c) for c in training_conditions(a.seed)]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(a.out, images, format="extxyz")
    print(f"{len(images)} structures -> {a.out}")


if __name__ == "__main__":
    main()
