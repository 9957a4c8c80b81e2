"""Sign networks: the axis permutations against recomputed structure factors, the
origin-blind loss, and a short training run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase import Atoms

from mlxas.phases.labels import origin_flips
from mlxas.phases.models import (
    KIND_DEFAULTS,
    PhaseModelError,
    _sign_loss,
    build,
    resolve_spec,
    signed_permutations,
)
from mlxas.phases.reflection_list import reflection_list
from mlxas.phases.reflections import structure_factors

HKL = reflection_list("P-1", 4)


def test_permutation_rows_move_reflections_as_a_relabelled_crystal():
    """Permuting the cell axes (b, c, a) and mirroring a gives a crystal whose F at the
    list's reflections are the original F gathered by that row."""
    rng = np.random.default_rng(0)
    x = rng.random((3, 3))
    frac = np.vstack([x, -x]) % 1.0
    symbols = ["C", "N", "O"] * 2
    cell = (5.0, 6.0, 7.0, 80.0, 95.0, 105.0)
    b = np.full(6, 2.0)
    f = structure_factors(cell, symbols, frac, b, HKL).real
    perms = signed_permutations(HKL)
    assert perms.shape == (48, len(HKL)) and np.array_equal(perms[0], np.arange(len(HKL)))
    listed = [
        (p, s)
        for p in itertools.permutations(range(3))
        for s in itertools.product((1, -1), repeat=3)
    ]
    for axes, signs in (((0, 1, 2), (1, 1, 1)), ((0, 2, 1), (1, -1, 1)), ((1, 2, 0), (-1, 1, 1))):
        g = listed.index((axes, signs))
        # new crystal: new axis j is old axis axes[j], mirrored where signs[j] < 0
        new_frac = frac[:, axes] * np.array(signs)
        new_cell = Atoms(cell=cell).cell.cellpar()  # angles follow the axes
        lengths = new_cell[:3][list(axes)]
        angle_of = {
            frozenset({1, 2}): cell[3],
            frozenset({0, 2}): cell[4],
            frozenset({0, 1}): cell[5],
        }
        angles = []
        for i, j in ((1, 2), (0, 2), (0, 1)):
            a = angle_of[frozenset({axes[i], axes[j]})]
            angles.append(a if signs[i] * signs[j] > 0 else 180.0 - a)
        g_cell = (*lengths, *angles)
        f_new = structure_factors(g_cell, symbols, new_frac % 1.0, b, HKL).real
        assert np.allclose(f_new, f[perms[g]], atol=1e-6 * np.abs(f).max())


def test_origin_blind_loss_ignores_the_origin_and_matches_bce_at_one_origin():
    import keras

    rng = np.random.default_rng(1)
    flips = origin_flips("P-1", HKL).astype(np.float32)
    sign = (rng.random((3, len(HKL))) > 0.5).astype(np.float32)
    w = rng.random((3, len(HKL))).astype(np.float32)
    logits = rng.normal(size=(3, len(HKL))).astype(np.float32)
    y = np.stack([sign, w], axis=1)
    plain = keras.ops.convert_to_numpy(_sign_loss(None)(y, logits))
    prob = 1 / (1 + np.exp(-logits))
    bce = -(sign * np.log(prob) + (1 - sign) * np.log(1 - prob))
    assert np.allclose(plain, (w * bce).sum(1) / w.sum(1), rtol=1e-5)
    blind = _sign_loss(flips)
    base = keras.ops.convert_to_numpy(blind(y, logits))
    moved = np.where(flips[6] > 0, sign, 1 - sign)
    again = keras.ops.convert_to_numpy(blind(np.stack([moved, w], axis=1), logits))
    assert np.allclose(base, again, rtol=1e-5)
    assert np.all(base <= plain + 1e-6)


def test_kinds_and_specs():
    assert set(KIND_DEFAULTS) == {"sign_mlp", "sign_mlp_oi"}
    ref = resolve_spec({"kind": "sign_mlp"})
    assert ref["params"]["hidden"] == [100] and not ref["origin_invariant"]
    model = build(
        "sign_mlp_oi", len(HKL), "e_value+mask", resolve_spec({"kind": "sign_mlp_oi"})["params"]
    )
    assert model.input_shape == (None, 2 * len(HKL)) and model.output_shape == (None, len(HKL))
    with pytest.raises(PhaseModelError, match="unknown phase model kind"):
        resolve_spec({"kind": "transformer"})


def test_augmentation_moves_inputs_and_targets_with_one_permutation_per_crystal():
    from mlxas.phases.models import _dataset

    perms = signed_permutations(HKL)
    n = len(HKL)
    rng = np.random.default_rng(0)
    x = rng.random((6, 2 * n)).astype("float32")
    y = rng.random((6, 2, n)).astype("float32")
    xb, yb = (t.numpy() for t in next(iter(_dataset(x, y, perms, 6, False, 0, True))))
    for i in range(6):
        g = [k for k in range(48) if np.allclose(xb[i, :n], x[i, :n][perms[k]])]
        assert g
        assert np.allclose(xb[i, n:], x[i, n:][perms[g[0]]])
        assert np.allclose(yb[i], y[i][:, perms[g[0]]])
