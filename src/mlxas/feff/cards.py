"""FEFF card templates (YAML, one per engine) merged with the user's config."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml

__all__ = ["CardError", "engine_template", "merged_cards", "render_card"]


class CardError(ValueError):
    """A card the engine does not accept, or a malformed card value."""


@cache
def engine_template(engine: str) -> dict[str, Any]:
    path = files("mlxas.feff") / "templates" / f"{engine}.yaml"
    if not path.is_file():
        raise CardError(f"feff.engine: no template for engine {engine!r}")
    return yaml.safe_load(path.read_text())


def merged_cards(engine: str, edge: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Template defaults, then the edge's cards, then the config's; ``None`` removes a card."""
    tpl = engine_template(engine)
    if edge not in tpl["edges"]:
        raise CardError(
            f"edge: {engine} has no template for edge {edge!r} "
            f"(available: {', '.join(tpl['edges'])})"
        )
    accepted = set(tpl["accepted_cards"])
    unknown = sorted(k for k in overrides if k.upper() not in accepted)
    if unknown:
        raise CardError(f"feff.cards: {engine} does not accept card(s) {unknown}")
    cards = {**tpl["defaults"], **tpl["edges"][edge]}
    for key, value in overrides.items():
        if value is None:
            cards.pop(key.upper(), None)
        else:
            cards[key.upper()] = value
    return cards


def render_card(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return name if value else ""
    if isinstance(value, list | tuple):
        return " ".join([name, *(str(v) for v in value)])
    return f"{name} {value}"
