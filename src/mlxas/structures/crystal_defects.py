"""Point defects of a crystal source: vacancies and substitutions at given fractions.

A defect variant is ``{vacancies: {El: fraction}, substitutions: {El: {By: fraction}}}``:
that fraction of the structure's ``El`` atoms, drawn at random from the source's seed,
is removed or replaced by ``By``.  Fractions lie in (0, 1) and the fractions of one
element add up to less than 1; counts are rounded to whole atoms, and a fraction that
rounds to no atom is refused (the structure is too small for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from mlxas.structures.crystal_parent import CrystalInputError

__all__ = ["DefectVariant", "apply_defects"]

_fail = CrystalInputError.at


@dataclass(frozen=True)
class DefectVariant:
    """Vacancies ``{element: fraction}`` and substitutions ``{element: {by: fraction}}``."""

    vacancies: tuple[tuple[str, float], ...] = ()
    substitutions: tuple[tuple[str, str, float], ...] = ()

    @property
    def label(self) -> str:
        if not self.vacancies and not self.substitutions:
            return "perfect"
        parts = [f"vac-{el}{f:g}" for el, f in self.vacancies]
        parts += [f"sub-{el}{by}{f:g}" for el, by, f in self.substitutions]
        return "+".join(parts)

    @classmethod
    def parse(cls, obj: Any, where: str) -> DefectVariant:
        from ase.data import atomic_numbers

        if not isinstance(obj, Mapping) or not obj or set(obj) - {"vacancies", "substitutions"}:
            raise _fail(
                where, "give {vacancies: {El: fraction}, substitutions: {El: {By: fraction}}}"
            )
        vac = tuple((str(el), float(f)) for el, f in (obj.get("vacancies") or {}).items())
        sub = tuple(
            (str(el), str(by), float(f))
            for el, to in (obj.get("substitutions") or {}).items()
            for by, f in to.items()
        )
        share: dict[str, float] = {}
        for el, *rest in [*vac, *sub]:
            f = rest[-1]
            for sym in (el, *rest[:-1]):
                if sym not in atomic_numbers:
                    raise _fail(where, f"{sym!r} is not an element symbol")
            if not 0.0 < f < 1.0:
                raise _fail(where, f"fraction {f:g} of {el} is impossible; it must lie in (0, 1)")
            if len(rest) == 2 and rest[0] == el:
                raise _fail(where, f"substituting {el} by {el} changes nothing")
            share[el] = share.get(el, 0.0) + f
        over = {el: s for el, s in share.items() if s >= 1.0}
        if over:
            el, s = next(iter(over.items()))
            raise _fail(
                where, f"the fractions of {el} add up to {s:g}; together they must stay below 1"
            )
        return cls(vac, sub)


def apply_defects(
    atoms: Atoms, variant: DefectVariant, rng: np.random.Generator
) -> tuple[Atoms, str]:
    """Vacancies and substitutions at the variant's fractions of each element's atoms.

    Counts are rounded to the nearest integer; a fraction that rounds to no atom is an
    error (the structure is too small for it).  Returns the new structure and a label with
    the counts made, e.g. ``vac-O:1/32``.
    """
    symbols = np.array(atoms.get_chemical_symbols(), dtype=object)
    taken = np.zeros(len(atoms), dtype=bool)
    remove = np.zeros(len(atoms), dtype=bool)
    parts = []
    for el, by, frac in [(el, None, f) for el, f in variant.vacancies] + list(
        variant.substitutions
    ):
        pool = np.nonzero((symbols == el) & ~taken)[0]
        n_el = int(np.sum(np.array(atoms.get_chemical_symbols()) == el))
        if n_el == 0:
            raise CrystalInputError(f"defects: the structure has no {el} atom ({variant.label})")
        n = round(frac * n_el)
        if n == 0:
            raise CrystalInputError(
                f"defects: fraction {frac:g} of {n_el} {el} atoms rounds to none; raise "
                "`supercell` or the cluster size, or the fraction"
            )
        pick = rng.choice(pool, size=n, replace=False)
        taken[pick] = True
        if by is None:
            remove[pick] = True
            parts.append(f"vac-{el}:{n}/{n_el}")
        else:
            symbols[pick] = by
            parts.append(f"sub-{el}>{by}:{n}/{n_el}")
    out = atoms.copy()
    out.set_chemical_symbols(list(symbols))
    del out[np.nonzero(remove)[0]]
    return out, "+".join(parts)
