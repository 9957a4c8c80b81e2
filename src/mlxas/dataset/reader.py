"""Read access to ``dataset.h5``: numpy arrays or pandas frames for a split, and batches.

Examples are stored ordered by split, so a split is one contiguous slice of every array
(``/examples`` attribute ``split_offsets``); reading a split or streaming it in batches
reads whole compressed chunks in order.  Every read that meets a checksum or
decompression error raises :class:`DatasetError` naming the file and the array.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc filter of the wavelet maps)
import numpy as np
import pandas as pd

from mlxas.dataset.schema import SCHEMA_VERSION, SPLITS, DatasetError

__all__ = ["Dataset", "open"]

_OLDEST_READABLE = 3


class Dataset:
    """An opened dataset file.  Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such dataset file")
        try:
            self._h5: h5py.File | None = h5py.File(self.path, "r")
        except OSError as err:
            raise DatasetError(f"{self.path}: not a readable HDF5 file ({err})") from None
        self.attrs = dict(self._h5.attrs)
        ver = int(self.attrs.get("schema_version", -1))
        if ver > SCHEMA_VERSION:
            self.close()
            raise DatasetError(
                f"{self.path}: written with dataset schema {ver}, newer than this mlxas "
                f"understands ({SCHEMA_VERSION}); upgrade mlxas to read it"
            )
        if ver < 0 or "examples" not in self._h5:
            self.close()
            raise DatasetError(f"{self.path}: not an mlxas dataset (no schema_version)")
        if ver < _OLDEST_READABLE:
            self.close()
            raise DatasetError(
                f"{self.path}: dataset schema {ver} is older than this mlxas reads "
                f"({_OLDEST_READABLE}..{SCHEMA_VERSION}); gather it again"
            )
        self._offsets = np.asarray(self._h5["examples"].attrs["split_offsets"], dtype=np.int64)

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @property
    def h5(self) -> h5py.File:
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    # -- metadata -----------------------------------------------------------------------

    @property
    def hash(self) -> str:
        return str(self.attrs["dataset_hash"])

    @property
    def settings(self) -> dict:
        """The ``features``, ``averaging`` and ``split`` settings the file was built with."""
        return json.loads(self.attrs["settings"])

    @property
    def schema_version(self) -> int:
        return int(self.attrs["schema_version"])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {s: int(n) for s, n in zip(SPLITS, np.diff(self._offsets), strict=True)}

    def split_slice(self, split: str | None) -> slice:
        """Rows of ``split`` in every /examples array (all rows for None)."""
        if split is None:
            return slice(0, len(self))
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        i = SPLITS.index(split)
        return slice(int(self._offsets[i]), int(self._offsets[i + 1]))

    def feature_names(self) -> list[str]:
        return sorted(self.h5["examples/features"].keys())

    def label_names(self) -> list[str]:
        return sorted(self.h5["examples/labels"].keys())

    # -- arrays -------------------------------------------------------------------------

    def _dataset(self, key: str) -> h5py.Dataset:
        try:
            return self.h5[key]
        except KeyError:
            raise DatasetError(f"{self.path}: has no {key!r}") from None

    def read(self, key: str, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """Array ``key`` (a path inside the file), all rows or ``rows``."""
        ds = self._dataset(key)
        try:
            if rows is None:
                return ds[()]
            if isinstance(rows, slice):
                return ds[rows]
            rows = np.asarray(rows)
            order = np.argsort(rows, kind="stable")
            out = np.empty((len(rows), *ds.shape[1:]), dtype=ds.dtype)
            if len(rows):
                out[order] = ds[rows[order]]
            return out
        except OSError as err:
            raise DatasetError(
                f"{self.path}: array {key!r} is damaged: checksum or decompression failed ({err})"
            ) from None

    def _name(self, group: str, name: str) -> str:
        if name not in self.h5[f"examples/{group}"]:
            have = sorted(self.h5[f"examples/{group}"].keys())
            kind = group[:-1]
            raise DatasetError(f"{self.path}: no {kind} {name!r} (the file has {have})")
        return f"examples/{group}/{name}"

    def features(self, name: str, split: str | None = None) -> np.ndarray:
        """Feature ``name`` of the examples of ``split``: ``[n, ...]`` float32."""
        return self.read(self._name("features", name), self.split_slice(split))

    def labels(self, name: str, split: str | None = None) -> np.ndarray:
        """Label ``name`` (cn, r, cn_<El>, rdf) of the examples of ``split``."""
        return self.read(self._name("labels", name), self.split_slice(split))

    def chi(self, split: str | None = None) -> np.ndarray:
        """Unweighted chi(k) of the examples on the ``k`` grid (the mean for k-site examples)."""
        key = "sites/chi" if self.h5["examples"].attrs["same_as_sites"] else "examples/chi"
        return self.read(key, self.split_slice(split))

    def select(self, names: Sequence[str], split: str | None = None) -> dict[str, np.ndarray]:
        """Several features, labels or ``chi`` of one split at once, keyed by name."""
        out = {}
        for name in names:
            if name == "chi":
                out[name] = self.chi(split)
            elif name in self.h5["examples/features"]:
                out[name] = self.features(name, split)
            elif name in self.h5["examples/labels"]:
                out[name] = self.labels(name, split)
            else:
                raise DatasetError(
                    f"{self.path}: {name!r} is neither a feature {self.feature_names()} "
                    f"nor a label {self.label_names()}"
                )
        return out

    def _key(self, name: str) -> str:
        if name == "chi":
            return "sites/chi" if self.h5["examples"].attrs["same_as_sites"] else "examples/chi"
        for group in ("features", "labels"):
            if name in self.h5[f"examples/{group}"]:
                return f"examples/{group}/{name}"
        raise DatasetError(f"{self.path}: no feature or label {name!r}")

    def iter_batches(
        self,
        names: Sequence[str],
        split: str | None = "train",
        batch_size: int = 1024,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``{name: array}`` of features, labels or ``chi`` from one split.

        The split is read in windows of whole HDF5 chunks (at least one batch); with
        ``shuffle`` the windows are visited in a seeded random order and rows are
        shuffled within each window, so memory stays at one window per array.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        keys = {name: self._key(name) for name in names}
        if not keys:
            raise ValueError("iter_batches needs at least one feature or label name")
        sl = self.split_slice(split)
        # Windows follow the chunks of the widest array (the others have longer chunks of
        # small rows, which cost little to decompress more than once).
        widest = max(
            (self._dataset(k) for k in keys.values()),
            key=lambda d: int(np.prod(d.shape[1:], dtype=np.int64)) * d.dtype.itemsize,
        )
        rows_per_chunk = (widest.chunks or (1,))[0]
        window = max(batch_size, rows_per_chunk)
        window = -(-window // rows_per_chunk) * rows_per_chunk
        starts = list(range(sl.start, sl.stop, window))
        rng = np.random.default_rng(seed)
        if shuffle:
            rng.shuffle(starts)
        carry: dict[str, list[np.ndarray]] = {n: [] for n in keys}
        n_carry = 0
        for a in starts:
            b = min(a + window, sl.stop)
            block = {n: self.read(k, slice(a, b)) for n, k in keys.items()}
            if shuffle:
                perm = rng.permutation(b - a)
                block = {n: v[perm] for n, v in block.items()}
            for n, v in block.items():
                carry[n].append(v)
            n_carry += b - a
            while n_carry >= batch_size:
                merged = {n: np.concatenate(v) if len(v) > 1 else v[0] for n, v in carry.items()}
                yield {n: v[:batch_size] for n, v in merged.items()}
                carry = {n: [v[batch_size:]] for n, v in merged.items()}
                n_carry -= batch_size
        if n_carry and not drop_last:
            yield {n: np.concatenate(v) for n, v in carry.items()}

    # -- grids --------------------------------------------------------------------------

    def axes(self, name: str) -> dict[str, np.ndarray]:
        """Axes of a feature or label (``{"k": ...}``, ``{"wavelet_k": ..., "wavelet_r": ...}``)
        or of a grid name; units are in :meth:`unit`."""
        if name in self.h5["grids"]:
            return {name: self.read(f"grids/{name}")}
        key = self._key(name)
        names = json.loads(self.h5[key].attrs.get("axes", "[]"))
        return {a: self.read(f"grids/{a}") for a in names}

    def grid(self, name: str) -> np.ndarray:
        """Grid of a feature or label: its axis, or for a 2-D map an array ``[n_k, n_r, 2]``
        holding (k, R) of every pixel."""
        axes = list(self.axes(name).values())
        if len(axes) == 1:
            return axes[0]
        if not axes:
            raise DatasetError(f"{self.path}: {name!r} has no grid")
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def unit(self, name: str) -> str:
        """Unit of a grid, feature or label (as stored in its ``unit`` attribute)."""
        key = f"grids/{name}" if name in self.h5["grids"] else self._key(name)
        return str(self.h5[key].attrs.get("unit", ""))

    def classes(self, name: str) -> tuple[str, ...] | None:
        """Class names of a categorical label (its values are codes into them), or None
        for a value label."""
        found = self.h5[self._name("labels", name)].attrs.get("classes")
        return None if found is None else tuple(json.loads(found))

    # -- tables -------------------------------------------------------------------------

    def sites(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per gathered site: ids, provenance, split, scalar labels."""
        g = self.h5["sites"]
        out = {}
        wanted = set(columns) if columns is not None else None
        for name, ds in g.items():
            if isinstance(ds, h5py.Dataset) and ds.ndim == 1 and (wanted is None or name in wanted):
                out[name] = self.read(f"sites/{name}")
        for name, ds in g["labels"].items():
            if ds.ndim == 1 and (wanted is None or name in wanted):
                out[name] = self.read(f"sites/labels/{name}")
        for name in g.get("scalars", {}):
            if wanted is None or name in wanted:
                out[name] = self.read(f"sites/scalars/{name}")
        df = pd.DataFrame({n: _decode(v) for n, v in out.items()})
        if "split" in df:
            df["split"] = np.asarray(SPLITS, dtype=object)[df["split"].to_numpy()]
        return df

    def frame(self, split: str | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per example: split, group, averaging group, member site ids, scalar
        labels; for single-site examples also the site's provenance columns."""
        sl = self.split_slice(split)
        members = self.read("examples/members", sl)
        site_ids = _decode(self.read("sites/site_id"))
        df = pd.DataFrame(
            {
                "split": np.asarray(SPLITS, dtype=object)[self.read("examples/split", sl)],
                "group": _decode(self.read("examples/group", sl)),
                "avg_group": _decode(self.read("examples/avg_group", sl)),
                "site_ids": [",".join(site_ids[m]) for m in members],
            }
        )
        for name, ds in self.h5["examples/labels"].items():
            if ds.ndim == 1:
                df[name] = self.read(f"examples/labels/{name}", sl)
        if self.h5["examples"].attrs["same_as_sites"]:
            for name in ("structure_id", "source", "name", "frame", "site_index", "multiplicity"):
                df[name] = _decode(self.read(f"sites/{name}", sl))
            df["site_id"] = df["site_ids"]
        if columns is not None:
            df = df[list(columns)]
        return df

    def failures(self) -> pd.DataFrame:
        """Sites and structures that are not in the dataset: stage, reason, detail."""
        g = self.h5["failures"]
        return pd.DataFrame({c: _decode(self.read(f"failures/{c}")) for c in g})

    # -- integrity ----------------------------------------------------------------------

    def verify(self) -> None:
        """Read every array once, chunk by chunk, so that checksum errors surface here."""
        keys: list[str] = []
        self.h5.visititems(lambda n, o: keys.append(n) if isinstance(o, h5py.Dataset) else None)
        for key in keys:
            ds = self.h5[key]
            step = ds.chunks[0] * 16 if ds.chunks else max(len(ds), 1)
            for a in range(0, max(len(ds), 1) if ds.shape else 1, step):
                if ds.shape:
                    self.read(key, slice(a, a + step))
                else:
                    self.read(key)


def _decode(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "SO":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], object)
    return values


def open(path: str | Path) -> Dataset:
    """Open a dataset for reading; refuses newer schemas, non-mlxas files and damage on read."""
    return Dataset(path)
