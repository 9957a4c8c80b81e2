"""A small XANES geometry forest trained by the real trainer, for the XANES tests.

``tests/data/xanes/geometry_small.h5`` holds FEFF10 K-edge XANES of Ti–Zn oxides from
``config/experiments/xanes_geometry_small.yaml`` (tests/data/xanes/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlxas.models.spec import ModelSpec
from mlxas.models.train import train

ROOT = Path(__file__).resolve().parents[1]
XANES_DATASET = ROOT / "tests/data/xanes/geometry_small.h5"


def train_small_forest(store: Path, **extra: Any) -> Path:
    """The config's random forest entry with 40 trees (the tests need a model, not a good
    one), plus ``extra`` entry keys (e.g. ``augment``); returns the model folder."""
    spec = ModelSpec.from_dict(
        {
            "name": "random_forest",
            "kind": "random_forest",
            "input": "xanes_channels",
            "targets": ["geometry", "cn", "r", "oxidation_state"],
            "params": {"n_estimators": 40, "class_weight": "balanced"},
            **extra,
        }
    )
    return train(XANES_DATASET, spec, store, threads=1, verbose=0)[2]
