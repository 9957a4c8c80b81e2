"""The HDF5 training set: gather FEFF chunks and labels, split, and read back.

Layout of ``dataset.h5`` (schema version :data:`SCHEMA_VERSION`)::

    /                 attrs: schema_version, mlxas_version, dataset_hash, absorber, edge,
                             settings (JSON: features, averaging, split)
    /grids/<name>     grid of each feature and label vector, attr ``unit``
    /sites/...        one row per FEFF spectrum: ids, provenance, chi on the k grid, labels
    /examples/...     one row per training example (a site, or the mean of k sites):
                      members (indices into /sites), split, group, features/*, labels/*
    /failures/...     sites and structures that were refused, with stage and reason

Arrays are chunked, gzip-compressed and carry fletcher32 checksums.  The file is
written under a temporary name, reopened and checked, then renamed into place.
"""

from __future__ import annotations

import json
import os
import time
from itertools import combinations
from math import comb
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from mlxas import __version__
from mlxas.provenance import hash_json

__all__ = ["SCHEMA_VERSION", "SPLITS", "Dataset", "DatasetError", "gather", "open", "split_groups"]

SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
_ID_COLUMNS = [
    "site_id",
    "structure_id",
    "source",
    "name",
    "engine",
    "engine_version",
    "card_hash",
    "input_hash",
]
_INT_COLUMNS = ["frame", "site_index", "multiplicity"]


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message names the file and the reason."""


def split_groups(groups: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Assign each row to a split (0 train, 1 val, 2 test) so that no group spans two splits.

    Groups are shuffled with ``seed`` and dealt out in turn to the split that is furthest
    below its target share of rows, which keeps the shares close to ``fractions`` even
    when groups differ in size.
    """
    frac = np.asarray(fractions, dtype=float)
    frac = frac / frac.sum()
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    assigned = np.zeros(len(uniq), dtype=np.int8)
    filled = np.zeros(3)
    total = counts.sum()
    for g in order:
        deficit = frac * total - filled
        deficit[frac == 0] = -np.inf
        s = int(np.argmax(deficit))
        assigned[g] = s
        filled[s] += counts[g]
    return assigned[inverse]


