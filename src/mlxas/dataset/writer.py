"""Writing ``dataset.h5``: compressed, checksummed arrays streamed in split order.

:func:`write_dataset` writes one file from a gather plan (:class:`GatherPlan`: which
items, in which split, forming which examples) and the per-chunk cache entries.  Per-item
arrays are streamed chunk by chunk, so memory stays bounded by one chunk plus write
buffers; with k-site averaging the averaged signals and their model inputs are computed
in blocks, in worker processes.  Layout: ``docs/dataset.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from mlxas.dataset.cache import ChunkSummary, read_cached
from mlxas.dataset.schema import (
    FAILURE_COLUMNS,
    SITE_INT_COLUMNS,
    SITE_STR_COLUMNS,
    SPLITS,
    chunk_rows,
    filters,
)
from mlxas.dataset.settings import DatasetSettings
from mlxas.dataset.splitting import average_labels
from mlxas.engines.base import Axis, SignalEngine

__all__ = ["GatherPlan", "write_dataset"]

#: Examples per block when features of averaged examples are computed.
_EXAMPLE_BLOCK = 2048
#: Bytes buffered per output array and split before a write.
_FLUSH_BYTES = 16 << 20


@dataclass
class GatherPlan:
    """What goes into the file, decided before anything is written."""

    table: pd.DataFrame  # successful items with their site rows and labels, split order
    pos: np.ndarray  # output row of the i-th successful item in chunk order
    split: np.ndarray  # split of each output item
    members: np.ndarray  # [n_examples, k] output item rows
    weights: np.ndarray  # [n_examples, k]
    failures: list[dict]
    labels: dict[str, np.ndarray]  # target label -> [n_items] or [n_items, m]
    #: target label -> {unit, grid: {values, unit[, name]} | None[, classes]}
    label_meta: dict[str, dict]

    @property
    def n_sites(self) -> int:
        return len(self.table)


def _str_array(values: Iterable) -> tuple[np.ndarray, object]:
    """UTF-8 fixed-length byte strings: compressible and checksummed, unlike vlen strings."""
    if hasattr(values, "to_numpy"):
        text = values.to_numpy(dtype=object)
    else:
        text = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=object)
    text = text.astype(str) if len(text) else np.zeros(0, dtype="U1")
    try:
        raw = text.astype("S")  # ids and hashes are ASCII: a fast conversion in C
    except UnicodeEncodeError:
        raw = np.array([t.encode() for t in text.tolist()])
    width = max(raw.dtype.itemsize, 1)
    dt = h5py.string_dtype("utf-8", width)
    return raw.astype(dt), dt


def _create(group: h5py.Group, name: str, shape: tuple, dtype, data=None, **attrs) -> h5py.Dataset:
    """A chunked, compressed, checksummed dataset of ``shape`` (rows first)."""
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    chunks = (chunk_rows(row_bytes, max(shape[0], 1)), *shape[1:])
    maxshape = (None, *shape[1:])
    ds = group.create_dataset(
        name, shape=shape, dtype=dtype, chunks=chunks, maxshape=maxshape, **filters(shape[1:])
    )
    if data is not None and len(data):
        ds[...] = data
    for key, value in attrs.items():
        ds.attrs[key] = value
    return ds


def _write_strings(group: h5py.Group, name: str, values: Iterable) -> None:
    arr, dt = _str_array(values)
    _create(group, name, arr.shape, dt, arr)


class _SplitStream:
    """Write rows into one dataset whose rows are ordered by split.

    Rows arrive chunk by chunk; within each split they arrive in output order, so each
    split is a sequential stream starting at its offset.  Rows are buffered per split
    and written in large contiguous slices.
    """

    def __init__(self, ds: h5py.Dataset, offsets: np.ndarray):
        self.ds = ds
        self.cursor = offsets[:-1].copy()
        self.end = offsets[1:].copy()
        self.buf: list[list[np.ndarray]] = [[] for _ in SPLITS]
        self.nbuf = np.zeros(len(SPLITS), dtype=np.int64)
        row_bytes = int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize
        self.flush_rows = max(1, _FLUSH_BYTES // max(1, row_bytes))

    def put(self, split: np.ndarray, rows: np.ndarray) -> None:
        for s in range(len(SPLITS)):
            sel = split == s
            if sel.any():
                self.buf[s].append(rows[sel])
                self.nbuf[s] += int(sel.sum())
                if self.nbuf[s] >= self.flush_rows:
                    self._flush(s)

    def _flush(self, s: int) -> None:
        if not self.nbuf[s]:
            return
        data = np.concatenate(self.buf[s])
        a = self.cursor[s]
        self.ds[a : a + len(data)] = data
        self.cursor[s] += len(data)
        self.buf[s], self.nbuf[s] = [], 0

    def close(self) -> None:
        for s in range(len(SPLITS)):
            self._flush(s)
        if np.any(self.cursor != self.end):
            raise RuntimeError(f"{self.ds.name}: rows written do not fill the dataset")


def _offsets(split: np.ndarray) -> np.ndarray:
    return np.searchsorted(split, np.arange(len(SPLITS) + 1)).astype(np.int64)


def _axes(engine: SignalEngine, features: Any) -> dict[str, tuple[Axis, ...]]:
    """The engine's axes per key, legacy ``(values, unit)`` pairs named after the key."""
    out = {}
    for key, value in engine.feature_axes(features).items():
        if len(value) == 2 and isinstance(value[1], str):
            out[key] = (Axis(key.replace("/", "_"), np.asarray(value[0]), value[1]),)
        else:
            out[key] = tuple(value)
    return out


