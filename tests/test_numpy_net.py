"""Numpy inference (mlxas.models.numpy_net) against Keras on real trained models of every
kind, and refusal of what it cannot run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from mlxas.models import ModelLoadError, predict_array
from mlxas.models import load_model as keras_load
from mlxas.models.numpy_layers import ACTIVATIONS
from mlxas.models.numpy_net import NumpyModel, load_model, read_archive

FAST = {"jit_compile": False}

#: One small model per kind and per layer arrangement the kinds produce (1–2 epochs).
SPECS = {
    "paper_mlp": {"kind": "paper_mlp", "epochs": 1, "params": {"hidden": [16, 8]}},
    "mlp_dropout_crop": {
        "kind": "mlp", "epochs": 2, "input_range": [2.0, 12.0], "targets": ["cn", "r", "rdf"],
        "params": {"hidden": [16, 16], "dropout": 0.2, "activation": "tanh"},
    },
    "cnn1d_crop": {
        "kind": "cnn1d", "epochs": 1, "input_range": [2.05, 12.0],
        "params": {"filters": [4, 6], "kernel_size": 5, "dense": [8], "dropout": 0.1},
    },
    "cnn1d_per_point_nopool": {
        "kind": "cnn1d", "epochs": 1,
        "params": {"filters": [3], "kernel_size": 4, "pool": 1, "dense": [6],
                   "input_scaling": "per_feature", "activation": "elu"},
    },
    "cnn2d_wavelet": {
        "kind": "cnn2d", "epochs": 1, "input": "wavelet_morlet",
        "features": {"wavelet": {"n_k": 15, "n_r": 11}},
        "params": {"filters": [3, 4], "dense": [6], "input_scaling": "per_feature"},
    },
    "ensemble_cnn1d": {
        "kind": "ensemble", "epochs": 1, "input_range": [3.0, 11.0],
        "params": {"member": "cnn1d", "members": 2, "filters": [3], "dense": [4]},
    },
    "ft_mlp": {"kind": "mlp", "epochs": 1, "input": "ft_mag", "params": {"hidden": [8]}},
    "npcnn_strided": {
        "kind": "npcnn", "epochs": 1,
        "params": {"filters": [3, 4], "kernel_size": [7, 5], "strides": [4, 3], "dense": [6]},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def trained(synthetic_models, tmp_path_factory):
    """Directories of the models of SPECS and of the session's models (mt, ens)."""
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import train
    from mlxas.workflow.layout import Layout

    ds = synthetic_models["ds"]
    layout = Layout(tmp_path_factory.mktemp("numpy_net_models"))
    dirs = dict(synthetic_models["folders"])
    for name, entry in SPECS.items():
        spec = ModelSpec.from_config({"name": name, **entry, **FAST})
        _, _, dirs[name] = train(ds, spec, layout.model_store(name), threads=1, verbose=0)
    return ds, dirs


def _inputs(ds, card: dict) -> np.ndarray:
    from mlxas.spectra.features import compute_features

    pre = card["preprocessing"]
    return compute_features(ds.chi("test"), pre["features"])[pre["input"]]


@pytest.mark.slow  # the first one trains the models of SPECS (> 30 s on 2 busy cores)
@pytest.mark.parametrize("name", ["mt", "ens", *SPECS])
def test_numpy_equals_keras(trained, name):
    ds, dirs = trained
    kmodel, card = keras_load(dirs[name])
    nmodel, ncard = load_model(dirs[name])
    assert ncard == card
    x = _inputs(ds, card)
    # Outside the training distribution too: numpy must follow Keras everywhere.
    x = np.concatenate([x, 3.0 * x[::-1]])
    want = np.asarray(kmodel.predict_on_batch(x))
    got = nmodel.predict_on_batch(x)
    assert got.shape == want.shape and got.dtype == np.float32
    # float32 sums in another order: relative to each output column's magnitude (a value
    # that is itself a cancellation of large terms has no relative precision to keep).
    scale = np.abs(want).reshape(len(want), -1).max(axis=0).reshape(want.shape[1:])
    err = np.abs(got - want) / scale
    assert err.max() <= 1e-5, f"largest difference {err.max():.2e} of the column's scale"
    # The whole prediction (mean, ensemble spread, physical units) agrees as well.
    km, ks = predict_array(kmodel, card, x)
    nm, ns = predict_array(nmodel, card, x)
    np.testing.assert_allclose(nm, km, rtol=1e-5, atol=1e-6 * np.abs(km).max())
    assert (ks is None) == (ns is None)
    if ks is not None:
        np.testing.assert_allclose(ns, ks, rtol=1e-3, atol=1e-5 * np.abs(km).max())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activations_match_keras(tmp_path, activation):
    keras.utils.set_random_seed(0)  # the same weights on every run
    inp = keras.Input((7,))
    out = keras.layers.Dense(5, activation=activation, name="d")(inp)
    model = keras.Model(inp, keras.layers.Activation(activation, name="a")(out))
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(1).normal(0, 2, (64, 7)).astype(np.float32)
    np.testing.assert_allclose(
        NumpyModel.from_file(path).predict_on_batch(x),
        np.asarray(model.predict_on_batch(x)),
        # exp(exp(z)): a float32 rounding of the inner exp(z) ~ 50 is multiplied by 50.
        rtol=2e-4 if activation == "exponential" else 2e-5,
        atol=2e-6,
    )


