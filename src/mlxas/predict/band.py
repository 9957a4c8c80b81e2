"""The band of the training spectra, for drawing a measured spectrum against it.

Written at training time into the model directory as ``train_band.npz`` by
:func:`write_train_band` and read by ``mlxas predict --plot`` (:mod:`mlxas.predict.plots`).
It holds, per point of the model's k grid and of its R grid, quantiles over the training
spectra of k^w·chi(k) and of |chi(R)|, both computed from the training split's unweighted
chi(k) with the model's own feature settings (k grid, k-weight, FT window) by
:func:`mlxas.spectra.features.compute_features`, whatever feature the model reads.

``train_band.npz`` (numpy ``savez``, no pickles):

=============  ==========  =====================================================
key            shape       content
=============  ==========  =====================================================
``version``    ()          layout version (1)
``quantiles``  (q,)        quantile levels, 0.05 0.25 0.5 0.75 0.95
``k``          (nk,)       k grid, Å⁻¹
``chi_k``      (q, nk)     quantiles of k^w·chi(k), Å^-w
``r``          (nr,)       R grid of the Fourier transform, Å
``chir_mag``   (q, nr)     quantiles of |chi(R)|, Å^-(w+1)
``kweight``    ()          w
``n_train``    ()          training spectra used (at most :data:`MAX_SPECTRA`)
=============  ==========  =====================================================
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BAND_FILE",
    "TrainBand",
    "chi_views",
    "read_train_band",
    "training_band",
    "write_train_band",
]

BAND_FILE = "train_band.npz"
VERSION = 1
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: Quantiles of more spectra than this come from a seeded random subset of this size.
MAX_SPECTRA = 20_000


@dataclass(frozen=True)
class TrainBand:
    """Quantiles of the training spectra (see the module docstring for units)."""

    quantiles: np.ndarray
    k: np.ndarray
    chi_k: np.ndarray
    r: np.ndarray
    chir_mag: np.ndarray
    kweight: float
    n_train: int

    def level(self, q: float) -> int:
        """Row of quantile level ``q``."""
        i = int(np.argmin(np.abs(self.quantiles - q)))
        if abs(self.quantiles[i] - q) > 1e-9:
            raise KeyError(f"train band has no quantile {q}")
        return i


def _view_features(features_cfg: dict) -> dict:
    """The model's feature settings with chi(k)·k^w and the FT switched on, nothing else."""
    cfg = copy.deepcopy(features_cfg)
    cfg["chi_k"] = True
    cfg["ft"]["enabled"] = True
    cfg.setdefault("wavelet", {}).update(morlet=False, cauchy=False)
    cfg.setdefault("xanes", {})["enabled"] = False
    return cfg


def chi_views(chi: np.ndarray, features_cfg: dict) -> tuple[np.ndarray, ...]:
    """(k, k^w·chi(k) rows, R, |chi(R)| rows) of unweighted chi(k) rows on the k grid of
    ``features_cfg``, with its k-weight and FT settings."""
    from mlxas.spectra.features import compute_features, feature_grids

    cfg = _view_features(features_cfg)
    feats = compute_features(np.atleast_2d(chi), cfg)
    grids = feature_grids(cfg)
    return grids["chi_k"][0], feats["chi_k"], grids["ft_mag"][0], feats["ft_mag"]


def training_band(
    chi_train: np.ndarray, features_cfg: dict, quantiles=QUANTILES, seed: int = 0
) -> TrainBand:
    """Quantiles of k^w·chi(k) and |chi(R)| over the training spectra ``chi_train``
    (unweighted chi(k), one row per spectrum on the k grid of ``features_cfg``)."""
    chi = np.asarray(chi_train, dtype=np.float64)
    if chi.ndim != 2 or len(chi) < 2:
        raise ValueError(f"training band needs at least 2 spectra, got shape {chi.shape}")
    if len(chi) > MAX_SPECTRA:
        rows = np.random.default_rng(seed).choice(len(chi), MAX_SPECTRA, replace=False)
        chi = chi[np.sort(rows)]
    k, chik, r, mag = chi_views(chi, features_cfg)
    q = np.asarray(quantiles, dtype=np.float64)
    return TrainBand(
        quantiles=q,
        k=np.asarray(k, dtype=np.float64),
        chi_k=np.quantile(chik, q, axis=0).astype(np.float32),
        r=np.asarray(r, dtype=np.float64),
        chir_mag=np.quantile(mag, q, axis=0).astype(np.float32),
        kweight=float(features_cfg["kweight"]),
        n_train=len(chi),
    )


def write_train_band(model_dir: str | Path, chi_train: np.ndarray, features_cfg: dict) -> Path:
    """Write ``train_band.npz`` into ``model_dir`` (atomically); returns its path.

    Call it at training time with the training split's unweighted chi(k) (the dataset's
    ``chi("train")``) and the model's complete feature settings (card
    ``preprocessing.features``).
    """
    band = training_band(chi_train, features_cfg)
    path = Path(model_dir) / BAND_FILE
    tmp = path.with_name(f".{BAND_FILE}.tmp-{os.getpid()}.npz")
    np.savez(
        tmp,
        version=np.int64(VERSION),
        quantiles=band.quantiles,
        k=band.k,
        chi_k=band.chi_k,
        r=band.r,
        chir_mag=band.chir_mag,
        kweight=np.float64(band.kweight),
        n_train=np.int64(band.n_train),
    )
    tmp.replace(path)
    return path


def read_train_band(model_dir: str | Path) -> TrainBand | None:
    """The band in ``model_dir``, or None when the model has none (older models)."""
    path = Path(model_dir) / BAND_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        version = int(z["version"])
        if version > VERSION:
            raise ValueError(f"{path}: band layout {version} is newer than this mlxas reads")
        return TrainBand(
            quantiles=z["quantiles"],
            k=z["k"],
            chi_k=z["chi_k"],
            r=z["r"],
            chir_mag=z["chir_mag"],
            kweight=float(z["kweight"]),
            n_train=int(z["n_train"]),
        )
