"""XANES features of the workflow (mlxas.spectra.xanes / features): half-step E0,
normalisation, the E - E0 grid and the derivative, on model, FEFF10 and measured data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlxas.feff.checks import read_xmu_dat
from mlxas.spectra.features import edge_features, enabled_features, feature_grids
from mlxas.spectra.grids import energy_grid
from mlxas.spectra.measured import read_spectra
from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid, half_step_energy

DATA = Path(__file__).parent / "data"
EXP = DATA / "experimental"


def _features_cfg() -> dict:
    """The feature settings of config/experiments/xanes_geometry.yaml, schema-filled."""
    from mlxas.workflow.checks import load_experiment

    root = Path(__file__).parents[1]
    return load_experiment([root / "config/experiments/xanes_geometry.yaml"]).dataset.features


@pytest.fixture(scope="module")
def cfg() -> dict:
    return _features_cfg()


def _edge(energy: np.ndarray, e_edge: float, peak: float = 0.0) -> np.ndarray:
    """A broadened step at ``e_edge`` on a sloping background, with a pre-edge peak of
    height ``peak`` 10 eV below it (as tetrahedral d0 ions have)."""
    step = 0.5 + np.arctan((energy - e_edge) / 0.8) / np.pi
    pre = peak * np.exp(-0.5 * ((energy - (e_edge - 10.0)) / 0.9) ** 2)
    return 0.3 - 1e-4 * (energy - e_edge) + 2.0 * (step + pre)


def test_half_step_e0_ignores_an_intense_pre_edge_peak(cfg):
    e = np.arange(6900.0, 7150.0, 0.25)
    edge = edge_on_grid([EdgeSpectrum(e, _edge(e, 7000.0, peak=0.9))], cfg["xanes"])
    # The edge step is normalised over E0+20..60 eV, where the arctan is not yet at 1.
    assert edge.e0[0] == pytest.approx(7000.0, abs=0.5)
    assert edge.edge_step[0] == pytest.approx(2.0, rel=0.03)
    grid = energy_grid(cfg["xanes"])
    assert edge.norm.shape == (1, len(grid)) and grid[0] == -20 and grid[-1] == 60
    assert edge.norm[0, np.argmin(np.abs(grid - 0.0))] == pytest.approx(0.5, abs=0.02)
    assert edge.norm[0, np.argmin(np.abs(grid + 10.0))] > 0.8  # the pre-edge peak is kept
    # larch's own E0 (largest derivative of the raw mu) jumps to the peak's flank.
    find_e0 = edge_on_grid([EdgeSpectrum(e, _edge(e, 7000.0, peak=0.9))],
                           {**cfg["xanes"], "e0": "find_e0"})  # fmt: skip
    assert abs(find_e0.e0[0] - 6990.0) < 2.0


def test_derivative_features_are_the_gradient_on_the_grid(cfg):
    e = np.arange(6900.0, 7150.0, 0.25)
    edge = edge_on_grid([EdgeSpectrum(e, _edge(e, 7000.0)), EdgeSpectrum(e, _edge(e, 7010))],
                        cfg["xanes"])  # fmt: skip
    feats = edge_features(edge, cfg)
    assert set(feats) == {"xanes", "xanes_deriv", "xanes_channels"} == set(enabled_features(cfg))
    assert np.allclose(feats["xanes_deriv"], np.gradient(edge.norm, 0.5, axis=1), atol=1e-6)
    assert feats["xanes_channels"].shape == (2, len(energy_grid(cfg["xanes"])), 2)
    assert np.array_equal(feats["xanes_channels"][..., 0], feats["xanes"])
    # An arctan step of half-width 0.8 eV: the slope at E0 is 1/(pi*0.8) per eV.
    at_e0 = np.argmin(np.abs(energy_grid(cfg["xanes"])))
    assert feats["xanes_deriv"][0, at_e0] == pytest.approx(1 / (np.pi * 0.8), rel=0.1)
    grids = feature_grids(cfg)
    assert grids["xanes_channels"][1][0].tolist() == [0.0, 1.0]


def test_half_step_energy_refuses_a_spectrum_without_an_edge():
    e = np.linspace(0, 50, 101)
    with pytest.raises(ValueError, match="no edge"):
        half_step_energy(e, 0.9 * np.exp(-0.5 * ((e - 20) / 1.0) ** 2), 8.0)


def test_feff10_output_gives_a_normalised_edge_near_feffs_own_e0(cfg):
    """A real FEFF10 Cu K XANES (tests/data/feff/outputs): E0 near FEFF's Fermi level."""
    energy, mu, _, e0_feff = read_xmu_dat(DATA / "feff/outputs/feff10_cu_k_xanes/xmu.dat")
    edge = edge_on_grid([EdgeSpectrum(energy, mu, None, True)], cfg["xanes"])
    assert abs(edge.e0[0] - e0_feff) < 5.0
    grid = energy_grid(cfg["xanes"])
    post = (grid >= 20) & (grid <= energy[-1] - edge.e0[0])
    assert np.mean(edge.norm[0, post]) == pytest.approx(1.0, abs=0.02)
    assert np.all(edge.norm[0, grid < energy[0] - edge.e0[0]] == 0.0)  # no data: zero


def _measured(name: str, cfg: dict):
    spec = read_spectra(EXP / name)[0]
    return spec, edge_on_grid([EdgeSpectrum(spec.energy, spec.mu)], cfg["xanes"])


def test_measured_kmno4_e0_is_on_the_main_edge_not_the_pre_edge_peak(cfg):
    from larch.xafs import find_e0

    spec, edge = _measured("kmno4_rt.xdi", cfg)
    window = (spec.energy > 6530) & (spec.energy < 6550)
    pre_peak = spec.energy[window][np.argmax(spec.mu[window])]
    # The Mn(VII) pre-edge peak (~6543 eV, this scan's calibration puts it at 6541.7) is
    # where the derivative maximum lands; the main edge lies 10-15 eV above it.
    assert abs(find_e0(spec.energy, spec.mu) - pre_peak) < 2.0
    assert 8.0 < edge.e0[0] - pre_peak < 16.0
    grid = energy_grid(cfg["xanes"])
    pre = np.argmin(np.abs(grid - (pre_peak - edge.e0[0])))
    assert edge.norm[0, pre] > 0.5  # the intense tetrahedral pre-edge peak survives
    assert edge.norm[0, np.argmin(np.abs(grid))] == pytest.approx(0.5, abs=0.05)


def test_measured_edges_shift_with_the_manganese_oxidation_state(cfg):
    """Mn(VII) (KMnO4) edge ~10 eV above Mn(II) (MnO): the K-edge chemical shift."""
    _, mno = _measured("mno_rt.xdi", cfg)
    _, kmno4 = _measured("kmno4_rt.xdi", cfg)
    assert 6540 < mno.e0[0] < 6550
    assert 7.0 < kmno4.e0[0] - mno.e0[0] < 16.0
