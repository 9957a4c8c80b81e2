"""Provenance: each config key that changes a result reruns exactly the stages that use it,
and a model folder is never overwritten by a different model.

The tiny experiment (real FEFF8L, real Keras) is copied once; each case edits one key of
its config and asks Snakemake for a dry run.  The stages expected follow the data flow:
a stage reruns when its own settings change (its rule parameter) or when a file it reads
will be rewritten.  When the ``inputs`` checkpoint reruns, the chunk jobs after it are
planned anew once it has run, so a dry run lists ``inputs`` but not yet ``simulate``.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from conftest import TINY_CONFIG, snakemake
from test_workflow import _scheduled

pytestmark = pytest.mark.workflow

MODEL = {"train", "latest", "evaluate"}
DATASET = {"gather", *MODEL}
SIMULATION = {"simulate", *DATASET}
#: The inputs checkpoint reruns: the simulation after it is planned again (not listed).
REPLANNED = {"inputs", *DATASET}


@pytest.fixture(scope="module")
def work(tiny_experiment, tmp_path_factory):
    """A copy of the finished tiny experiment (results and Snakemake's records)."""
    dst = tmp_path_factory.mktemp("reruns") / "w"
    shutil.copytree(tiny_experiment, dst, symlinks=True)
    return dst


def _edit(cfg: dict, path: str, value) -> None:
    *keys, last = path.split(".")
    node = cfg
    for key in keys:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value


#: (config key, new value, rules expected in the dry run, per-source rules' sources).
CASES = [
    ("structures.1.sizes", [3], {"structures", "sites", "labels", "inputs", *DATASET}, "cubo"),
    ("sites.symprec", 0.05, {"sites", "labels", *REPLANNED}, "both"),
    ("labels.coordination", {"cn_rule": "cutoff", "cutoff": 3.0}, {"labels", *DATASET}, "both"),
    ("labels.coordination.rdf", {"sigma": 0.1}, {"labels", *DATASET}, "both"),
    ("feff.cards.RPATH", 5.0, REPLANNED, "both"),
    ("feff.cluster_radius", 5.5, REPLANNED, "both"),
    ("simulation.chunk_size", 3, REPLANNED, "both"),
    ("simulation.timeout", 600, SIMULATION, "both"),
    ("features.kweight", 3, DATASET, None),
    ("features.ft.kmax", 12.0, DATASET, None),
    ("dataset.split.seed", 2, DATASET, None),
    ("averaging.k", 2, DATASET, None),
    ("models.0.epochs", 4, MODEL, None),
    ("models.0.input", "ft_mag", MODEL, None),
    # Settings that change no result: nothing to do.
    ("simulation.threads", 1, set(), None),
    ("tune.trials", 5, set(), None),
]


@pytest.mark.parametrize(("key", "value", "rules", "sources"), CASES, ids=[c[0] for c in CASES])
def test_a_key_reruns_exactly_the_stages_that_use_it(work, tmp_path, key, value, rules, sources):
    cfg = copy.deepcopy(TINY_CONFIG)
    _edit(cfg, key, value)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "--configfile", str(path), "-n")
    jobs = _scheduled(proc)
    jobs.pop("all", None)
    if not rules:
        assert "Nothing to be done" in proc.stdout + proc.stderr, jobs
        return
    assert set(jobs) == rules, (key, sorted(jobs))
    per_source = {"structures", "sites", "labels", "inputs"} & rules
    expected = ["source=cubo"] if sources == "cubo" else ["source=cubo", "source=octa"]
    for rule in per_source:
        assert sorted(jobs[rule]) == expected, (rule, jobs[rule])


@pytest.mark.slow
def test_new_label_settings_give_a_new_dataset_and_a_new_model(work, tmp_path):
    """Labels go into the dataset hash and through it into the model id: a model trained
    on other labels gets another folder, and the one trained before is never overwritten."""
    from mlxas.workflow.layout import Layout

    run = tmp_path / "run"
    shutil.copytree(work, run, symlinks=True)
    layout = Layout(run / "results" / "tiny")
    before = json.loads(layout.model_pointer("mlp").read_text())["model_id"]
    old_folder = layout.model_dir("mlp", before)
    old_card = (old_folder / "card.json").read_bytes()
    with open(layout.dataset, "rb") as fh:
        old_dataset = fh.read(1 << 16)
    keep = tmp_path / "old_model"
    shutil.copytree(old_folder, keep)

    cfg = copy.deepcopy(TINY_CONFIG)
    # The same first shell by another rule: other label settings, whatever the values.
    cfg["labels"] = {"coordination": {"cn_rule": "cutoff", "cutoff": 3.0}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    snakemake(run, "--configfile", str(path), "--cores", "2", "--quiet")
    after = json.loads(layout.model_pointer("mlp").read_text())
    assert after["model_id"] != before
    new_card = json.loads((layout.model_dir("mlp", after["model_id"]) / "card.json").read_text())
    assert new_card["dataset"]["hash"] != json.loads(old_card)["dataset"]["hash"]
    with open(layout.dataset, "rb") as fh:
        assert fh.read(1 << 16) != old_dataset
    # The rule's output folder was replaced, never written into: the old model is intact
    # where it was kept, and a folder of its id holds only its own card.
    assert (keep / "card.json").read_bytes() == old_card
    assert not old_folder.exists() or (old_folder / "card.json").read_bytes() == old_card


def test_a_model_folder_is_never_overwritten_by_another_model(synthetic_models, tmp_path):
    """Every save of a model gets the folder of its own id: another model never lands in an
    existing folder. The same network saved again gets a new id when its archive records a
    later save time, and the very same id (a no-op rerun) when the bytes are identical,
    e.g. two saves within one second."""
    from mlxas.models import load_model
    from mlxas.models.card import card_model_id
    from mlxas.models.folder import save_model_folder

    model, card = load_model(synthetic_models["folders"]["mt"])
    ood, band = card.pop("ood"), card.pop("training_band")
    card.pop("model_dir")
    store = tmp_path / "mt"
    mid, folder, saved = save_model_folder(model, card, ood, band, store)
    assert mid == folder.name == card_model_id(saved)
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = {**card, "metrics": {"test": {}}}  # another model: other card content
    mid2, folder2, _ = save_model_folder(model, other, ood, band, store)
    mid3, folder3, _ = save_model_folder(model, card, ood, band, store)
    assert mid2 != mid and folder2 != folder
    if mid3 == mid:  # identical bytes: the rerun path keeps the folder as it was
        assert folder3 == folder
    else:
        assert folder3 not in (folder, folder2) and (folder3 / "card.json").is_file()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot
    assert not list(store.glob(".tmp-*"))
