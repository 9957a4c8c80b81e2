"""Sim-to-real augmentation: each effect against its analytic form, seeding, composition."""

from __future__ import annotations

import numpy as np
import pytest
from larch.xafs.xafsutils import ETOK

from mlxas.spectra.augment import (
    augment_chi,
    debye_waller,
    draw_parameters,
    e0_shift,
    is_enabled,
    noise,
    s02_scale,
    shift_sigma2_labels,
    truncate_k,
)

kgrid = 0.05 * np.arange(1, 401)  # 0.05 .. 20 Å⁻¹, the default grid
R = 2.55  # Å, Cu first shell


def shell(k: np.ndarray) -> np.ndarray:
    """One EXAFS-like shell: smooth amplitude times sin(2kR)."""
    return np.exp(-0.01 * k**2) * np.sin(2 * k * R)


def test_etok_is_2m_over_hbar2():
    # k² = ETOK·(E − E0): 0.2625 Å⁻²/eV.
    np.testing.assert_allclose(ETOK, 0.26246842, rtol=1e-7)


def test_debye_waller_damps_as_exp_minus_2k2_dsigma2():
    chi = np.vstack([shell(kgrid), shell(kgrid)])
    out = debye_waller(chi, kgrid, np.array([0.0, 0.003]))
    np.testing.assert_allclose(out[0], chi[0])
    np.testing.assert_allclose(out[1], chi[1] * np.exp(-2 * kgrid**2 * 0.003))
    # At k = 10 Å⁻¹, Δσ² = 0.003 Å² leaves exp(-0.6) of the amplitude.
    i = np.argmin(abs(kgrid - 10))
    assert out[1, i] / chi[1, i] == pytest.approx(np.exp(-0.6))


def test_s02_scales_amplitude():
    chi = np.vstack([shell(kgrid)] * 3)
    out = s02_scale(chi, np.array([1.0, 0.8, 0.7]))
    np.testing.assert_allclose(out, chi * np.array([[1.0], [0.8], [0.7]]))


@pytest.mark.parametrize("delta_e", [-5.0, 2.0, 8.0])
def test_e0_shift_matches_the_spectrum_recomputed_with_the_moved_edge(delta_e):
    # A shell as a function of energy: chi(E) = A sin(2R sqrt(ETOK (E - E0))).
    # With the edge placed delta_e higher, k' = sqrt(ETOK (E - E0 - delta_e)), so the
    # same spectrum on the k' axis is A sin(2R sqrt(k'^2 + ETOK delta_e)).
    chi = np.sin(2 * R * kgrid)[None, :]
    out = e0_shift(chi, kgrid, delta_e)[0]
    kk = np.sqrt(np.maximum(kgrid**2 + ETOK * delta_e, 0))  # where each point's value comes from
    # Source samples below the moved edge (k² < ETOK·delta_e) have no place on the new axis.
    first = kgrid[kgrid**2 >= ETOK * delta_e][0]
    valid = (kk >= first) & (kk <= kgrid[-1])
    expected = np.sin(2 * R * kk)
    # Linear interpolation of sin(2kR) sampled every dk = 0.05 Å⁻¹: error ≤ (2R·dk)²/8 ≈ 0.0081
    # where k' is nearly linear in k (k ≥ 2 Å⁻¹); closer to the edge the resampling is coarser.
    exafs = valid & (kgrid >= 2.0)
    np.testing.assert_allclose(out[exafs], expected[exafs], atol=0.0082)
    np.testing.assert_allclose(out[valid], expected[valid], atol=0.03)
    # Points with no data on the shifted axis are zero, as for a measured spectrum.
    assert np.all(out[~valid] == 0)
    # High k: the phase moves by about -R·ETOK·delta_e/k (first order).
    if delta_e > 0:
        assert np.any(~valid[-20:])  # data ends before the grid does
    else:
        assert np.any(~valid[:10])


def test_e0_shift_of_zero_is_identity():
    chi = np.vstack([shell(kgrid)] * 2)
    np.testing.assert_allclose(e0_shift(chi, kgrid, 0.0), chi, atol=1e-12)


def test_noise_has_the_requested_k_weighted_rms_and_is_white_in_k():
    rng = np.random.default_rng(1)
    clean = np.zeros((400, len(kgrid)))
    out = noise(clean, kgrid, 0.05, kweight=2, rng=rng)
    eps = out - clean
    rms_weighted = np.sqrt(np.mean((eps * kgrid**2) ** 2))
    assert rms_weighted == pytest.approx(0.05, rel=0.02)
    # White in k: the same spread at low and high k (in chi units).
    lo, hi = eps[:, :100].std(), eps[:, -100:].std()
    assert lo == pytest.approx(hi, rel=0.05)
    assert abs(eps.mean()) < 3 * eps.std() / np.sqrt(eps.size)