class _Shapes:
    """Shapes, axes and units of the engine's arrays, from one featurized block."""

    def __init__(self, engine: SignalEngine, features: Any, sample: Mapping[str, np.ndarray]):
        self.axes = _axes(engine, features)
        self.units = dict(engine.feature_units(features))
        self.shape = {k.split("/", 1)[1] if k.startswith("features/") else k: v.shape[1:]
                      for k, v in sample.items()}  # fmt: skip

    def attrs(self, key: str) -> dict[str, Any]:
        axes = self.axes.get(key, ())
        return {"unit": self.units.get(key, ""), "axes": json.dumps([a.name for a in axes])}


def write_dataset(
    tmp: Path,
    plan: GatherPlan,
    summaries: Sequence[ChunkSummary],
    settings: DatasetSettings,
    engine: SignalEngine,
    pool,
    workers: int,
    attrs: Mapping[str, Any],
    say: Callable[[str], None],
) -> None:
    """Write the whole dataset to ``tmp`` (the caller verifies and renames it)."""
    features = settings.features
    split, members = plan.split, plan.members
    n, n_ex, k_avg = plan.n_sites, len(members), members.shape[1]
    site_off, ex_off = _offsets(split), _offsets(split[members[:, 0]])
    signal_names = tuple(engine.signal_names(features))
    first = next((s.cache for s in summaries if s.n_ok), None)
    shapes = _Shapes(engine, features, read_cached(first) if first else {})
    feature_names = [k for k in shapes.shape if k not in signal_names]
    # Rows are not read back while writing; a large cache keeps partial chunks of the three
    # split streams in memory until they are complete.
    with h5py.File(tmp, "w", rdcc_nbytes=64 << 20, rdcc_nslots=10007, rdcc_w0=1.0) as f:
        f.attrs.update(attrs)
        f.attrs.update(n_sites=n, n_examples=n_ex)
        _write_grids(f.create_group("grids"), shapes, plan)
        s = f.create_group("sites")
        _write_site_table(s, plan, site_off)
        e = f.create_group("examples")
        e.attrs.update(split_offsets=ex_off, k=k_avg, same_as_sites=k_avg == 1)
        ef = e.create_group("features")
        streams = {}
        for key in signal_names:
            ds = _create(s, key, (n, *shapes.shape[key]), np.float32, **shapes.attrs(key))
            streams[key] = _SplitStream(ds, site_off)
        if k_avg == 1:
            for name in feature_names:
                ds = _create(ef, name, (n, *shapes.shape[name]), np.float32, **shapes.attrs(name))
                streams[f"features/{name}"] = _SplitStream(ds, site_off)
        keep = _stream_items(plan, summaries, streams, k_avg == 1, feature_names, say)
        for stream in streams.values():
            stream.close()
        # /examples: members, split, groups, labels and (k > 1) the averaged signals.
        _create(e, "members", members.shape, np.int64, members)
        _create(e, "weights", members.shape, np.float32, plan.weights)
        _create(e, "split", (n_ex,), np.int8, split[members[:, 0]])
        groups = plan.table["group"].to_numpy()[members]
        _write_strings(e, "group", ["+".join(dict.fromkeys(row)) for row in groups])
        _write_strings(e, "avg_group", plan.table["avg_pool"].to_numpy()[members[:, 0]])
        labels = plan.labels if k_avg == 1 else average_labels(plan.labels, members, plan.weights)
        _write_labels(e.create_group("labels"), labels, plan)
        if k_avg > 1:
            _write_averaged(e, ef, keep, plan, engine, features, shapes, pool, workers, say)
        fl = f.create_group("failures")
        fdf = pd.DataFrame(plan.failures, columns=list(FAILURE_COLUMNS)).fillna("")
        for col in FAILURE_COLUMNS:
            _write_strings(fl, col, fdf[col])
        f.create_group("split").attrs.update(
            seed=settings.split.seed,
            group_by=settings.split.group_by,
            fractions=np.asarray(settings.split.fractions, dtype=float),
            sizes=np.diff(ex_off),
            site_sizes=np.diff(site_off),
        )


