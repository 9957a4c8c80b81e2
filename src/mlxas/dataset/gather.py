"""Build ``dataset.h5`` from FEFF chunk files, site tables and the failure records.

Steps:

1. every chunk file becomes a cache entry (:mod:`mlxas.dataset.cache`), in parallel
   worker processes; entries from an earlier gather are reused, so only new spectra
   are computed;
2. the successful sites are joined with their labels, split by group and ordered by
   split; failed sites, refused inputs and rejected structures go to the failures table;
3. the file is written under a temporary name, streaming the arrays chunk by chunk
   (memory stays bounded by one chunk plus write buffers), reopened and checked, then
   renamed over ``out``.  A kill at any point leaves the previous ``out`` untouched.

With ``averaging.k`` > 1 the examples are means of k sites; their features are computed
from the mean chi(k) (and mean mu(E)) in blocks, again in worker processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from mlxas import __version__
from mlxas.dataset.cache import ChunkSummary, process_chunk, read_cached
from mlxas.dataset.schema import (
    FAILURE_COLUMNS,
    SCHEMA_VERSION,
    SITE_INT_COLUMNS,
    SITE_STR_COLUMNS,
    SPLITS,
    DatasetError,
    chunk_rows,
    filters,
)
from mlxas.dataset.splitting import average_labels, example_members, group_keys, split_groups
from mlxas.provenance import hash_json

__all__ = ["GatherReport", "gather"]

#: Examples per block when features of averaged examples are computed.
_EXAMPLE_BLOCK = 2048
#: Bytes buffered per output array and split before a write.
_FLUSH_BYTES = 16 << 20


@dataclass
class GatherReport:
    """Outcome of :func:`gather`; ``n_computed`` spectra were processed now, ``n_cached``
    came from the cache of an earlier gather."""

    path: Path
    dataset_hash: str
    n_sites: int
    n_examples: int
    n_failures: int
    n_computed: int
    n_cached: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.n_sites} sites, {self.n_examples} examples, "
            f"{self.n_failures} failures; {self.n_computed} spectra processed, "
            f"{self.n_cached} from cache; {self.seconds:.1f} s; hash {self.dataset_hash}"
        )


# --- small helpers -----------------------------------------------------------------------


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


class _SerialPool:
    """Stand-in for a process pool when one worker is asked for."""

    def imap(self, func: Callable, tasks: Iterable, chunksize: int = 1) -> Iterator:
        return map(func, tasks)

    def __enter__(self) -> _SerialPool:
        return self

    def __exit__(self, *exc) -> None:
        return None


def _pool(workers: int):
    if workers <= 1:
        return _SerialPool()
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method).Pool(workers)


def _bounded_imap(pool, func: Callable, tasks: Iterable, window: int) -> Iterator:
    """Ordered results of ``func`` over ``tasks`` with at most ``window`` tasks in flight."""
    if isinstance(pool, _SerialPool):
        yield from map(func, tasks)
        return
    pending = []
    for task in tasks:
        pending.append(pool.apply_async(func, (task,)))
        if len(pending) >= window:
            yield pending.pop(0).get()
    while pending:
        yield pending.pop(0).get()


def _example_features(task: tuple) -> dict[str, np.ndarray]:
    from mlxas.spectra.features import compute_features

    chi, edge, cfg = task
    return compute_features(chi, cfg, edge)


def _remove_stale_temps(out: Path) -> None:
    """Delete temporary files left by gathers that were killed (their process is gone)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
            if pid == os.getpid():
                raise ProcessLookupError
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass  # another user's live process


def _plain_strings(df: pd.DataFrame) -> pd.DataFrame:
    """String columns as numpy objects: ``isin`` and lookups on pandas' Arrow-backed
    strings convert every value to a scalar, ~100x slower for 100k sites."""
    text = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)]
    return df.astype({c: object for c in text}) if text else df


