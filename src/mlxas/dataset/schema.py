"""Layout constants of ``dataset.h5`` and the error raised for unusable files.

The full layout is described in ``docs/dataset.md``.  In short (schema version 3)::

    /                     attrs: schema_version, mlxas_version, dataset_hash, absorber,
                                 edge, engine, created, settings (JSON), labels (JSON),
                                 n_sites, n_examples
    /grids/<axis>         axis values, attrs unit, description
    /sites/...            one row per simulated item, ordered by split: ids, provenance,
                          the engine's signals (``chi``, ...), scalars/<name>, labels/<name>
    /examples/...         one row per training example (a site, or the mean of k sites),
                          ordered by split; attrs split_offsets, k, same_as_sites
    /failures/...         sites and structures that did not make it, with stage and reason
    /split                attrs seed, group_by, fractions, sizes
"""

from __future__ import annotations

__all__ = [
    "CHUNK_BYTES",
    "COMPRESSION",
    "FAILURE_COLUMNS",
    "SCHEMA_VERSION",
    "SITE_INT_COLUMNS",
    "SITE_STR_COLUMNS",
    "SPLITS",
    "DatasetError",
    "chunk_rows",
    "filters",
]

#: Version of the layout; readers refuse files with a larger number.  3: engine-blind
#: (signals and features named by the engine, ``settings_hash``, ``scalars/``).
SCHEMA_VERSION = 3

SPLITS = ("train", "val", "test")

#: Filters of the arrays: gzip level 1 (several times faster to write than the default
#: level 4 and within a few percent of its size for float spectra), byte shuffle, and a
#: fletcher32 checksum per chunk so that damage is detected on reading.
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True, "fletcher32": True}


def filters(row_shape: tuple[int, ...]) -> dict:
    """HDF5 filters for an array whose rows have ``row_shape``.

    Two-dimensional rows (the 64×64 wavelet maps, ~90 % of a dataset's bytes) use
    Blosc-LZ4 with byte shuffle from ``hdf5plugin`` (a dependency of xraylarch): about
    ten times faster than gzip at a similar ratio on float maps.  Reading them with
    plain h5py needs ``import hdf5plugin`` first; ``mlxas.dataset`` imports it.  Every
    array keeps its fletcher32 checksum.
    """
    if len(row_shape) >= 2:
        import hdf5plugin

        blosc = hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
        return {**dict(blosc), "fletcher32": True}
    return COMPRESSION


#: Target size of one HDF5 chunk in bytes (rows are grouped to about this size).
CHUNK_BYTES = 1 << 20

#: String columns of /sites, in order.
SITE_STR_COLUMNS = (
    "site_id",
    "structure_id",
    "source",
    "name",
    "element",
    "engine",
    "engine_version",
    "settings_hash",
    "input_hash",
    "group",
    "avg_pool",
)
#: Integer columns of /sites (-1: not applicable, e.g. the frame of a crystal).
SITE_INT_COLUMNS = ("frame", "site_index", "multiplicity")

FAILURE_COLUMNS = ("site_id", "structure_id", "source", "stage", "reason", "detail")


class DatasetError(ValueError):
    """A dataset that cannot be built or read; the message names the file and the reason."""


def chunk_rows(row_bytes: int, n_rows: int) -> int:
    """Rows per HDF5 chunk for rows of ``row_bytes`` bytes: about :data:`CHUNK_BYTES`."""
    return max(1, min(n_rows, CHUNK_BYTES // max(1, row_bytes)))
