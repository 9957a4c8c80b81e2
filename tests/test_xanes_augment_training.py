"""XANES augmentation while training (``models[].augment.xanes``).

The physics of each effect is checked in test_xanes_augment.py; here: that model inputs
(`xanes_channels`: spectrum and derivative) are augmented as configured, that the
derivative follows the spectrum the way `gather` computed it, that the settings are
resolved and refused as documented, and that both model kinds train on augmented
spectra of the small dataset (tests/data/xanes/geometry_small.h5).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from mlxas.models.data import load_training_data, opened
from mlxas.models.edge_augment import augment_input, edge_settings, expand_training
from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec
from mlxas.spectra.grids import energy_grid
from mlxas.spectra.xanes import half_step_energy
from mlxas.xanes.augment import AugmentSettings

DATASET = ROOT / "tests/data/xanes/geometry_small.h5"
GRID = energy_grid({"emin": -20.0, "emax": 60.0, "de": 0.5})  # the experiments' grid
OFF = {k: None for k in ("shift", "gauss_fwhm", "lorentz_fwhm", "scale", "slope", "noise")}


def _spec(input_="xanes_channels", kind="random_forest", **xanes) -> ModelSpec:
    return ModelSpec.from_dict({
        "name": "m", "kind": kind, "input": input_, "targets": ["geometry", "cn"],
        "params": {"n_estimators": 10} if kind == "random_forest" else {},
        "augment": {"xanes": xanes},
    })  # fmt: skip


def _channels(centers) -> np.ndarray:
    """Steps at ``centers`` (eV) with a pre-edge peak, as [n, points, 2] channels."""
    c = np.asarray(centers, dtype=float)[:, None]
    norm = 0.5 * (1 + np.tanh(GRID - c)) + 0.2 * np.exp(-0.5 * (GRID - c + 10) ** 2)
    return np.stack([norm, np.gradient(norm, 0.5, axis=1)], axis=-1).astype(np.float32)


def test_settings_take_default_ranges_and_null_switches_an_effect_off():
    s = edge_settings(_spec(noise=None, shift=[-2.0, 2.0]))
    assert s.noise == (0.0, 0.0) and s.shift == (-2.0, 2.0)
    assert s.gauss_fwhm == AugmentSettings().gauss_fwhm
    assert edge_settings(ModelSpec.from_dict({"name": "m", "kind": "random_forest"})) is None


def test_bad_settings_are_refused_naming_the_entry():
    with pytest.raises(ModelConfigError, match=r"models\.m\.augment\.xanes.*chi_k"):
        edge_settings(_spec(input_="chi_k"))
    with pytest.raises(ModelConfigError, match="unknown key"):
        edge_settings(_spec(sigma2=[0, 1]))
    with pytest.raises(ModelConfigError, match=r"augment\.xanes\.noise: a \[low, high\] range"):
        edge_settings(_spec(noise=0.01))
    with pytest.raises(ModelConfigError, match=r"augment\.xanes.*low 2.0 > high 1.0"):
        edge_settings(_spec(shift=[2.0, 1.0]))


def test_a_shift_moves_the_edge_and_the_derivative_peak_by_the_drawn_ev():
    x = _channels([0.0, 3.0])
    s = edge_settings(_spec(**{**OFF, "shift": [1.5, 1.5]}))
    out = augment_input(x, GRID, s, np.random.default_rng(0))
    for row, c in zip(out, [0.0, 3.0], strict=True):
        assert half_step_energy(GRID, row[:, 0], 8.0) == pytest.approx(c + 1.5, abs=0.01)
        assert GRID[np.argmax(row[:, 1])] == pytest.approx(c + 1.5, abs=0.26)  # grid 0.5 eV


def test_broadening_keeps_the_peak_area_and_lowers_its_height():
    x = _channels([5.0])
    s = edge_settings(_spec(**{**OFF, "gauss_fwhm": [2.0, 2.0], "lorentz_fwhm": [0.8, 0.8]}))
    out = augment_input(x, GRID, s, np.random.default_rng(0))[0, :, 0]
    peak = slice(np.searchsorted(GRID, -12.0), np.searchsorted(GRID, 1.0))
    step = 0.5 * (1 + np.tanh((GRID - 5.0) / 1.0))
    # the step alone, broadened with the same kernel, is the background under the peak
    bare = augment_input(step[None], GRID, s, np.random.default_rng(0))[0]
    area0 = np.sum(x[0, peak, 0] - step[peak]) * 0.5
    area1 = np.sum(out[peak] - bare[peak]) * 0.5
    assert area1 == pytest.approx(area0, rel=0.02)
    assert (out - bare)[peak].max() < 0.75 * (x[0, :, 0] - step)[peak].max()


def test_noise_has_the_set_level_and_the_derivative_follows_it():
    x = np.repeat(_channels([0.0]), 200, axis=0)
    s = edge_settings(_spec(**{**OFF, "noise": [0.02, 0.02]}))
    out = augment_input(x, GRID, s, np.random.default_rng(1))
    assert np.std(out[..., 0] - x[..., 0]) == pytest.approx(0.02, rel=0.03)
    assert np.allclose(out[..., 1], np.gradient(out[..., 0], 0.5, axis=1), atol=1e-5)


def test_neutral_draws_and_probability_zero_return_the_stored_inputs():
    with opened(DATASET) as ds:
        data = load_training_data(ds, _spec(**OFF), splits=("train", "val"))
    x = data.splits["train"].x
    neutral = augment_input(x, GRID, edge_settings(_spec(**OFF)), np.random.default_rng(0))
    # the recomputed derivative is the one `gather` stored
    assert np.allclose(neutral, x, atol=1e-5)
    s = edge_settings(_spec())
    assert np.array_equal(augment_input(x, GRID, s, np.random.default_rng(0), 0.0), x)
    assert not np.allclose(augment_input(x, GRID, s, np.random.default_rng(0)), x, atol=1e-3)


def test_forest_copies_extend_only_the_training_split():
    spec = _spec(copies=2)
    with opened(DATASET) as ds:
        data = load_training_data(ds, spec, splits=("train", "val"))
    big = expand_training(data, spec, seed=0)
    n = len(data.splits["train"])
    assert len(big.splits["train"]) == 3 * n and big.splits["val"] is data.splits["val"]
    assert np.array_equal(big.splits["train"].x[:n], data.splits["train"].x)
    for t, y in data.splits["train"].y.items():
        assert np.array_equal(big.splits["train"].y[t], np.concatenate([y] * 3))
    assert not np.allclose(big.splits["train"].x[n : 2 * n], data.splits["train"].x, atol=1e-3)
    assert expand_training(data, _spec(copies=0), seed=0) is data


def test_network_batches_are_drawn_anew_each_epoch_with_fixed_targets():
    from mlxas.models.batches import edge_augmented_batches

    spec = _spec(kind="cnn1d")
    with opened(DATASET) as ds:
        data = load_training_data(ds, spec, splits=("train", "val"))
    train = data.splits["train"]
    batches = edge_augmented_batches(data, spec, 0, train.y)
    epochs = []
    for _ in range(2):
        batches.on_epoch_begin()
        epochs.append((batches._x.copy(), batches._order.copy()))
    (x1, _), (x2, _) = epochs
    assert x1.shape == train.x.shape and not np.allclose(x1, x2, atol=1e-3)
    xb, yb = batches[0]
    idx = batches._order[: len(xb)]
    assert np.array_equal(xb, x2[idx])
    assert all(np.array_equal(yb[t], train.y[t][idx]) for t in train.y)
