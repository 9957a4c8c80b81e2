"""Out-of-distribution score: held-out inputs from the training distribution pass, inputs
unlike the training set (noise, another element's spectrum, scaled or shifted spectra) are
flagged.  Checked on Gaussian data with known structure and on the FEFF spectra of the
tiny workflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlxas.ood import fit_ood, ood_scores

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"


def low_rank(n: int, d: int = 60, rank: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, rank)))[0].T  # orthonormal rows
    z = rng.normal(size=(n, rank)) * np.array([5.0, 3.0, 2.0, 1.0])
    return z @ basis + 0.01 * rng.normal(size=(n, d)), basis


def test_gaussian_low_rank():
    x, basis = low_rank(800)
    stats = fit_ood(x[:600], quantile=0.995)
    assert len(stats["variances"]) == 4  # the 4 real directions hold > 99% of the variance
    _, flags = ood_scores(x[600:], stats)
    assert flags.mean() < 0.03  # held-out data of the same distribution: ~0.5% flagged
    centre = np.asarray(stats["mean"]) * stats["scale"]
    far_inside = centre + 40.0 * basis[0]  # inside the subspace, 8 sigma out: T²
    rng = np.random.default_rng(5)
    off = rng.normal(size=x.shape[1])
    off -= basis.T @ (basis @ off)
    off_plane = centre + 0.5 * off / np.linalg.norm(off)  # 0.5 off the subspace: Q
    scores, flags = ood_scores(np.vstack([far_inside, off_plane]), stats)
    assert flags.all() and (scores > 3).all()


def test_json_round_trip_and_bad_inputs():
    x, _ = low_rank(300)
    stats = fit_ood(x)
    again = json.loads(json.dumps(stats))
    np.testing.assert_allclose(ood_scores(x[:20], again)[0], ood_scores(x[:20], stats)[0])
    bad = x[:3].copy()
    bad[1, 5] = np.nan
    scores, flags = ood_scores(bad, stats)
    assert np.isinf(scores[1]) and flags[1] and not flags[[0, 2]].any()
    with pytest.raises(ValueError, match="60 features"):
        ood_scores(x[:, :10], stats)
    with pytest.raises(ValueError, match="at least 3"):
        fit_ood(x[:2])


def measured_chi_k(name: str, features: dict) -> np.ndarray:
    """chi(k)·k^w of a measured foil on the feature k grid (larch background removal)."""
    from mlxas.spectra.background import larch_background
    from mlxas.spectra.grids import interp_on_grid, k_grid
    from mlxas.spectra.measured import read_spectra

    (s,) = read_spectra(EXPERIMENTAL / f"{name}_metal_rt.xdi")
    k, chi, _, _ = larch_background(s.energy, s.mu)
    kq = k_grid(features["k_grid"])
    return (interp_on_grid(k, chi, kq) * kq ** features["kweight"])[None, :]


#: Sim-to-real augmentation as a model's ``augment`` section sets it: extra Debye-Waller
#: damping, amplitude S0², an E0 shift and noise (k²-weighted rms 0.05).
AUGMENT = {"sigma2": [0.0, 0.006], "s02": [0.75, 1.0], "e0_shift": [-3.0, 3.0],
           "noise": [0.05, 0.05]}  # fmt: skip


def augmented(chi: np.ndarray, k: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n measured-like variants (k²-weighted) of each FEFF chi(k), made by the training
    code's own augmentation (:func:`mlxas.spectra.augment.augment_chi`)."""
    from mlxas.spectra.augment import augment_chi

    rows = np.repeat(chi, n, axis=0)
    return augment_chi(rows, k, AUGMENT, np.random.default_rng(seed), kweight=2) * k**2


def test_feff_spectra(tiny_experiment):
    from mlxas.dataset import open as open_dataset
    from mlxas.spectra.grids import k_grid

    with open_dataset(tiny_experiment / "results" / "tiny" / "dataset.h5") as ds:
        x_train = ds.features("chi_k", "train")
        held_out = np.concatenate([ds.features("chi_k", "val"), ds.features("chi_k", "test")])
        chi_train = ds.chi("train")
        chi_held_out = np.concatenate([ds.chi("val"), ds.chi("test")])
        features = ds.settings["features"]
    assert features["kweight"] == 2
    rng = np.random.default_rng(0)

    # Clean FEFF spectra: other sites of the same clusters are in distribution.
    stats = fit_ood(x_train)
    assert json.loads(json.dumps(stats)) == stats
    scores, flags = ood_scores(held_out, stats)
    assert not flags.any(), scores
    sample = held_out[:1]
    for name, x in {
        "noise": rng.normal(0.0, float(np.std(x_train)), sample.shape),
        "scaled x3": 3.0 * sample,
        "shifted 0.5/A": np.roll(sample, 10, axis=1),
    }.items():
        score, flag = ood_scores(x, stats)
        assert flag.all(), f"{name}: score {score}"

    # A training set widened by measured-like variants (as sim-to-real augmentation does):
    # variants of other sites stay in distribution; measured spectra of other elements,
    # noise, scaled and shifted spectra do not.
    k = k_grid(features["k_grid"])
    stats = fit_ood(augmented(chi_train, k, 40, seed=1))
    variants = augmented(chi_held_out, k, 40, seed=2)
    _, flags = ood_scores(variants, stats)
    assert flags.mean() <= 0.05
    sample = variants[:1]
    for name, x in {
        "noise": rng.normal(0.0, float(np.std(variants)), sample.shape),
        "scaled x4": 4.0 * sample,
        "shifted 0.5/A": np.roll(sample, 10, axis=1),
        "Ni K foil": measured_chi_k("ni", features),
        "Pt L3 foil": measured_chi_k("pt", features),
    }.items():
        score, flag = ood_scores(x, stats)
        assert flag.all(), f"{name}: score {score}"