def _examples(split: np.ndarray, weights: np.ndarray, avg_cfg: dict) -> np.ndarray:
    """Member indices [n_examples, k] of the averaged examples, formed within each split."""
    k = avg_cfg["k"]
    idx_all = np.arange(len(split))
    if k == 1:
        return idx_all[:, None]
    rng = np.random.default_rng(avg_cfg["seed"])
    out = []
    for s in range(3):
        idx = idx_all[split == s]
        if len(idx) < k:
            continue
        n_max = comb(len(idx), k)
        n = avg_cfg["n_examples"]
        if n is None or n >= n_max:
            out.append(np.array(list(combinations(idx, k)), dtype=np.int64))
        else:
            picks = {tuple(sorted(rng.choice(idx, size=k, replace=False))) for _ in range(4 * n)}
            out.append(
                np.array(sorted(picks)[:n], dtype=np.int64)
                if len(picks) >= n
                else np.array(sorted(picks), dtype=np.int64)
            )
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def gather(
    chunk_files: list[str],
    site_files: list[str],
    out: str | Path,
    settings: dict,
    rejected_files: list[str] = (),
    absorber: str = "",
    edge: str = "",
) -> Path:
    """Build ``out`` from FEFF chunk files and site tables.  Failed sites are never gathered."""
    from mlxas.feff.chunk import read_chunk
    from mlxas.spectra.features import compute_features, feature_grids
    from mlxas.spectra.grids import interp_on_grid, k_grid

    feat_cfg, avg_cfg, split_cfg = settings["features"], settings["averaging"], settings["split"]
    sites = (
        pd.concat([pd.read_parquet(p) for p in site_files], ignore_index=True)
        if site_files
        else pd.DataFrame()
    )
    sites = sites.set_index("site_id", drop=False)
    k = k_grid(feat_cfg["k_grid"])
    ok_rows, chis, failures = [], [], []
    for path in chunk_files:
        for r in read_chunk(path):
            if not r.ok:
                failures.append(
                    {"site_id": r.site_id, "stage": "feff", "reason": r.reason, "detail": r.detail}
                )
                continue
            if r.site_id not in sites.index:
                raise DatasetError(f"{path}: site {r.site_id} has no row in the site tables")
            ok_rows.append(
                {
                    **sites.loc[r.site_id].to_dict(),
                    "engine": r.engine,
                    "engine_version": r.engine_version,
                    "card_hash": r.card_hash,
                    "input_hash": r.input_hash,
                }
            )
            chis.append(interp_on_grid(r.k, r.chi, k))
    for path in rejected_files:
        rej = pd.read_csv(path)
        for row in rej.itertuples(index=False):
            failures.append(
                {
                    "site_id": "",
                    "stage": "structures",
                    "reason": row.reason,
                    "detail": f"{row.origin}"
                    + (f" frame {row.frame}" if pd.notna(row.frame) else "")
                    + f": {row.detail}",
                }
            )
    if not ok_rows:
        raise DatasetError(
            f"{out}: no successful FEFF spectrum to gather ({len(failures)} failures)"
        )
    table = pd.DataFrame(ok_rows).sort_values("site_id", kind="stable").reset_index(drop=True)
    order = np.argsort([r["site_id"] for r in ok_rows], kind="stable")
    chi = np.asarray(chis)[order]

    group_by = split_cfg["group_by"]
    key = {"structure": "structure_id", "site": "site_id"}.get(group_by)
    if group_by == "frame":
        # An MD frame is one structure; frames of a trajectory file share its name prefix.
        key = "structure_id"
    groups = table[key].astype(str).to_numpy()
    split = split_groups(groups, split_cfg["fractions"], split_cfg["seed"])
    weights = table["multiplicity"].to_numpy(dtype=float)
    members = _examples(split, weights, avg_cfg)
    w = weights[members] if avg_cfg.get("weighted") else np.ones(members.shape)
    w = w / w.sum(axis=1, keepdims=True)
    ex_chi = np.einsum("nk,nkj->nj", w, chi[members])
    ex_split = split[members[:, 0]]
    features = compute_features(ex_chi, feat_cfg)

    label_names = ["cn", "r", *sorted(c for c in table.columns if c.startswith("cn_"))]
    labels = {
        n: np.einsum("nk,nk->n", w, table[n].to_numpy(dtype=float)[members]) for n in label_names
    }
    rdf = np.stack(table["rdf"].to_numpy())
    labels["rdf"] = np.einsum("nk,nkj->nj", w, rdf[members]).astype(np.float32)

    dataset_hash = hash_json(
        {"inputs": sorted(table["input_hash"]), "settings": settings, "schema": SCHEMA_VERSION}
    )
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    comp = {"compression": "gzip", "shuffle": True, "fletcher32": True}
    str_dt = h5py.string_dtype()
    with h5py.File(tmp, "w") as f:
        f.attrs.update(
            schema_version=SCHEMA_VERSION,
            mlxas_version=__version__,
            dataset_hash=dataset_hash,
            absorber=absorber,
            edge=edge,
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
            settings=json.dumps(settings, sort_keys=True),
        )
        g = f.create_group("grids")
        g.create_dataset("k", data=k).attrs["unit"] = "1/Angstrom"
        for name, (grid, unit) in feature_grids(feat_cfg).items():
            g.create_dataset(name, data=grid).attrs["unit"] = unit
        rdf_grid = json.loads(_parquet_meta(site_files[0], "mlxas.rdf_grid"))
        g.create_dataset("rdf", data=np.asarray(rdf_grid)).attrs["unit"] = "Angstrom"
        s = f.create_group("sites")
        for col in _ID_COLUMNS:
            s.create_dataset(col, data=table[col].astype(str).to_numpy(dtype=object), dtype=str_dt)
        for col in _INT_COLUMNS:
            s.create_dataset(col, data=table[col].fillna(-1).to_numpy(dtype=np.int64))
        s.create_dataset(
            "chi", data=chi.astype(np.float32), chunks=(min(len(chi), 1024), chi.shape[1]), **comp
        )
        s.create_dataset("split", data=split)
        sl = s.create_group("labels")
        for n in label_names:
            sl.create_dataset(n, data=table[n].to_numpy(dtype=float))
        sl.create_dataset("rdf", data=rdf.astype(np.float32), **comp)
        e = f.create_group("examples")
        e.create_dataset("members", data=members)
        e.create_dataset("split", data=ex_split)
        e.create_dataset("group", data=groups[members[:, 0]].astype(object), dtype=str_dt)
        e.create_dataset(
            "chi",
            data=ex_chi.astype(np.float32),
            chunks=(min(len(ex_chi), 1024), ex_chi.shape[1]),
            **comp,
        )
        ef = e.create_group("features")
        for name, arr in features.items():
            ef.create_dataset(name, data=arr, chunks=(min(len(arr), 1024), *arr.shape[1:]), **comp)
        el = e.create_group("labels")
        for name, arr in labels.items():
            el.create_dataset(name, data=arr, **({**comp} if arr.ndim > 1 else {}))
        fl = f.create_group("failures")
        fdf = pd.DataFrame(failures, columns=["site_id", "stage", "reason", "detail"])
        for col in fdf.columns:
            fl.create_dataset(col, data=fdf[col].astype(str).to_numpy(dtype=object), dtype=str_dt)
        f.create_group("split").attrs.update(
            seed=split_cfg["seed"], group_by=group_by, fractions=split_cfg["fractions"]
        )
    Dataset(tmp).verify()
    tmp.replace(out)
    return out


