"""The site table of one source: which absorbing atoms are computed, with their labels.

Modes (``sites.mode``):

``unique``
    symmetry-unique absorbing atoms, each with its multiplicity (the number of
    equivalent atoms it stands for).  Frames of a trajectory have no symmetry: every
    absorbing atom of a frame is its own site, with multiplicity 1;
``all``
    every absorbing atom, multiplicity 1;
``sample``
    ``per_frame`` absorbing atoms drawn at random from each structure or frame, or
    ``total`` drawn at random from all absorbing atoms of the source (the 6000 out of
    600,000 MD atoms of the Au150 set), multiplicity 1.  The draw depends only on
    ``seed`` and the structures, so a rerun picks the same sites.

Site averaging is done later, at dataset time, from ``multiplicity``, ``structure_id``
and ``frame``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols

from mlxas.sites.labels import (
    LabelError,
    element_slots,
    labels_from_pairs,
    rdf_grid,
    shell_radii,
    site_pairs,
)
from mlxas.sites.symmetry import equivalent_sites

__all__ = [
    "SITE_COLUMNS",
    "choose_sites",
    "enumerate_sites",
    "read_sites",
    "site_id",
    "write_sites",
]

#: Neighbour pairs labelled together (bounds the memory of one labelling step to ~100 MB).
_BATCH_PAIRS = 500_000

SITE_COLUMNS = [
    "site_id",
    "structure_id",
    "source",
    "name",
    "frame",
    "site_index",
    "element",
    "multiplicity",
    "cn",
    "r",
]


def site_id(structure_id: str, index: int) -> str:
    """``<structure id>-<atom index, 5 digits>``."""
    return f"{structure_id}-{index:05d}"


def _frame(atoms: Atoms) -> int | None:
    frame = atoms.info.get("frame", -1)
    return None if frame is None or int(frame) < 0 else int(frame)


def _structure_seed(seed: int, structure_id: str) -> list[int]:
    """Seed material of one structure's draw: the config seed and its structure id."""
    try:
        return [int(seed), int(str(structure_id)[:15], 16)]
    except ValueError:
        return [int(seed), sum(ord(c) * 31**k for k, c in enumerate(str(structure_id))) % 2**62]


