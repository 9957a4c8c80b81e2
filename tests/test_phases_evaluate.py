"""Evaluation: map correlation (against Parseval), the best origin, peak recovery and
charge flipping on a small crystal."""

from __future__ import annotations

import numpy as np
import pytest

from _phases_support import p1bar_crystal
from mlxas.phases.charge_flip import charge_flip
from mlxas.phases.dataset import test_crystals as make_test_crystals
from mlxas.phases.evaluate import (
    asymmetric_sites,
    best_origin,
    map_correlation,
    phase_metrics,
    summarise,
)
from mlxas.phases.labels import origin_flips
from mlxas.phases.reflections import ReflectionSettings


def _crystal(seed=0, n=5):
    return p1bar_crystal(seed, ("C", "N", "O", "C", "S", "C", "O")[:n])


@pytest.fixture(scope="module")
def crystal():
    settings = ReflectionSettings(d_min=0.9, index_max=9)
    crystals, _ = make_test_crystals(settings, [_crystal()])
    return crystals[0]


def test_asymmetric_sites_keep_one_of_each_inversion_pair():
    atoms = _crystal(n=4)
    sites = asymmetric_sites("P-1", atoms.get_scaled_positions())
    assert len(sites) == 4


def test_map_correlation_equals_the_parseval_sum(crystal):
    rng = np.random.default_rng(1)
    flipped = rng.random(len(crystal.hkl)) < 0.3
    phase = np.where(flipped, crystal.phase + np.pi, crystal.phase)
    cc = map_correlation(
        crystal.cell, crystal.space_group, crystal.hkl, crystal.amplitude, phase, crystal.phase
    )
    f2 = crystal.amplitude**2  # each reflection and its Friedel mate count alike in P-1
    assert cc == pytest.approx(np.sum(f2 * np.cos(phase - crystal.phase)) / np.sum(f2), abs=2e-3)


def test_true_phases_solve_and_random_signs_do_not(crystal):
    m = phase_metrics(crystal, crystal.phase)
    assert m["map_cc"] == pytest.approx(1.0) and m["atoms_recovered"] == 1.0 and m["solved"]
    assert m["sign_accuracy"] == 1.0 and m["phase_error"] == 0.0
    rng = np.random.default_rng(2)
    r = phase_metrics(crystal, rng.choice([0.0, np.pi], len(crystal.hkl)))
    assert not r["solved"] and r["map_cc"] < 0.5
    s = summarise([m, r])
    assert s["solved_fraction"] == 0.5 and s["n"] == 2


def test_any_permissible_origin_is_as_good_as_the_true_one(crystal):
    flips = origin_flips(crystal.space_group, crystal.hkl)
    for k in (3, 7):
        moved = np.where(flips[k] < 0, crystal.phase + np.pi, crystal.phase)
        assert (
            map_correlation(
                crystal.cell,
                crystal.space_group,
                crystal.hkl,
                crystal.amplitude,
                moved,
                crystal.phase,
            )
            < 0.9
        )
        _, origin, cc = best_origin(crystal, moved)
        assert origin == k and cc == pytest.approx(1.0)
        assert phase_metrics(crystal, moved)["sign_accuracy"] == 1.0


def test_charge_flipping_solves_a_small_crystal_at_atomic_resolution(crystal):
    # Charge flipping is stochastic: from this start (seed 2, deterministic) it solves;
    # seed 0 gives a false phase transition here, which the benchmarks count as unsolved.
    result = charge_flip(
        crystal.cell, crystal.space_group, crystal.hkl, crystal.amplitude, seed=2, trials=1
    )
    assert result.symmetrised and result.phase.shape == crystal.phase.shape
    m = phase_metrics(crystal, result.phase)
    assert m["solved"] and m["map_cc"] > 0.8


def test_charge_flipping_started_from_given_phases(crystal):
    rng = np.random.default_rng(5)
    # the true phases with a tenth of the signs wrong, as a model might give
    start = np.where(rng.random(len(crystal.hkl)) < 0.1, crystal.phase + np.pi, crystal.phase)
    result = charge_flip(
        crystal.cell,
        crystal.space_group,
        crystal.hkl,
        crystal.amplitude,
        seed=1,
        start_phase=start,
        trials=1,
    )
    assert phase_metrics(crystal, result.phase)["solved"]


