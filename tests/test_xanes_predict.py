"""``mlxas predict`` with a XANES geometry model over several absorbers.

The model is a small random forest fitted here by the real trainer on
``tests/data/xanes/geometry_small.h5``: FEFF10 K-edge XANES of Ti–Zn oxides from
``config/experiments/xanes_geometry_small.yaml`` (see ``tests/data/xanes/README.md``).
The measured files are only predicted, never trained on; nothing asserts which class
they get (that is the benchmark's business), only what the output must hold.
"""

from __future__ import annotations

import copy
import csv
import json
from dataclasses import replace
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (the dataset's compressed arrays)
import numpy as np
import pytest
import xraydb
from ase.data import atomic_numbers

from _xanes_support import train_small_forest
from mlxas.models.card import ModelLoadError
from mlxas.predict.output import OutputFile, format_table
from mlxas.predict.pipeline import process_paths, process_spec_from_card, process_spectra
from mlxas.predict.predictor import Predictor
from mlxas.spectra.grids import energy_grid
from mlxas.spectra.measured import read_spectra

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "tests/data/xanes/geometry_small.h5"
EXP = ROOT / "tests/data/experimental"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return train_small_forest(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def predictor(model):
    with Predictor(model, jobs=1) as pred:
        yield pred


def test_card_records_every_absorber_of_the_training_sites(predictor):
    with h5py.File(DATASET) as f:
        elements = f["sites/element"][()].astype(str)
        train_split = f["sites/split"][()] == 0  # split codes: train, val, test
    want = sorted(set(elements[train_split]), key=atomic_numbers.get)
    pre = predictor.card["preprocessing"]
    assert pre["absorbers"] == want and len(want) > 1
    for a in want:
        assert pre["edge_energies"][a] == pytest.approx(xraydb.xray_edge(a, "K").energy)
    assert [a for a, _ in predictor.spec.covered] == want
    assert predictor.spec.k_required is None
    assert predictor.spec.e_required == (-20.0, 60.0)
    # the error flag of a mu(E) model is calibrated on perturbed edges (error_flag_edge)
    error = predictor.card["ood"]["error"]
    assert error["status"] == "fitted"
    assert error["bounds"] == {"cn": 1.5, "r": 0.05, "oxidation_state": 1.0}


def test_measured_mn_xanes_gets_class_probabilities_cn_r_and_oxidation_state(predictor):
    [res] = predictor.predict([EXP / "mno_rt.xdi"])
    assert res.status == "ok", res.reason
    v = res.values
    classes = predictor.card["outputs"]["classes"]["geometry"]
    probs = v["geometry_probabilities"]
    assert list(probs) == classes
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert min(probs.values()) >= 0.0 and v["geometry"] == max(probs, key=probs.get)
    for t in ("cn", "r", "oxidation_state", "ood_score"):
        assert np.isfinite(v[t]), t
    assert isinstance(v["ood"], bool)
    # mu(E) input: no AUTOBK, E0 on the Mn K edge, the Mn of the header named
    assert "none" in res.background
    assert abs(res.e0 - xraydb.xray_edge("Mn", "K").energy) < 20
    assert any("absorber Mn" in n for n in res.notes)


def test_model_input_is_the_normalised_edge_on_the_relative_grid(predictor):
    _, x = predictor.process([EXP / "mno_rt.xdi"])
    grid = energy_grid(predictor.spec.features["xanes"])
    assert x.shape == (1, len(grid), 2)
    norm = x[0, :, 0]
    assert np.mean(norm[grid >= 30]) == pytest.approx(1.0, abs=0.1)  # above the step: 1
    assert np.max(np.abs(norm[grid <= -15])) < 0.1  # below the pre-edge: 0
    assert x[0, :, 1] == pytest.approx(np.gradient(norm, grid), abs=1e-4)


def test_a_xanes_only_scan_needs_the_energy_span_not_a_k_range(predictor):
    s = read_spectra(EXP / "mno_rt.xdi")[0]
    e0 = xraydb.xray_edge("Mn", "K").energy
    short = replace(s, source="to_E0+75", energy=s.energy[s.energy < e0 + 75])
    short = replace(short, mu=s.mu[: len(short.energy)])
    cut = replace(s, source="to_E0+40", energy=s.energy[s.energy < e0 + 40])
    cut = replace(cut, mu=s.mu[: len(cut.energy)])
    ok, refused = predictor.predict_spectra([short, cut])
    assert ok.status == "ok", ok.reason
    assert ok.k_max < 4.5  # far short of any EXAFS model's k-range
    assert refused.status == "refused"
    assert "energy range too short" in refused.reason and "-20 to 60 eV" in refused.reason


def test_elements_and_edges_outside_the_model_are_refused_with_the_reason(predictor):
    ge, pt = predictor.predict([EXP / "ge_crystalline_rt.xdi", EXP / "pt_metal_rt.xdi"])
    for res, el in ((ge, "Ge"), (pt, "Pt")):
        assert res.status == "refused"
        assert f"element {el} in the file" in res.reason and "Mn" in res.reason


def test_cu_foil_is_refused_by_a_model_that_does_not_cover_copper(predictor):
    """The card of a model trained without Cu sites (the real card, Cu taken out of its
    absorbers): a Cu foil is refused by its header and, without one, by its edge."""
    card = copy.deepcopy(predictor.card)
    pre = card["preprocessing"]
    pre["absorbers"] = [a for a in pre["absorbers"] if a != "Cu"]
    spec = process_spec_from_card(card)
    [res], x = process_paths([str(EXP / "cu_metal_rt.xdi")], spec)
    assert res.status == "refused" and len(x) == 0
    assert "element Cu in the file" in res.reason and "Cu" not in res.reason.split("for ")[1]
    s = read_spectra(EXP / "cu_metal_rt.xdi")[0]
    [res], _ = process_spectra([replace(s, element=None, edge=None)], spec)
    assert res.status == "refused"
    assert "matches none of the model's K edges" in res.reason and "Cu K" in res.reason
    # the same file with Cu covered is predicted, its absorber found from E0
    [res], x = process_spectra([replace(s, element=None, edge=None)], predictor.spec)
    assert res.status == "ok" and "absorber Cu (from E0)" in res.notes


def test_old_cards_keep_their_one_absorber_and_unknown_ones_are_refused(predictor):
    card = copy.deepcopy(predictor.card)
    pre = card["preprocessing"]
    del pre["absorbers"], pre["edge_energies"]
    with pytest.raises(ModelLoadError, match=r"names no absorber/edge.*retrain"):
        process_spec_from_card(card)
    pre["absorber"] = "Mn"
    spec = process_spec_from_card(card)
    assert spec.covered == (("Mn", pytest.approx(xraydb.xray_edge("Mn", "K").energy)),)


def test_table_csv_and_json_carry_the_class_and_its_probabilities(predictor, tmp_path):
    results = predictor.predict([EXP / "mno_rt.xdi", EXP / "ge_crystalline_rt.xdi"])
    v = results[0].values
    table = format_table(results).splitlines()
    assert "geometry (p)" in table[0] and "ox. state" in table[0]
    assert f"{v['geometry']} {v['geometry_probabilities'][v['geometry']]:.2f}" in table[1]
    assert "refused: element Ge" in table[2]
    out = OutputFile(tmp_path / "p.csv", None, predictor.targets, {}, classes=predictor.classes)
    out.write(results)
    out.close()
    with open(tmp_path / "p.csv") as fh:
        rows = list(csv.DictReader(fh))
    classes = predictor.classes["geometry"]
    assert sum(float(rows[0][f"geometry[{c}]"]) for c in classes) == pytest.approx(1.0)
    assert rows[0]["geometry"] == v["geometry"] and rows[1]["status"] == "refused"
    out = OutputFile(tmp_path / "p.json", None, predictor.targets, {})
    out.write(results)
    got = json.loads((tmp_path / "p.json").read_text())["results"][0]
    assert got["geometry_probabilities"] == pytest.approx(v["geometry_probabilities"])
    assert {"cn", "r", "oxidation_state", "ood", "ood_score"} <= set(got)


def test_broaden_smooths_the_edge_for_herfd_data_and_only_for_mu_e_models(predictor, model):
    """``--broaden``: the normalised mu(E) convolved with a Lorentzian (area and step
    kept, the steepest slope lowered); refused for a model on chi(k)."""
    from mlxas.models.card import resolve_model_dir, verify_model_dir

    _, x = predictor.process([EXP / "mno_rt.xdi"])
    with Predictor(model, jobs=1, xanes_broaden=2.0) as wide:
        [res], xb = wide.process([EXP / "mno_rt.xdi"])
    assert any("2 eV Lorentzian" in n for n in res.notes)
    grid = energy_grid(predictor.spec.features["xanes"])
    inner = (grid > -5) & (grid < 40)  # away from the padded ends of the grid
    assert np.sum(xb[0, inner, 0]) == pytest.approx(np.sum(x[0, inner, 0]), rel=0.02)
    assert np.max(xb[0, :, 1]) < 0.9 * np.max(x[0, :, 1])
    assert xb[0, :, 1] == pytest.approx(np.gradient(xb[0, :, 0], grid), abs=1e-4)
    exafs = verify_model_dir(resolve_model_dir(ROOT / "models/foil_cu/ensemble.json"))
    with pytest.raises(ModelLoadError, match="--broaden applies to models on mu"):
        process_spec_from_card(exafs, xanes_broaden=1.0)


def test_pictures_of_a_mu_e_model_show_the_edge_it_read(predictor):
    """``--plot`` for a XANES model: the edge panel holds exactly the model's input (the
    normalised mu(E) channel on its E - E0 grid), not chi(k)."""
    from mlxas.predict.plots import plot_spectrum, spectrum_details

    results, x = predictor.process([EXP / "mno_rt.xdi"])
    (res,) = results
    detail = spectrum_details(results, predictor.spec)[res.source]
    grid = energy_grid(predictor.spec.features["xanes"])
    np.testing.assert_array_equal(detail.edge_grid, grid)
    np.testing.assert_allclose(detail.edge_norm, x[0, :, 0], rtol=1e-6, atol=1e-6)
    # normalised: about 0 before the edge, about 1 after it
    assert abs(detail.edge_norm[0]) < 0.15 and abs(detail.edge_norm[-10:].mean() - 1) < 0.2
    # The mu(E) panel's lines are the model's own normalisation (features.xanes), so the
    # step drawn is the step the model's input was divided by; no chi(k) is computed.
    assert detail.edge_step == pytest.approx(res.edge_step, rel=1e-6)
    assert detail.chi_k.size == 0 and detail.k.size == 0
    png = plot_spectrum(detail, res, None, predictor.targets, {"name": "rf"})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_a_forest_model_folder_is_taken_as_the_model_argument(model, tmp_path):
    from mlxas.predict.argument_checks import is_model_path

    assert (model / "model.npz").is_file() and not (model / "model.keras").exists()
    assert is_model_path(str(model))
    (tmp_path / "model.npz").write_bytes(b"")  # a folder of files that has no card
    assert not is_model_path(str(tmp_path)) and not is_model_path(str(EXP))
