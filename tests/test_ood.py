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
    x, basis = low_rank(2000)
    stats = fit_ood(x[:1500], quantile=0.995)
    assert len(stats["variances"]) == 4  # the 4 real directions hold > 99% of the variance
    _, flags = ood_scores(x[1500:], stats)
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


def test_feff_spectra(tiny_experiment):
    from mlxas.dataset import open as open_dataset

    with open_dataset(tiny_experiment / "results" / "tiny" / "dataset.h5") as ds:
        x_train = ds.features("chi_k", "train")
        held_out = np.concatenate([ds.features("chi_k", "val"), ds.features("chi_k", "test")])
        features = ds.settings["features"]
    stats = fit_ood(x_train)
    assert json.loads(json.dumps(stats)) == stats

    scores, flags = ood_scores(held_out, stats)
    assert not flags.any(), scores  # other sites of the same clusters

    rng = np.random.default_rng(0)
    sample = held_out[:1]
    cases = {
        "noise": rng.normal(0.0, float(np.std(x_train)), sample.shape),
        "scaled x3": 3.0 * sample,
        "shifted 0.5/A": np.roll(sample, 10, axis=1),
        "Pt L3 foil": measured_chi_k("pt", features),
    }
    for name, x in cases.items():
        score, flag = ood_scores(x, stats)
        assert flag.all(), f"{name}: score {score}"
