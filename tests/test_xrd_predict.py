"""``mlxas predict`` with a model on powder patterns: files in the formats a diffractometer
writes go through the dataset's own grid and feature functions into the model.

Truths: the Keras model itself on the dataset's feature rows (the files are those rows
written out), Bragg's law through d = λ / (2 sin θ) for a file measured at another
wavelength, and scikit-learn's accuracy on the probabilities for ``--truth``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import keras  # noqa: F401  (a broken Keras install fails here; it is not skipped)
import numpy as np
import pytest

from mlxas.workflow.layout import Layout
from mlxas.xrd.settings import SOURCES, XRDSettings

CU1, MO1 = SOURCES["CuKa1"][0], SOURCES["MoKa1"][0]
SETTINGS = dataclasses.replace(
    XRDSettings(source="CuKa1", axis_min=20.0, axis_max=80.0, n_points=601),
    impurity_probability=0.0, strain_probability=0.0, alloy_probability=0.0,
)  # fmt: skip
TINY = {
    "name": "tiny", "kind": "npcnn", "epochs": 2, "input": "intensity", "jit_compile": False,
    "targets": ["crystal_system", "space_group"],
    "params": {"filters": [4, 4], "kernel_size": [9, 5], "strides": [4, 2], "dense": [8]},
}  # fmt: skip


@pytest.fixture(scope="module")
def xrd_model(tmp_path_factory):
    """(dataset path, model folder) of a 2-epoch npcnn on 12 patterns of 4 prototypes
    (cubic, hexagonal, tetragonal), built through the workflow's stages."""
    from mlxas.dataset import DatasetSettings, SplitSettings, gather
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import train
    from mlxas.simulation.inputs import build_inputs
    from mlxas.simulation.runner import run_chunk
    from mlxas.sites import (
        LabelSettings,
        SitesSettings,
        compute_labels,
        site_table,
        write_labels,
        write_sites,
    )
    from mlxas.structures import build_source, read_structures
    from mlxas.xrd.engine import XRDEngine
    from mlxas.xrd.sources import PrototypesSource

    layout = Layout(tmp_path_factory.mktemp("xrd_predict") / "results" / "xrd")
    source = PrototypesSource(name="p", count=4, prototypes=("fcc", "hcp", "rutile", "wurtzite"))
    frames = layout.structures_frames("p")
    build_source(source, None, frames, layout.structures_index("p"),
                 layout.structures_rejected("p"))  # fmt: skip
    images = read_structures(frames)
    sites_settings = SitesSettings(mode="structure", per_structure=3)
    sites = site_table(images, None, sites_settings)
    write_sites(sites, layout.sites("p"), sites_settings)
    crystal = {"sets": ["crystal"], "crystal": {"match_prototypes": False}}
    labels, meta = compute_labels(images, sites, None, LabelSettings.from_config(crystal))
    write_labels(labels, meta, layout.labels("p"))
    folder = layout.simulation("p")
    sids = [a.info["structure_id"] for a in images]
    build_inputs(sites, dict(zip(sids, images, strict=True)), XRDEngine(SETTINGS), 12, folder)
    assert all(r.ok for r in run_chunk(folder, 0, timeout=300))
    settings = DatasetSettings(
        features={"xrd": {"normalize": "max", "scale": "linear"}},
        split=SplitSettings((0.5, 0.25, 0.25), "structure", 0),
    )
    gather([folder.chunk(0)], [layout.sites("p")], [layout.labels("p")], layout.dataset,
           settings, inputs_files=[folder.inputs_table])  # fmt: skip
    from mlxas.dataset import open as open_dataset

    with open_dataset(layout.dataset) as ds:
        _, _, model_dir = train(ds, ModelSpec.from_config(TINY), layout.model_store("tiny"),
                                threads=1, verbose=0)  # fmt: skip
    return layout.dataset, model_dir


def _rows(dataset):
    from mlxas.dataset import open as open_dataset

    with open_dataset(dataset) as ds:
        return ds.grid("intensity"), ds.features("intensity"), list(ds.frame()["site_id"])