def test_fast_sign_scores_agree_with_map_based_metrics(crystal):
    from mlxas.phases.evaluate import sign_scores

    rng = np.random.default_rng(6)
    flips = origin_flips(crystal.space_group, crystal.hkl)
    truth = (np.cos(crystal.phase) > 0).astype(float)
    # wrong signs, mostly among the weak reflections, then moved to another origin
    weak = crystal.e_value < np.median(crystal.e_value)
    wrong = rng.random(len(truth)) < np.where(weak, 0.4, 0.05)
    prob = np.where(wrong, 1 - truth, truth) * (flips[5] > 0) + np.where(
        wrong, truth, 1 - truth
    ) * (flips[5] < 0)
    one = np.ones((1, len(truth)))
    fast = sign_scores(
        prob[None], truth[None], crystal.amplitude[None], crystal.e_value[None], one, flips
    )
    slow = phase_metrics(crystal, np.where(prob > 0.5, 0.0, np.pi))
    assert fast["origin"][0] == slow["origin"] == 5
    assert fast["map_cc"][0] == pytest.approx(slow["map_cc"], abs=2e-3)
    assert fast["sign_accuracy"][0] == pytest.approx(slow["sign_accuracy"])
    assert fast["sign_accuracy_weighted"][0] == pytest.approx(slow["sign_accuracy_weighted"])


def test_map_correlation_in_p21c_weights_reflections_by_multiplicity():
    from mlxas.phases.evaluate import TestCrystal
    from mlxas.phases.reflection_list import reflection_list
    from mlxas.phases.reflections import structure_factors

    rng = np.random.default_rng(8)
    x = rng.random((3, 3))
    images = [x, x * [-1, 1, -1] + [0, 0.5, 0.5], -x, x * [1, -1, 1] + [0, 0.5, 0.5]]
    frac = np.vstack(images) % 1.0
    cell = (6.1, 7.3, 8.2, 90.0, 103.0, 90.0)
    hkl = reflection_list("P 1 21/c 1", 5)
    f = structure_factors(cell, ["C", "N", "O"] * 4, frac, np.full(12, 2.0), hkl).real
    keep = np.abs(f) > 1e-3 * np.abs(f).max()
    c = TestCrystal(
        "p21c",
        cell,
        "P 1 21/c 1",
        hkl[keep],
        np.abs(f[keep]),
        np.where(f[keep] > 0, 0.0, np.pi),
        np.ones(keep.sum()),
        x,
    )
    wrong = np.where(rng.random(keep.sum()) < 0.3, c.phase + np.pi, c.phase)
    cc = map_correlation(cell, c.space_group, c.hkl, c.amplitude, wrong, c.phase)
    special = (c.hkl[:, 1] == 0) | ((c.hkl[:, 0] == 0) & (c.hkl[:, 2] == 0))
    m = np.where(special, 2.0, 4.0)  # h0l and 0k0 orbits are half as large
    w = m * c.amplitude**2
    assert cc == pytest.approx(np.sum(w * np.cos(wrong - c.phase)) / np.sum(w), abs=2e-3)
    assert best_origin(c, wrong)[2] >= cc - 1e-9


def test_charge_flipping_keeps_the_best_of_several_trials(crystal):
    # From seed 0 one start ends in a false phase transition on this crystal (see the
    # test above); with more trials the lowest-R1 symmetrised solution is the right one.
    one = charge_flip(
        crystal.cell, crystal.space_group, crystal.hkl, crystal.amplitude, seed=0, trials=1
    )
    assert not phase_metrics(crystal, one.phase)["solved"]
    many = charge_flip(
        crystal.cell, crystal.space_group, crystal.hkl, crystal.amplitude, seed=0, trials=6
    )
    assert many.trials == 6 and many.symmetrised and many.chosen > 0
    assert phase_metrics(crystal, many.phase)["solved"]
    assert many.r1 < one.r1
    # each trial t starts from seed + t: the kept trial run alone gives the same phases
    alone = charge_flip(
        crystal.cell,
        crystal.space_group,
        crystal.hkl,
        crystal.amplitude,
        seed=many.chosen,
        trials=1,
    )
    np.testing.assert_allclose(alone.phase, many.phase)
    assert alone.r1 == pytest.approx(many.r1)


def test_r1_factor_is_zero_for_the_true_structure_factors_and_scale_free(crystal):
    from mlxas.phases.charge_flip import r1_factor

    f_true = crystal.amplitude * np.exp(1j * crystal.phase)
    assert r1_factor(crystal.amplitude, 3.0 * f_true) == pytest.approx(0.0, abs=1e-12)
    # amplitudes unrelated to the measured ones explain them badly
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(crystal.amplitude)
    assert r1_factor(crystal.amplitude, shuffled) > 0.2
    # hand-checked: |Fo| = (1, 2), |Fc| = (1, 1): k = 1.5, R1 = (0.5 + 0.5) / 3
    assert r1_factor(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(1 / 3)
    # reflections without a computed value are left out
    assert r1_factor(np.array([1.0, 2.0, 5.0]), np.array([1.0, 1.0, np.nan])) == pytest.approx(
        1 / 3
    )
    with pytest.raises(ValueError, match="at least 1"):
        charge_flip(crystal.cell, crystal.space_group, crystal.hkl, crystal.amplitude, trials=0)
