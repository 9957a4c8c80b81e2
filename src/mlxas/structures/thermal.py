"""Thermal disorder of crystals and clusters: Debye temperatures, atomic mean-square
displacements, random thermal snapshots and EMT molecular dynamics.

Models (``temperature.model`` of a crystal source):

``debye_card``
    the structure stays static; FEFF's correlated Debye model (the DEBYE card, written
    per structure by :func:`mlxas.feff.temperature.structure_cards`) damps its spectrum.
``einstein`` / ``debye``
    every atom is displaced independently by a Gaussian whose variance per Cartesian
    component is the Einstein or Debye mean-square displacement at T (quantum, so it
    keeps its zero-point value at 0 K).  Independent displacements ignore the
    correlation of neighbouring atoms, so the first-shell MSRD is 2⟨u²⟩, more than the
    correlated value of real crystals; use ``md`` or ``debye_card`` where that matters.
``md``
    classical Langevin dynamics with ASE's EMT potential (Al, Cu, Ag, Au, Ni, Pd, Pt and
    their alloys): correlated displacements, but classical, so below about θ_D/3 the
    disorder is too small (no zero-point motion).

Formulas (per Cartesian component, mass m, Boltzmann k, x = θ/T):

- Einstein: ⟨u_x²⟩ = ħ²/(2 m k θ_E) · coth(θ_E / 2T)
- Debye: ⟨u_x²⟩ = 3ħ²T/(m k θ_D²) · [Φ(x) + x/4], Φ(x) = (1/x) ∫₀ˣ t/(eᵗ − 1) dt
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms

__all__ = [
    "DEBYE_TEMPERATURES",
    "EMT_ELEMENTS",
    "debye_temperatures_for",
    "displace",
    "md_snapshots",
    "msd_debye",
    "msd_einstein",
]

#: ħ²/(2 k_B · 1 amu) in Å²·K·amu (= larch's EINS_FACTOR).
HBAR2_OVER_2K_AMU = 24.254360157751783

#: Debye temperatures θ_D (K) of the elements, from the low-temperature heat capacity:
#: C. Kittel, *Introduction to Solid State Physics*, 8th ed. (Wiley, 2005), Table 5.1
#: (values collected there from N. Pearlman and others).  C is diamond, Sn grey tin.
#: EXAFS (correlated Debye) fits often give other values (Cu ~315 K instead of 343 K),
#: so a config may override any of them; compounds need their own value.
DEBYE_TEMPERATURES: dict[str, float] = {
    "Li": 344, "Be": 1440, "C": 2230, "Na": 158, "Mg": 400, "Al": 428, "Si": 645,
    "K": 91, "Ca": 230, "Sc": 360, "Ti": 420, "V": 380, "Cr": 630, "Mn": 410, "Fe": 470,
    "Co": 445, "Ni": 450, "Cu": 343, "Zn": 327, "Ga": 320, "Ge": 374, "As": 282,
    "Se": 90, "Rb": 56, "Sr": 147, "Y": 280, "Zr": 291, "Nb": 275, "Mo": 450, "Ru": 600,
    "Rh": 480, "Pd": 274, "Ag": 225, "Cd": 209, "In": 108, "Sn": 200, "Sb": 211,
    "Te": 153, "Cs": 38, "Ba": 110, "La": 142, "Hf": 252, "Ta": 240, "W": 400,
    "Re": 430, "Os": 500, "Ir": 420, "Pt": 240, "Au": 165, "Hg": 71.9, "Tl": 78.5,
    "Pb": 105, "Bi": 119,
}  # fmt: skip

#: Elements ASE's EMT has metal parameters for.
EMT_ELEMENTS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")


def msd_einstein(temperature: float, theta: float, mass: float) -> float:
    """⟨u_x²⟩ (Å²) of an Einstein oscillator: T and θ_E in K, mass in amu."""
    t = max(float(temperature), 1e-6)
    return HBAR2_OVER_2K_AMU / (mass * theta) / np.tanh(theta / (2.0 * t))


def _phi(x: float) -> float:
    """Debye's Φ(x) = (1/x) ∫₀ˣ t/(eᵗ − 1) dt."""
    from scipy.integrate import quad

    if x < 1e-8:
        return 1.0
    value, _ = quad(lambda t: t / np.expm1(t) if t > 0 else 1.0, 0.0, x, limit=200)
    return value / x