def _read_site_tables(site_files: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    import pyarrow.parquet as pq

    if not site_files:
        raise DatasetError("gather: no site tables given")
    frames = []
    for path in site_files:
        try:
            frames.append(pd.read_parquet(path))
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot read site table ({err})") from None
    sites = _plain_strings(pd.concat(frames, ignore_index=True))
    dup = sites["site_id"][sites["site_id"].duplicated()]
    if len(dup):
        raise DatasetError(f"{site_files}: site {dup.iloc[0]} appears in two site tables")
    meta = pq.read_schema(site_files[0]).metadata or {}
    if b"mlxas.rdf_grid" not in meta:
        raise DatasetError(f"{site_files[0]}: site table has no RDF grid in its metadata")
    rdf_grid = np.asarray(json.loads(meta[b"mlxas.rdf_grid"].decode()))
    return sites.set_index("site_id", drop=False), rdf_grid


def _input_tables(inputs_files: list[str]) -> pd.DataFrame:
    cols = ["site_id", "structure_id", "reason", "detail"]
    frames = []
    for path in inputs_files:
        try:
            df = pd.read_parquet(path, columns=cols)
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot read FEFF input table ({err})") from None
        df["source"] = Path(path).parent.name
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def _rejected(rejected_files: list[str]) -> list[dict]:
    rows = []
    for path in rejected_files:
        try:
            rej = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot read rejected-structure table ({err})") from None
        for row in rej.itertuples(index=False):
            frame = f" frame {row.frame}" if row.frame else ""
            rows.append(
                {
                    "site_id": "",
                    "structure_id": "",
                    "source": Path(path).parent.name,
                    "stage": "structures",
                    "reason": row.reason,
                    "detail": f"{row.origin}{frame}: {row.detail}",
                }
            )
    return rows


def _label_names(sites: pd.DataFrame) -> list[str]:
    return ["cn", "r", *sorted(c for c in sites.columns if c.startswith("cn_"))]


# --- gather ------------------------------------------------------------------------------


def gather(
    chunk_files: Iterable[str | Path],
    site_files: Iterable[str | Path],
    out: str | Path,
    settings: dict,
    rejected_files: Iterable[str | Path] = (),
    inputs_files: Iterable[str | Path] = (),
    absorber: str = "",
    edge: str = "",
    cache_dir: str | Path | None = None,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> GatherReport:
    """Build ``out`` from FEFF chunk files and site tables.

    ``settings`` = ``{"features": ..., "averaging": ..., "split": ...}`` (config sections,
    defaults filled in).  Failed FEFF sites are never gathered; they, refused inputs
    (``inputs_files``: inputs.parquet) and rejected structures (``rejected_files``) are
    listed in ``/failures``.  ``cache_dir`` (default ``<out stem>.cache`` beside ``out``)
    keeps per-chunk results for the next gather; ``workers`` processes compute features.
    """
    t0 = time.perf_counter()
    say = log or (lambda msg: None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir) if cache_dir else out.with_name(f"{out.stem}.cache")
    _remove_stale_temps(out)
    feat_cfg, avg_cfg, split_cfg = settings["features"], settings["averaging"], settings["split"]
    k_avg = int(avg_cfg["k"])
    chunks = sorted({str(c) for c in chunk_files})
    site_table, rdf_grid = _read_site_tables([str(p) for p in site_files])
    inputs = _input_tables([str(p) for p in inputs_files])
    tasks = [(c, str(cache_dir), feat_cfg, k_avg == 1) for c in chunks]

    with _pool(workers) as pool:
        # The pool is forked before the output file is opened: children never hold it.
        summaries: list[ChunkSummary] = []
        for i, summary in enumerate(pool.imap(process_chunk, tasks, chunksize=1)):
            summaries.append(summary)
            if (i + 1) % 50 == 0 or i + 1 == len(tasks):
                say(f"chunks processed: {i + 1}/{len(tasks)}")
        plan = _plan(summaries, site_table, inputs, split_cfg, avg_cfg)
        plan.failures.extend(_rejected([str(p) for p in rejected_files]))
        if plan.n_sites == 0:
            raise DatasetError(
                f"{out}: no successful FEFF spectrum to gather "
                f"({len(plan.failures)} failures, {len(chunks)} chunk files)"
            )
        dataset_hash = hash_json(
            {
                "inputs": sorted(plan.table["input_hash"]),
                "settings": settings,
                "schema": SCHEMA_VERSION,
            }
        )
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        try:
            _write(
                tmp,
                plan,
                summaries,
                settings,
                rdf_grid,
                pool,
                workers,
                attrs={
                    "schema_version": SCHEMA_VERSION,
                    "mlxas_version": __version__,
                    "dataset_hash": dataset_hash,
                    "absorber": absorber,
                    "edge": edge,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "settings": json.dumps(settings, sort_keys=True),
                },
                say=say,
            )
            say("verifying")
            from mlxas.dataset.reader import Dataset

            Dataset(tmp).verify()
            _fsync(tmp)
            tmp.replace(out)
            _fsync(out.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    used = {Path(s.cache).name for s in summaries}
    for entry in cache_dir.glob("*.h5"):
        if entry.name not in used:
            entry.unlink(missing_ok=True)
    n_computed = sum(s.n_ok for s in summaries if s.computed)
    return GatherReport(
        path=out,
        dataset_hash=dataset_hash,
        n_sites=plan.n_sites,
        n_examples=len(plan.members),
        n_failures=len(plan.failures),
        n_computed=n_computed,
        n_cached=sum(s.n_ok for s in summaries) - n_computed,
        seconds=time.perf_counter() - t0,
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Plan:
    table: pd.DataFrame  # successful sites, ordered by split
    pos: np.ndarray  # output row of the i-th successful site in chunk order
    split: np.ndarray  # split of each output site
    members: np.ndarray  # [n_examples, k] output site rows
    weights: np.ndarray  # [n_examples, k]
    failures: list[dict]
    label_names: list[str]

    @property
    def n_sites(self) -> int:
        return len(self.table)


def _plan(
    summaries: list[ChunkSummary],
    site_table: pd.DataFrame,
    inputs: pd.DataFrame,
    split_cfg: dict,
    avg_cfg: dict,
) -> _Plan:
    """Join results with labels, find failures, split, order and form the examples."""
    parts = []
    for s in summaries:
        df = s.sites.copy()
        df["chunk"] = s.chunk
        parts.append(df)
    from mlxas.dataset.cache import FLOATS, SCALARS

    empty = pd.DataFrame(columns=[*SCALARS, *FLOATS, "ok", "chunk"])
    results = pd.concat(parts, ignore_index=True) if parts else empty
    results = _plain_strings(results)
    inputs = _plain_strings(inputs)
    dup = results["site_id"].duplicated(keep=False)
    if dup.any():
        first = results[dup].iloc[0]["site_id"]
        where = sorted(results.loc[results["site_id"] == first, "chunk"])
        raise DatasetError(f"site {first} appears in more than one chunk file: {where}")
    refused = set(inputs.loc[inputs["reason"].fillna("") != "", "site_id"])
    failures = []
    for row in results[~results["ok"].astype(bool)].itertuples(index=False):
        known = row.site_id in site_table.index
        failures.append(
            {
                "site_id": row.site_id,
                "structure_id": site_table.at[row.site_id, "structure_id"] if known else "",
                "source": site_table.at[row.site_id, "source"] if known else "",
                "stage": "inputs" if row.site_id in refused else "feff",
                "reason": row.reason or "failed",
                "detail": row.detail,
            }
        )
    planned = inputs.loc[inputs["reason"].fillna("") == ""]
    for row in planned[~planned["site_id"].isin(results["site_id"])].itertuples(index=False):
        failures.append(
            {
                "site_id": row.site_id,
                "structure_id": row.structure_id,
                "source": row.source,
                "stage": "feff",
                "reason": "no_result",
                "detail": "none of the gathered chunk files holds this site",
            }
        )
    ok = results[results["ok"].astype(bool)].reset_index(drop=True)
    missing = ~ok["site_id"].isin(site_table.index)
    if missing.any():
        row = ok[missing].iloc[0]
        raise DatasetError(f"{row['chunk']}: site {row['site_id']} has no row in the site tables")
    labels = site_table.loc[ok["site_id"]].reset_index(drop=True)
    table = pd.concat([ok, labels.drop(columns=["site_id"])], axis=1)
    table["frame"] = table["frame"].astype("Int64").fillna(-1)
    groups = group_keys(table, split_cfg["group_by"])
    split = split_groups(groups, split_cfg["fractions"], split_cfg["seed"])
    order = np.argsort(split, kind="stable")
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    table = table.iloc[order].reset_index(drop=True)
    split = split[order]
    table["group"] = groups[order]
    table["avg_pool"] = (
        np.asarray(SPLITS, dtype=object)[split]
        if avg_cfg.get("within", "split") == "split"
        else table["group"].to_numpy()
    )
    table["split"] = split
    members = example_members(split, table["avg_pool"].to_numpy(), avg_cfg)
    if avg_cfg.get("weighted"):
        w = table["multiplicity"].to_numpy(dtype=float)[members]
    else:
        w = np.ones(members.shape)
    weights = w / w.sum(axis=1, keepdims=True) if len(w) else w
    return _Plan(table, pos, split, members, weights, failures, _label_names(table))


def _offsets(split: np.ndarray) -> np.ndarray:
    return np.searchsorted(split, np.arange(len(SPLITS) + 1)).astype(np.int64)


def _write(
    tmp: Path,
    plan: _Plan,
    summaries: list[ChunkSummary],
    settings: dict,
    rdf_grid: np.ndarray,
    pool,
    workers: int,
    attrs: dict,
    say: Callable[[str], None],
) -> None:
    from mlxas.spectra.features import enabled_features, feature_units
    from mlxas.spectra.grids import (
        energy_grid,
        ft_r_grid,
        k_grid,
        wavelet_k_grid,
        wavelet_r_grid,
    )

    cfg = settings["features"]
    table, split, members = plan.table, plan.split, plan.members
    n, n_ex, k_avg = plan.n_sites, len(members), members.shape[1]
    ex_split = split[members[:, 0]]
    site_off, ex_off = _offsets(split), _offsets(ex_split)
    kgrid = k_grid(cfg["k_grid"])
    xanes = cfg["xanes"]["enabled"]
    names = enabled_features(cfg)
    units = feature_units(cfg)
    axes = {"chi_k": ["k"], "ft_mag": ["ft_r"], "ft_re": ["ft_r"], "ft_im": ["ft_r"]}
    axes.update({"xanes": ["energy"], "mu": ["energy"]})
    axes.update({f"wavelet_{w}": ["wavelet_k", "wavelet_r"] for w in ("morlet", "cauchy")})

    # Rows are not read back while writing; a large cache keeps partial chunks of the three
    # split streams in memory until they are complete.
    with h5py.File(tmp, "w", rdcc_nbytes=64 << 20, rdcc_nslots=10007, rdcc_w0=1.0) as f:
        f.attrs.update(attrs)
        f.attrs.update(n_sites=n, n_examples=n_ex)
        g = f.create_group("grids")

        def grid(name: str, values: np.ndarray, unit: str, text: str) -> None:
            ds = g.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            ds.attrs.update(unit=unit, description=text)

        grid("k", kgrid, "1/Angstrom", "photoelectron wavenumber of chi(k)")
        grid("rdf", rdf_grid, "Angstrom", "radial distance of the RDF label")
        if cfg["ft"]["enabled"]:
            grid("ft_r", ft_r_grid(cfg["k_grid"], cfg["ft"]), "Angstrom", "R of chi(R)")
        if cfg["wavelet"]["morlet"] or cfg["wavelet"]["cauchy"]:
            grid("wavelet_k", wavelet_k_grid(cfg["wavelet"]), "1/Angstrom", "k axis of maps")
            grid("wavelet_r", wavelet_r_grid(cfg["wavelet"]), "Angstrom", "R axis of maps")
        if xanes:
            grid("energy", energy_grid(cfg["xanes"]), "eV", "energy relative to E0")

        # /sites: ids, provenance and labels of every gathered spectrum.
        s = f.create_group("sites")
        for col in SITE_STR_COLUMNS:
            _write_strings(s, col, table[col])
        for col in SITE_INT_COLUMNS:
            _create(s, col, (n,), np.int64, table[col].to_numpy(dtype=np.int64))
        _create(s, "split", (n,), np.int8, split)
        _create(s, "seconds", (n,), np.float64, table["seconds"].to_numpy(float), unit="s")
        _create(s, "feff_e0", (n,), np.float64, table["feff_e0"].to_numpy(float), unit="eV")
        s.attrs["split_offsets"] = site_off
        sl = s.create_group("labels")
        site_labels = {c: table[c].to_numpy(dtype=np.float64) for c in plan.label_names}
        site_labels["rdf"] = np.stack(table["rdf"].to_numpy()).astype(np.float32)
        _write_labels(sl, site_labels)

        streams = {"chi": _SplitStream(_create(s, "chi", (n, len(kgrid)), np.float32), site_off)}
        streams["chi"].ds.attrs.update(unit="", axes=json.dumps(["k"]), kweight=0)
        if xanes:
            n_e = len(energy_grid(cfg["xanes"]))
            for a, unit in (("mu", ""), ("norm", "")):
                ds = _create(s, f"edge/{a}", (n, n_e), np.float32, unit=unit)
                ds.attrs["axes"] = json.dumps(["energy"])
                streams[f"edge/{a}"] = _SplitStream(ds, site_off)
        e = f.create_group("examples")
        e.attrs.update(split_offsets=ex_off, k=k_avg, same_as_sites=k_avg == 1)
        ef = e.create_group("features")
        if k_avg == 1:
            for name in names:
                shape = _feature_shape(name, cfg)
                ds = _create(ef, name, (n, *shape), np.float32, unit=units[name])
                ds.attrs.update(axes=json.dumps(axes[name]), kweight=cfg["kweight"])
                streams[f"features/{name}"] = _SplitStream(ds, site_off)

        # Stream the per-site arrays from the cache entries, chunk by chunk.
        keep = {} if k_avg == 1 else {"chi": np.empty((n, len(kgrid)), np.float32)}
        if xanes and k_avg > 1:
            keep.update({f"edge/{a}": np.empty((n, n_e), np.float32) for a in ("mu", "norm")})
        e0s = np.full(n, np.nan)
        steps = np.full(n, np.nan)
        done = 0
        for i, summary in enumerate(summaries):
            m = summary.n_ok
            if m == 0:
                continue
            arrays = read_cached(summary.cache, names if k_avg == 1 else [])
            rows = plan.pos[done : done + m]
            rsplit = split[rows]
            for key, stream in streams.items():
                stream.put(rsplit, arrays[key])
            for key, buf in keep.items():
                buf[rows] = arrays[key]
            if xanes:
                e0s[rows] = arrays["edge/e0"]
                steps[rows] = arrays["edge/edge_step"]
            done += m
            if (i + 1) % 50 == 0:
                say(f"written: {done}/{n} spectra")
        for stream in streams.values():
            stream.close()
        if xanes:
            _create(s, "edge/e0", (n,), np.float64, e0s, unit="eV")
            _create(s, "edge/edge_step", (n,), np.float64, steps, unit="")

        # /examples: members, split, groups, labels and (k > 1) the averaged spectra.
        _create(e, "members", members.shape, np.int64, members)
        _create(e, "weights", members.shape, np.float32, plan.weights)
        _create(e, "split", (n_ex,), np.int8, ex_split)
        groups = table["group"].to_numpy()[members]
        _write_strings(e, "group", ["+".join(dict.fromkeys(row)) for row in groups])
        _write_strings(e, "avg_group", table["avg_pool"].to_numpy()[members[:, 0]])
        el = e.create_group("labels")
        _write_labels(
            el,
            site_labels if k_avg == 1 else average_labels(site_labels, members, plan.weights),
        )
        if k_avg > 1:
            _write_averaged(e, ef, keep, plan, cfg, names, units, axes, pool, workers, say)

        # /failures and /split.
        fl = f.create_group("failures")
        fdf = pd.DataFrame(plan.failures, columns=list(FAILURE_COLUMNS)).fillna("")
        for col in FAILURE_COLUMNS:
            _write_strings(fl, col, fdf[col])
        sp = f.create_group("split")
        sp.attrs.update(
            seed=settings["split"]["seed"],
            group_by=settings["split"]["group_by"],
            fractions=np.asarray(settings["split"]["fractions"], dtype=float),
            sizes=np.diff(ex_off),
            site_sizes=np.diff(site_off),
        )


_LABEL_UNITS = {"cn": "", "r": "Angstrom", "rdf": "1/Angstrom"}


def _write_labels(group: h5py.Group, labels: dict[str, np.ndarray]) -> None:
    for name, arr in labels.items():
        ds = _create(group, name, arr.shape, arr.dtype, arr, unit=_LABEL_UNITS.get(name, ""))
        if name == "rdf":
            ds.attrs["axes"] = json.dumps(["rdf"])


def _feature_shape(name: str, cfg: dict) -> tuple[int, ...]:
    from mlxas.spectra.features import feature_grids

    grid = feature_grids(cfg)[name]
    if isinstance(grid[0], tuple):
        return tuple(len(axis[0]) for axis in grid)
    return (len(grid[0]),)


def _write_averaged(
    e: h5py.Group,
    ef: h5py.Group,
    keep: dict[str, np.ndarray],
    plan: _Plan,
    cfg: dict,
    names: list[str],
    units: dict[str, str],
    axes: dict[str, list[str]],
    pool,
    workers: int,
    say: Callable[[str], None],
) -> None:
    """Mean chi(k) (and mu(E)) of each example, and its features, block by block."""
    from mlxas.spectra.xanes import EdgeGrid

    members, weights = plan.members, plan.weights
    n_ex = len(members)
    chi_ds = _create(e, "chi", (n_ex, keep["chi"].shape[1]), np.float32)
    chi_ds.attrs.update(unit="", axes=json.dumps(["k"]), kweight=0)
    feat_ds = {}
    for name in names:
        ds = _create(ef, name, (n_ex, *_feature_shape(name, cfg)), np.float32, unit=units[name])
        ds.attrs.update(axes=json.dumps(axes[name]), kweight=cfg["kweight"])
        feat_ds[name] = ds
    xanes = "edge/norm" in keep

    def blocks() -> Iterator[tuple]:
        for a in range(0, n_ex, _EXAMPLE_BLOCK):
            mem, w = members[a : a + _EXAMPLE_BLOCK], weights[a : a + _EXAMPLE_BLOCK]
            chi = np.einsum("nk,nkj->nj", w, keep["chi"][mem].astype(np.float64))
            edge = None
            if xanes:
                mu, norm = (
                    np.einsum("nk,nkj->nj", w, keep[f"edge/{a_}"][mem]).astype(np.float32)
                    for a_ in ("mu", "norm")
                )
                edge = EdgeGrid(mu, norm, np.zeros(len(mem)), np.ones(len(mem)))
            yield chi, edge, cfg

    a = 0
    for chi, feats in _bounded_imap(
        pool, _example_features_with_chi, blocks(), 2 * max(1, workers)
    ):
        b = a + len(chi)
        chi_ds[a:b] = chi.astype(np.float32)
        for name, arr in feats.items():
            feat_ds[name][a:b] = arr
        a = b
        say(f"averaged examples: {a}/{n_ex}")


def _example_features_with_chi(task: tuple) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    return task[0], _example_features(task)
