"""Model inputs computed from chi(k) (and mu(E)) with the settings of ``features``.

Every spectrum a model sees, simulated or measured, goes through :func:`compute_features`.
Features (each switched on in the config; all float32, one row per spectrum):

``chi_k``            chi(k)·k^w on the k grid (Å^-w);
``ft_mag``, ``ft_re``, ``ft_im``
                     |chi(R)|, Re and Im of larch's forward transform (``xftf``: window
                     ``ftwindow`` over ``ft.kmin … ft.kmax`` with sills ``ft.dk``, k-weight
                     w, NFFT = 2048) on R = 0 … ``ft.rmax`` (Å^-(w+1));
``wavelet_morlet``   |Morlet CWT| of chi(k)·k^w (PyWavelets), ``[n_k, n_r]`` map;
``wavelet_cauchy``   |Cauchy wavelet transform| of chi(k)·k^w (larch), same map grid;
``xanes``            normalised mu(E) on E − E0 = ``xanes.emin … emax`` (larch ``pre_edge``);
``mu``               mu(E) on the same grid, not normalised (``xanes.mu``);
``xanes_deriv``      d(normalised mu)/dE on the same grid (1/eV; ``xanes.derivative``);
``xanes_channels``   ``[n_e, 2]``: ``xanes`` and ``xanes_deriv`` as two channels of one
                     input (``xanes.derivative``).

:func:`edge_features` computes the last four from mu(E) alone, for engines and models
that have no chi(k) (FEFF10 in XANES mode).

The FT is computed for a whole batch with one window from ``ftwindow`` and
``xftf_fast`` per spectrum, which is exactly what ``xftf`` does for one spectrum
(the tests compare the two).
"""

from __future__ import annotations

import numpy as np

from mlxas.spectra.grids import (
    NFFT,
    energy_grid,
    ft_r_grid,
    k_grid,
    wavelet_k_grid,
    wavelet_r_grid,
)
from mlxas.spectra.xanes import EdgeGrid

__all__ = [
    "FeatureGrid",
    "compute_features",
    "edge_features",
    "enabled_features",
    "feature_grids",
    "feature_units",
    "fourier_transform",
    "ft_r_grid",
]

#: (axis values, unit) of a 1-D feature; a 2-D feature has two of them, for its two axes.
FeatureGrid = tuple[np.ndarray, str]


def enabled_features(cfg: dict) -> list[str]:
    """Names of the features switched on in ``cfg``, in a fixed order."""
    names = []
    if cfg["chi_k"]:
        names.append("chi_k")
    if cfg["ft"]["enabled"]:
        names += ["ft_mag", "ft_re", "ft_im"]
    for kind in ("morlet", "cauchy"):
        if cfg["wavelet"][kind]:
            names.append(f"wavelet_{kind}")
    if cfg["xanes"]["enabled"]:
        names.append("xanes")
        if cfg["xanes"].get("mu"):
            names.append("mu")
        if cfg["xanes"].get("derivative"):
            names += ["xanes_deriv", "xanes_channels"]
    return names


def feature_grids(cfg: dict) -> dict[str, FeatureGrid | tuple[FeatureGrid, FeatureGrid]]:
    """Axis (values, unit) of each enabled feature; a 2-D map has a pair (k axis, R axis)."""
    out: dict = {}
    for name in enabled_features(cfg):
        if name == "chi_k":
            out[name] = (k_grid(cfg["k_grid"]), "1/Angstrom")
        elif name.startswith("ft_"):
            out[name] = (ft_r_grid(cfg["k_grid"], cfg["ft"]), "Angstrom")
        elif name.startswith("wavelet_"):
            w = cfg["wavelet"]
            out[name] = ((wavelet_k_grid(w), "1/Angstrom"), (wavelet_r_grid(w), "Angstrom"))
        elif name == "xanes_channels":
            # channel 0: normalised mu, channel 1: its derivative
            out[name] = ((energy_grid(cfg["xanes"]), "eV"), (np.arange(2.0), "channel"))
        else:
            out[name] = (energy_grid(cfg["xanes"]), "eV")
    return out


def feature_units(cfg: dict) -> dict[str, str]:
    """Unit of the values of each enabled feature."""
    w = cfg["kweight"]
    units = {
        "chi_k": f"Angstrom^-{w}",
        "ft_mag": f"Angstrom^-{w + 1}",
        "ft_re": f"Angstrom^-{w + 1}",
        "ft_im": f"Angstrom^-{w + 1}",
        "wavelet_morlet": "arbitrary",
        "wavelet_cauchy": "arbitrary",
        "xanes": "normalised",
        "mu": "as mu(E) in the input",
        "xanes_deriv": "1/eV",
        "xanes_channels": "normalised; 1/eV",
    }
    return {n: units[n] for n in enabled_features(cfg)}


