"""The OOD flag against reading errors (issue 18, item 6): the bundled Cu model reads
simulated FEFF spectra of its own test split (tests/data/simulated, see its README) —
quiet when they are clean, raised when they are spoiled so that the reading is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DATA, ROOT
from mlxas.spectra.augment import e0_shift, truncate_k

SIMULATED = DATA / "simulated" / "foil_cu_test_cn12.npz"
CU_MODEL = ROOT / "models" / "foil_cu" / "ensemble.json"
CN_BOUND, R_BOUND = 1.5, 0.05  # Å for R


@pytest.fixture(scope="module")
def cu():
    from mlxas.predict.predictor import Predictor

    with Predictor(CU_MODEL, jobs=1) as pred:
        yield pred


@pytest.fixture(scope="module")
def sim(cu):
    with np.load(SIMULATED) as f:
        data = {k: f[k] for k in f.files}
    # the spectra come from the dataset this model was trained on (its test split)
    assert str(data["dataset_hash"]) == cu.card["dataset"]["hash"]
    return data


def _read(pred, chi: np.ndarray) -> tuple[dict, dict]:
    """Readings and flags of unweighted chi(k) rows, through the predictor's own path."""
    from mlxas.models.data import compute_input
    from mlxas.models.inference import predict_array, split_targets

    pre = pred.card["preprocessing"]
    x = compute_input(chi, pre["features"], pre["input"])
    mean, std = predict_array(pred.model, pred.card, x)
    mean, std = split_targets(pred.card, mean), split_targets(pred.card, std)
    return mean, pred.flags(x, mean, std)


def _wrong(mean: dict, sim: dict) -> np.ndarray:
    return (np.abs(mean["cn"] - sim["cn"]) > CN_BOUND) | (np.abs(mean["r"] - sim["r"]) > R_BOUND)


def test_the_bundled_model_carries_a_fitted_error_flag(cu):
    err = cu.ood["error"]
    assert err["status"] == "fitted" and err["bounds"] == {"cn": CN_BOUND, "r": R_BOUND}
    assert 0 < err["threshold"] < 1 and err["distance_limit"] > 1
    cal = err["calibration"]
    # calibrated to flag 95 % of the wrong validation readings
    assert cal["val_wrong_flagged"] >= 0.95 * cal["val_wrong"] > 0


def test_clean_simulated_spectra_are_read_right_and_not_flagged(cu, sim):
    mean, flags = _read(cu, sim["chi"])
    assert not _wrong(mean, sim).any()
    assert not flags["ood"].any(), flags["ood_score"]
    assert np.all(flags["ood_score"] < 1)


def test_data_that_end_at_7_per_angstrom_are_read_wrong_and_flagged(cu, sim):
    k = sim["k"]
    chi = truncate_k(sim["chi"], k, np.full(len(sim["chi"]), 7.0))
    mean, flags = _read(cu, chi)
    wrong = _wrong(mean, sim)
    assert wrong.all()  # the known large error: R off by more than 0.1 Å, CN by 3 to 5
    assert flags["ood"][wrong].all(), flags["ood_score"]


def test_an_e0_off_by_25_ev_is_read_wrong_and_mostly_flagged(cu, sim):
    chi = e0_shift(sim["chi"], sim["k"], np.full(len(sim["chi"]), -25.0))
    mean, flags = _read(cu, chi)
    wrong = _wrong(mean, sim)
    assert wrong.all()
    # measured limit of this flag: 11 of these 12 (docs/predict.md); not all
    assert flags["ood"][wrong].mean() >= 0.75, flags["ood_score"]


def test_predict_reports_both_scores_for_a_measured_foil(cu):
    from conftest import EXPERIMENTAL

    (res,) = cu.predict([EXPERIMENTAL / "cu_metal_rt.xdi"])
    v = res.values
    assert res.status == "ok" and isinstance(v["ood"], bool)
    limit = cu.ood["error"]["distance_limit"]
    assert v["ood_score"] == pytest.approx(max(v["error_score"], v["distance_score"] / limit))
    assert v["ood"] == (v["ood_score"] > 1)


def test_the_forest_run_in_numpy_gives_scikit_learn_probabilities():
    from sklearn.ensemble import RandomForestClassifier

    from mlxas.error_flag import _forest_p
    from mlxas.models.forest import export_forest

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 3] ** 2 + rng.normal(0, 0.3, 400)) > 0.8
    rf = RandomForestClassifier(20, max_depth=5, min_samples_leaf=5, random_state=0).fit(x, y)
    arrays = export_forest(rf, 2, rf.classes_)
    arrays["value"] = arrays["value"][:, 1:]
    forest = json.loads(json.dumps({k: v.tolist() for k, v in arrays.items()}))
    xt = rng.normal(size=(200, 5)).astype(np.float32)
    np.testing.assert_allclose(_forest_p(forest, xt), rf.predict_proba(xt)[:, 1], atol=1e-12)


