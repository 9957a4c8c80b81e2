"""Model cards (card.json) and safe loading of saved models.

A model directory ``models/<model-id>/`` holds ``model.keras`` and ``card.json``.
Loading refuses, with a message naming the file:

- legacy HDF5 models (``.h5``/``.hdf5`` files, or an HDF5 file named ``model.keras``);
- models whose saved configuration contains a ``Lambda`` layer (it would run code
  stored in the file);
- a missing or unreadable card, or a card written by a newer card format.

Keras ``safe_mode`` is always on; mlxas never turns it off.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

__all__ = [
    "CARD_VERSION",
    "ModelLoadError",
    "check_no_lambda",
    "json_safe",
    "load_model",
    "read_card",
    "resolve_model_dir",
    "write_card",
]

#: Version of the card.json layout; readers refuse newer ones.
CARD_VERSION = 1

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class ModelLoadError(ValueError):
    """A model that mlxas refuses to load; the message names the path and the reason."""


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    """Write ``card.json`` atomically (strict JSON: NaN is written as null)."""
    tmp = Path(model_dir) / ".card.json.tmp"
    tmp.write_text(json.dumps(json_safe(card), indent=2, sort_keys=True, allow_nan=False))
    tmp.replace(Path(model_dir) / "card.json")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN floats replaced by None, so that it is strict JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def read_card(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "card.json"
    try:
        card = json.loads(path.read_text())
    except OSError:
        raise ModelLoadError(f"{path}: no model card next to the model") from None
    except ValueError as err:
        raise ModelLoadError(f"{path}: card is not valid JSON ({err})") from None
    version = card.get("card_version", 1) if isinstance(card, dict) else None
    if not isinstance(version, int) or version > CARD_VERSION:
        raise ModelLoadError(
            f"{path}: card format {version!r} is newer than this mlxas reads ({CARD_VERSION}); "
            "upgrade mlxas"
        )
    return card


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a model directory, its model.keras, a ``models/<name>.json`` pointer or ``latest``."""
    p = Path(path)
    if p.suffix in (".h5", ".hdf5"):
        raise ModelLoadError(
            f"{p}: legacy HDF5 Keras models are not loaded; mlxas only loads .keras models"
        )
    if p.suffix == ".json" and p.is_file() and p.name != "card.json":
        try:
            p = p.parent / json.loads(p.read_text())["model_id"]
        except (ValueError, KeyError, TypeError):
            raise ModelLoadError(f"{path}: not a model pointer (no model_id)") from None
    if p.name == "model.keras":
        p = p.parent
    if not (p / "model.keras").is_file():
        if (p / "model.h5").is_file():
            raise ModelLoadError(f"{p}: holds a legacy model.h5; mlxas only loads .keras models")
        raise ModelLoadError(f"{p}: no model.keras in this directory")
    return p


def _layer_classes(obj: Any) -> list[str]:
    """Every ``class_name`` in a serialised Keras configuration, nested models included."""
    found: list[str] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("class_name"), str):
            found.append(obj["class_name"])
        for v in obj.values():
            found.extend(_layer_classes(v))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(_layer_classes(v))
    return found


def check_no_lambda(keras_file: str | Path) -> None:
    """Refuse a ``.keras`` archive that is HDF5, unreadable, or holds a Lambda layer."""
    path = Path(keras_file)
    with open(path, "rb") as fh:
        if fh.read(8) == _HDF5_MAGIC:
            raise ModelLoadError(
                f"{path}: is a legacy HDF5 Keras model under a .keras name; "
                "mlxas only loads .keras archives"
            )
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise ModelLoadError(f"{path}: not a Keras .keras archive ({err})") from None
    if "Lambda" in _layer_classes(config):
        raise ModelLoadError(
            f"{path}: contains a Lambda layer, which would run code stored in the file; "
            "mlxas refuses such models (safe_mode stays on)"
        )


def load_model(path: str | Path):
    """Load a model and its card.  Keras ``safe_mode`` stays on: no arbitrary code runs."""
    model_dir = resolve_model_dir(path)
    card = read_card(model_dir)
    keras_file = model_dir / "model.keras"
    check_no_lambda(keras_file)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    try:
        model = keras.saving.load_model(keras_file, safe_mode=True, compile=False)
    except Exception as err:  # Keras raises ValueError/TypeError/OSError for bad archives
        raise ModelLoadError(f"{keras_file}: cannot load ({err})") from None
    return model, card
