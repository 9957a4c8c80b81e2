"""Spectral features against independent computations.

Synthetic single-shell chi(k) = A(k)·sin(2kR₀ + φ(k)) has its transform peak at R₀ less
the phase shift dφ/dk / 2; wavelet maps of a wave packet centred at (k₀, R₀) peak there;
the FT matches larch's own ``xftf``; XANES normalisation recovers a known edge step and
agrees with larch's ``pre_edge`` on a measured Cu foil.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _dataset_support import settings
from mlxas.spectra import EdgeSpectrum, compute_features, edge_on_grid, feature_grids, k_grid
from mlxas.spectra.grids import energy_grid, ft_r_grid, wavelet_k_grid, wavelet_r_grid
from mlxas.spectra.wavelets import cauchy_maps, morlet_maps
from mlxas.spectra.xanes import normalize_edge

EXPERIMENTAL = Path(__file__).resolve().parent / "data" / "experimental"


def cfg(**over) -> dict:
    return dict(settings(features=over).features)


def shell(k: np.ndarray, r0: float, phase: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """One shell at r0 Å with phase φ(k) = a + b·k, a Debye–Waller damping and 1/(kR²)."""
    a, b = phase
    return 8 * np.sin(2 * k * r0 + a + b * k) * np.exp(-2 * 0.005 * k**2) / (k * r0**2)


def test_chi_k_is_chi_times_k_to_the_w_on_the_config_grid():
    c = cfg(k_grid={"kmin": 0.05, "kmax": 20.0, "dk": 0.05})
    k = k_grid(c["k_grid"])
    assert len(k) == 400 and k[0] == pytest.approx(0.05) and k[-1] == pytest.approx(20.0)
    chi = np.random.default_rng(1).normal(size=(3, len(k)))
    for w in (0, 1, 2, 3):
        out = compute_features(chi, {**c, "kweight": w})["chi_k"]
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, (chi * k**w).astype(np.float32))


def test_ft_equals_larch_xftf_for_every_window():
    from larch import Group
    from larch.xafs import xftf

    k = k_grid(cfg()["k_grid"])
    chi = shell(k, 2.5)[None, :] + np.random.default_rng(0).normal(scale=0.01, size=(2, len(k)))
    for window, w, kmax in (("hanning", 2, 14.0), ("kaiser", 0, 12.0), ("sine", 3, 19.8)):
        c = cfg(kweight=w, ft={"window": window, "kmin": 3.0, "kmax": kmax, "dk": 1.0})
        out = compute_features(chi, c)
        for i in range(len(chi)):
            g = Group()
            xftf(k, chi[i], group=g, kmin=3.0, kmax=kmax, dk=1.0, window=window, kweight=w,
                 rmax_out=c["ft"]["rmax"], nfft=2048, kstep=0.05)  # fmt: skip
            np.testing.assert_allclose(g.r, ft_r_grid(c["k_grid"], c["ft"]))
            scale = g.chir_mag.max()
            for name, ref in (("ft_mag", g.chir_mag), ("ft_re", g.chir_re), ("ft_im", g.chir_im)):
                assert np.abs(out[name][i] - ref).max() < 1e-6 * scale, (window, name)


@pytest.mark.parametrize("r0", [1.8, 2.55, 3.6])
def test_ft_of_one_shell_peaks_at_r_less_the_phase_shift(r0):
    c = cfg(ft={"kmin": 2.0, "kmax": 16.0, "rmax": 8.0})
    k = k_grid(c["k_grid"])
    r = ft_r_grid(c["k_grid"], c["ft"])
    rstep = r[1] - r[0]
    # No phase: the peak is at r0.  A phase slope b shifts it by b/2 (sin(2k(r0 + b/2))).
    for b in (0.0, -0.8):
        mag = compute_features(shell(k, r0, (1.0, b)), c)["ft_mag"][0]
        peak = r[np.argmax(mag)]
        assert abs(peak - (r0 + b / 2)) <= rstep, (r0, b, peak)


def test_morlet_map_of_a_wave_packet_peaks_at_its_k_and_r():
    c = cfg(wavelet={"morlet": True})
    w = c["wavelet"]
    k = k_grid(c["k_grid"])
    kw, rw = wavelet_k_grid(w), wavelet_r_grid(w)
    for k0, r0 in ((6.0, 1.7), (8.0, 2.5), (10.0, 4.0)):
        chi = np.exp(-((k - k0) ** 2) / 8.0) * np.sin(2 * k * r0) / k**2
        m = compute_features(chi, c)["wavelet_morlet"][0]
        assert m.shape == (w["n_k"], w["n_r"])
        ik, ir = np.unravel_index(np.argmax(m), m.shape)
        assert abs(kw[ik] - k0) <= kw[1] - kw[0]
        assert abs(rw[ir] - r0) <= (rw[1] - rw[0]) / 2 + 1e-9
    # A pure sine is a horizontal ridge: the same R at every k inside the map.
    m = morlet_maps((np.sin(2 * k * 3.0))[None, :], k, w)[0]
    ridge = rw[np.argmax(m[8:-8], axis=1)]
    assert np.all(np.abs(ridge - 3.0) <= (rw[1] - rw[0]) / 2 + 1e-9)


def test_morlet_batch_equals_one_by_one_and_rejects_a_bad_step():
    c = cfg(wavelet={"morlet": True})
    k = k_grid(c["k_grid"])
    chi = np.random.default_rng(3).normal(size=(3, len(k))) * k**2
    batch = morlet_maps(chi, k, c["wavelet"])
    for i in range(3):
        np.testing.assert_allclose(batch[i], morlet_maps(chi[i : i + 1], k, c["wavelet"])[0])
    with pytest.raises(ValueError, match="whole multiple"):
        morlet_maps(chi, k, {**c["wavelet"], "kstep": 0.07})


def test_cauchy_map_of_a_wave_packet_peaks_at_its_k_and_r():
    c = cfg(wavelet={"cauchy": True})
    w = c["wavelet"]
    k = k_grid(c["k_grid"])
    kw, rw = wavelet_k_grid(w), wavelet_r_grid(w)
    chi = np.exp(-((k - 8.0) ** 2) / 8.0) * np.sin(2 * k * 2.5)
    m = cauchy_maps(chi[None, :], k, w)[0]
    ik, ir = np.unravel_index(np.argmax(m), m.shape)
    assert abs(kw[ik] - 8.0) <= kw[1] - kw[0]
    assert abs(rw[ir] - 2.5) <= (rw[1] - rw[0]) / 2 + 1e-9
    out = compute_features(chi, c)
    assert set(out) == {"chi_k", "ft_mag", "ft_re", "ft_im", "wavelet_cauchy"}


def synthetic_edge(step: float, e0: float = 9000.0) -> tuple[np.ndarray, ...]:
    """Linear pre-edge plus an arctan edge of height ``step`` at e0 with a slowly falling
    post-edge; returns energy, mu and the edge alone divided by the step."""
    e = np.arange(e0 - 150, e0 + 600, 0.5)
    x = e - e0
    pre = 0.3 + 2e-4 * x
    jump = (0.5 + np.arctan(x / 0.5) / np.pi) * (1 - 1e-4 * np.clip(x, 0, None))
    return e, pre + step * jump, jump


def test_xanes_normalisation_recovers_a_known_edge_step():
    c = cfg(xanes={"enabled": True, "mu": True, "pre1": -140.0, "pre2": -30.0, "norm1": 50.0,
                   "norm2": 590.0, "nnorm": 1})  # fmt: skip
    for step in (0.7, 2.5):
        e, mu, jump = synthetic_edge(step)
        e0, got, norm = normalize_edge(EdgeSpectrum(e, mu), c["xanes"])
        assert abs(e0 - 9000.0) < 1.0
        assert got == pytest.approx(step, rel=0.02)
        # normalised mu is the edge alone over its step: 0 before, ~1 after the edge (the
        # arctan tail under the pre-edge fit tilts the line a little far above the edge)
        near = (e > e0 - 100) & (e < e0 + 300)
        assert np.abs(norm - jump)[near].max() < 0.02
        assert np.abs(norm[e < e0 - 30]).max() < 0.02
        edge = edge_on_grid([EdgeSpectrum(e, mu)], c["xanes"])
        feats = compute_features(np.zeros((1, 400)), c, edge)
        grid = energy_grid(c["xanes"])
        assert feats["xanes"].shape == (1, len(grid))
        np.testing.assert_allclose(feats["xanes"][0], np.interp(grid, e - e0, norm), atol=1e-6)
        np.testing.assert_allclose(feats["mu"][0], np.interp(grid, e - e0, mu), rtol=1e-6)


def test_xanes_of_measured_cu_foil_matches_larch_pre_edge():
    from larch import Group
    from larch.io import read_xdi
    from larch.xafs import pre_edge

    data = read_xdi(str(EXPERIMENTAL / "cu_metal_rt.xdi"))
    energy, mu = np.asarray(data.energy), np.asarray(data.mutrans)
    c = cfg(xanes={"enabled": True})
    edge = edge_on_grid([EdgeSpectrum(energy, mu)], c["xanes"])
    g = Group()
    pre_edge(energy, mu, group=g)
    assert abs(edge.e0[0] - 8979) < 5  # Cu K edge
    assert edge.edge_step[0] == pytest.approx(g.edge_step, rel=1e-3)
    grid = energy_grid(c["xanes"])
    np.testing.assert_allclose(edge.norm[0], np.interp(grid, energy - g.e0, g.norm), atol=2e-3)


def test_switches_grids_and_bad_input():
    c = cfg(chi_k=False, ft={"enabled": False}, wavelet={"morlet": True})
    k = k_grid(c["k_grid"])
    out = compute_features(np.sin(2 * k * 2.5), c)
    assert set(out) == {"wavelet_morlet"}
    grids = feature_grids(cfg(wavelet={"morlet": True}, xanes={"enabled": True}))
    assert grids["chi_k"][1] == "1/Angstrom" and grids["ft_mag"][1] == "Angstrom"
    (kax, kunit), (rax, runit) = grids["wavelet_morlet"]
    assert (len(kax), len(rax), kunit, runit) == (64, 64, "1/Angstrom", "Angstrom")
    assert grids["xanes"][1] == "eV"
    with pytest.raises(ValueError, match="k grid"):
        compute_features(np.zeros((2, 10)), cfg())
    bad = np.zeros((2, len(k)))
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\[1\]"):
        compute_features(bad, cfg())
    with pytest.raises(ValueError, match="no mu"):
        compute_features(np.zeros((1, len(k))), cfg(xanes={"enabled": True}))
