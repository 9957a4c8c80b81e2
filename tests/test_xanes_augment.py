"""Augmentation physics: broadening keeps areas and steps, shifts move edges, noise levels."""

from __future__ import annotations

import numpy as np
import pytest

from mlxas.spectra.xanes import half_step_energy
from mlxas.xanes.augment import AugmentSettings, add_noise, augment, broaden, renormalise, shift

DE = 0.1
GRID = np.round(np.arange(-20.0, 60.0 + DE / 2, DE), 10)
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _gauss(center: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((GRID - center) / sigma) ** 2)


def _moments(y: np.ndarray) -> tuple[float, float, float]:
    area = y.sum() * DE
    mean = (GRID * y).sum() * DE / area
    var = ((GRID - mean) ** 2 * y).sum() * DE / area
    return area, mean, var


def test_broadening_conserves_area_and_adds_gaussian_variances():
    peak = _gauss(10.0, 0.8)
    g = 2.0
    out = broaden(peak, DE, g, 0.0)[0]
    a0, m0, v0 = _moments(peak)
    a1, m1, v1 = _moments(out)
    assert a1 == pytest.approx(a0, rel=1e-9)
    assert m1 == pytest.approx(m0, abs=1e-9)
    # A Gaussian convolved with a Gaussian: variances add (sampling error of a 0.1 eV grid).
    assert v1 == pytest.approx(v0 + (g * FWHM_TO_SIGMA) ** 2, rel=2e-3)
    assert out.max() < peak.max()


def test_lorentzian_broadening_conserves_area_and_height_follows_the_voigt_width():
    peak = np.zeros_like(GRID)
    peak[np.argmin(np.abs(GRID - 15.0))] = 1.0 / DE  # unit area on one point
    out = broaden(peak, DE, 0.0, 1.0)[0]
    assert out.sum() * DE == pytest.approx(1.0, rel=1e-9)
    # A unit-area Lorentzian of FWHM Γ peaks at 2/(πΓ) (within the kernel's cut tails).
    assert out.max() == pytest.approx(2.0 / np.pi, rel=0.05)


def test_broadening_keeps_a_step_a_step_through_the_same_half_point():
    step = 0.5 * (1.0 + np.tanh((GRID - 3.0) / 0.5))
    out = broaden(step, DE, 1.5, 0.8)[0]
    assert out[0] == pytest.approx(step[0], abs=1e-6) and out[-1] == pytest.approx(1.0, abs=1e-6)
    assert half_step_energy(GRID, out, 8.0) == pytest.approx(3.0, abs=0.02)


def test_shift_moves_the_edge_by_the_set_amount():
    step = 0.5 * (1.0 + np.tanh((GRID - 0.0) / 0.7))
    out = shift(np.vstack([step, step]), DE, [1.3, -2.2])
    assert half_step_energy(GRID, out[0], 8.0) == pytest.approx(1.3, abs=1e-3)
    assert half_step_energy(GRID, out[1], 8.0) == pytest.approx(-2.2, abs=1e-3)
    assert out[0, 0] == step[0] and out[1, -1] == step[-1]  # ends take the end values


def test_renormalise_scales_the_step_and_adds_a_line():
    step = 0.5 * (1.0 + np.tanh(GRID / 0.7))
    out = renormalise(step, GRID, 0.1, 0.0)[0]
    assert out[-1] == pytest.approx(1.1 * step[-1])
    line = renormalise(np.zeros_like(GRID), GRID, 0.0, 0.05)[0]
    assert line[0] == 0.0 and line[-1] == pytest.approx(0.05)
    assert np.allclose(np.diff(line, 2), 0.0, atol=1e-12)


def test_noise_has_the_set_level_and_comes_from_the_seed():
    flat = np.zeros((50, len(GRID)))
    a = add_noise(flat, 0.02, np.random.default_rng(3))
    b = add_noise(flat, 0.02, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert a.std() == pytest.approx(0.02, rel=0.02)


def test_augment_is_reproducible_and_off_when_ranges_are_zero():
    spectra = np.vstack([0.5 * (1 + np.tanh((GRID - c) / 0.7)) + 0.3 * _gauss(c - 8, 0.8)
                         for c in (0.0, 1.0)])  # fmt: skip
    s = AugmentSettings()
    a = augment(spectra, GRID, s, np.random.default_rng(0))
    assert np.array_equal(a, augment(spectra, GRID, s, np.random.default_rng(0)))
    assert not np.allclose(a, spectra)
    off = AugmentSettings(
        shift=(0, 0), gauss_fwhm=(0, 0), lorentz_fwhm=(0, 0), scale=(0, 0), slope=(0, 0),
        noise=(0, 0),
    )  # fmt: skip
    assert np.allclose(augment(spectra, GRID, off, np.random.default_rng(0)), spectra)


def test_bad_augmentation_settings_are_refused():
    with pytest.raises(ValueError, match=r"augment\.shift"):
        AugmentSettings(shift=(1.0, -1.0))
    with pytest.raises(ValueError, match="negative"):
        AugmentSettings(noise=(-0.1, 0.1))
    with pytest.raises(ValueError, match="negative"):
        broaden(np.zeros((1, 10)), DE, -1.0, 0.0)
