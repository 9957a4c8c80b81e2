"""The HDF5 training set: gather FEFF chunks and labels, split, average, read back.

``gather`` builds ``dataset.h5`` (:mod:`mlxas.dataset.gather`), ``open`` reads it
(:mod:`mlxas.dataset.reader`).  The layout is in :mod:`mlxas.dataset.schema` and
``docs/dataset.md``.
"""

from mlxas.dataset.gather import GatherReport, gather
from mlxas.dataset.reader import Dataset, open
from mlxas.dataset.schema import SCHEMA_VERSION, SPLITS, DatasetError
from mlxas.dataset.splitting import example_members, group_keys, split_groups

__all__ = [
    "SCHEMA_VERSION",
    "SPLITS",
    "Dataset",
    "DatasetError",
    "GatherReport",
    "example_members",
    "gather",
    "group_keys",
    "open",
    "settings_from_config",
    "split_groups",
]


def settings_from_config(config: dict) -> dict:
    """The dataset settings of a validated config: ``features``, ``averaging``, ``split``."""
    return {
        "features": config["features"],
        "averaging": config["averaging"],
        "split": config["dataset"]["split"],
    }