def _write_grids(g: h5py.Group, shapes: _Shapes, plan: GatherPlan) -> None:
    seen: set[str] = set()
    for key in shapes.shape:
        for axis in shapes.axes.get(key, ()):
            if axis.name not in seen:
                seen.add(axis.name)
                ds = g.create_dataset(axis.name, data=np.asarray(axis.values, dtype=np.float64))
                ds.attrs.update(unit=axis.unit, description=axis.description)
    for name, meta in plan.label_meta.items():
        grid = meta.get("grid")
        # a grid named like the label, or (engine targets) an axis shared with features
        gname = grid.get("name", name) if grid is not None else name
        if grid is not None and gname not in seen:
            seen.add(gname)
            ds = g.create_dataset(gname, data=np.asarray(grid["values"], dtype=np.float64))
            ds.attrs.update(unit=grid["unit"], description=f"axis of the {name} label")


def _write_site_table(s: h5py.Group, plan: GatherPlan, site_off: np.ndarray) -> None:
    """/sites: ids, provenance, labels and engine scalars of every gathered item."""
    table, n = plan.table, plan.n_sites
    for col in SITE_STR_COLUMNS:
        _write_strings(s, col, table[col])
    for col in SITE_INT_COLUMNS:
        _create(s, col, (n,), np.int64, table[col].to_numpy(dtype=np.int64))
    _create(s, "split", (n,), np.int8, plan.split)
    _create(s, "seconds", (n,), np.float64, table["seconds"].to_numpy(float), unit="s")
    sc = s.create_group("scalars")
    for col in (c for c in table.columns if c.startswith("scalar:")):
        _create(sc, col[len("scalar:") :], (n,), np.float64, table[col].to_numpy(float))
    s.attrs["split_offsets"] = site_off
    _write_labels(s.create_group("labels"), plan.labels, plan)


