"""FEFF-shaped chi(k) for the model benchmarks: the EXAFS equation on the default k grid.

Speed does not depend on the spectra's content, only on their shape, so the training and
inference benchmarks use spectra from the single-scattering EXAFS equation for an fcc
metal (first and second shell, Debye–Waller damping, a smooth backscattering envelope)
on the workflow's default grid: k = 0.05 … 20 Å⁻¹ in steps of 0.05 Å⁻¹, 400 points,
weighted by k², as ``chi_k`` is.  Labels are the first-shell CN and R.
"""

from __future__ import annotations

import numpy as np

from mlxas.spectra.grids import k_grid
from mlxas.workflow.config import apply_schema


def default_features() -> dict:
    """The schema's default ``features`` section (400-point k grid, k-weight 2)."""
    cfg = {
        "experiment": "bench",
        "absorber": "Au",
        "structures": [{"name": "s", "kind": "files", "paths": ["x.xyz"]}],
    }
    return apply_schema(cfg)["features"]


def spectra(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """(unweighted chi [n, 400], labels {cn, r}, features config, k grid)."""
    cfg = default_features()
    k = k_grid(cfg["k_grid"])
    rng = np.random.default_rng(seed)
    cn = rng.uniform(4.0, 12.0, n)
    r = rng.uniform(2.78, 2.90, n)  # Å, Au-Au first shell
    s2 = rng.uniform(0.006, 0.012, n)  # Å²
    kk = k[None, :]
    amp = np.exp(-(((kk - 6.0) / 7.0) ** 2))
    chi = np.zeros((n, len(k)))
    for scale_n, scale_r, scale_s in ((1.0, 1.0, 1.0), (0.5, np.sqrt(2), 1.3)):
        nn, rr, ss = scale_n * cn[:, None], scale_r * r[:, None], scale_s * s2[:, None]
        chi += nn * amp / (kk * rr**2) * np.exp(-2 * kk**2 * ss) * np.sin(2 * kk * rr - 0.4 * kk)
    return chi, {"cn": cn, "r": r}, cfg, k
