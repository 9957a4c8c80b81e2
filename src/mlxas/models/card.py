"""Model cards (``card.json``), the model folder they bind, and safe loading.

A model folder ``models/<name>/<model id>/`` holds the network (``model.keras``), the
out-of-distribution statistics and the band of the training inputs (JSON files), and
the card.  The card records the SHA-256 of every other file of the folder
(``card["files"]``), and the model id is the hash of the whole card (every key but
``model_id`` itself), so the id covers the weights, the OOD statistics, the dataset hash
and the training settings: a changed file, an edited card, a renamed folder or a changed
id no longer match.

Loading (:func:`load_model`) checks, before anything is deserialised:

- that a ``models/<name>.json`` pointer or the ``latest`` link resolves to a folder
  inside its own models folder (``../`` or absolute ids are refused);
- the card (format, the files it lists, the OOD statistics among them);
- the SHA-256 of every listed file, naming the file and both hashes on a mismatch;
- that the card's content gives its model id, and the folder is named by it;

and refuses legacy HDF5 models and models holding a ``Lambda`` layer.  Keras
``safe_mode`` is always on; mlxas never turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from mlxas.workflow.layout import (
    CARD_FILE,
    MODEL_FILE,
    MODEL_NPZ_FILE,
    OOD_FILE,
    TRAINING_BAND_FILE,
    ModelFiles,
)

__all__ = [
    "CARD_VERSION",
    "ModelLoadError",
    "card_model_id",
    "check_no_lambda",
    "file_sha256",
    "json_safe",
    "load_model",
    "loaded_card",
    "point_latest",
    "read_card",
    "resolve_model_dir",
    "verify_model_dir",
    "write_card",
    "write_json",
]

#: Version of the card.json layout; readers refuse other ones.  2: the card binds the
#: files of its folder by SHA-256 and the model id is the hash of the card.
CARD_VERSION = 2
#: Files a card must list: what ``mlxas predict`` needs besides the card (the model
#: file is the card's ``model_file``: model.keras, or model.npz for a numpy-backend kind).
REQUIRED_FILES = (MODEL_FILE, OOD_FILE, TRAINING_BAND_FILE)
#: Model files a card may name in ``model_file`` (absent: model.keras).
MODEL_FILES = (MODEL_FILE, MODEL_NPZ_FILE)


def model_file_name(card: dict[str, Any]) -> str:
    """The file holding the model of ``card``: its ``model_file`` (default model.keras)."""
    return card.get("model_file") or MODEL_FILE


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MODEL_ID = re.compile(r"^[0-9a-f]{16}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ModelLoadError(ValueError):
    """A model that mlxas refuses to load; the message names the path and the reason."""


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN floats replaced by None, so that it is strict JSON."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Strict JSON (NaN as null, sorted keys), written under a temporary name and renamed."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False))
    tmp.replace(path)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


#: Card keys that say when and how fast a model was trained, not what it is: left out of
#: the model id, so that retraining from the same config and data gives the same id.
VOLATILE_KEYS = ("created",)
VOLATILE_TRAINING_KEYS = ("seconds", "epochs_per_second")


def card_identity(card: dict[str, Any]) -> dict[str, Any]:
    """The part of ``card`` its model id hashes: everything but ``model_id`` and the
    volatile timing keys (:data:`VOLATILE_KEYS`, the training seconds)."""
    ident = {k: v for k, v in card.items() if k != "model_id" and k not in VOLATILE_KEYS}
    training = ident.get("training")
    if isinstance(training, dict):
        drop = VOLATILE_TRAINING_KEYS
        ident["training"] = {k: v for k, v in training.items() if k not in drop}
        networks = training.get("networks")
        if isinstance(networks, list):
            ident["training"]["networks"] = [
                {k: v for k, v in n.items() if k not in drop} if isinstance(n, dict) else n
                for n in networks
            ]
    return ident


def card_model_id(card: dict[str, Any]) -> str:
    """The id a card's content gives: hash of :func:`card_identity` (strict JSON)."""
    from mlxas.provenance import hash_json

    return hash_json(json_safe(card_identity(card)))


def write_card(model_dir: Path, card: dict[str, Any]) -> None:
    """Write ``card.json`` atomically (strict JSON: NaN is written as null)."""
    write_json(ModelFiles(Path(model_dir)).card, card)


def read_card(model_dir: str | Path) -> dict[str, Any]:
    path = ModelFiles(Path(model_dir)).card
    try:
        card = json.loads(path.read_text())
    except OSError:
        raise ModelLoadError(f"{path}: no model card next to the model") from None
    except ValueError as err:
        raise ModelLoadError(f"{path}: card is not valid JSON ({err})") from None
    version = card.get("card_version") if isinstance(card, dict) else None
    if version != CARD_VERSION:
        raise ModelLoadError(
            f"{path}: card format {version!r}; this mlxas reads format {CARD_VERSION} "
            "(cards that bind their files); train the model again with this mlxas"
        )
    return card


def _inside(path: Path, root: Path, what: str, given: str | Path) -> Path:
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(root))):
        raise ModelLoadError(f"{given}: {what} leads outside its models folder {root}")
    return real


