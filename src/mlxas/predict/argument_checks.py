"""``mlxas predict``: checks of the command's arguments, made before any file is read,
and the expansion of directories among the FILE arguments."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from mlxas.spectra.measured import SpectrumError
from mlxas.workflow.layout import CARD_FILE, MODEL_FILE, MODEL_NPZ_FILE

__all__ = ["check_numbers", "e0_option", "expand", "is_model_path", "model_argument"]


def expand(files: list[str], patterns: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The files to predict, and the directories among ``files`` that hold none (each with
    the reason), so that a batch reports them instead of dropping them without a word."""
    import fnmatch

    out: list[str] = []
    empty: dict[str, str] = {}
    for f in files:
        p = Path(f)
        if p.is_dir():
            kids = sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
            if patterns:
                kids = [c for c in kids if any(fnmatch.fnmatch(c.name, pat) for pat in patterns)]
                if not kids:
                    empty[f] = f"directory holds no file matching {' '.join(patterns)}"
            elif not kids:
                empty[f] = "directory holds no files"
            out.extend(str(c) for c in kids)
        else:
            out.append(f)
    return out, empty


def e0_option(text: str) -> str | float:
    if text in ("auto", "file"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SpectrumError("--e0", f"expected 'auto', 'file' or a number in eV, got '{text}'")
    return value


def check_numbers(a: argparse.Namespace) -> None:
    """Refuse numeric options that are no setting at all (NaN, negative radii) before any
    file is read: they would otherwise fail file by file, or be used without a word."""
    checks = [
        ("--rbkg", a.rbkg, a.rbkg > 0, "a radius in Å, more than 0"),
        ("--bkg-kweight", a.bkg_kweight, a.bkg_kweight >= 0, "a k-weight, 0 or more"),
        ("--jobs", a.jobs, a.jobs >= 0, "a number of processes, 0 (all cores) or more"),
        ("--interval", a.interval, a.interval > 0, "seconds, more than 0"),
        ("--settle", a.settle, a.settle >= 0, "seconds, 0 or more"),
    ]
    if a.wavelength is not None:
        checks.append(("--wavelength", a.wavelength, a.wavelength > 0, "Å, more than 0"))
    for option, value, ok, want in checks:
        if not (ok and math.isfinite(value)):
            raise SpectrumError(option, f"{value}: expected {want}")


def is_model_path(text: str) -> bool:
    """Whether a first positional names a model (a pointer, a model folder, its
    model.keras or ``latest``) rather than a spectrum file or a folder of them."""
    p = Path(text)
    if p.suffix == ".json" or p.name in (MODEL_FILE, MODEL_NPZ_FILE):
        return True
    if p.suffix in (".h5", ".hdf5"):
        return True
    # a model folder: a Keras model, or a numpy-backend one (forests) beside its card
    npz_model = (p / MODEL_NPZ_FILE).exists() and (p / CARD_FILE).exists()
    return p.is_dir() and ((p / MODEL_FILE).exists() or npz_model)


def _pointer_files(folder: Path) -> list[Path]:
    """The model pointers (``<entry>.json`` with a model id and a name) in ``folder``."""
    import json

    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue  # not a pointer; a folder of spectra may hold other JSON
        if isinstance(data, dict) and "model_id" in data and "name" in data:
            out.append(p)
    return out


def model_argument(text: str, models: str | None = None) -> tuple[str | None, str | None]:
    """What the first positional of ``mlxas predict`` names: (model path, bundled name).

    A model path is itself; an argument that is no existing path but names a bundled model
    (:func:`~mlxas.predict.bundled.find_model`, in ``models`` or ``$MLXAS_MODELS``) is that
    model's pointer; anything else is a spectrum file or folder: (None, None).  A folder of
    model pointers (an experiment's ``models/``) is refused: read as spectra, its pointers
    and facts would each be refused as a file, hiding the slip.
    """
    if is_model_path(text):
        return text, None
    p = Path(text)
    if p.is_dir():
        if pointers := _pointer_files(p):
            shown = " or ".join(str(q) for q in pointers[:4]) + (" or …" * (len(pointers) > 4))
            raise SpectrumError(
                text, f"a folder of model pointers, not a model or spectra: give {shown} as MODEL"
            )
        return None, None
    if p.exists():
        return None, None
    from mlxas.models.card import ModelLoadError
    from mlxas.predict.bundled import find_model

    try:
        found = find_model(text, models)
    except ModelLoadError:  # no such bundled model: a missing file, refused as such later
        return None, None
    return str(found.pointer), found.name