def test_the_flag_needs_neither_tensorflow_nor_scikit_learn_at_predict_time():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mlxas.predict.predictor import Predictor\n"
        f"with Predictor({str(CU_MODEL)!r}, jobs=1) as p:\n"
        f"    (r,) = p.predict([{str(DATA / 'experimental' / 'cu_metal_rt.xdi')!r}])\n"
        "assert r.status == 'ok' and 'error_score' in r.values, r\n"
        "heavy = {'tensorflow', 'keras', 'sklearn'}\n"
        "print(sorted({k.split('.')[0] for k in sys.modules} & heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_flag_fitted_again_after_training_is_the_one_training_stored(
    synthetic_models, tmp_path
):
    """Fitting the flag on a trained model folder (what `mlxas models calibrate` does for
    a model trained before the flag) gives the stored one, byte for byte: same ood.json,
    same model id, so a calibrated bundled model is the model its config retrains."""
    import shutil

    from mlxas.error_flag import fit_error_flag
    from mlxas.models.card import load_model
    from mlxas.models.folder import rebind_ood

    src = synthetic_models["folders"]["mt"]
    model, card = load_model(src)
    stored = card["ood"]["error"]
    assert stored["status"] == "fitted" and stored["calibration"]["val_wrong"] > 0
    again = fit_error_flag(model, card, card["ood"], synthetic_models["ds"])
    assert json.loads(json.dumps(again)) == stored
    copy = tmp_path / "mt" / src.name
    shutil.copytree(src, copy)
    mid, folder, _ = rebind_ood(copy, {**card["ood"], "error": again})
    assert mid == src.name and folder == copy
    # a changed flag is another model: new id, the old folder gone
    looser = {**again, "threshold": again["threshold"] * 2}
    mid2, folder2, _ = rebind_ood(copy, {**card["ood"], "error": looser})
    assert mid2 != mid and folder2.is_dir() and not copy.exists()
    assert load_model(folder2)[1]["ood"]["error"]["threshold"] == looser["threshold"]


def test_a_model_with_one_target_per_shell_gets_each_shell_bounded():
    from mlxas.error_flag import DEFAULT_BOUNDS, model_bounds

    slices = {"cn_s1_O": [0, 1], "r_s1_O": [1, 2], "sigma2_s1_O": [2, 3], "cn_s2_Ni": [3, 4],
              "r_s2_Ni": [4, 5], "cn": [5, 6]}  # fmt: skip
    got = dict(model_bounds({"outputs": {"slices": slices}}))
    cn, r = dict(DEFAULT_BOUNDS)["cn"], dict(DEFAULT_BOUNDS)["r"]
    assert got == {"cn": cn, "r": r, "cn_s1_O": cn, "r_s1_O": r, "cn_s2_Ni": cn, "r_s2_Ni": r}


def test_the_flag_reads_its_features_in_the_order_it_was_fitted_on():
    """A card read back from disk lists its outputs sorted by name; the card in memory at
    training lists them as the config does.  The forest must read the features it was
    fitted on, whichever order the card gives (before: a multi-shell model trained with
    its flag flagged every reading)."""
    from sklearn.ensemble import RandomForestClassifier

    from mlxas.error_flag import combined_flags, in_fitted_order, reading_features
    from mlxas.models.forest import export_forest

    rng = np.random.default_rng(7)
    n = 400
    mean = {"cn_s1_O": rng.normal(6, 1, n), "r_s1_O": rng.normal(2.1, 0.05, n),
            "cn_s2_Ni": rng.normal(12, 2, n)}  # fmt: skip
    std = {k: np.abs(rng.normal(0.1, 0.05, n)) + 1e-3 for k in mean}
    dist = np.abs(rng.normal(1.0, 0.5, n)) + 0.01
    at_training = {"outputs": {"slices": {"cn_s1_O": [0, 1], "r_s1_O": [1, 2],
                                          "cn_s2_Ni": [2, 3]}}}  # fmt: skip
    features, names = reading_features(at_training, mean, std, dist)
    wrong = mean["cn_s2_Ni"] < 10.5  # one feature decides
    rf = RandomForestClassifier(10, max_depth=3, random_state=0).fit(features, wrong)
    arrays = export_forest(rf, 2, rf.classes_)
    arrays["value"] = arrays["value"][:, 1:]
    err = {"status": "fitted", "features": names, "threshold": 0.5, "distance_limit": 1e9,
           "forest": {k: v.tolist() for k, v in arrays.items()}}  # fmt: skip
    want = combined_flags(at_training, {"error": err}, mean, std, dist)
    assert (want["ood"] == wrong).mean() > 0.95
    on_disk = {"outputs": {"slices": dict(sorted(at_training["outputs"]["slices"].items()))}}
    got = combined_flags(on_disk, {"error": err}, mean, std, dist)
    np.testing.assert_array_equal(got["error_score"], want["error_score"])
    np.testing.assert_array_equal(got["ood"], want["ood"])
    # a reading without one of the fitted features is an error, not a silent misread
    short, short_names = reading_features(
        {"outputs": {"slices": {"cn_s1_O": [0, 1], "r_s1_O": [1, 2]}}}, mean, std, dist
    )
    with pytest.raises(ValueError, match="no cn_s2_Ni"):
        in_fitted_order(short, short_names, err)
