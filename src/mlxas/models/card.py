"""Model cards (card.json) and safe loading of saved models."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["ModelLoadError", "load_model", "read_card", "resolve_model_dir", "write_card"]


class ModelLoadError(ValueError):
    """A model that mlxas refuses to load; the message names the path and the reason."""


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    tmp = model_dir / ".card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True))
    tmp.replace(model_dir / "card.json")


def read_card(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "card.json"
    try:
        return json.loads(path.read_text())
    except OSError:
        raise ModelLoadError(f"{path}: no model card next to the model") from None
    except ValueError as err:
        raise ModelLoadError(f"{path}: card is not valid JSON ({err})") from None


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a model directory, its model.keras, a ``models/<name>.json`` pointer or ``latest``."""
    p = Path(path)
    if p.suffix == ".json" and p.is_file() and p.name != "card.json":
        p = p.parent / json.loads(p.read_text())["model_id"]
    if p.suffix in (".h5", ".hdf5"):
        raise ModelLoadError(f"{p}: legacy HDF5 Keras models are not loaded; use a .keras model")
    if p.name == "model.keras":
        p = p.parent
    if not (p / "model.keras").is_file():
        if (p / "model.h5").is_file():
            raise ModelLoadError(f"{p}: holds a legacy model.h5; mlxas only loads .keras models")
        raise ModelLoadError(f"{p}: no model.keras in this directory")
    return p


def load_model(path: str | Path):
    """Load a model and its card.  Keras ``safe_mode`` stays on: no arbitrary code runs."""
    model_dir = resolve_model_dir(path)
    card = read_card(model_dir)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    try:
        model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
    except Exception as err:  # Keras raises ValueError/TypeError/OSError for bad archives
        raise ModelLoadError(f"{model_dir / 'model.keras'}: cannot load ({err})") from None
    return model, card
