"""Structure sources for diffraction: random crystals over the 230 space groups and
instances of the prototype table (the ``structures`` stage's kinds ``random_crystals`` and
``xrd_prototypes``; user CIFs come through the ``files`` kind).

Crystal ``i`` of a source is made from ``(seed, i)`` alone, so a source can be split into
shards (``first``, ``count``) that together give the same crystals as one source, one
Snakemake job each.  Random crystals are made in blocks of ``block`` crystals kept in the
source's work folder: a killed ``structures`` job resumes from the last finished block.
A crystal that cannot be placed within the bounds (docs/xrd.md) is refused with its
reason (``placement_timeout``, ``no_placement``, ``no_composition``) in ``rejected.csv``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from mlxas.structures.sources import register_source

__all__ = ["PrototypesSource", "RandomCrystalsSource"]


def _atoms(structure, info: dict):
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info.update(info)
    return atoms


@register_source
@dataclass(frozen=True)
class RandomCrystalsSource:
    """``kind: random_crystals``: ``count`` pyxtal crystals, crystal ``i`` (from ``first``)
    in space group ``space_groups[i % len]`` (null: 1..230 in turn) with a composition
    and placement drawn from ``(seed, i)``.  Bounds: see
    :class:`mlxas.xrd.random_crystals.RandomCrystalSettings` (same field names)."""

    kind = "random_crystals"
    name: str
    count: int
    seed: int = 0
    first: int = 0
    space_groups: tuple[int, ...] | None = None
    max_atoms: int = 24
    max_formula_atoms: int = 8
    max_asymmetric: int = 8
    min_distance_factor: float = 0.7
    volume_factor: float = 1.1
    attempts: int = 10
    attempt_seconds: float | None = 2.0
    structure_seconds: float | None = 10.0
    block: int = 100  #: crystals per resumable block of the work folder

    def elements(self) -> tuple[str, ...]:
        from mlxas.xrd.random_crystals import ANIONS, CATIONS, METALS

        return tuple(sorted({*METALS, *ANIONS, *(e for v in CATIONS.values() for e in v)}))

    def groups(self) -> tuple[int, ...]:
        return self.space_groups or tuple(range(1, 231))

    def _settings(self):
        from mlxas.xrd.random_crystals import RandomCrystalSettings

        names = {f.name for f in fields(RandomCrystalSettings)}
        return RandomCrystalSettings(**{k: getattr(self, k) for k in names})

    def crystal(self, i: int):
        """``(name, origin, Atoms | Rejection)`` of crystal ``i``."""
        from mlxas.structures.checks import Rejection
        from mlxas.xrd.random_crystals import place_random_crystal

        groups = self.groups()
        sg = int(groups[i % len(groups)])
        name, origin = f"sg{sg:03d}_{i:07d}", f"random_crystals:{self.name}:{i}"
        structure, why = place_random_crystal(sg, self.seed * 1_000_003 + i, self._settings())
        if structure is None:
            return name, origin, Rejection(origin, None, why[0], f"space group {sg}: {why[1]}")
        return name, origin, _atoms(structure, {"space_group_drawn": sg, "index": i})

    def _block_file(self, work_dir: Path, lo: int, hi: int) -> Path:
        from mlxas.provenance import hash_json
        from mlxas.settings import to_dict

        keep = {k: v for k, v in to_dict(self).items() if k not in ("name", "count", "first")}
        return work_dir / f"block-{lo:08d}-{hi:08d}-{hash_json(keep)}.pkl"

    def generate(self, work_dir: Path | None = None) -> Iterator:
        from tqdm import tqdm

        bar = tqdm(total=self.count, desc=f"{self.name}: crystals", mininterval=10)
        for lo in range(self.first, self.first + self.count, self.block):
            hi = min(lo + self.block, self.first + self.count)
            path = self._block_file(Path(work_dir), lo, hi) if work_dir is not None else None
            if path is not None and path.is_file():
                done = pickle.loads(path.read_bytes())
            else:
                done = [self.crystal(i) for i in range(lo, hi)]
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                    tmp.write_bytes(pickle.dumps(done, protocol=5))
                    tmp.replace(path)
            bar.update(hi - lo)
            for name, origin, item in done:
                yield name, None, origin, item
        bar.close()


@register_source
@dataclass(frozen=True)
class PrototypesSource:
    """``kind: xrd_prototypes``: ``count`` instances of the prototype table
    (:mod:`mlxas.xrd.prototypes`), instance ``i`` (from ``first``) of
    ``prototypes[i % len]`` (null: every prototype in turn) with chemistry, lattice and
    free coordinates drawn from ``(seed, i)``; ``jitter`` scales the random changes."""

    kind = "xrd_prototypes"
    name: str
    count: int
    seed: int = 0
    first: int = 0
    prototypes: tuple[str, ...] | None = None
    jitter: float = 1.0

    def names(self) -> tuple[str, ...]:
        from mlxas.xrd.prototypes import prototype_names

        return self.prototypes or prototype_names()

    def elements(self) -> tuple[str, ...]:
        from mlxas.xrd.prototypes import PROTOTYPES

        found = set()
        for name in self.names():
            if name not in PROTOTYPES:
                from mlxas.errors import ConfigError

                raise ConfigError(
                    f"structures.{self.name}.prototypes: unknown prototype {name!r} "
                    f"(known: {', '.join(PROTOTYPES)})"
                )
            found |= {e for chem in PROTOTYPES[name].chemistries for pool in chem for e in pool}
        return tuple(sorted(found))

    def generate(self, work_dir: Path | None = None) -> Iterator:
        from mlxas.xrd.prototypes import prototype_structure

        names = self.names()
        for i in range(self.first, self.first + self.count):
            proto = names[i % len(names)]
            rng = np.random.default_rng([self.seed, i])
            structure = prototype_structure(proto, rng, self.jitter)
            info = {"prototype": proto, "index": i}
            yield (
                f"{proto}_{i:07d}",
                None,
                f"xrd_prototypes:{self.name}:{i}",
                _atoms(structure, info),
            )