def _stream_items(
    plan: GatherPlan,
    summaries: Sequence[ChunkSummary],
    streams: dict[str, _SplitStream],
    with_features: bool,
    feature_names: list[str],
    say: Callable[[str], None],
) -> dict[str, np.ndarray]:
    """Stream per-item arrays from the cache entries; with averaging, also keep the
    signals in memory (returned) for the averaged examples."""
    keep: dict[str, np.ndarray] = {}
    done = 0
    for i, summary in enumerate(summaries):
        m = summary.n_ok
        if m == 0:
            continue
        arrays = read_cached(summary.cache, feature_names if with_features else [])
        rows = plan.pos[done : done + m]
        rsplit = plan.split[rows]
        for key, stream in streams.items():
            stream.put(rsplit, arrays[key])
            if not with_features and not key.startswith("features/"):
                if key not in keep:
                    keep[key] = np.empty((plan.n_sites, *arrays[key].shape[1:]), np.float32)
                keep[key][rows] = arrays[key]
        done += m
        if (i + 1) % 50 == 0:
            say(f"written: {done}/{plan.n_sites} items")
    return keep


def _write_labels(group: h5py.Group, labels: Mapping[str, np.ndarray], plan: GatherPlan) -> None:
    for name, arr in labels.items():
        meta = plan.label_meta.get(name, {})
        ds = _create(group, name, arr.shape, arr.dtype, arr, unit=meta.get("unit", ""))
        if meta.get("grid") is not None:
            ds.attrs["axes"] = json.dumps([meta["grid"].get("name", name)])
        if meta.get("classes") is not None:
            # a categorical label: its values are codes into these class names
            ds.attrs["classes"] = json.dumps(list(meta["classes"]))


def _bounded_imap(pool, func: Callable, tasks: Iterable, window: int) -> Iterator:
    """Ordered results of ``func`` over ``tasks`` with at most ``window`` tasks in flight."""
    if not hasattr(pool, "apply_async"):
        yield from map(func, tasks)
        return
    pending = []
    for task in tasks:
        pending.append(pool.apply_async(func, (task,)))
        if len(pending) >= window:
            yield pending.pop(0).get()
    while pending:
        yield pending.pop(0).get()


def _averaged_features(task: tuple) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    signals, engine_name, settings, features = task
    from mlxas.engines.base import get_engine

    engine = get_engine(engine_name, settings)
    return signals, engine.featurize_signals(signals, features)


def _write_averaged(
    e: h5py.Group,
    ef: h5py.Group,
    keep: dict[str, np.ndarray],
    plan: GatherPlan,
    engine: SignalEngine,
    features: Any,
    shapes: _Shapes,
    pool,
    workers: int,
    say: Callable[[str], None],
) -> None:
    """Mean signals of each example and their model inputs, block by block."""
    members, weights = plan.members, plan.weights
    n_ex = len(members)
    sig_ds = {
        key: _create(e, key, (n_ex, *arr.shape[1:]), np.float32, **shapes.attrs(key))
        for key, arr in keep.items()
    }
    feat_ds: dict[str, h5py.Dataset] = {}
    settings = engine.settings_dict()

    def blocks() -> Iterator[tuple]:
        for a in range(0, n_ex, _EXAMPLE_BLOCK):
            mem, w = members[a : a + _EXAMPLE_BLOCK], weights[a : a + _EXAMPLE_BLOCK]
            means = {
                key: np.einsum("nk,nk...->n...", w, arr[mem].astype(np.float64)).astype(np.float32)
                for key, arr in keep.items()
            }
            yield means, engine.name, settings, features

    a = 0
    for means, feats in _bounded_imap(pool, _averaged_features, blocks(), 2 * max(1, workers)):
        b = a + len(next(iter(means.values())))
        for key, arr in means.items():
            sig_ds[key][a:b] = arr
        for name, arr in feats.items():
            if name not in feat_ds:
                feat_ds[name] = _create(
                    ef, name, (n_ex, *arr.shape[1:]), np.float32, **shapes.attrs(name)
                )
            feat_ds[name][a:b] = arr
        a = b
        say(f"averaged examples: {a}/{n_ex}")
