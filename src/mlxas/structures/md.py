"""The ``md`` structure source: NVT molecular dynamics of a free metal cluster.

Protocol (all numbers from the source's config, defaults in brackets):

1. Start from a low-energy structure (:mod:`mlxas.structures.cluster_search`):
   motif candidates improved by simulated annealing or basin hopping.
2. Maxwell–Boltzmann velocities at ``temperature`` [300 K] from the seeded generator,
   without centre-of-mass translation or rotation.
3. NVT with ASE's Nosé–Hoover chain (3 thermostats, damping time ``thermostat_tdamp``
   [50 fs]), time step ``timestep`` [0.5 fs]: ``equilibration`` [20 ps], then
   ``production`` [20 ps] with one snapshot every ``snapshot_every`` steps.

A free cluster keeps zero linear and angular momentum, so it has 3N − 6 kinetic degrees
of freedom, while the chain thermostat drives the kinetic energy to 3N·kT/2.  The
thermostat target is therefore set to T·(3N − 6)/(3N), which makes the cluster's
internal temperature T.

Checkpoints.  The run keeps its state in a work folder: ``run.json`` (settings and a key),
``start.extxyz`` (the starting structure), ``checkpoint.npz`` (step, positions, momenta
and the thermostat's variables, all float64, replaced atomically every
``checkpoint_every`` steps), ``frames.f64`` (snapshot positions, appended) and
``thermo.csv`` (temperature and energies).  A killed run started again with the same
settings continues from the last checkpoint and produces exactly the frames an
uninterrupted run produces.  Changed settings or changed MD code start the run over.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units

from mlxas.structures.md_state import (
    THERMO_COLUMNS,
    atomic_write_text,
    load_checkpoint,
    prepare_folder,
    read_thermo,
    save_checkpoint,
    say,
    summary,
    truncate_thermo,
)
from mlxas.structures.sources import register_source

__all__ = ["MDSettings", "MDSource", "make_calculator", "md_frames", "read_thermo"]


@dataclass(frozen=True)
class MDSettings:
    """Settings of one ``md`` source (units: K, fs, ps, steps)."""

    element: str
    n_atoms: int
    potential: str = "sutton_chen"
    temperature: float = 300.0
    timestep: float = 0.5
    equilibration: float = 20.0
    production: float = 20.0
    snapshot_every: int = 20
    thermostat_tdamp: float = 50.0
    start: str = "anneal"
    seed: int = 0
    checkpoint_every: int = 2000
    anneal_temperature: float = 500.0
    anneal_time: float = 10.0
    basin_hopping_steps: int = 30
    start_candidates: int = 3

    @property
    def n_equilibration(self) -> int:
        return round(self.equilibration * 1000.0 / self.timestep)

    @property
    def n_production(self) -> int:
        return round(self.production * 1000.0 / self.timestep)

    @property
    def n_steps(self) -> int:
        return self.n_equilibration + self.n_production

    @property
    def n_frames(self) -> int:
        return self.n_production // self.snapshot_every

    def frames_done(self, step: int) -> int:
        """Snapshots taken up to and including ``step``."""
        return min(max(step - self.n_equilibration, 0) // self.snapshot_every, self.n_frames)

    def frame_at(self, step: int) -> int | None:
        """Index of the snapshot taken at ``step``, or None."""
        k = step - self.n_equilibration
        if k <= 0 or k % self.snapshot_every:
            return None
        frame = k // self.snapshot_every - 1
        return frame if frame < self.n_frames else None

    def thermo_rows(self, step: int) -> int:
        """Rows of thermo.csv up to and including ``step``: every ``snapshot_every`` steps
        of equilibration (from step 0) and at every snapshot."""
        return min(step, self.n_equilibration) // self.snapshot_every + 1 + self.frames_done(step)

    def is_thermo_step(self, step: int) -> bool:
        if step <= self.n_equilibration:
            return step % self.snapshot_every == 0
        return self.frame_at(step) is not None

    def next_event(self, step: int) -> int:
        """The next step after ``step`` that writes a row, a frame or a checkpoint."""
        se, n_eq = self.snapshot_every, self.n_equilibration
        if step < n_eq:
            record = (step // se + 1) * se
            if record > n_eq:
                record = n_eq + se
        else:
            record = n_eq + ((step - n_eq) // se + 1) * se
        checkpoint = (step // self.checkpoint_every + 1) * self.checkpoint_every
        return min(record, checkpoint, self.n_steps)

    def key(self) -> str:
        """Identity of the trajectory: every setting that changes it, and the MD code.

        ``checkpoint_every`` is left out: it changes where the run can resume, not the
        trajectory.
        """
        import ase

        settings = dataclasses.asdict(self)
        settings.pop("checkpoint_every")
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(settings, sort_keys=True).encode())
        h.update(ase.__version__.encode())
        here = Path(__file__).parent
        for name in ("md.py", "sutton_chen.py", "cluster_search.py"):
            h.update((here / name).read_bytes())
        return h.hexdigest()


def make_calculator(element: str, potential: str = "sutton_chen"):
    """ASE calculator for a one-element cluster: Sutton–Chen or ASE's EMT."""
    if potential == "sutton_chen":
        from mlxas.structures.sutton_chen import SuttonChen

        return SuttonChen(element)
    if potential == "emt":
        from ase.calculators.emt import EMT, parameters

        if element not in parameters or element in ("H", "C", "N", "O"):
            raise ValueError(f"ASE's EMT has no metal parameters for {element!r}")
        return EMT()
    raise ValueError(f"unknown MD potential {potential!r}; choose sutton_chen or emt")


