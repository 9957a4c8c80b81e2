"""Two-dimensional wavelet maps |W(k, R)| of k-weighted chi(k), as image inputs for CNNs.

Both maps are sampled on the same fixed grid, ``n_k`` points from ``kmin`` to ``kmax``
(Å⁻¹) times ``n_r`` points from ``rmin`` to ``rmax`` (Å), and stored as ``[n, n_k, n_r]``.

Morlet (PyWavelets)
    ``pywt.cwt`` with the complex Morlet wavelet ``cmor{B}-{C}`` applied along k to a
    batch of spectra at once.  A shell at distance R contributes sin(2kR + φ), a
    frequency of R/π cycles per Å⁻¹; each R of the map gets the scale at which the
    modulus for that frequency is largest.  For the √scale-normalised transform that is
    scale·f = (C + √(C² + 1/(π²B)))/2, slightly above the centre frequency C that
    ``pywt.frequency2scale`` would use (1.7 % for B = 1.5, C = 1).  Before the transform
    chi(k)·k^w is taken every ``kstep`` Å⁻¹ (a whole multiple of the k grid's step):
    that resolves R up to π/(2·kstep) and makes the transform several times faster.
    The wavelet's support is cut where its envelope falls below 1e-7.
Cauchy (larch)
    ``larch.xafs.cauchy_wavelet`` (Munoz, Argoul and Farges, Am. Mineral. 88, 694 (2003))
    spectrum by spectrum on the full k grid, its modulus then resampled bilinearly.
"""

from __future__ import annotations

import numpy as np

from mlxas.spectra.grids import linear_weights, wavelet_k_grid, wavelet_r_grid

__all__ = ["cauchy_maps", "morlet_maps", "morlet_scales"]

#: Spectra per call of ``pywt.cwt``: bounds the complex intermediate to ~30 MB.
_BLOCK = 256


def _stride(k: np.ndarray, kstep: float) -> int:
    dk = k[1] - k[0]
    stride = round(kstep / dk)
    if stride < 1 or abs(stride * dk - kstep) > 1e-6 * kstep:
        raise ValueError(
            f"features.wavelet.kstep = {kstep} must be a whole multiple of the k grid step {dk:g}"
        )
    return stride


def morlet_scales(r: np.ndarray, step: float, bandwidth: float, center: float) -> np.ndarray:
    """Scales (in samples of ``step`` Å⁻¹) whose Morlet modulus peaks for a shell at ``r`` Å."""
    u = 0.5 * (center + np.sqrt(center**2 + 1.0 / (np.pi**2 * bandwidth)))
    freq = np.asarray(r, dtype=float) / np.pi  # cycles per Å⁻¹ of sin(2kR)
    return u / (freq * step)


def morlet_maps(chi_w: np.ndarray, k: np.ndarray, wcfg: dict) -> np.ndarray:
    """|Morlet CWT| of k-weighted chi(k) rows ``chi_w[n, len(k)]`` → float32 ``[n, n_k, n_r]``."""
    import pywt

    stride = _stride(k, wcfg["kstep"])
    kk = k[::stride]
    step = kk[1] - kk[0]
    bandwidth = wcfg["morlet_bandwidth"]
    wavelet = pywt.ContinuousWavelet(f"cmor{bandwidth}-{wcfg['morlet_center']}")
    # pywt samples cmor on [-8, 8]; its envelope exp(-x²/B) is below 1e-7 beyond
    # √(B·ln 1e7) (4.9 for B = 1.5), and the shorter support makes the FFTs smaller.
    bound = min(8.0, float(np.sqrt(bandwidth * np.log(1e7))))
    wavelet.lower_bound, wavelet.upper_bound = -bound, bound
    r_map, k_map = wavelet_r_grid(wcfg), wavelet_k_grid(wcfg)
    scales = morlet_scales(r_map, step, wcfg["morlet_bandwidth"], wcfg["morlet_center"])
    i0, i1, t = linear_weights(kk, k_map)
    t = t.astype(np.float32)
    x = np.ascontiguousarray(chi_w[:, ::stride], dtype=np.float32)
    out = np.empty((len(x), len(k_map), len(r_map)), dtype=np.float32)
    for a in range(0, len(x), _BLOCK):
        coef, _ = pywt.cwt(
            x[a : a + _BLOCK], scales, wavelet, sampling_period=step, axis=-1, method="fft"
        )
        # coef: [n_r, block, len(kk)]; interpolate the modulus onto the map's k points.
        m = np.abs(coef[..., i0]) * (1 - t) + np.abs(coef[..., i1]) * t
        out[a : a + _BLOCK] = m.transpose(1, 2, 0)
    return out


def cauchy_maps(chi_w: np.ndarray, k: np.ndarray, wcfg: dict) -> np.ndarray:
    """|Cauchy wavelet transform| (larch) of k-weighted chi(k) rows → float32 ``[n, n_k, n_r]``."""
    from larch import Group
    from larch.xafs import cauchy_wavelet

    dk = k[1] - k[0]
    # larch places chi at k = 0, dk, 2dk, ...: pad the points below the grid's first k.
    n0 = round(k[0] / dk)
    kfull = dk * np.arange(n0 + len(k))
    r_map, k_map = wavelet_r_grid(wcfg), wavelet_k_grid(wcfg)
    ki0, ki1, kt = linear_weights(kfull, k_map)
    out = np.empty((len(chi_w), len(k_map), len(r_map)), dtype=np.float32)
    row = np.zeros(len(kfull))
    for i, chi_row in enumerate(chi_w):
        row[n0:] = chi_row
        g = Group()
        cauchy_wavelet(kfull, row, group=g, kweight=0, rmax_out=r_map[-1] + 0.5)
        r = np.asarray(g.wcauchy_r)
        ri0, ri1, rt = linear_weights(r, r_map)
        mag = np.asarray(g.wcauchy_mag)  # [len(r), len(kfull)]
        along_r = mag[ri0] * (1 - rt)[:, None] + mag[ri1] * rt[:, None]
        out[i] = (along_r[:, ki0] * (1 - kt) + along_r[:, ki1] * kt).T
    return out
