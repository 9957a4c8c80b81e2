"""A model is exactly what its card says: the tampering corpus of issue 16, each refused
before anything is deserialised; pointers and `latest` stay inside their models folder;
`latest` is replaced atomically; predict needs only the model folder."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from conftest import EXPERIMENTAL
from mlxas.models.card import (
    ModelLoadError,
    card_model_id,
    file_sha256,
    load_model,
    point_latest,
    verify_model_dir,
)
from mlxas.workflow.layout import Layout


@pytest.fixture
def no_deserialising(monkeypatch):
    """Fails the test if Keras is asked to load anything: refusals come first."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"keras.saving.load_model was called: {args}")

    monkeypatch.setattr(keras.saving, "load_model", refuse)


def _copy(synthetic_models, name: str, root: Path) -> Path:
    """A copy of a trained model folder at the same place of a fresh layout."""
    src = synthetic_models["folders"][name]
    layout = Layout(root)
    dst = layout.model_dir(name, src.name)
    shutil.copytree(src, dst)
    shutil.copy(synthetic_models["pointers"][name], layout.model_pointer(name))
    return dst


def _card(folder: Path) -> dict:
    return json.loads((folder / "card.json").read_text())


def _write_card(folder: Path, card: dict, rebind: bool = False) -> None:
    """Write ``card``; with ``rebind`` its model id is recomputed, as a careful forger would."""
    if rebind:
        card["model_id"] = card_model_id(card)
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True))


def _edited_card(folder, other):
    card = _card(folder)
    card["preprocessing"]["absorber"] = "Ni"  # the card now claims another element
    _write_card(folder, card)
    return folder, "the card was edited"


def _changed_id(folder, other):
    card = _card(folder)
    card["model_id"] = other.name
    _write_card(folder, card)
    return folder, f"the card says '{other.name}'"


def _scaled_ood(folder, other):
    ood = json.loads((folder / "ood.json").read_text())
    assert ood["t2_threshold"] > 0 and ood["q_threshold"] > 0
    ood["t2_threshold"] *= 1e6
    ood["q_threshold"] *= 1e6
    before = file_sha256(folder / "ood.json")
    (folder / "ood.json").write_text(json.dumps(ood))
    return folder, f"ood.json: SHA-256 {file_sha256(folder / 'ood.json')} does not match {before}"


def _loosened_error_flag(folder, other):
    """The error flag's threshold raised so that it never fires (issue 18, item 6)."""
    ood = json.loads((folder / "ood.json").read_text())
    assert ood["error"]["status"] == "fitted"
    ood["error"]["threshold"] = 1.0
    before = file_sha256(folder / "ood.json")
    (folder / "ood.json").write_text(json.dumps(ood))
    return folder, f"ood.json: SHA-256 {file_sha256(folder / 'ood.json')} does not match {before}"


def _swapped_weights(folder, other):
    shutil.copy(other / "model.keras", folder / "model.keras")
    return folder, "model.keras: SHA-256"


def _foreign_model(folder, other):
    inp = keras.Input((3,))
    keras.Model(inp, keras.layers.Dense(2)(inp)).save(folder / "model.keras")
    return folder, "model.keras: SHA-256"


def _no_ood_statistics(folder, other):
    (folder / "ood.json").unlink()
    card = _card(folder)
    del card["files"]["ood.json"]
    _write_card(folder, card, rebind=True)
    new = folder.with_name(card["model_id"])
    folder.rename(new)
    return new, "the card does not list ood.json"


def _renamed_folder(folder, other):
    new = folder.with_name("0123456789abcdef")
    folder.rename(new)
    return new, "folder name is not the card's model id"


def _rebound_card(folder, other):
    """Edit the card and its id together: the folder name still gives it away."""
    card = _card(folder)
    card["preprocessing"]["edge"] = "L3"
    _write_card(folder, card, rebind=True)
    return folder, "folder name is not the card's model id"


#: Every tampering tried in issue 16, and more.
TAMPERING = {
    "edited card": _edited_card,
    "changed model id": _changed_id,
    "scaled OOD thresholds": _scaled_ood,
    "error flag that never fires": _loosened_error_flag,
    "swapped weights": _swapped_weights,
    "foreign model.keras under a real card": _foreign_model,
    "card without OOD statistics": _no_ood_statistics,
    "folder renamed to another id": _renamed_folder,
    "card and id edited together": _rebound_card,
}


def test_an_untouched_copy_loads(synthetic_models, tmp_path):
    folder = _copy(synthetic_models, "mt", tmp_path)
    model, card = load_model(folder)
    assert model.output_shape == (None, 14)  # cn, r and 12 RDF bins
    assert card["model_id"] == folder.name and card["ood"]["n_features"] > 0
    assert card["training_band"]["percentiles"] == [5, 50, 95]
    assert verify_model_dir(folder)["files"]["model.keras"] == file_sha256(folder / "model.keras")


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_refused_before_loading(case, synthetic_models, tmp_path, no_deserialising):
    folder = _copy(synthetic_models, "mt", tmp_path)
    other = synthetic_models["folders"]["ens"]
    target, message = TAMPERING[case](folder, other)
    with pytest.raises(ModelLoadError) as err:
        load_model(target)
    assert message in str(err.value), str(err.value)
    assert str(target) in str(err.value) or target.name in str(err.value)