def test_files_give_what_the_model_gives_on_the_dataset(xrd_model, tmp_path):
    from mlxas.models import load_model as keras_load
    from mlxas.predict.predictor import Predictor

    dataset, model_dir = xrd_model
    grid, x, ids = _rows(dataset)
    paths = []
    for i in range(4):  # RRUFF-style header, a plain .xy, a .csv with a header row
        p = tmp_path / f"{ids[i]}.{('txt', 'xy', 'csv', 'xye')[i]}"
        head = [f"##X-RAY WAVELENGTH={CU1}", "", "2theta,intensity", f"# Wavelength = {CU1}"]
        sep = "," if p.suffix == ".csv" else " "
        body = "\n".join(f"{g:.4f}{sep}{v * 5000:.6f}" for g, v in zip(grid, x[i], strict=True))
        p.write_text((head[i] + "\n" if head[i] else "") + body + "\n")
        paths.append(str(p))
    kmodel, card = keras_load(model_dir)
    want = np.asarray(kmodel.predict_on_batch(x[:4]))
    with Predictor(model_dir, jobs=1) as pred:
        assert pred.reads_patterns
        results = pred.predict(paths)
    assert [r.status for r in results] == ["ok"] * 4, [r.reason for r in results]
    names = card["outputs"]["classes"]
    a, b = card["outputs"]["slices"]["space_group"]
    for r, w in zip(results, want, strict=True):
        got = [r.values["space_group_probabilities"][n] for n in names["space_group"]]
        np.testing.assert_allclose(got, w[a:b], rtol=1e-4, atol=1e-6)
        top = r.values["space_group_top5"]
        np.testing.assert_allclose([p for _, p in top], np.sort(w[a:b])[::-1][:5], rtol=1e-4)
        assert r.values["space_group"] == top[0][0] and isinstance(r.values["ood"], bool)
    assert results[0].notes == ["λ 1.5406 Å (from the header)"]  # all of the grid covered
    assert "none in the file" in results[1].notes[0]  # the .xy has no header


def test_another_wavelength_is_converted_through_d(xrd_model, tmp_path):
    """A pattern 'measured' with Mo Kα1: 2θ_Mo = 2 asin(λ_Mo sin θ_Cu / λ_Cu).  Its
    strongest peak lands where the Cu pattern has it."""
    from mlxas.models.card import read_card
    from mlxas.predict.patterns import pattern_spec_from_card, process_pattern_paths

    dataset, model_dir = xrd_model
    grid, x, _ = _rows(dataset)
    mo = 2 * np.degrees(np.arcsin(MO1 * np.sin(np.radians(grid / 2)) / CU1))
    p = tmp_path / "mo.xy"
    np.savetxt(p, np.c_[mo, x[0] * 300], header="wavelength = 0.70932 A")
    spec = pattern_spec_from_card(read_card(model_dir))
    (res,), inp = process_pattern_paths([str(p)], spec)
    assert res.status == "ok" and "0.7093 Å (from the header)" in res.notes[0]
    step = grid[1] - grid[0]
    assert abs(grid[np.argmax(inp[0])] - grid[np.argmax(x[0])]) <= 1.01 * step
    assert inp[0].max() == pytest.approx(1.0)
    # The same file said to be Cu Kα1 data: its 2θ_Mo of 9.2–34.4° covers 20–34.4° of
    # the model's 20–80°, about a quarter.
    (res2,), inp2 = process_pattern_paths([str(p)], dataclasses.replace(spec, wavelength=CU1))
    assert res2.status == "refused" and len(inp2) == 0
    share = np.mean((grid >= mo[0]) & (grid <= mo[-1]))
    assert 0.23 < share < 0.25
    assert res2.reason.startswith(f"covers {share:.0%} of the model's range 20–80° at λ 1.5406 Å")
    assert "(from --wavelength)" in res2.reason