def _check_chi(chi: np.ndarray, k: np.ndarray) -> np.ndarray:
    chi = np.asarray(chi, dtype=np.float64)
    if chi.ndim == 1:
        chi = chi[None, :]
    if chi.ndim != 2 or chi.shape[1] != len(k):
        raise ValueError(
            f"chi must have one row per spectrum on the k grid ({len(k)} points), "
            f"got shape {chi.shape}"
        )
    if not np.all(np.isfinite(chi)):
        bad = np.nonzero(~np.all(np.isfinite(chi), axis=1))[0]
        raise ValueError(f"chi(k) contains NaN or inf (rows {bad[:5].tolist()})")
    return chi


def fourier_transform(chi: np.ndarray, k: np.ndarray, kweight: int, k_cfg: dict, ft: dict):
    """Complex chi(R) on :func:`ft_r_grid` of unweighted chi(k) rows, as larch's ``xftf``.

    ``xftf`` interpolates chi onto k = 0, dk, ... (holding the first value below the
    data), weights it by k^w and builds the window on a grid reaching ``kmax + dk``;
    the same is done here once for the whole batch.
    """
    from mlxas.spectra.xafsmath import ftwindow, xftf_fast  # larch's, without importing larch

    dk = k_cfg["dk"]
    n0 = round(k[0] / dk)
    kfull = dk * np.arange(n0 + len(k))
    kwin = dk * np.arange(int(1.01 + max(kfull[-1], ft["kmax"] + ft["dk"]) / dk))
    win = ftwindow(kwin, xmin=ft["kmin"], xmax=ft["kmax"], dx=ft["dk"], window=ft["window"])
    win = win[: len(kfull)]
    nr = len(ft_r_grid(k_cfg, ft))
    weighted = np.empty((len(chi), len(kfull)))
    weighted[:, n0:] = chi
    weighted[:, :n0] = chi[:, :1]
    weighted *= kfull**kweight * win
    out = np.empty((len(chi), nr), dtype=np.complex128)
    for i, row in enumerate(weighted):
        out[i] = xftf_fast(row, nfft=NFFT, kstep=dk)[:nr]
    return out


def compute_features(
    chi: np.ndarray, cfg: dict, edge: EdgeGrid | None = None
) -> dict[str, np.ndarray]:
    """Features of a batch of spectra.

    ``chi``: unweighted chi(k), one row per spectrum on the k grid of ``cfg["k_grid"]``.
    ``edge``: mu(E) on the energy grid (from :func:`mlxas.spectra.xanes.edge_on_grid`),
    needed only when ``cfg["xanes"]["enabled"]``.  Returns ``{name: float32 array}``.
    """
    k = k_grid(cfg["k_grid"])
    chi = _check_chi(chi, k)
    w = cfg["kweight"]
    chi_w = chi * k**w
    out: dict[str, np.ndarray] = {}
    if cfg["chi_k"]:
        out["chi_k"] = chi_w.astype(np.float32)
    if cfg["ft"]["enabled"]:
        chir = fourier_transform(chi, k, w, cfg["k_grid"], cfg["ft"])
        out["ft_mag"] = np.abs(chir).astype(np.float32)
        out["ft_re"] = chir.real.astype(np.float32)
        out["ft_im"] = chir.imag.astype(np.float32)
    if cfg["wavelet"]["morlet"]:
        from mlxas.spectra.wavelets import morlet_maps

        out["wavelet_morlet"] = morlet_maps(chi_w, k, cfg["wavelet"])
    if cfg["wavelet"]["cauchy"]:
        from mlxas.spectra.wavelets import cauchy_maps

        out["wavelet_cauchy"] = cauchy_maps(chi_w, k, cfg["wavelet"])
    if cfg["xanes"]["enabled"]:
        if edge is None:
            raise ValueError("features.xanes is enabled but no mu(E) was given")
        if len(edge) != len(chi):
            raise ValueError(f"{len(edge)} mu(E) spectra for {len(chi)} chi(k) spectra")
        out.update(edge_features(edge, cfg))
    return out


def edge_features(edge: EdgeGrid, cfg: dict) -> dict[str, np.ndarray]:
    """The enabled features of mu(E) on the energy grid
    (:data:`~mlxas.spectra.input_names.EDGE_INPUTS`)."""
    out = {"xanes": np.asarray(edge.norm, dtype=np.float32)}
    xcfg = cfg["xanes"]
    if xcfg.get("mu"):
        out["mu"] = np.asarray(edge.mu, dtype=np.float32)
    if xcfg.get("derivative"):
        norm = np.asarray(edge.norm, dtype=np.float64)
        deriv = np.gradient(norm, float(xcfg["de"]), axis=1) if norm.shape[1] > 1 else norm * 0
        out["xanes_deriv"] = deriv.astype(np.float32)
        out["xanes_channels"] = np.stack([norm, deriv], axis=-1).astype(np.float32)
    return out
