"""Model inputs computed from chi(k) on the common grid.

``chi_k``   chi(k)·k^w on the k grid;
``ft_mag``, ``ft_re``, ``ft_im``  the Fourier transform chi(R), by larch's ``ftwindow``
            and ``xftf_fast`` (the same transform as ``xftf``), on R = 0 .. rmax.
"""

from __future__ import annotations

import numpy as np

from mlxas.spectra.grids import k_grid

__all__ = ["compute_features", "feature_grids", "ft_r_grid"]

NFFT = 2048


def ft_r_grid(k_cfg: dict, ft_cfg: dict) -> np.ndarray:
    rstep = np.pi / (NFFT * k_cfg["dk"])
    n = int(ft_cfg["rmax"] / rstep) + 1
    return rstep * np.arange(n)


def feature_grids(cfg: dict) -> dict[str, tuple[np.ndarray, str]]:
    """Grid (values, unit) of each enabled feature, keyed by feature name."""
    k = k_grid(cfg["k_grid"])
    grids: dict[str, tuple[np.ndarray, str]] = {}
    if cfg["chi_k"]:
        grids["chi_k"] = (k, "1/Angstrom")
    if cfg["ft"]["enabled"]:
        r = ft_r_grid(cfg["k_grid"], cfg["ft"])
        for name in ("ft_mag", "ft_re", "ft_im"):
            grids[name] = (r, "Angstrom")
    return grids


def compute_features(chi: np.ndarray, cfg: dict) -> dict[str, np.ndarray]:
    """Features of a batch of chi(k) spectra, ``chi[i]`` on the k grid of ``cfg``."""
    from larch.xafs import ftwindow, xftf_fast

    chi = np.atleast_2d(np.asarray(chi, dtype=np.float64))
    k = k_grid(cfg["k_grid"])
    if chi.shape[1] != len(k):
        raise ValueError(f"chi has {chi.shape[1]} points, the k grid has {len(k)}")
    w = cfg["kweight"]
    out: dict[str, np.ndarray] = {}
    if cfg["chi_k"]:
        out["chi_k"] = (chi * k**w).astype(np.float32)
    ft = cfg["ft"]
    if ft["enabled"]:
        # xftf_fast needs a grid that starts at k = 0: pad the leading points with zeros.
        n0 = round(k[0] / cfg["k_grid"]["dk"])
        kfull = cfg["k_grid"]["dk"] * np.arange(n0 + len(k))
        win = ftwindow(kfull, xmin=ft["kmin"], xmax=ft["kmax"], dx=ft["dk"], window=ft["window"])
        nr = len(ft_r_grid(cfg["k_grid"], ft))
        cr = np.empty((len(chi), nr), dtype=np.complex128)
        weighted = np.zeros((len(chi), len(kfull)))
        weighted[:, n0:] = chi * k**w
        for i, row in enumerate(weighted * win):
            cr[i] = xftf_fast(row, nfft=NFFT, kstep=cfg["k_grid"]["dk"])[:nr]
        out["ft_mag"] = np.abs(cr).astype(np.float32)
        out["ft_re"] = cr.real.astype(np.float32)
        out["ft_im"] = cr.imag.astype(np.float32)
    return out