def test_adapted_normalization_reads_its_weights(tmp_path):
    x = np.random.default_rng(2).normal(3.0, 2.0, (50, 6, 4)).astype(np.float32)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x)
    inp = keras.Input((6, 4))
    model = keras.Model(inp, keras.layers.Flatten()(norm(inp)))
    model.save(tmp_path / "m.keras")
    got = NumpyModel.from_file(tmp_path / "m.keras").predict_on_batch(x)
    np.testing.assert_allclose(got, model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    assert abs(float(got.mean())) < 1e-5  # standardised with the adapted statistics


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


def test_unknown_layer_kind_is_refused_with_its_name(tmp_path):
    inp = keras.Input((8,))
    x = keras.layers.Dense(4, name="d")(inp)
    x = keras.layers.LayerNormalization(name="my_layer_norm")(x)
    path = _save(keras.Model(inp, x), tmp_path / "m.keras")
    with pytest.raises(ModelLoadError, match=r"my_layer_norm: layer kind 'LayerNormalization'"):
        NumpyModel.from_file(path)


def test_lambda_and_unknown_activations_are_refused(tmp_path):
    inp = keras.Input((3,))
    x = keras.layers.Lambda(lambda t: t * 2, name="double")(inp)
    path = _save(keras.Model(inp, x), tmp_path / "lam.keras")
    with pytest.raises(ModelLoadError, match=r"double: layer kind 'Lambda'"):
        NumpyModel.from_file(path)
    x = keras.layers.Dense(2, activation="hard_shrink", name="hs")(inp)
    path = _save(keras.Model(inp, x), tmp_path / "act.keras")
    with pytest.raises(ModelLoadError, match=r"hs: activation 'hard_shrink' is not supported"):
        NumpyModel.from_file(path)


def test_checksum_is_checked_before_reading(trained, tmp_path):
    import hashlib

    _, dirs = trained
    src = dirs["mt"] / "model.keras"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    config, weights = read_archive(src, sha256=digest)
    assert config["class_name"] == "Functional" and weights["layers"]
    bad = tmp_path / "model.keras"
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"SHA-256 is .* the model card expects"):
        read_archive(bad, sha256=digest)


def test_damaged_archives_are_refused(trained, tmp_path):
    _, dirs = trained
    model_dir = tmp_path / dirs["mt"].name
    shutil.copytree(dirs["mt"], model_dir)
    keras_file = model_dir / "model.keras"
    with zipfile.ZipFile(keras_file) as zf:
        config = json.loads(zf.read("config.json"))
    with zipfile.ZipFile(keras_file, "w") as zf:  # weights missing
        zf.writestr("config.json", json.dumps(config))
    # In a model folder the card's SHA-256 refuses it first; read alone, the archive is.
    with pytest.raises(ModelLoadError, match=r"model.keras: SHA-256 .* does not match"):
        load_model(model_dir)
    with pytest.raises(ModelLoadError, match=r"not a Keras \.keras archive"):
        NumpyModel.from_file(keras_file)
    keras_file.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ModelLoadError, match="legacy HDF5"):
        NumpyModel.from_file(keras_file)


def test_loading_imports_neither_tensorflow_nor_keras(trained):
    _, dirs = trained
    code = (
        "import sys, numpy as np\n"
        "from mlxas.models.numpy_net import load_model\n"
        f"m, card = load_model({str(dirs['ens'])!r})\n"
        "y = m.predict_on_batch(np.zeros((2, *m.input_shape), np.float32))\n"
        "assert y.shape == (2, 2, 2), y.shape\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