def test_bad_files_and_options_are_refused_with_the_reason(xrd_model, tmp_path):
    from mlxas.models.card import ModelLoadError, read_card
    from mlxas.predict.patterns import pattern_spec_from_card, process_pattern_paths

    dataset, model_dir = xrd_model
    grid, x, _ = _rows(dataset)
    card = read_card(model_dir)
    short = tmp_path / "short.xy"
    np.savetxt(short, np.c_[grid[:100], x[0][:100] + 0.1])
    text = tmp_path / "words.xy"
    text.write_text("2theta intensity\nten twenty\n")
    spec = pattern_spec_from_card(card)
    results, inp = process_pattern_paths([str(short), str(text), str(tmp_path / "no.xy")], spec)
    assert [r.status for r in results] == ["refused"] * 3 and inp.shape == (0, 601)
    assert "covers 17% of the model's range 20–80°" in results[0].reason  # 100 of 601
    assert results[1].reason and results[2].reason
    with pytest.raises(ModelLoadError, match="e0 applies to XAS spectra only"):
        pattern_spec_from_card(card, e0=8979.0)
    with pytest.raises(ModelLoadError, match=re.escape("--wavelength 9.0: expected 0.05 to 5 Å")):
        pattern_spec_from_card(card, wavelength=9.0)


def test_cli_table_and_truth_accuracy(xrd_model, tmp_path, capsys):
    from sklearn.metrics import accuracy_score

    from mlxas.cli import main as cli

    dataset, model_dir = xrd_model
    grid, x, ids = _rows(dataset)
    for i, sid in enumerate(ids):
        np.savetxt(tmp_path / f"{sid}.xy", np.c_[grid, x[i]])
    from mlxas.dataset import open as open_dataset

    with open_dataset(dataset) as ds:
        systems = [ds.classes("crystal_system")[int(c)] for c in ds.labels("crystal_system")]
    rows = [f"{sid}.xy,{s}" for sid, s in zip(ids, systems, strict=True)]
    (tmp_path / "truth.csv").write_text("file,crystal_system\n" + "\n".join(rows) + "\n")
    out = tmp_path / "acc.json"
    files = [str(p) for p in sorted(tmp_path.glob("*.xy"))]
    truth = ["--truth", str(tmp_path / "truth.csv"), "--truth-out", str(out)]
    rc = cli(["predict", str(model_dir), *files, *truth, "-o", str(tmp_path / "p.json")])
    assert rc == 0
    captured = capsys.readouterr()
    head = captured.out.splitlines()[0]
    assert "space_group top-5" in head and "CN" not in head and "R (Å)" not in head
    report = json.loads(out.read_text())
    preds = {r["source"]: r for r in json.loads((tmp_path / "p.json").read_text())["results"]}
    got = [preds[str(tmp_path / f"{sid}.xy")]["crystal_system"] for sid in ids]
    m = report["targets"]["crystal_system"]
    assert m["n"] == len(ids) and math.isclose(m["accuracy"], accuracy_score(systems, got))
    assert "crystal_system" in captured.err and "space_group" not in report["targets"]
    # A class the model does not know is refused naming the line.
    (tmp_path / "bad.csv").write_text(f"file,crystal_system\n{ids[0]}.xy,cubik\n")
    rc = cli(["predict", str(model_dir), str(tmp_path / f"{ids[0]}.xy"), "--truth",
              str(tmp_path / "bad.csv")])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'bad.csv'}: line 2: crystal_system 'cubik' is not a class" in err


def test_wavelength_is_refused_for_a_model_on_spectra():
    from mlxas.models.card import ModelLoadError, read_card, resolve_model_dir
    from mlxas.predict.bundled import bundled_dir
    from mlxas.predict.pipeline import process_spec_from_card

    card = read_card(resolve_model_dir(bundled_dir() / "foil_cu" / "ensemble.json"))
    assert process_spec_from_card(card).absorber == "Cu"
    with pytest.raises(ModelLoadError, match="--wavelength applies to powder patterns"):
        process_spec_from_card(card, wavelength=1.54)


def test_serve_refuses_a_model_on_patterns_naming_it(xrd_model):
    from mlxas.models.card import ModelLoadError
    from mlxas.serve.app import ServeSettings, _Loaded

    _, model_dir = xrd_model
    with pytest.raises(ModelLoadError, match="reads powder patterns; mlxas serve answers XAS"):
        _Loaded(str(model_dir), ServeSettings(models=(str(model_dir),)))