def _parquet_meta(path: str, key: str) -> str:
    import pyarrow.parquet as pq

    return pq.read_schema(path).metadata[key.encode()].decode()


class Dataset:
    """Read access to ``dataset.h5``: arrays for a split, or a pandas frame."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such dataset file")
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = dict(f.attrs)
        except OSError as err:
            raise DatasetError(f"{self.path}: not a readable HDF5 file ({err})") from None
        ver = int(self.attrs.get("schema_version", -1))
        if ver > SCHEMA_VERSION:
            raise DatasetError(
                f"{self.path}: written with dataset schema {ver}, newer than this "
                f"mlxas understands ({SCHEMA_VERSION}); upgrade mlxas"
            )
        if ver < 1:
            raise DatasetError(f"{self.path}: not an mlxas dataset (no schema_version)")

    @property
    def hash(self) -> str:
        return str(self.attrs["dataset_hash"])

    @property
    def settings(self) -> dict:
        return json.loads(self.attrs["settings"])

    def _read(self, key: str, rows: np.ndarray | None = None) -> np.ndarray:
        try:
            with h5py.File(self.path, "r") as f:
                ds = f[key]
                return ds[()] if rows is None else ds[np.sort(rows)] if len(rows) else ds[:0]
        except OSError as err:
            raise DatasetError(f"{self.path}: cannot read {key}: {err} (damaged file?)") from None
        except KeyError:
            raise DatasetError(f"{self.path}: has no {key!r}") from None

    def split_indices(self, split: str | None) -> np.ndarray | None:
        if split is None:
            return None
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return np.nonzero(self._read("examples/split") == SPLITS.index(split))[0]

    def features(self, name: str, split: str | None = None) -> np.ndarray:
        return self._read(f"examples/features/{name}", self.split_indices(split))

    def chi(self, split: str | None = None) -> np.ndarray:
        """Unweighted chi(k) of the examples on the ``k`` grid (averaged for k-site examples)."""
        return self._read("examples/chi", self.split_indices(split))

    def labels(self, name: str, split: str | None = None) -> np.ndarray:
        return self._read(f"examples/labels/{name}", self.split_indices(split))

    def grid(self, name: str) -> np.ndarray:
        return self._read(f"grids/{name}")

    def feature_names(self) -> list[str]:
        with h5py.File(self.path, "r") as f:
            return sorted(f["examples/features"].keys())

    def label_names(self) -> list[str]:
        with h5py.File(self.path, "r") as f:
            return sorted(f["examples/labels"].keys())

    def frame(self, split: str | None = None) -> pd.DataFrame:
        """One row per example: split, group, member site ids and scalar labels."""
        with h5py.File(self.path, "r") as f:
            members = f["examples/members"][()]
            site_ids = f["sites/site_id"].asstr()[()]
            df = pd.DataFrame(
                {
                    "split": [SPLITS[i] for i in f["examples/split"][()]],
                    "group": f["examples/group"].asstr()[()],
                    "site_ids": [",".join(site_ids[m]) for m in members],
                }
            )
            for name, ds in f["examples/labels"].items():
                if ds.ndim == 1:
                    df[name] = ds[()]
        idx = self.split_indices(split)
        return df if idx is None else df.iloc[idx].reset_index(drop=True)

    def failures(self) -> pd.DataFrame:
        with h5py.File(self.path, "r") as f:
            return pd.DataFrame({c: f["failures"][c].asstr()[()] for c in f["failures"]})

    def verify(self) -> None:
        """Read every array once, so that checksum errors surface here."""

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                try:
                    obj[()]
                except OSError as err:
                    raise DatasetError(
                        f"{self.path}: dataset {name!r} is damaged ({err})"
                    ) from None

        with h5py.File(self.path, "r") as f:
            f.visititems(visit)


def open(path: str | Path) -> Dataset:
    """Open a dataset for reading; refuses newer schemas and non-mlxas files."""
    return Dataset(path)
