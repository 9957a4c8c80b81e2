"""Which model inputs are read from mu(E) near the edge (XANES) rather than from chi(k).

The one owner of that decision: the predict layer (no background removal, an energy span
instead of a k-range), ``mlxas models`` (what a card's input reads), the trainer (inputs
not computed from chi(k)) and the error flag (readings perturbed as edges) all ask here,
so a new edge input is added in one place.

Nothing is imported: ``mlxas predict`` imports this at start-up, and the models and
error-flag modules import it without pulling in the predict layer (no cycles).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EDGE_INPUTS",
    "NORMALISED_EDGE_INPUTS",
    "card_input",
    "reads_edge",
    "reads_normalised_edge",
]

#: Model inputs read from mu(E) near the edge (:mod:`mlxas.spectra.xanes`), on the grid
#: E − E0: computed from mu(E), not from chi(k), so they need no background removal and
#: no k-range, only the energy span of their grid (features ``xanes``, ``mu``,
#: ``xanes_deriv``, ``xanes_channels`` of :mod:`mlxas.spectra.features`).
EDGE_INPUTS: tuple[str, ...] = ("xanes", "mu", "xanes_deriv", "xanes_channels")

#: The edge inputs that hold the *normalised* mu(E) itself: ``xanes``, and
#: ``xanes_channels`` (normalised mu(E) and its derivative, which is recomputed from it).
#: Only these can be perturbed the way :mod:`mlxas.xanes.augment` perturbs an edge
#: (broadening, shift, edge-step error: physics of a normalised edge), which the training
#: augmentation (``augment.xanes``) and the edge error flag do.  ``mu`` is not normalised
#: and ``xanes_deriv`` holds the derivative alone, with no spectrum to perturb.
NORMALISED_EDGE_INPUTS: tuple[str, ...] = ("xanes", "xanes_channels")


def card_input(card: dict[str, Any]) -> str | None:
    """The model input a card names (``preprocessing.input``); None when it names none
    (a card that could not be read fully is still listed by ``mlxas models``)."""
    return (card.get("preprocessing") or {}).get("input")


def reads_edge(card: dict[str, Any]) -> bool:
    """Whether the model of ``card`` reads mu(E) near the edge (:data:`EDGE_INPUTS`)
    rather than chi(k) or a transform of it."""
    return card_input(card) in EDGE_INPUTS


def reads_normalised_edge(card: dict[str, Any]) -> bool:
    """Whether the model of ``card`` reads the normalised edge
    (:data:`NORMALISED_EDGE_INPUTS`), so that its inputs can be perturbed as edges."""
    return card_input(card) in NORMALISED_EDGE_INPUTS