def msd_debye(temperature: float, theta: float, mass: float) -> float:
    """⟨u_x²⟩ (Å²) of the Debye model: T and θ_D in K, mass in amu."""
    t = max(float(temperature), 1e-6)
    x = theta / t
    # 3ħ²T/(m k θ²) = 6 · (ħ²/2k amu) · T / (m θ²)
    return 6.0 * HBAR2_OVER_2K_AMU * t / (mass * theta**2) * (_phi(x) + x / 4.0)


def debye_temperatures_for(
    symbols: list[str], override: float | Mapping[str, float] | None
) -> dict[str, float]:
    """θ (K) for every element of ``symbols``: ``override`` (one value for all, or a
    per-element map) first, then :data:`DEBYE_TEMPERATURES`; missing ones are an error."""
    out: dict[str, float] = {}
    for el in sorted(set(symbols)):
        if isinstance(override, int | float):
            out[el] = float(override)
        elif override and el in override:
            out[el] = float(override[el])
        elif el in DEBYE_TEMPERATURES:
            out[el] = float(DEBYE_TEMPERATURES[el])
        else:
            raise ValueError(
                f"no Debye temperature for {el} (not an element of the table); give "
                f"temperature.debye_temperature: {{{el}: <K>}}"
            )
    return out


def displace(
    atoms: Atoms,
    temperature: float,
    model: str,
    thetas: Mapping[str, float],
    rng: np.random.Generator,
) -> Atoms:
    """A copy of ``atoms`` with independent Gaussian displacements of the ``einstein`` or
    ``debye`` model at ``temperature`` (K), θ per element from ``thetas``."""
    fn = {"einstein": msd_einstein, "debye": msd_debye}.get(model)
    if fn is None:
        raise ValueError(f"unknown displacement model {model!r}; choose einstein or debye")
    masses = atoms.get_masses()
    symbols = atoms.get_chemical_symbols()
    cache: dict[tuple[str, float], float] = {}
    sigma = np.empty(len(atoms))
    for i, (el, m) in enumerate(zip(symbols, masses, strict=True)):
        key = (el, float(m))
        if key not in cache:
            cache[key] = float(np.sqrt(fn(temperature, thetas[el], m)))
        sigma[i] = cache[key]
    out = atoms.copy()
    out.positions = atoms.positions + sigma[:, None] * rng.standard_normal((len(atoms), 3))
    return out


def md_snapshots(
    atoms: Atoms,
    temperature: float,
    n_snapshots: int,
    rng: np.random.Generator,
    timestep: float = 2.0,
    equilibration: int = 400,
    interval: int = 50,
    friction: float = 0.05,
) -> list[Atoms]:
    """``n_snapshots`` frames of Langevin dynamics with ASE's EMT at ``temperature`` (K).

    ``timestep`` in fs, ``equilibration`` and ``interval`` in steps, ``friction`` in
    1/fs (strong, so a few hundred steps thermalise the start).  The cell (periodic or
    not) is kept; the centre of mass is fixed.  Seeded by ``rng``.
    """
    from ase import units
    from ase.calculators.emt import EMT
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    bad = sorted(set(atoms.get_chemical_symbols()) - set(EMT_ELEMENTS))
    if bad:
        raise ValueError(
            f"md: ASE's EMT has no parameters for {', '.join(bad)} (it covers "
            f"{', '.join(EMT_ELEMENTS)}); use model einstein, debye or debye_card"
        )
    work = atoms.copy()
    work.calc = EMT()
    work.set_constraint(FixCom())
    thermalize_momenta(work, temperature_K=temperature, rng=rng)
    dyn = Langevin(
        work,
        timestep * units.fs,
        temperature_K=temperature,
        friction=friction / units.fs,
        fixcm=False,
        rng=rng,
    )
    dyn.run(equilibration)
    frames = []
    for _ in range(n_snapshots):
        dyn.run(interval)
        frame = Atoms(
            work.get_chemical_symbols(),
            positions=work.positions.copy(),
            cell=work.cell,
            pbc=work.pbc,
        )
        frames.append(frame)
    return frames
