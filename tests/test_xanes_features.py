"""XANES features: half-step E0, normalisation, grid and derivative, on model and real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlxas.feff.checks import read_xmu_dat
from mlxas.spectra.measured import read_spectra
from mlxas.xanes.features import XanesFeatureSettings, half_step_energy, xanes_features

DATA = Path(__file__).parent / "data"
EXP = DATA / "experimental"


def _edge(energy: np.ndarray, e_edge: float, peak: float = 0.0) -> np.ndarray:
    """A broadened step at ``e_edge`` on a sloping background, with a pre-edge peak of
    height ``peak`` 10 eV below it (as tetrahedral d0 ions have)."""
    step = 0.5 + np.arctan((energy - e_edge) / 0.8) / np.pi
    pre = peak * np.exp(-0.5 * ((energy - (e_edge - 10.0)) / 0.9) ** 2)
    return 0.3 - 1e-4 * (energy - e_edge) + 2.0 * (step + pre)


def test_half_step_e0_ignores_an_intense_pre_edge_peak():
    e = np.arange(6900.0, 7150.0, 0.25)
    feats = xanes_features([(e, _edge(e, 7000.0, peak=0.9))], XanesFeatureSettings(), False)
    # The edge step is normalised over E0+20..60 eV, where the arctan is not yet at 1.
    assert feats.e0[0] == pytest.approx(7000.0, abs=0.5)
    assert feats.step[0] == pytest.approx(2.0, rel=0.03)
    grid = XanesFeatureSettings().grid
    assert feats.norm.shape == (1, len(grid)) and grid[0] == -20 and grid[-1] == 60
    assert feats.norm[0, np.argmin(np.abs(grid - 0.0))] == pytest.approx(0.5, abs=0.02)
    assert feats.norm[0, np.argmin(np.abs(grid + 10.0))] > 0.8  # the pre-edge peak is kept
    assert np.allclose(feats.deriv, np.gradient(feats.norm, 0.5, axis=1))


def test_half_step_energy_refuses_a_spectrum_without_an_edge():
    e = np.linspace(0, 50, 101)
    with pytest.raises(ValueError, match="no edge"):
        half_step_energy(e, 0.9 * np.exp(-0.5 * ((e - 20) / 1.0) ** 2), 8.0)


def test_feff10_output_gives_a_normalised_edge_near_feffs_own_e0():
    """A real FEFF10 Cu K XANES (tests/data/feff/outputs): E0 near FEFF's Fermi level."""
    energy, mu, _, e0_feff = read_xmu_dat(DATA / "feff/outputs/feff10_cu_k_xanes/xmu.dat")
    feats = xanes_features([(energy, mu)], XanesFeatureSettings(), calculated=True)
    assert abs(feats.e0[0] - e0_feff) < 5.0
    grid = XanesFeatureSettings().grid
    post = (grid >= 20) & (grid <= energy[-1] - feats.e0[0])
    assert np.mean(feats.norm[0, post]) == pytest.approx(1.0, abs=0.02)
    assert np.all(feats.norm[0, grid < energy[0] - feats.e0[0]] == 0.0)  # no data: zero


def _measured(name: str):
    spec = read_spectra(EXP / name)[0]
    feats = xanes_features([(spec.energy, spec.mu)], XanesFeatureSettings(), calculated=False)
    return spec, feats


def test_measured_kmno4_e0_is_on_the_main_edge_not_the_pre_edge_peak():
    from larch.xafs import find_e0

    spec, feats = _measured("kmno4_rt.xdi")
    window = (spec.energy > 6530) & (spec.energy < 6550)
    pre_peak = spec.energy[window][np.argmax(spec.mu[window])]
    # The Mn(VII) pre-edge peak (~6543 eV, this scan's calibration puts it at 6541.7) is
    # where the derivative maximum lands; the main edge lies 10-15 eV above it.
    assert abs(find_e0(spec.energy, spec.mu) - pre_peak) < 2.0
    assert 8.0 < feats.e0[0] - pre_peak < 16.0
    grid = XanesFeatureSettings().grid
    pre = np.argmin(np.abs(grid - (pre_peak - feats.e0[0])))
    assert feats.norm[0, pre] > 0.5  # the intense tetrahedral pre-edge peak survives
    assert feats.norm[0, np.argmin(np.abs(grid))] == pytest.approx(0.5, abs=0.05)


def test_measured_edges_shift_with_the_manganese_oxidation_state():
    """Mn(VII) (KMnO4) edge ~10 eV above Mn(II) (MnO): the K-edge chemical shift."""
    _, mno = _measured("mno_rt.xdi")
    _, kmno4 = _measured("kmno4_rt.xdi")
    assert 6540 < mno.e0[0] < 6550
    assert 7.0 < kmno4.e0[0] - mno.e0[0] < 16.0


def test_feature_settings_are_checked():
    with pytest.raises(ValueError, match="emin < 0 < emax"):
        XanesFeatureSettings(emin=5.0)
    with pytest.raises(ValueError, match="norm1 < norm2"):
        XanesFeatureSettings(norm1=50.0, norm2=30.0)
