"""The ``random_molecular`` structure source: random organic molecular crystals
(:mod:`mlxas.phases.crystals`) as a source of the workflow's ``structures`` stage.

A config entry::

    structures:
      - {name: p1bar, kind: random_molecular, n: 10000, space_group: 2, seed: 0}

makes crystals ``start .. start + n - 1`` of the generator's stream ``seed``; crystal
``i`` is a pure function of ``(settings, i)``, so sources with the same settings and
disjoint ``start`` ranges (one per cluster job) never share a crystal.  A crystal that
could not be made within ``max_attempts`` draws is a rejection with reason
``generation_failed``; unknown molecule names stop the job with the generator's message
(checking them needs pyxtal's database, seconds to load, so the config check does not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlxas.errors import ConfigError
from mlxas.structures.sources import register_source

__all__ = ["RandomMolecularSource"]

#: elements of the default molecule set (:data:`mlxas.phases.crystals.DEFAULT_MOLECULES`)
DEFAULT_ELEMENTS = ("C", "Cl", "H", "N", "O", "S")


@register_source
@dataclass(frozen=True)
class RandomMolecularSource:
    """A ``kind: random_molecular`` source.  Lengths in Å.

    ``n`` crystals from index ``start``; ``space_group`` 2 (P-1) or 14 (P2_1/c);
    ``molecules``: molecule names (ASE's G2 set, or ``pyxtal:<name>``), None for the
    default organic set; the other fields are those of
    :class:`mlxas.phases.crystals.CrystalSettings`.
    """

    kind = "random_molecular"
    name: str
    n: int
    space_group: int = 2
    seed: int = 0
    start: int = 0
    molecules: tuple[str, ...] | None = None
    max_molecules: int = 2
    max_heavy_atoms: int = 20
    max_edge: float = 11.0
    volume_factor: float = 1.0
    max_attempts: int = 30

    def __post_init__(self) -> None:
        from mlxas.phases.crystals import SPACE_GROUPS

        key = f"structures.{self.name}"
        if self.space_group not in SPACE_GROUPS:
            raise ConfigError(
                f"{key}.space_group: {self.space_group} is not one of {sorted(SPACE_GROUPS)}"
            )
        if self.n < 1 or self.start < 0:
            raise ConfigError(f"{key}: n must be >= 1 and start >= 0 (got {self.n}, {self.start})")

    def elements(self) -> tuple[str, ...]:
        return DEFAULT_ELEMENTS if self.molecules is None else ()

    def crystal_settings(self):
        """The generator's :class:`~mlxas.phases.crystals.CrystalSettings` (loads pyxtal)."""
        from mlxas.phases.crystals import DEFAULT_MOLECULES, CrystalSettings

        return CrystalSettings(
            space_group=self.space_group,
            seed=self.seed,
            molecules=tuple(self.molecules or DEFAULT_MOLECULES),
            max_molecules=self.max_molecules,
            max_heavy_atoms=self.max_heavy_atoms,
            max_edge=self.max_edge,
            volume_factor=self.volume_factor,
            max_attempts=self.max_attempts,
        )

    def generate(self, work_dir: Path | None = None) -> Iterator:
        from mlxas.phases.crystals import CrystalError, random_crystals
        from mlxas.structures.checks import Rejection

        try:
            settings = self.crystal_settings()
        except CrystalError as err:
            raise ConfigError(f"structures.{self.name}: {err}") from None
        origin = f"random_molecular:{self.name}"
        for index, item in random_crystals(settings, self.n, self.start):
            if isinstance(item, CrystalError):
                rejection = Rejection(f"{origin}@{index}", None, "generation_failed", str(item))
                yield f"{self.name}_{index:07d}", None, rejection.origin, rejection
                continue
            yield str(item.info["name"]), None, str(item.info["origin"]), item