@pytest.mark.parametrize("case", list(TAMPERING))
def test_numpy_loader_refuses_what_keras_refuses(case, synthetic_models, tmp_path, monkeypatch):
    """`mlxas predict` runs the numpy loader: the same binding, checked before parsing."""
    from mlxas.models import numpy_net

    def refuse(*args, **kwargs):
        raise AssertionError(f"the archive was parsed: {args}")

    monkeypatch.setattr(numpy_net, "read_archive", refuse)
    folder = _copy(synthetic_models, "mt", tmp_path)
    target, message = TAMPERING[case](folder, synthetic_models["folders"]["ens"])
    with pytest.raises(ModelLoadError) as err:
        numpy_net.load_model(target)
    assert message in str(err.value), str(err.value)


def _pointer_to(layout: Layout, name: str, model_id: str) -> Path:
    path = layout.model_pointer(name)
    path.write_text(json.dumps({"name": name, "model_id": model_id}))
    return path


def test_pointers_and_latest_stay_inside_the_models_folder(synthetic_models, tmp_path):
    folder = _copy(synthetic_models, "mt", tmp_path / "exp")
    layout = Layout(tmp_path / "exp")
    # A real model folder outside this experiment's models folder.
    outside = _copy(synthetic_models, "ens", tmp_path / "elsewhere")
    assert load_model(layout.model_pointer("mt"))[1]["model_id"] == folder.name
    bad = [
        ("mt", f"../../elsewhere/models/ens/{outside.name}", "not 16 hex digits"),
        ("mt", str(outside), "not 16 hex digits"),  # an absolute id
        ("../../elsewhere/models/ens", outside.name, "not a plain name"),
    ]
    for name, mid, message in bad:
        pointer = _pointer_to(layout, "evil", mid)
        pointer.write_text(json.dumps({"name": name, "model_id": mid}))
        with pytest.raises(ModelLoadError, match=message):
            load_model(pointer)
    # A link named latest that leads out of the models folder.
    link = layout.latest
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="leads outside its models folder"):
        load_model(link)
    link.unlink()
    point_latest(link, folder)
    assert os.readlink(link) == f"mt/{folder.name}" and load_model(link)[1]["name"] == "mt"


def test_missing_model_paths_and_damaged_pointers_say_so(synthetic_models, tmp_path):
    """A mistyped model path is 'no such model file or folder' (not 'no model.keras in
    this folder'); a pointer cut short says it is not valid JSON."""
    _copy(synthetic_models, "mt", tmp_path / "exp")
    layout = Layout(tmp_path / "exp")
    for missing in (tmp_path / "nowhere" / "mlp.json", tmp_path / "nowhere"):
        with pytest.raises(ModelLoadError, match=f"^{missing}: no such model file or folder$"):
            load_model(missing)
    pointer = layout.model_pointer("mt")
    pointer.write_text(pointer.read_text()[:10])
    with pytest.raises(ModelLoadError, match=f"^{pointer}: model pointer is not valid JSON"):
        load_model(pointer)
    _pointer_to(layout, "mt", "0123456789abcdef")  # no such model folder
    with pytest.raises(ModelLoadError, match="0123456789abcdef: no such model file or folder"):
        load_model(pointer)


def _flip_latest(args: tuple) -> int:
    link, targets, n = args
    for i in range(n):
        point_latest(Path(link), Path(targets[i % len(targets)]))
    return n


def test_latest_is_replaced_atomically_under_parallel_training(synthetic_models, tmp_path):
    """Trainings finishing together each point `latest` at their model: a reader never
    finds it missing or half written, and it ends at one of the models."""
    layout = Layout(tmp_path)
    folders = [_copy(synthetic_models, n, tmp_path) for n in ("mt", "ens")]
    link = layout.latest
    point_latest(link, folders[0])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        job = pool.map_async(
            _flip_latest,
            [(str(link), [str(f) for f in folders], 400), (str(link), [str(folders[1])], 400)],
        )
        seen, deadline = set(), time.monotonic() + 120
        while not job.ready() and time.monotonic() < deadline:
            target = os.readlink(link)  # raises if the link were ever missing
            seen.add(target)
            assert (link.parent / target / "card.json").is_file()
        assert job.get(timeout=120) == [400, 400]
    assert {f"mt/{folders[0].name}", f"ens/{folders[1].name}"} >= seen
    assert os.readlink(link) in {f"mt/{folders[0].name}", f"ens/{folders[1].name}"}
    assert not list(tmp_path.glob("models/.latest.tmp-*"))


def test_predict_refuses_a_tampered_model_in_one_line(synthetic_models, tmp_path):
    folder = _copy(synthetic_models, "mt", tmp_path)
    _scaled_ood(folder, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlxas",
            "predict",
            str(folder),
            str(EXPERIMENTAL / "cu_metal_rt.xdi"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"mlxas: error: {folder / 'ood.json'}: SHA-256 ")


@pytest.mark.workflow
def test_predict_needs_only_the_model_folder(tiny_experiment, tmp_path):
    """The model folder copied alone (no dataset anywhere near it) predicts with its OOD
    flag: everything predict uses is in the folder and bound by the card."""
    from mlxas.predict.predictor import Predictor

    src = Layout(tiny_experiment / "results" / "tiny")
    pointer = json.loads(src.model_pointer("mlp").read_text())
    alone = tmp_path / pointer["model_id"]
    shutil.copytree(src.model_dir("mlp", pointer["model_id"]), alone)
    assert not list(tmp_path.rglob("*.h5"))
    with Predictor(alone, jobs=1, allow_short_k=True) as p:
        (result,) = p.predict([EXPERIMENTAL / "cu_metal_rt.xdi"])
    assert result.status == "ok" and isinstance(result.values["ood"], bool)
    assert p.training_band["n_train"] == p.card["dataset"]["split"]["sizes"]["train"]