def _from_pointer(p: Path) -> Path:
    try:
        data = json.loads(p.read_text())
    except ValueError as err:  # a pointer cut short or overwritten
        raise ModelLoadError(f"{p}: model pointer is not valid JSON ({err})") from None
    try:
        name, mid = data["name"], data["model_id"]
    except (KeyError, TypeError):
        raise ModelLoadError(f"{p}: not a model pointer (no name and model_id)") from None
    if not (isinstance(name, str) and _NAME.match(name)):
        raise ModelLoadError(f"{p}: pointer names the model {name!r}, not a plain name")
    if not (isinstance(mid, str) and _MODEL_ID.match(mid)):
        raise ModelLoadError(f"{p}: pointer holds the model id {mid!r}, not 16 hex digits")
    return _inside(p.parent / name / mid, p.parent, "the pointer", p)


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a model folder, its model.keras, a ``models/<name>.json`` pointer or
    ``models/latest``; pointers and ``latest`` must stay inside their models folder."""
    p = Path(path)
    if p.suffix in (".h5", ".hdf5"):
        raise ModelLoadError(
            f"{p}: legacy HDF5 Keras models are not loaded; mlxas only loads .keras models"
        )
    if p.suffix == ".json" and p.is_file() and p.name != CARD_FILE:
        p = _from_pointer(p)
    elif p.is_symlink():
        p = _inside(p, p.parent, "the link", path)
    if not p.exists() and not p.is_symlink():
        raise ModelLoadError(f"{p}: no such model file or folder")
    if p.name in MODEL_FILES:
        p = p.parent
    if not ModelFiles(p).model.is_file() and not ModelFiles(p).model_npz.is_file():
        if (p / "model.h5").is_file():
            raise ModelLoadError(f"{p}: holds a legacy model.h5; mlxas only loads .keras models")
        raise ModelLoadError(f"{p}: no {MODEL_FILE} in this folder")
    return p


def verify_model_dir(model_dir: str | Path) -> dict[str, Any]:
    """The card of ``model_dir`` once every file it lists matches its SHA-256, the card
    gives its model id and the folder is named by it; :class:`ModelLoadError` otherwise."""
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    where = ModelFiles(model_dir).card
    files = card.get("files")
    if not isinstance(files, dict):
        raise ModelLoadError(f"{where}: the card lists no files with their SHA-256")
    model_file = model_file_name(card)
    if model_file not in MODEL_FILES:
        raise ModelLoadError(f"{where}: model_file {model_file!r} is not one of {MODEL_FILES}")
    for name in (model_file, *REQUIRED_FILES[1:]):
        if name not in files:
            raise ModelLoadError(f"{where}: the card does not list {name}")
    for name, expected in sorted(files.items()):
        path = model_dir / name
        if Path(name).name != name or name == CARD_FILE:
            raise ModelLoadError(f"{where}: the card lists a file {name!r} outside its folder")
        if not path.is_file():
            raise ModelLoadError(f"{path}: missing (the card lists it)")
        actual = file_sha256(path)
        if actual != expected:
            raise ModelLoadError(
                f"{path}: SHA-256 {actual} does not match {expected} recorded in the card; "
                "the file was changed or replaced"
            )
    mid = card_model_id(card)
    if card.get("model_id") != mid:
        raise ModelLoadError(
            f"{where}: the card's content hashes to model id {mid}, the card says "
            f"{card.get('model_id')!r}; the card was edited"
        )
    if model_dir.resolve().name != mid:
        raise ModelLoadError(
            f"{model_dir}: folder name is not the card's model id {mid}; models are found "
            "by id, a renamed or copied-over folder is refused"
        )
    return card


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
    """Load a verified model and its card.  Keras ``safe_mode`` stays on.

    The card returned carries ``ood`` and ``training_band`` read from their (verified)
    files, and ``model_dir``, the folder it was loaded from.
    """
    model_dir = resolve_model_dir(path)
    card = verify_model_dir(model_dir)
    files = ModelFiles(model_dir)
    if model_file_name(card) == MODEL_NPZ_FILE:
        model = load_forest_file(files.model_npz)
    else:
        model = _load_keras(files.model)
    return model, loaded_card(model_dir, card)


def loaded_card(model_dir: Path, card: dict[str, Any]) -> dict[str, Any]:
    """The verified ``card`` of ``model_dir`` with ``ood`` and ``training_band`` read from
    their files and ``model_dir``: what every loader (Keras, numpy or forest) returns."""
    files = ModelFiles(model_dir)
    return {
        **card,
        "ood": json.loads(files.ood.read_text()),
        "training_band": json.loads(files.training_band.read_text()),
        "model_dir": str(model_dir),
    }


def load_forest_file(path: Path):
    """The random forest of a verified ``model.npz`` (numpy only, no pickle), for the
    Keras and the numpy loaders alike; ModelLoadError naming the file if malformed."""
    from mlxas.models.forest import ForestModel

    try:
        return ForestModel.load(path)
    except ValueError as err:
        raise ModelLoadError(str(err)) from None


def _load_keras(path: Path):
    check_no_lambda(path)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # Keras raises ValueError/TypeError/OSError for bad archives
        raise ModelLoadError(f"{path}: cannot load ({err})") from None


def point_latest(link: Path, target: Path) -> None:
    """Point the symbolic link ``link`` at ``target`` (relative) atomically: a new link
    under a temporary name renamed over the old one, so that readers never see it
    missing, also while several trainings finish at once."""
    import threading

    rel = os.path.relpath(target, link.parent)
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(rel, target_is_directory=True)
    os.replace(tmp, link)