def _lattice_constant(element: str, potential: str) -> float:
    """fcc lattice constant (Å) the potential was fitted to, for building candidates."""
    if potential == "sutton_chen":
        from mlxas.structures.sutton_chen import sutton_chen_parameters

        return sutton_chen_parameters(element).a
    from mlxas.structures.nanoparticles import fcc_lattice_constant

    return fcc_lattice_constant(element)


@register_source
@dataclass(frozen=True)
class MDSource(MDSettings):
    """A ``kind: md`` source: its name and the :class:`MDSettings` of its run."""

    kind = "md"
    name: str = ""

    def elements(self) -> tuple[str, ...]:
        return (self.element,)

    def settings(self) -> MDSettings:
        """The run's settings without the name (the name does not change the frames)."""
        fields = {f.name for f in dataclasses.fields(MDSettings)}
        return MDSettings(**{k: getattr(self, k) for k in fields})

    def generate(self, work_dir: Path | None = None) -> Iterator:
        origin = f"md:{self.element}{self.n_atoms}"
        for frame, atoms in md_frames(self.settings(), work_dir=work_dir):
            yield f"{self.name}_{frame:06d}", frame, origin, atoms


def md_frames(
    settings: MDSettings, work_dir: str | Path | None = None, progress: bool = True
) -> Iterator[tuple[int, Atoms]]:
    """Yield ``(frame, atoms)`` for every production snapshot of a ``kind: md`` source.

    ``work_dir`` holds the checkpoints; a run interrupted in any way resumes from the
    last one when called again with the same folder.  ``None`` runs in a temporary folder
    (no resume).  ``progress`` shows a progress bar and messages on stderr.
    """
    if isinstance(settings, MDSource):
        settings = settings.settings()
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="mlxas-md-") as tmp:
            yield from _run(settings, Path(tmp), progress)
    else:
        yield from _run(settings, Path(work_dir), progress)


def _run(s: MDSettings, work: Path, progress: bool) -> Iterator[tuple[int, Atoms]]:
    work.mkdir(parents=True, exist_ok=True)
    _check_settings(s)
    prepare_folder(s, work, progress)
    start = _start_structure(s, work, progress)
    n = len(start)

    atoms = start.copy()
    atoms.calc = make_calculator(s.element, s.potential)
    state = load_checkpoint(work, n, s, progress)
    if state is None:
        _initial_velocities(atoms, s)
        step = 0
    else:
        atoms.positions = state["positions"]
        atoms.set_momenta(state["momenta"])
        step = int(state["step"])
    dyn = _thermostat(atoms, s)
    if state is not None:
        # The chain's variables are not part of ASE's public interface; restoring them
        # is what makes a resumed run continue the same trajectory.
        dyn._thermostat._eta[:] = state["eta"]
        dyn._thermostat._p_eta[:] = state["p_eta"]
        say(progress, f"resuming MD at step {step} of {s.n_steps}")

    frames_path, thermo_path = work / "frames.f64", work / "thermo.csv"
    done = s.frames_done(step)
    with open(frames_path, "ab") as fh:
        fh.truncate(done * n * 3 * 8)  # frames written after the checkpoint are redone
    truncate_thermo(thermo_path, s.thermo_rows(step) if state is not None else 0)

    symbols = [s.element] * n
    stored = np.fromfile(frames_path, dtype="<f8").reshape(-1, n, 3)
    for k in range(done):
        yield k, Atoms(symbols, positions=stored[k])
    del stored

    from tqdm import tqdm

    with (
        open(frames_path, "ab") as frames_fh,
        open(thermo_path, "a", newline="") as thermo_fh,
        tqdm(
            total=s.n_steps,
            initial=step,
            unit="step",
            desc=f"MD {s.element}{n} {s.temperature:g} K",
            mininterval=1.0,
            disable=not progress,
            file=sys.stderr,
        ) as bar,
    ):
        writer = csv.writer(thermo_fh)
        if step == 0:
            writer.writerow(THERMO_COLUMNS)
            writer.writerow(_thermo_row(dyn, atoms, s, 0))
        while step < s.n_steps:
            target = s.next_event(step)
            for _ in range(target - step):
                dyn.step()
            bar.update(target - step)
            step = target
            if s.is_thermo_step(step):
                writer.writerow(_thermo_row(dyn, atoms, s, step))
            frame = s.frame_at(step)
            if frame is not None:
                frames_fh.write(np.ascontiguousarray(atoms.positions, dtype="<f8").tobytes())
            if step % s.checkpoint_every == 0 or step == s.n_steps:
                for fh in (frames_fh, thermo_fh):
                    fh.flush()
                    os.fsync(fh.fileno())
                save_checkpoint(work, step, atoms, dyn)
            if frame is not None:
                yield frame, Atoms(symbols, positions=atoms.positions.copy())
    say(progress, summary(thermo_path))


