"""FEFF cards a structure brings to its own input: the per-structure DEBYE card.

A crystal source with ``temperature.model: debye_card`` sweeps the temperature by giving
every static structure its own T and Debye temperature θ (``atoms.info["temperature"]``,
``atoms.info["debye_temperature"]``, K).  The inputs stage merges these cards over the
config's cards for that structure's sites:

    cards = merged_cards(engine, edge, {**config_cards, **structure_cards(atoms)}, ...)

Structures whose geometry already holds the thermal disorder (snapshots of the
``einstein``, ``debye`` and ``md`` models) remove any DEBYE card of the config (value
``None``), so that the disorder is not counted twice.  Structures without thermal
provenance bring no card.
"""

from __future__ import annotations

from typing import Any

from ase import Atoms

__all__ = ["SNAPSHOT_MODELS", "structure_cards"]

#: Thermal models whose structures carry their disorder in the atomic positions.
SNAPSHOT_MODELS = ("einstein", "debye", "md_emt")


def structure_cards(atoms: Atoms) -> dict[str, Any]:
    """The FEFF cards of one structure: ``{"DEBYE": [T, θ]}``, ``{"DEBYE": None}`` (remove
    the config's card) or ``{}``; values as :func:`mlxas.feff.cards.merged_cards` takes them."""
    thermal = atoms.info.get("thermal")
    if thermal == "debye_card":
        t = float(atoms.info["temperature"])
        theta = float(atoms.info["debye_temperature"])
        if t <= 0 or theta <= 0:
            raise ValueError(f"DEBYE card needs T > 0 and θ > 0 K, got T={t}, θ={theta}")
        return {"DEBYE": [_number(t), _number(theta)]}
    if thermal in SNAPSHOT_MODELS:
        return {"DEBYE": None}
    return {}


def _number(x: float) -> float | int:
    """An integer-valued float as int, so the card reads ``DEBYE 300 315``."""
    return int(x) if float(x).is_integer() else round(float(x), 3)