def choose_sites(
    images: list[Atoms], absorber: str, sites_cfg: dict
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per structure: the chosen absorbing atom indices and their multiplicities."""
    from ase.data import atomic_numbers

    z = atomic_numbers[absorber]
    mode = sites_cfg.get("mode", "unique")
    absorbers = [np.nonzero(atoms.numbers == z)[0] for atoms in images]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    if mode == "all":
        return [(idx, np.ones(len(idx), np.int64)) for idx in absorbers]
    if mode == "unique":
        for atoms, idx in zip(images, absorbers, strict=True):
            if _frame(atoms) is not None or len(idx) == 0:
                out.append((idx, np.ones(len(idx), np.int64)))
                continue
            groups = [
                g for g in equivalent_sites(atoms, sites_cfg.get("symprec", 0.1)) if g[0] in idx
            ]
            out.append(
                (
                    np.array([g[0] for g in groups], np.int64),
                    np.array([len(g) for g in groups], np.int64),
                )
            )
        return out
    if mode == "sample":
        per_frame, total = sites_cfg.get("per_frame"), sites_cfg.get("total")
        if (per_frame is None) == (total is None):
            raise LabelError("sites: mode 'sample' needs exactly one of per_frame and total")
        seed = sites_cfg.get("seed", 0)
        if per_frame is not None:
            for atoms, idx in zip(images, absorbers, strict=True):
                rng = np.random.default_rng(_structure_seed(seed, atoms.info.get("structure_id")))
                pick = rng.choice(idx, size=min(per_frame, len(idx)), replace=False)
                out.append((np.sort(pick), np.ones(len(pick), np.int64)))
            return out
        counts = np.array([len(idx) for idx in absorbers])
        flat = np.random.default_rng(seed).choice(
            counts.sum(), size=min(total, int(counts.sum())), replace=False
        )
        owner = np.searchsorted(np.cumsum(counts), flat, side="right")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        for k, idx in enumerate(absorbers):
            pick = np.sort(idx[flat[owner == k] - starts[k]])
            out.append((pick, np.ones(len(pick), np.int64)))
        return out
    raise LabelError(f"sites.mode: unknown mode {mode!r} (use unique, all or sample)")


def enumerate_sites(
    images: list[Atoms], absorber: str, sites_cfg: dict, labels_cfg: dict
) -> pd.DataFrame:
    """One row per absorbing site to compute, with multiplicity and labels.

    ``shell_radius`` is the first-shell radius (Å) the rule resolved to for the site's
    structure (NaN for ``nn:`` rules).  ``df.attrs["shell_radius"]`` holds it too when
    it is the same for every site (else None); :func:`write_sites` stores it in the
    file metadata.
    """
    t0 = time.perf_counter()
    shells = shell_radii(images, absorber, labels_cfg)
    chosen = choose_sites(images, absorber, sites_cfg)
    t1 = time.perf_counter()
    elements = sorted({chemical_symbols[z] for atoms in images for z in np.unique(atoms.numbers)})
    slots = element_slots(elements)
    parts: dict[str, list[np.ndarray]] = {}
    meta: dict[str, list] = {"structure_id": [], "source": [], "name": [], "frame": []}
    batch: list[tuple[np.ndarray, ...]] = []
    batch_sites = batch_pairs = 0

    def flush() -> None:
        nonlocal batch, batch_sites, batch_pairs
        if not batch_sites:
            return
        joined = [np.concatenate(x) for x in zip(*batch, strict=True)]
        for key, value in labels_from_pairs(*joined, batch_sites, elements, labels_cfg).items():
            parts.setdefault(key, []).append(value)
        batch, batch_sites, batch_pairs = [], 0, 0

    for atoms, (idx, mult), shell in zip(images, chosen, shells, strict=True):
        if len(idx) == 0:
            continue
        slot, d, el, in_shell = site_pairs(atoms, idx, labels_cfg, shell, slots)
        parts.setdefault("shell_radius", []).append(
            np.full(len(idx), np.nan if shell is None else shell)
        )
        batch.append((slot + batch_sites, d, el, in_shell))
        batch_sites += len(idx)
        batch_pairs += len(d)
        parts.setdefault("site_index", []).append(idx)
        parts.setdefault("multiplicity", []).append(mult)
        info = atoms.info
        frame = _frame(atoms)
        for key, value in (
            ("structure_id", str(info["structure_id"])),
            ("source", str(info.get("source", ""))),
            ("name", str(info.get("name", ""))),
            ("frame", -1 if frame is None else frame),
        ):
            meta[key].append(np.full(len(idx), value, dtype=object if key != "frame" else int))
        if batch_pairs >= _BATCH_PAIRS:
            flush()
    flush()
    partial = [f"cn_{el}" for el in elements]
    if not parts:
        df = pd.DataFrame(columns=[*SITE_COLUMNS, *partial, "shell_radius", "rdf"])
        df["frame"] = df["frame"].astype("Int64")
        df.attrs.update(shell_radius=None, seconds={"choose": t1 - t0, "labels": 0.0})
        return df
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    cols.update({k: np.concatenate(v) for k, v in meta.items()})
    index = cols["site_index"].astype(np.int64)
    sid = cols["structure_id"].astype(str)
    df = pd.DataFrame(
        {
            "site_id": np.char.add(np.char.add(sid, "-"), np.char.zfill(index.astype(str), 5)),
            "structure_id": sid,
            "source": cols["source"].astype(str),
            "name": cols["name"].astype(str),
            "frame": pd.array(np.where(cols["frame"] < 0, pd.NA, cols["frame"]), dtype="Int64"),
            "site_index": index,
            "element": absorber,
            "multiplicity": cols["multiplicity"].astype(np.int64),
            "cn": cols["cn"],
            "r": cols["r"],
            **{p: cols[p] for p in partial},
            "shell_radius": cols["shell_radius"],
        }
    )
    df["rdf"] = list(cols["rdf"])
    distinct = np.unique(cols["shell_radius"])
    df.attrs.update(
        shell_radius=float(distinct[0])
        if len(distinct) == 1 and np.isfinite(distinct[0])
        else None,
        seconds={"choose": t1 - t0, "labels": time.perf_counter() - t1},
    )
    return df


def write_sites(df: pd.DataFrame, path: str | Path, labels_cfg: dict) -> None:
    """Write the site table as Parquet, with the RDF grid and label settings in the metadata.

    ``mlxas.labels`` holds the label settings plus ``shell_radius``, the first-shell
    radius (Å) the rule resolved to when it is one for the whole table (else null; each
    site's radius is in its ``shell_radius`` column).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rdf = np.stack(df["rdf"].to_numpy()).astype(np.float32) if len(df) else None
    table = pa.Table.from_pandas(df.drop(columns=["rdf"]), preserve_index=False)
    n_grid = len(rdf_grid(labels_cfg["rdf"]))
    if rdf is None:
        rdf_arr = pa.array([], type=pa.list_(pa.float32()))
    else:
        offsets = pa.array(np.arange(0, rdf.size + 1, n_grid, dtype=np.int32))
        rdf_arr = pa.ListArray.from_arrays(offsets, pa.array(rdf.ravel()))
    table = table.append_column("rdf", rdf_arr)
    meta = dict(table.schema.metadata or {})
    settings = {**labels_cfg, "shell_radius": df.attrs.get("shell_radius")}
    meta[b"mlxas.labels"] = json.dumps(settings, sort_keys=True).encode()
    meta[b"mlxas.rdf_grid"] = json.dumps(rdf_grid(labels_cfg["rdf"]).tolist()).encode()
    table = table.replace_schema_metadata(meta)
    tmp = Path(f"{path}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_sites(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """A site table and its label settings (with ``shell_radius`` and ``rdf_grid``)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    settings = json.loads(meta.get(b"mlxas.labels", b"{}"))
    settings["rdf_grid"] = json.loads(meta.get(b"mlxas.rdf_grid", b"[]"))
    return table.to_pandas(), settings
