"""The band of the training spectra, for drawing a measured spectrum against it.

Computed at training time by :func:`view_band` and kept in the model folder's
``training_band.json`` under ``views`` (the file is bound to the card by its SHA-256, so
``mlxas predict`` verifies it with the rest of the folder).  Read back with
:func:`band_from_card` by ``mlxas predict --plot`` (:mod:`mlxas.predict.plots`).  It holds,
per point of the model's k grid and of its R grid, quantiles over the training spectra of
k^w·chi(k) and of |chi(R)|, both computed from the training split's unweighted chi(k) with
the model's own feature settings (k grid, k-weight, FT window) by
:func:`mlxas.spectra.features.compute_features`, whatever feature the model reads.

``views`` in ``training_band.json``:

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
from dataclasses import dataclass

import numpy as np

__all__ = ["TrainBand", "band_from_card", "band_to_json", "chi_views", "view_band"]

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


def view_band(
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


def band_to_json(band: TrainBand) -> dict:
    """``views`` of ``training_band.json`` (see the module docstring)."""
    return {
        "version": VERSION,
        "quantiles": band.quantiles.tolist(),
        "k": band.k.tolist(),
        "chi_k": band.chi_k.astype(float).tolist(),
        "r": band.r.tolist(),
        "chir_mag": band.chir_mag.astype(float).tolist(),
        "kweight": band.kweight,
        "n_train": band.n_train,
    }


def band_from_card(card: dict) -> TrainBand | None:
    """The band of a loaded model's card (``card["training_band"]["views"]``, verified
    with the folder by :func:`mlxas.models.load_model`), or None when the model has none
    (a model trained without chi(k))."""
    views = (card.get("training_band") or {}).get("views")
    if not views:
        return None
    if int(views["version"]) > VERSION:
        raise ValueError(f"band layout {views['version']} is newer than this mlxas reads")
    return TrainBand(
        quantiles=np.asarray(views["quantiles"], dtype=np.float64),
        k=np.asarray(views["k"], dtype=np.float64),
        chi_k=np.asarray(views["chi_k"], dtype=np.float32),
        r=np.asarray(views["r"], dtype=np.float64),
        chir_mag=np.asarray(views["chir_mag"], dtype=np.float32),
        kweight=float(views["kweight"]),
        n_train=int(views["n_train"]),
    )