def test_noise_is_reproducible_with_a_seed():
    chi = np.vstack([shell(kgrid)] * 2)
    a = noise(chi, kgrid, 0.1, 2, np.random.default_rng(7))
    b = noise(chi, kgrid, 0.1, 2, np.random.default_rng(7))
    c = noise(chi, kgrid, 0.1, 2, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_truncation_zeros_beyond_kmax_only():
    chi = np.vstack([shell(kgrid)] * 2)
    out = truncate_k(chi, kgrid, np.array([12.0, 16.0]))
    for row, src, kmax in zip(out, chi, (12.0, 16.0), strict=True):
        assert np.all(row[kgrid > kmax] == 0)
        np.testing.assert_array_equal(row[kgrid <= kmax], src[kgrid <= kmax])


def test_draw_parameters_stay_in_range_and_respect_probability():
    cfg = {"s02": [0.7, 0.9], "e0_shift": [-4, 4], "kmax": [10, 14], "probability": 0.5}
    par = draw_parameters(2000, cfg, np.random.default_rng(0))
    on = par["augmented"]
    assert 0.45 < on.mean() < 0.55
    assert np.all((par["s02"][on] >= 0.7) & (par["s02"][on] <= 0.9))
    assert np.all(par["s02"][~on] == 1.0)
    assert np.all(par["e0_shift"][~on] == 0.0)
    assert np.all(np.isinf(par["kmax"][~on]))
    assert "noise" not in par and "sigma2" not in par
    with pytest.raises(ValueError, match=r"augment\.s02"):
        draw_parameters(3, {"s02": [1.0, 0.5]}, np.random.default_rng(0))


def test_augment_chi_composes_effects_and_is_seeded():
    chi = np.vstack([shell(kgrid)] * 5)
    assert not is_enabled({"probability": 1.0, "s02": None})
    assert is_enabled({"s02": [0.8, 0.8]})
    # Only deterministic effects with fixed ranges: the composition is exact, written out:
    # S0² · exp(−2k²σ²) · chi up to kmax, zero beyond.
    cfg = {"sigma2": [0.002, 0.002], "s02": [0.8, 0.8], "kmax": [12, 12]}
    out = augment_chi(chi, kgrid, cfg, np.random.default_rng(0))
    expected = np.where(kgrid <= 12.0, 0.8 * np.exp(-2 * kgrid**2 * 0.002) * chi, 0.0)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15)
    full = {"sigma2": [0, 0.003], "s02": [0.7, 1.0], "e0_shift": [-5, 5], "noise": [0, 0.1],
            "kmax": [10, 20]}  # fmt: skip
    a = augment_chi(chi, kgrid, full, np.random.default_rng(3))
    b = augment_chi(chi, kgrid, full, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, chi)
    np.testing.assert_array_equal(chi, np.vstack([shell(kgrid)] * 5))  # input untouched


def damped_shell(k: np.ndarray, sigma2: float) -> np.ndarray:
    """One shell with total Debye–Waller factor exp(−2k²σ²)."""
    return np.exp(-2 * k**2 * sigma2) * np.sin(2 * k * R) / k


def test_negative_dsigma2_undoes_damping_exactly():
    # A shell simulated with σ² = 0.006 Å², undamped by Δσ² = −0.004 Å², is the same shell
    # simulated with σ² = 0.002 Å²: the cold spectrum the model must also be able to read.
    warm = damped_shell(kgrid, 0.006)[None, :]
    np.testing.assert_allclose(
        debye_waller(warm, kgrid, -0.004)[0], damped_shell(kgrid, 0.002), rtol=1e-12
    )


def test_negative_sigma2_range_needs_the_base_and_keeps_the_total_nonnegative():
    cfg = {"sigma2": [-0.004, 0.003]}
    with pytest.raises(ValueError, match="sigma2_base"):
        draw_parameters(5, cfg, np.random.default_rng(0))
    base = np.linspace(0.0, 0.008, 4000)  # Å²: from a 0 K-like to a very warm first shell
    par = draw_parameters(4000, cfg, np.random.default_rng(1), sigma2_base=base)
    d = par["sigma2"]
    assert np.all(d <= 0.003) and np.all(d >= -0.004)
    assert np.all(base + d >= -1e-15), "no spectrum may end with a negative total sigma²"
    # Spectra with room below them are undamped as often as the range says.
    roomy = base > 0.004
    assert 0.5 < np.mean(d[roomy] < 0) < 0.64  # 4/7 of the range lies below 0
    with pytest.raises(ValueError, match="finite and >= 0"):
        draw_parameters(2, cfg, np.random.default_rng(0), sigma2_base=np.array([0.001, -1.0]))


def test_augment_returns_parameters_and_labels_follow_the_spectrum():
    sig = np.array([0.002, 0.005, 0.009])
    chi = np.vstack([damped_shell(kgrid, s) for s in sig])
    out, par = augment_chi(
        chi,
        kgrid,
        {"sigma2": [-0.003, 0.002]},
        np.random.default_rng(2),
        sigma2_base=sig,
        return_parameters=True,
    )
    labels = shift_sigma2_labels({"sigma2_s1_Cu": sig, "cn_s1_Cu": np.full(3, 12.0)}, par)
    np.testing.assert_array_equal(labels["cn_s1_Cu"], 12.0)
    for row, s_new in zip(out, labels["sigma2_s1_Cu"], strict=True):
        np.testing.assert_allclose(row, damped_shell(kgrid, s_new), rtol=1e-9, atol=1e-14)
    assert np.all(labels["sigma2_s1_Cu"] >= 0)