def _check_settings(s: MDSettings) -> None:
    """Refuse settings that cannot give a trajectory, as a user error naming the setting."""
    from mlxas.errors import ConfigError

    problem = None
    if s.n_atoms < 2:
        problem = f"n_atoms must be at least 2, got {s.n_atoms}"
    elif s.n_frames < 1:
        problem = (
            f"production of {s.production} ps at {s.timestep} fs is {s.n_production} steps, "
            f"fewer than snapshot_every = {s.snapshot_every}: no frame would be saved"
        )
    elif s.start not in ("anneal", "basin_hopping"):
        problem = f"unknown start {s.start!r}; choose anneal or basin_hopping"
    else:
        try:
            make_calculator(s.element, s.potential)
        except ValueError as err:
            problem = str(err)
    if problem is not None:
        raise ConfigError(f"md source with {s.element}{s.n_atoms}: {problem}")


def _start_structure(s: MDSettings, work: Path, progress: bool) -> Atoms:
    """The global-minimum search result, computed once and kept in the work folder."""
    import ase.io

    path = work / "start.extxyz"
    if path.exists():
        return ase.io.read(path, format="extxyz")
    from mlxas.structures.cluster_search import global_minimum

    say(progress, f"searching a low-energy {s.element}{s.n_atoms} structure ({s.start})")
    result = global_minimum(
        s.element,
        s.n_atoms,
        _lattice_constant(s.element, s.potential),
        lambda: make_calculator(s.element, s.potential),
        method=s.start,
        seed=s.seed,
        n_refine=s.start_candidates,
        anneal_temperature=s.anneal_temperature,
        anneal_time=s.anneal_time,
        basin_hopping_steps=s.basin_hopping_steps,
    )
    say(
        progress,
        f"start structure: {result.motif}, E = {result.energy:.4f} eV "
        f"({result.energy / s.n_atoms:.4f} eV/atom)",
    )
    atoms = Atoms(result.atoms.get_chemical_symbols(), positions=result.atoms.positions)
    atoms.info = {"energy": result.energy, "motif": result.motif}
    atomic_write_text(
        work / "start.json",
        json.dumps({"motif": result.motif, "energy": result.energy, "log": result.log}, indent=1),
    )
    tmp = path.with_suffix(".tmp")
    ase.io.write(tmp, atoms, format="extxyz")
    tmp.replace(path)
    return ase.io.read(path, format="extxyz")  # the file's rounding, on first run and resume


def _initial_velocities(atoms: Atoms, s: MDSettings) -> None:
    from ase.md.velocitydistribution import (
        Stationary,
        ZeroRotation,
        thermalize_momenta,
    )

    rng = np.random.default_rng(s.seed)
    thermalize_momenta(atoms, s.temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)


def _degrees_of_freedom(n_atoms: int) -> int:
    """Kinetic degrees of freedom of a free cluster without translation and rotation."""
    return 3 * n_atoms - 6 if n_atoms > 2 else 1


def _thermostat(atoms: Atoms, s: MDSettings):
    from ase.md.nose_hoover_chain import NoseHooverChainNVT

    n = len(atoms)
    return NoseHooverChainNVT(
        atoms,
        timestep=s.timestep * units.fs,
        temperature_K=s.temperature * _degrees_of_freedom(n) / (3 * n),
        tdamp=s.thermostat_tdamp * units.fs,
        tchain=3,
    )


def _thermo_row(dyn, atoms: Atoms, s: MDSettings, step: int) -> list:
    kinetic = float(atoms.get_kinetic_energy())
    temperature = 2 * kinetic / (_degrees_of_freedom(len(atoms)) * units.kB)
    return [
        step,
        f"{step * s.timestep / 1000.0:.6f}",
        "equilibration" if step <= s.n_equilibration else "production",
        f"{temperature:.3f}",
        f"{atoms.get_potential_energy():.6f}",
        f"{kinetic:.6f}",
        f"{dyn.get_conserved_energy():.6f}",
    ]
