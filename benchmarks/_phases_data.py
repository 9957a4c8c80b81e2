"""Shared data of the phase benchmarks: crystals from ``_phases_crystals.py`` chunks,
reflection settings per resolution, and cached model arrays.

    benchmarks/work/phases/crystals_train/s0_*.extxyz   training crystals (seed 0)
    benchmarks/work/phases/crystals_test/s1_*.extxyz    held-out test crystals (seed 1)
    benchmarks/work/phases/arrays_<split>_d<d_min>.npz  cached engine output per setting
"""

from __future__ import annotations

# isort: off
import mlxas  # noqa: F401  (first: loads cctbx's C++ runtime before scipy/pandas)

# isort: on
import math
from pathlib import Path

import numpy as np
from ase.io import read

from mlxas.phases.crystals import CrystalSettings
from mlxas.phases.dataset import make_arrays, test_crystals
from mlxas.phases.reflections import ReflectionSettings

WORK = Path(__file__).resolve().parent / "work" / "phases"
RESOLUTIONS = (1.0, 1.5, 2.0)
MAX_EDGE = CrystalSettings().max_edge


def settings_for(d_min: float) -> ReflectionSettings:
    """The index box that holds every reflection to ``d_min`` of cells up to MAX_EDGE."""
    return ReflectionSettings(d_min=d_min, index_max=math.ceil(MAX_EDGE / d_min - 1e-9))


def crystals(split: str, limit: int | None = None) -> list:
    """Crystals of finished chunks, in index order (``split``: train or test)."""
    out = []
    for path in sorted((WORK / f"crystals_{split}").glob("s*_[0-9][0-9][0-9][0-9][0-9].extxyz")):
        out.extend(read(path, ":"))
        if limit is not None and len(out) >= limit:
            break
    return out[:limit] if limit is not None else out


def arrays(split: str, d_min: float, limit: int | None = None) -> dict[str, np.ndarray]:
    """Model arrays of a split at one resolution, cached in an npz per (split, d_min,
    number of crystals)."""
    atoms = crystals(split, limit)
    cache = WORK / f"arrays_{split}_d{d_min:.1f}_n{len(atoms)}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return dict(z)
    a = make_arrays(settings_for(d_min), atoms)
    out = {
        "e_value": a.e_value,
        "amplitude": a.amplitude,
        "mask": a.mask,
        "sign": a.sign,
        "hkl": a.hkl,
        "names": np.array(a.names),
        "n_failed": np.array(len(a.failures)),
    }
    np.savez(cache, **out)
    return out


def test_set(d_min: float, limit: int):
    """``(TestCrystal list, arrays)`` of the first ``limit`` test crystals."""
    return test_crystals(settings_for(d_min), crystals("test", limit))
