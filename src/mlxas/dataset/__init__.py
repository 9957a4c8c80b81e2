"""The HDF5 training set: gather chunk files and labels, split, average, read back.

``gather`` builds ``dataset.h5`` (:mod:`mlxas.dataset.build`, planned by
:mod:`mlxas.dataset.plan`, written by :mod:`mlxas.dataset.writer`), ``open`` reads it
(:mod:`mlxas.dataset.reader`).  The layout is in :mod:`mlxas.dataset.schema` and
``docs/dataset.md``; the stage's settings in :mod:`mlxas.dataset.settings`.
"""

from mlxas.settings import lazy_exports

# Submodules load on first use: the workflow reads the stage settings
# (mlxas.dataset.settings) without pandas and h5py.
_EXPORTS = {
    "GatherReport": "build",
    "gather": "build",
    "Dataset": "reader",
    "open": "reader",
    "SCHEMA_VERSION": "schema",
    "SPLITS": "schema",
    "DatasetError": "schema",
    "AveragingSettings": "settings",
    "DatasetSettings": "settings",
    "SplitSettings": "settings",
    "example_members": "splitting",
    "group_keys": "splitting",
    "split_groups": "splitting",
}

__all__ = [
    "SCHEMA_VERSION",
    "SPLITS",
    "AveragingSettings",
    "Dataset",
    "DatasetError",
    "DatasetSettings",
    "GatherReport",
    "SplitSettings",
    "example_members",
    "gather",
    "group_keys",
    "open",
    "split_groups",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
