"""FEFF cards: per-engine templates (YAML) merged with the user's config, and validated.

Each engine has a template ``templates/<engine>.yaml`` listing the cards mlxas lets a
config set for that engine (with how many values each takes), the default cards, the
cards of each spectroscopy (``exafs``, ``xanes``) and of each edge.  A config card the
engine does not accept, or with the wrong number or kind of values, is a
:class:`CardError`: the config check (:mod:`mlxas.workflow.checks`, through the FEFF
engines' settings) reports it before any job.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

__all__ = [
    "CardError",
    "cards_with",
    "engine_names",
    "engine_template",
    "merged_cards",
    "normalise_value",
    "render_card",
    "validate_cards",
]

#: The engine templates read below; hashed into the code version of the stages using them.
__data_files__ = ("templates/*.yaml",)

#: Sections of feff.inp that mlxas writes itself from the structure.
_WRITTEN_BY_MLXAS = {"POTENTIALS", "ATOMS", "END", "OVERLAP", "CIF", "REAL", "RECIPROCAL"}
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class CardError(ValueError):
    """A card the engine does not accept, or a malformed card value (a config error)."""


def engine_names() -> list[str]:
    """Engines with a template, i.e. the values ``feff.engine`` may take."""
    root = files("mlxas.feff") / "templates"
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


@cache
def engine_template(engine: str) -> dict[str, Any]:
    """The parsed template of ``engine`` (cached; do not modify)."""
    path = files("mlxas.feff") / "templates" / f"{engine}.yaml"
    if not path.is_file():
        raise CardError(
            f"feff.engine: no template for engine {engine!r} (have: {', '.join(engine_names())})"
        )
    return yaml.safe_load(path.read_text())


def normalise_value(value: Any) -> list[Any]:
    """Card value as the list of values written after the card name.

    ``True`` (or an empty list) is a card without values, a scalar is one value.
    """
    if value is True:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return True
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, str) and re.fullmatch(r"[-+]?[0-9]+", v.strip()) is not None


def _check_one(engine: str, name: str, value: Any) -> None:
    tpl = engine_template(engine)
    spec = tpl["cards"].get(name)
    where = f"feff.cards.{name}"
    if spec is None:
        if name in _WRITTEN_BY_MLXAS:
            raise CardError(f"{where}: mlxas writes {name} from the structure; remove the card")
        hint = tpl.get("hints", {}).get(name)
        raise CardError(
            f"{where}: {tpl['label']} does not accept card {name}"
            + (f" ({hint})" if hint else "")
            + f"; accepted cards: {', '.join(sorted(tpl['cards']))}"
        )
    if value is False:
        raise CardError(f"{where}: false is not a card value; use null to remove the card")
    values = normalise_value(value)
    lo, hi = spec["values"]
    if not lo <= len(values) <= hi:
        want = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise CardError(f"{where}: takes {want} value(s), got {len(values)}: {values}")
    kind = spec.get("kind", "number")
    if kind == "text":
        text = " ".join(str(v) for v in values)
        if "\n" in text or "\r" in text:
            raise CardError(f"{where}: must be one line of text")
        return
    rest = values
    if kind == "label" and values:
        if not isinstance(values[0], str) or not _LABEL.match(values[0]):
            raise CardError(f"{where}: first value must be a word like K or L3, got {values[0]!r}")
        rest = values[1:]
    bad = [v for v in rest if not _is_number(v)]
    if bad:
        raise CardError(f"{where}: values must be numbers, got {bad}")
    ints = spec.get("int", [])
    positions = range(len(values)) if ints == "all" else [i for i in ints if i < len(values)]
    not_int = [values[i] for i in positions if not _is_integer(values[i])]
    if not_int:
        raise CardError(f"{where}: value(s) {not_int} must be integers (FEFF reads 8, not 8.0)")


def validate_cards(engine: str, cards: dict[str, Any]) -> None:
    """Raise :class:`CardError` for the first card ``engine`` does not accept as given."""
    for name, value in cards.items():
        _check_one(engine, name, value)
    if "EXAFS" in cards and "XANES" in cards:
        raise CardError(
            "feff.cards: EXAFS and XANES select two spectroscopies; a FEFF run computes one"
        )


def _upper_keys(overrides: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key.strip():
            raise CardError(f"feff.cards: card names must be words, got {key!r}")
        upper = key.strip().upper()
        if upper in out:
            raise CardError(f"feff.cards: card {upper} is given twice")
        out[upper] = value
    return out


def merged_cards(
    engine: str, edge: str, overrides: dict[str, Any], spectroscopy: str = "exafs"
) -> dict[str, Any]:
    """Validated cards: template defaults, spectroscopy, edge, then the config's cards.

    A config value ``None`` removes the card.  Card names are case-insensitive.
    """
    tpl = engine_template(engine)
    if spectroscopy not in tpl["spectroscopy"]:
        raise CardError(
            f"feff.spectroscopy: {tpl['label']} does not compute {spectroscopy} "
            f"(it computes: {', '.join(tpl['spectroscopy'])})"
        )
    if edge not in tpl["edges"]:
        raise CardError(
            f"edge: {tpl['label']} has no template for edge {edge!r} "
            f"(available: {', '.join(tpl['edges'])})"
        )
    merged = {**tpl["defaults"], **tpl["spectroscopy"][spectroscopy], **tpl["edges"][edge]}
    cards = {name: value for name, value in merged.items() if value is not None}
    return cards_with(engine, cards, overrides)


def cards_with(
    engine: str, cards: dict[str, Any], overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """``cards`` with ``overrides`` on top, validated; ``None`` removes a card.  Used for
    the config's cards over the template and for a structure's own cards over the
    config's merged cards (merging over the template again would bring back a default
    card that the config removed)."""
    out = dict(cards)
    for name, value in _upper_keys(overrides or {}).items():
        if value is None:
            # Removing another engine's card is a no-op, so that a config switching engines
            # can drop what the default config sets (RPATH for FEFF6L); a misspelt card
            # gets the same message as setting it would.
            if not any(name in engine_template(e)["cards"] for e in engine_names()):
                _check_one(engine, name, True)
            out.pop(name, None)
        else:
            _check_one(engine, name, value)
            out[name] = value
    validate_cards(engine, out)
    return out


def render_card(name: str, value: Any) -> str:
    """One feff.inp line; values are written space-separated after the card name."""
    return " ".join([name, *(str(v) for v in normalise_value(value))])
