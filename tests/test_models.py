"""Model kinds, training, cards, safe loading and prediction (real Keras, small networks)."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from mlxas.models import ModelLoadError, load_model, predict_array, read_card, split_targets
from mlxas.models.batches import augmented_batches
from mlxas.models.card import CARD_VERSION, card_model_id, file_sha256
from mlxas.models.data import (
    load_training_data,
    model_inputs,
)
from mlxas.models.registry import ModelConfigError, build
from mlxas.models.spec import ModelSpec
from mlxas.models.train import fit, train
from mlxas.models.training_data import TrainingData
from mlxas.spectra.features import compute_features

FAST = {"jit_compile": False}
resolve_spec = ModelSpec.from_config


@pytest.fixture(scope="module")
def ds(synthetic_models):
    return synthetic_models["ds"]


@pytest.fixture(scope="module")
def trained_mlp(synthetic_models):
    """A multi-task MLP (CN, R and the RDF) on chi(k) cut to 2–12 Å⁻¹, saved."""
    card = synthetic_models["cards"]["mt"]
    return (
        synthetic_models["folders"]["mt"],
        card["model_id"],
        card,
        synthetic_models["specs"]["mt"],
    )


# --- registry ------------------------------------------------------------------------------


def test_paper_mlp_is_the_published_network():
    spec = resolve_spec({"name": "p", "kind": "paper_mlp"})
    assert spec.epochs == 400 and spec.batch_size == 32
    assert spec.optimizer == "rmsprop" and spec.standardize is False
    net = build("paper_mlp", (400,), {"cn": 1, "r": 1}, spec.params)
    for t in ("cn", "r"):
        # One independent network per target: its own 400-200-20 ReLU layers and output.
        dense = [layer for layer in net.layers if layer.name.startswith(f"{t}_dense")]
        assert [d.units for d in dense] == [400, 200, 20]
        assert all(d.activation.__name__ == "relu" for d in dense)
        assert net.get_layer(f"head_{t}").units == 1
    assert dense[0].kernel.shape == (400, 400)
    # 400·400+400 + 400·200+200 + 200·20+20 + 20+1 weights per target.
    assert net.count_params() == 2 * (160400 + 80200 + 4020 + 21)


def test_paper_mlp_trains_one_network_per_target(ds):
    spec = resolve_spec({"name": "p", "kind": "paper_mlp", "epochs": 2, "params": {"hidden": [8]},
                         **FAST})  # fmt: skip
    data = load_training_data(ds, spec)
    model, record = fit(data, spec)
    # Each target's network is trained and early-stopped on its own validation loss.
    assert [n["target"] for n in record["networks"]] == ["cn", "r"]
    nets = {layer.name: layer for layer in model.layers if hasattr(layer, "layers")}
    assert set(nets) == {"p_cn", "p_r"}
    x = data.splits["test"].x
    joined = model.predict_on_batch(x)
    np.testing.assert_allclose(joined[:, :1], nets["p_cn"].predict_on_batch(x), rtol=1e-6)
    np.testing.assert_allclose(joined[:, 1:], nets["p_r"].predict_on_batch(x), rtol=1e-6)
    # No scaling anywhere: raw chi(k)·k² in, raw CN and Å out.
    names = {layer.name for layer in _all_layers(model)}
    assert not any(n.startswith(("standardize", "unstandardize")) for n in names)


def test_unknown_kind_and_bad_ensemble_are_config_errors():
    with pytest.raises(ModelConfigError, match="unknown model kind"):
        resolve_spec({"name": "x", "kind": "transformer"})
    with pytest.raises(ModelConfigError, match="members >= 2"):
        resolve_spec({"name": "x", "kind": "ensemble", "params": {"members": 1}})
    with pytest.raises(ModelConfigError, match="2D input"):
        build("cnn2d", (50,), {"cn": 1}, resolve_spec({"name": "c", "kind": "cnn2d"}).params)


def test_config_nulls_take_kind_defaults():
    spec = resolve_spec({"name": "m", "kind": "mlp", "epochs": None, "patience": 7})
    assert spec.epochs == 400 and spec.patience == 7 and spec.optimizer == "adam"
    ens = resolve_spec({"name": "e", "kind": "ensemble", "params": {"members": 3}})
    assert ens.params["member"] == "mlp" and ens.params["hidden"]
    # Resolving is done once: a resolved entry read back from its card is the same object.
    assert ModelSpec.from_dict(ens.to_dict()) == ens


# --- training and cards -------------------------------------------------------------------


def test_multitask_mlp_learns_and_its_card_describes_it(ds, trained_mlp, synthetic_models):
    folder, mid, card, spec = trained_mlp
    # The id is the hash of the card, which binds the weights by their SHA-256.
    assert mid == card_model_id(card) == card["model_id"] == folder.name
    assert card["files"]["model.keras"] == file_sha256(folder / "model.keras")
    assert card["config"] == spec.to_dict()
    # Data provenance and split.
    assert card["dataset"]["hash"] == ds.hash
    sizes = card["dataset"]["split"]["sizes"]
    assert sizes == {s: len(ds.labels("cn", s)) for s in ("train", "val", "test")}
    assert card["dataset"]["split"]["seed"] == 0
    # Preprocessing: the k-range actually used and the statistics, as plain JSON.
    pre = card["preprocessing"]
    k = ds.grid("chi_k")
    inside = k[(k >= 2.0 - 1e-9) & (k <= 12.0 + 1e-9)]
    assert pre["k_range"] == pytest.approx([inside[0], inside[-1]])
    assert pre["crop"][1] - pre["crop"][0] == len(inside) == len(pre["input_mean"])
    assert pre["input_shape"] == [len(k)] and len(pre["grid"]) == len(k)
    x_tr = ds.features("chi_k", "train")[:, pre["crop"][0] : pre["crop"][1]]
    np.testing.assert_allclose(pre["input_mean"], x_tr.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert pre["kweight"] == 2 and pre["absorber"] == "Cu" and pre["edge"] == "K"
    assert card["outputs"]["columns"][:3] == ["cn", "r", "rdf[0]"]
    assert card["outputs"]["slices"] == {"cn": [0, 1], "r": [1, 2], "rdf": [2, 14]}
    assert card["outputs"]["units"]["r"] == "Å" and card["outputs"]["members"] is None
    # Early stopping (patience 20 of at most 60 epochs) keeps the best epoch's weights.
    tr = card["training"]
    assert tr["epochs_run"] == min(60, tr["best_epoch"] + 20), tr
    # It learned: CN and R on the test split far better than predicting the mean.
    test = card["metrics"]["test"]
    assert test["cn"]["r2"] > 0.9 and test["r"]["r2"] > 0.8 and test["rdf"]["r2"] > 0.5


def test_saved_model_maps_raw_features_to_physical_units(ds, trained_mlp):
    folder, _, card, _ = trained_mlp
    model, card2 = load_model(folder.parent.parent / "mt.json")
    assert {k: v for k, v in card2.items() if k not in ("ood", "training_band", "model_dir")} == (
        read_card(folder)
    )
    names = {layer.name for layer in _all_layers(model)}
    assert {"input_range", "standardize", "unstandardize_cn", "unstandardize_r"} <= names
    x = ds.features("chi_k", "test")
    mean, std = predict_array(model, card2, x)
    assert std is None and mean.shape == (len(ds.labels("cn", "test")), 14)
    pred = split_targets(card2, mean)
    # The network's raw Keras output, column by column, is in physical units: the card's
    # metrics (computed at training time) are those of the saved model, recomputed here.
    raw = np.asarray(model.predict(x, verbose=0))
    columns = card2["outputs"]["columns"]
    for t in ("cn", "r"):
        y = ds.labels(t, "test")
        p = raw[:, columns.index(t)]
        np.testing.assert_allclose(pred[t], p, rtol=1e-6)
        assert np.mean((p - y) ** 2) == pytest.approx(card["metrics"]["test"][t]["mse"], rel=1e-4)
    # Å, not standardised units: the mean R matches the labels' to a fraction of their
    # spread (R² > 0.8 above), where standardised outputs would sit near 0.
    r_true = ds.labels("r", "test")
    assert abs(raw[:, columns.index("r")].mean() - r_true.mean()) < 0.3 * r_true.std()
    with pytest.raises(ValueError, match="expects inputs of shape"):
        predict_array(model, card2, ds.features("chi_k", "test")[:, :50])


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def test_training_is_reproducible_with_a_seed(ds):
    spec = resolve_spec({"name": "s", "kind": "mlp", "epochs": 2, "params": {"hidden": [16]},
                         **FAST})  # fmt: skip
    data = load_training_data(ds, spec)
    x = data.splits["test"].x
    a, _ = fit(data, spec)
    b, _ = fit(data, spec)
    np.testing.assert_allclose(a.predict_on_batch(x), b.predict_on_batch(x), rtol=1e-5, atol=1e-6)


def test_ensemble_spread_is_the_uncertainty(synthetic_models):
    ds, card = synthetic_models["ds"], synthetic_models["cards"]["ens"]
    assert card["outputs"]["members"] == 2
    assert [n["seed"] for n in card["training"]["networks"]] == [0, 1]
    model, card = load_model(synthetic_models["pointers"]["ens"])
    x = ds.features("chi_k", "test")
    members = np.asarray(model.predict_on_batch(x))
    assert members.shape == (len(x), 2, 2)
    mean, std = predict_array(model, card, x)
    np.testing.assert_allclose(mean, members.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(std, members.std(axis=1, ddof=1), rtol=1e-5)
    # Members differ only by their seed; their spread is the uncertainty, and the card's
    # mean spread on the test split is that of the saved members.
    assert np.all(std > 0)
    cn = card["outputs"]["columns"].index("cn")
    assert card["metrics"]["test"]["cn"]["mean_std"] == pytest.approx(
        members[:, :, cn].std(axis=1, ddof=1).mean(), rel=1e-4
    )


def test_feature_override_recomputes_the_input_from_chi(ds):
    spec = resolve_spec({"name": "k3", "kind": "mlp", "features": {"kweight": 3}})
    x = model_inputs(ds, spec, "val")
    k = ds.grid("chi_k")
    np.testing.assert_allclose(x, ds.chi("val") * k**3, rtol=1e-5, atol=1e-6)
    data = load_training_data(ds, spec)
    assert data.features_cfg["kweight"] == 3 and data.features_cfg["ft"]["enabled"] is False


def _r2_by_hand(model, card, x, ds) -> dict[str, float]:
    """R² on the test split from the saved network's raw output (Keras' predict)."""
    raw = np.asarray(model.predict(np.asarray(x, np.float32), verbose=0))
    columns = card["outputs"]["columns"]
    out = {}
    for t in ("cn", "r"):
        y, p = ds.labels(t, "test"), raw[:, columns.index(t)]
        out[t] = 1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2)
    return out


@pytest.mark.slow
def test_cnn2d_learns_from_a_wavelet_map_computed_from_chi(ds, tmp_path):
    """Trained on Morlet maps computed from chi(k), it reads CN and R of held-out spectra
    (R² > 0.8 and > 0.7; a network that ignores its input has R² ≈ 0).  Measured: 0.91,
    0.86 (30 epochs, ~40 s on 2 busy cores)."""
    spec = resolve_spec({"name": "w", "kind": "cnn2d", "input": "wavelet_morlet", "epochs": 30,
            "patience": 30, "learning_rate": 0.003,
            "features": {"wavelet": {"n_k": 16, "n_r": 12}},
            "params": {"filters": [4], "dense": [8]}, **FAST})  # fmt: skip
    mid, card, _ = train(ds, spec, tmp_path, verbose=0)
    pre = card["preprocessing"]
    w = pre["features"]["wavelet"]
    assert pre["input_shape"] == [16, 12] == [w["n_k"], w["n_r"]] and w["morlet"] is True
    assert pre["input_scaling"] == "global" and np.ndim(pre["input_mean"]) == 0
    model, card = load_model(tmp_path / mid)
    maps = compute_features(ds.chi("test"), pre["features"])["wavelet_morlet"]
    r2 = _r2_by_hand(model, card, maps, ds)
    assert r2["cn"] > 0.8 and r2["r"] > 0.7, r2


@pytest.mark.slow
def test_cnn1d_learns_from_augmented_chi(ds, tmp_path):
    """Trained on chi(k) with E0 shifts, k-range cuts and extra damping, it reads clean
    held-out spectra: R² > 0.9 for CN and R (a network that ignores its input: ≈ 0).
    Measured: 0.996, 0.975 (30 epochs, ~40 s on 2 busy cores)."""
    aug = {"e0_shift": [-3.0, 3.0], "kmax": [10.0, 14.0], "sigma2": [0.0, 0.002]}
    spec = resolve_spec({"name": "c", "kind": "cnn1d", "epochs": 30, "patience": 30,
            "augment": aug, "learning_rate": 0.003,
            "params": {"filters": [4, 8], "dense": [8]}, **FAST})  # fmt: skip
    mid, card, _ = train(ds, spec, tmp_path, verbose=0)
    assert card["training"]["augment"] == aug and card["training"]["epochs_run"] == 30
    model, card = load_model(tmp_path / mid)
    assert model.output_shape == (None, 2)
    assert card["preprocessing"]["input_scaling"] == "global"
    r2 = _r2_by_hand(model, card, ds.features("chi_k", "test"), ds)
    assert r2["cn"] > 0.9 and r2["r"] > 0.9, r2


def test_augmented_batches_change_every_epoch_and_stay_seeded(ds):
    spec = resolve_spec({"name": "a", "kind": "mlp", "batch_size": 50,
                         "augment": {"s02": [0.5, 1.0], "noise": [0.0, 0.2]}})  # fmt: skip
    data = load_training_data(ds, spec)
    y = {t: v for t, v in data.splits["train"].y.items()}
    one = augmented_batches(data, spec, 0, y)
    two = augmented_batches(data, spec, 0, y)
    one.on_epoch_begin()
    two.on_epoch_begin()
    x1, _ = one[0]
    x2, _ = two[0]
    np.testing.assert_array_equal(x1, x2)
    one.on_epoch_begin()
    x3, y3 = one[0]
    assert not np.allclose(x1, x3)
    # Targets follow their spectra: a clean copy of the same rows has the same labels.
    rows = one._order[:50]
    np.testing.assert_array_equal(y3["cn"], data.splits["train"].y["cn"][rows])
    clean = data.splits["train"].x[rows]
    assert x3.shape == clean.shape and not np.allclose(x3, clean)
    # Validation data is never augmented.
    np.testing.assert_array_equal(data.splits["val"].x, ds.features("chi_k", "val"))


def test_sigma2_augmentation_moves_the_sigma2_targets_with_the_spectra(ds):
    """A Debye–Waller change of Δσ² is added to the sigma2_* targets of that spectrum
    (then scaled as fitted); other targets stay.  Fixed Δσ² = 0.002 Å² on every spectrum."""
    spec = resolve_spec({"name": "a", "kind": "mlp", "batch_size": 50,
                         "augment": {"sigma2": [0.002, 0.002], "probability": 1.0}})  # fmt: skip
    base = load_training_data(ds, spec)
    train = base.splits["train"]
    sig = np.full((len(train), 1), 0.004, dtype=np.float32)  # a sigma² label per spectrum
    data = TrainingData.from_arrays(
        {s: (d.x, {**d.y, "sigma2_s1": sig[: len(d)]}) for s, d in base.splits.items()},
        base.features_cfg,
        chi={"train": train.chi},
    )
    y = dict(data.splits["train"].y)
    with pytest.raises(ValueError, match="target scaling"):
        augmented_batches(data, spec, 0, y)
    batches = augmented_batches(
        data, spec, 0, y, scale_y=lambda ys: {t: 10 * v for t, v in ys.items()}
    )
    batches.on_epoch_begin()
    _, got = batches[0]
    rows = batches._order[:50]
    np.testing.assert_allclose(got["sigma2_s1"], 10 * (sig[rows] + 0.002), rtol=1e-6)
    np.testing.assert_allclose(got["cn"], 10 * train.y["cn"][rows], rtol=1e-6)


def test_empty_validation_split_is_a_clear_error(ds):
    spec = resolve_spec({"name": "m", "kind": "mlp"})
    full = load_training_data(ds, spec)
    tr = full.splits["train"]
    data = TrainingData.from_arrays(
        {"train": (tr.x, tr.y), "val": (tr.x[:0], {t: v[:0] for t, v in tr.y.items()})},
        full.features_cfg,
    )
    with pytest.raises(ModelConfigError, match="validation split is empty"):
        fit(data, spec)


# --- refusals ------------------------------------------------------------------------------


def _tiny_model(layers):
    inp = keras.Input((4,))
    return keras.Model(inp, layers(inp))


def _card_for(path, **over):
    """A card binding the files of ``path`` (what a trained model folder holds), so that
    the checks after the hashes are reached; returns the folder, renamed to its id."""
    for name in ("ood.json", "training_band.json"):
        (path / name).write_text("{}")
    files = {n: file_sha256(path / n) for n in ("model.keras", "ood.json", "training_band.json")
             if (path / n).is_file()}  # fmt: skip
    card = {"card_version": CARD_VERSION, "name": "x", "files": files, **over}
    card["model_id"] = card_model_id(card)
    (path / "card.json").write_text(json.dumps(card))
    return path.rename(path.with_name(card["model_id"]))


def test_legacy_h5_models_are_refused(tmp_path):
    model = _tiny_model(lambda x: keras.layers.Dense(1)(x))
    h5 = tmp_path / "legacy.h5"
    model.save(h5)  # Keras still writes the legacy format when asked to
    assert h5.read_bytes()[:4] == b"\x89HDF"
    with pytest.raises(ModelLoadError, match=r"legacy\.h5: legacy HDF5"):
        load_model(h5)
    # A directory holding only model.h5.
    d = tmp_path / "old"
    d.mkdir()
    (d / "model.h5").write_bytes(h5.read_bytes())
    d = _card_for(d)
    with pytest.raises(ModelLoadError, match=r"legacy model\.h5"):
        load_model(d)
    # The same HDF5 file renamed to model.keras (and bound by the card).
    (d / "model.keras").write_bytes(h5.read_bytes())
    d = _card_for(d)
    with pytest.raises(ModelLoadError, match=r"legacy HDF5 Keras model under a \.keras name"):
        load_model(d)


def test_models_with_a_lambda_layer_are_refused(tmp_path):
    model = _tiny_model(lambda x: keras.layers.Lambda(lambda t: t * 2.0)(x))
    d = tmp_path / "lam"
    d.mkdir()
    model.save(d / "model.keras")
    d = _card_for(d)
    with pytest.raises(ModelLoadError, match="contains a Lambda layer"):
        load_model(d)
    # Keras itself refuses it too with safe_mode on, which mlxas never turns off.
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(d / "model.keras", safe_mode=True)
    # A Lambda nested inside a sub-model is found as well.
    inner = _tiny_model(lambda x: keras.layers.Lambda(lambda t: t + 1.0)(x))
    outer = keras.Model(inner.inputs, keras.layers.Dense(1)(inner(inner.inputs[0])))
    outer.save(d / "model.keras")
    d = _card_for(d)
    with pytest.raises(ModelLoadError, match="Lambda"):
        load_model(d)


def test_bad_cards_and_archives_are_refused(tmp_path):
    model = _tiny_model(lambda x: keras.layers.Dense(1)(x))
    d = tmp_path / "m"
    d.mkdir()
    model.save(d / "model.keras")
    with pytest.raises(ModelLoadError, match="no model card"):
        load_model(d)
    d = _card_for(d, card_version=CARD_VERSION + 1)
    with pytest.raises(ModelLoadError, match=f"card format {CARD_VERSION + 1}; this mlxas"):
        load_model(d)
    (d / "card.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(d)
    with zipfile.ZipFile(d / "model.keras", "w") as zf:
        zf.writestr("other.txt", "x")
    d = _card_for(d)
    with pytest.raises(ModelLoadError, match=r"not a Keras \.keras archive"):
        load_model(d)
    with pytest.raises(ModelLoadError, match=r"no model\.keras"):
        load_model(tmp_path)


def test_retraining_from_the_same_config_and_data_gives_the_same_model_id(ds, tmp_path):
    """Issue 18: a bundled model retrained from its config is the same model. Two
    trainings into two stores, seconds apart, give the same id and byte-identical files;
    only the card's timing keys differ. A changed config gives another id."""
    entry = {"name": "same", "kind": "ensemble", "epochs": 3,
             "params": {"members": 2, "hidden": [8]}, **FAST}  # fmt: skip
    spec = resolve_spec(entry)
    mid_a, card_a, folder_a = train(ds, spec, tmp_path / "a", verbose=0)
    mid_b, card_b, folder_b = train(ds, spec, tmp_path / "b", verbose=0)
    assert mid_a == mid_b == folder_a.name == folder_b.name
    for name in card_a["files"]:
        assert (folder_a / name).read_bytes() == (folder_b / name).read_bytes(), name
    assert card_model_id(card_a) == card_model_id(card_b) == mid_a
    # retraining into the same store keeps the folder there
    mid_c, card_c, folder_c = train(ds, spec, tmp_path / "a", verbose=0)
    assert mid_c == mid_a and folder_c == folder_a and card_c["created"] == card_a["created"]
    load_model(folder_a)
    other = resolve_spec({**entry, "epochs": 4})
    assert train(ds, other, tmp_path / "a", verbose=0)[0] != mid_a
