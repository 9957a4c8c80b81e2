"""Writing a model folder: the card of a trained model and the files it binds.

:func:`save_model_folder` writes the network, the out-of-distribution statistics and the
band of the training inputs into a temporary folder, records their SHA-256 in the card,
names the card by its model id (:func:`mlxas.models.card.card_model_id`) and renames the
folder to ``<store>/<model id>``.  A folder of that id that already exists is never
overwritten: it must hold the very same card.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlxas import __version__
from mlxas.models.card import (
    CARD_VERSION,
    ModelLoadError,
    card_identity,
    card_model_id,
    check_no_lambda,
    file_sha256,
    json_safe,
    model_file_name,
    read_card,
    write_card,
    write_json,
)
from mlxas.models.data import k_range_used
from mlxas.models.network import Scaling
from mlxas.models.spec import ModelSpec
from mlxas.models.training_data import TrainingData
from mlxas.workflow.layout import (
    MODEL_FILE,
    MODEL_NPZ_FILE,
    OOD_FILE,
    TRAINING_BAND_FILE,
    ModelFiles,
)

__all__ = ["UNITS", "build_card", "rebind_ood", "save_model_folder", "training_band"]

#: Units of the labels a model can predict, for cards and plots.
UNITS = {"cn": "", "r": "Å", "rdf": "1/Å"}
#: Percentiles of the training inputs kept for plots beside a prediction.
BAND_PERCENTILES = (5, 50, 95)


def build_card(
    spec: ModelSpec, data: TrainingData, record: dict[str, Any], threads: int
) -> dict[str, Any]:
    """The card of a freshly trained model (metrics added by the caller; files and model
    id by :func:`save_model_folder`)."""
    import keras
    import tensorflow as tf

    scaling: Scaling = record["scaling"]
    crop: slice = record["crop"]
    fc = data.features_cfg
    grid = None if data.grid is None else np.asarray(data.grid)
    return {
        "card_version": CARD_VERSION,
        "name": spec.name,
        "kind": spec.kind,
        "model_file": MODEL_NPZ_FILE if spec.model_kind().backend == "numpy" else MODEL_FILE,
        "mlxas_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": spec.to_dict(),
        "dataset": {
            **{k: v for k, v in data.dataset.items() if k in ("path", "hash")},
            "split": {
                **data.dataset.get("split", {}),
                "sizes": {s: len(d) for s, d in data.splits.items()},
            },
        },
        "preprocessing": {
            "input": spec.input,
            "input_shape": list(data.splits["train"].x.shape[1:]),
            "grid": None if grid is None else grid.tolist(),
            "input_range": None if spec.input_range is None else list(spec.input_range),
            "crop": [crop.start, crop.stop],
            "k_range": k_range_used(fc, spec, grid),
            "k_grid": fc.get("k_grid"),
            "kweight": fc.get("kweight"),
            "features": fc,
            "absorber": data.dataset.get("absorber", ""),
            "edge": data.dataset.get("edge", ""),
            "edge_energy": _edge_energy(data.dataset.get("absorber"), data.dataset.get("edge")),
            # every absorber of the training sites (several for the XANES geometry set)
            "absorbers": list(data.dataset.get("absorbers") or []),
            "edge_energies": {
                a: _edge_energy(a, data.dataset.get("edge"))
                for a in data.dataset.get("absorbers") or []
            },
            # the simulation that made the inputs (reflections: the list and resolution)
            "engine": {
                "name": data.dataset.get("engine", ""),
                "settings": data.dataset.get("engine_settings", {}),
            },
            "targets": data.layout.names,
            **scaling.to_json(),
        },
        "outputs": {
            "columns": data.layout.columns,
            "slices": data.layout.slices(),
            "units": {t: UNITS.get(t.split("_")[0], "") for t in data.layout.names},
            "members": spec.n_members if spec.kind == "ensemble" else None,
            # class targets: their class names, one output column (probability) each
            "classes": {t: list(c) for t, c in data.layout.classes.items()},
        },
        "training": {
            "seconds": float(sum(r["seconds"] for r in record["networks"])),
            "epochs_run": int(max(r["epochs_run"] for r in record["networks"])),
            "best_epoch": record["networks"][0]["best_epoch"],
            "networks": record["networks"],
            "threads": threads,
            "augment": spec.augment,
        },
    }


def _edge_energy(absorber: str | None, edge: str | None) -> float | None:
    """Tabulated edge energy (eV, xraydb), stored so that predict need not import xraydb."""
    if not absorber or not edge:
        return None
    import xraydb

    try:
        return float(xraydb.xray_edge(absorber, edge).energy)
    except (ValueError, KeyError):  # an edge xraydb does not tabulate: predict says so later
        return None


def training_band(
    x_train: np.ndarray, card: dict[str, Any], chi_train: np.ndarray | None = None
) -> dict[str, Any]:
    """Percentiles of the training inputs at every point of the input's grid: what a
    plot beside a prediction shows as the range of the training spectra.

    With the training spectra's unweighted chi(k) (``chi_train``, at least 2 rows), the
    band also holds ``views``: quantiles of k^w·chi(k) and |chi(R)| with the model's
    feature settings, drawn by ``mlxas predict --plot`` whatever the model's input
    (:mod:`mlxas.predict.band`).
    """
    x = np.asarray(x_train, dtype=np.float64)
    pct = np.percentile(x, BAND_PERCENTILES, axis=0) if len(x) else np.zeros((3, *x.shape[1:]))
    pre = card["preprocessing"]
    band = {
        "input": pre["input"],
        "grid": pre["grid"],
        "percentiles": list(BAND_PERCENTILES),
        "values": pct.tolist(),
        "n_train": len(x),
    }
    if chi_train is not None and len(chi_train) >= 2:
        from mlxas.predict.band import band_to_json, view_band

        band["views"] = band_to_json(view_band(chi_train, pre["features"]))
    return band


def normalise_zip_archive(path: Path) -> None:
    """Rewrite the zip archive ``path`` (a Keras ``.keras`` or a numpy ``.npz``) so that
    the same model gives the same bytes.  Keras stamps the save time into
    ``metadata.json`` and both stamp it on the zip entries; left in, every retraining
    would get a new SHA-256 and so a new model id."""
    with zipfile.ZipFile(path) as z:
        members = [(info, z.read(info)) for info in z.infolist()]
    tmp = path.with_name(path.name + ".norm")
    with zipfile.ZipFile(tmp, "w") as out:
        for info, data in members:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta, sort_keys=True).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            out.writestr(fixed, data)
    tmp.replace(path)


def _bind(tmp: Path, card: dict[str, Any], names) -> tuple[str, Path, dict[str, Any]]:
    """Bind the files ``names`` of the folder ``tmp`` by the card (their SHA-256, then the
    model id, the hash of the card) and move it to ``<store>/<model id>``; an existing
    folder of that id is kept if it holds the same card, else ModelLoadError."""
    card = {**card, "files": {n: file_sha256(tmp / n) for n in names}}
    card.pop("model_id", None)
    mid = card_model_id(card)
    card["model_id"] = mid
    write_card(tmp, card)
    final = tmp.parent / mid
    if final.exists():
        # Same id: the same model (a rerun, or a retraining from the same config and
        # data); the folder already there is kept, never replaced by another one.
        old = read_card(final)
        if card_identity(old) != json.loads(json.dumps(json_safe(card_identity(card)))):
            raise ModelLoadError(f"{final}: exists and holds another card; not overwritten")
        shutil.rmtree(tmp)
        card = old
    else:
        os.replace(tmp, final)
    return mid, final, card


def save_model_folder(
    model, card: dict[str, Any], ood: dict[str, Any], band: dict[str, Any], store: Path
) -> tuple[str, Path, dict[str, Any]]:
    """Write the folder ``<store>/<model id>``; returns the id, the folder and the card
    as written (with ``files``, the SHA-256 of each file, and ``model_id``)."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f".tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files = ModelFiles(tmp)
        model_file = model_file_name(card)
        if model_file == MODEL_FILE:
            keras_tmp = tmp / f".model.tmp-{os.getpid()}.keras"
            model.save(keras_tmp)
            normalise_zip_archive(keras_tmp)
            check_no_lambda(keras_tmp)
            keras_tmp.replace(files.model)
        else:
            model.save(files.model_npz)
            normalise_zip_archive(files.model_npz)
        write_json(files.ood, ood)
        write_json(files.training_band, band)
        mid, final, card = _bind(tmp, card, (model_file, OOD_FILE, TRAINING_BAND_FILE))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return mid, final, card


def rebind_ood(model_dir: Path, ood: dict[str, Any]) -> tuple[str, Path, dict[str, Any]]:
    """Give the verified model folder ``model_dir`` new OOD statistics: a new folder
    ``<store>/<new id>`` beside it, with the same files but ``ood.json``, the card's
    SHA-256 and model id made again; the old folder is removed.  Returns the new id, the
    new folder and its card.  The id is what training with these statistics would give."""
    from mlxas.models.card import verify_model_dir

    model_dir = Path(model_dir)
    card = verify_model_dir(model_dir)
    store = model_dir.parent
    tmp = store / f".tmp-rebind-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    try:
        write_json(ModelFiles(tmp).ood, ood)
        mid, final, card = _bind(tmp, card, list(card["files"]))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.resolve() != model_dir.resolve():
        shutil.rmtree(model_dir)
    return mid, final, card
