"""The site table of one source: which items the simulation stage computes.

An item is one absorbing atom of one structure (or MD frame), or, with ``sites.mode:
structure``, one whole structure (for engines with ``unit = "structure"`` such as XRD).
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
    ``seed`` and the structures, so a rerun picks the same sites;
``structure``
    one item per structure (its id is the structure id, ``site_index`` -1); no absorber.
    With ``per_structure`` = n > 1, n items per structure: the structure id and
    ``<structure id>-p1`` .. ``-p<n-1>`` (:func:`pattern_id`), e.g. n powder patterns each
    with its own draw of the engine's experimental effects.

Labels are computed by the ``labels`` stage (:mod:`mlxas.sites.labelsets`); site
averaging is done later, at dataset time, from ``multiplicity``, ``structure_id`` and
``frame``.  The structures refused by the structures stage travel on in the table's
metadata (``mlxas.rejected``), so that later stages never read that stage's files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from mlxas.errors import ConfigError
from mlxas.sites.symmetry import equivalent_sites

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MODES",
    "SITE_COLUMNS",
    "SitesSettings",
    "choose_sites",
    "enumerate_sites",
    "pattern_id",
    "read_sites",
    "site_id",
    "site_table",
    "write_sites",
]

MODES = ("unique", "all", "sample", "structure")

SITE_COLUMNS = [
    "site_id",
    "structure_id",
    "source",
    "name",
    "frame",
    "site_index",
    "element",
    "multiplicity",
]


@dataclass(frozen=True)
class SitesSettings:
    """The ``sites`` section: ``mode`` (see the module), ``per_frame`` or ``total`` sites
    drawn in mode ``sample`` with ``seed``, ``symprec`` (Å) of the symmetry search,
    ``per_structure`` items per structure in mode ``structure``."""

    mode: str = "unique"
    per_frame: int | None = None
    total: int | None = None
    symprec: float = 0.1
    seed: int = 0
    per_structure: int = 1

    def __post_init__(self) -> None:
        if self.per_structure < 1 or (self.per_structure > 1 and self.mode != "structure"):
            raise ConfigError(
                f"sites.per_structure = {self.per_structure}: must be >= 1, and > 1 only "
                f"with mode structure (mode is {self.mode!r})"
            )

    @property
    def unit(self) -> str:
        """``structure`` in mode ``structure``, else ``site``."""
        return "structure" if self.mode == "structure" else "site"


def site_id(structure_id: str, index: int) -> str:
    """``<structure id>-<atom index, 5 digits>``."""
    return f"{structure_id}-{index:05d}"


def pattern_id(structure_id: str, n: int) -> str:
    """Id of the ``n``-th item of a whole structure: the structure id for ``n = 0``, else
    ``<structure id>-p<n>`` (never the form of a site id)."""
    return structure_id if n == 0 else f"{structure_id}-p{n}"


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
    images: Sequence[Atoms], absorber: str, settings: SitesSettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per structure: the chosen absorbing atom indices and their multiplicities."""
    from ase.data import atomic_numbers

    z = atomic_numbers[absorber]
    mode = settings.mode
    absorbers = [np.nonzero(atoms.numbers == z)[0] for atoms in images]
    out: list[tuple[np.ndarray, np.ndarray]] = []
    if mode == "all":
        return [(idx, np.ones(len(idx), np.int64)) for idx in absorbers]
    if mode == "unique":
        for atoms, idx in zip(images, absorbers, strict=True):
            if _frame(atoms) is not None or len(idx) == 0:
                out.append((idx, np.ones(len(idx), np.int64)))
                continue
            groups = [g for g in equivalent_sites(atoms, settings.symprec) if g[0] in idx]
            out.append(
                (
                    np.array([g[0] for g in groups], np.int64),
                    np.array([len(g) for g in groups], np.int64),
                )
            )
        return out
    if mode == "sample":
        per_frame, total = settings.per_frame, settings.total
        if (per_frame is None) == (total is None):
            raise ConfigError("sites: mode 'sample' needs exactly one of per_frame and total")
        seed = settings.seed
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
    raise ConfigError(f"sites.mode: unknown mode {mode!r} (use unique, all or sample)")


def site_table(
    images: Sequence[Atoms], absorber: str | None, settings: SitesSettings
) -> pd.DataFrame:
    """One row per item to compute (:data:`SITE_COLUMNS`), in structure order.

    ``df.attrs["seconds"]`` holds the time the choice took.
    """
    import pandas as pd

    t0 = time.perf_counter()
    if settings.mode == "structure":
        n = settings.per_structure
        chosen = [(np.full(n, -1), np.ones(n, np.int64)) for _ in images]
    else:
        if not absorber:
            raise ConfigError(f"sites.mode {settings.mode!r} needs an absorber")
        chosen = choose_sites(images, absorber, settings)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in SITE_COLUMNS[1:]}
    for atoms, (idx, mult) in zip(images, chosen, strict=True):
        info, frame = atoms.info, _frame(atoms)
        n = len(idx)
        for key, value in (
            ("structure_id", str(info["structure_id"])),
            ("source", str(info.get("source", ""))),
            ("name", str(info.get("name", ""))),
            ("frame", -1 if frame is None else frame),
            ("element", absorber if settings.mode != "structure" else ""),
        ):
            cols[key].append(np.full(n, value, dtype=int if key == "frame" else object))
        cols["site_index"].append(np.asarray(idx, dtype=np.int64))
        cols["multiplicity"].append(np.asarray(mult, dtype=np.int64))
    joined = {
        k: np.concatenate(v) if v else np.zeros(0, dtype=int if k != "structure_id" else object)
        for k, v in cols.items()
    }
    sid = joined["structure_id"].astype(str)
    index = joined["site_index"].astype(np.int64)
    if settings.mode == "structure":
        copy = np.tile(np.arange(settings.per_structure), len(images))
        ids = np.array([pattern_id(s, int(n)) for s, n in zip(sid, copy, strict=True)], object)
    else:
        ids = np.char.add(np.char.add(sid, "-"), np.char.zfill(index.astype(str), 5))
    frame = joined["frame"].astype(np.int64)
    df = pd.DataFrame(
        {
            "site_id": ids.astype(object),
            "structure_id": sid.astype(object),
            "source": joined["source"].astype(str).astype(object),
            "name": joined["name"].astype(str).astype(object),
            "frame": pd.array(np.where(frame < 0, pd.NA, frame), dtype="Int64"),
            "site_index": index,
            "element": joined["element"].astype(str).astype(object),
            "multiplicity": joined["multiplicity"].astype(np.int64),
        }
    )
    df.attrs["seconds"] = time.perf_counter() - t0
    return df


def enumerate_sites(
    images: Sequence[Atoms], absorber: str, settings: SitesSettings, labels: Any
) -> pd.DataFrame:
    """The site table joined with its labels (``labels``: a
    :class:`~mlxas.sites.labelsets.LabelSettings`); what the ``sites`` and ``labels``
    stages compute together, for use from Python.  ``df.attrs["labels"]`` holds the label
    metadata."""
    import pandas as pd

    from mlxas.sites.labelsets import compute_labels

    items = site_table(images, absorber, settings)
    table, meta = compute_labels(images, items, absorber, labels)
    out = pd.concat([items, table.drop(columns=["site_id"])], axis=1)
    out.attrs.update(labels=meta, seconds=items.attrs["seconds"])
    return out


def write_sites(
    df: pd.DataFrame,
    path: str | Path,
    settings: SitesSettings,
    rejected: pd.DataFrame | None = None,
) -> None:
    """Write the site table as Parquet; the settings and the refused structures
    (``rejected.csv`` rows of the source) go into the metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlxas.settings import to_dict

    table = pa.Table.from_pandas(df[SITE_COLUMNS], preserve_index=False)
    rows = [] if rejected is None else _json_rows(rejected)
    meta = dict(table.schema.metadata or {})
    meta[b"mlxas.sites"] = json.dumps(to_dict(settings), sort_keys=True).encode()
    meta[b"mlxas.rejected"] = json.dumps(rows).encode()
    table = table.replace_schema_metadata(meta)
    tmp = Path(f"{path}.tmp")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, tmp)
    tmp.replace(path)


def _json_rows(df: pd.DataFrame) -> list[dict]:
    clean = df.astype(object).where(df.notna(), None)
    return [{k: (None if v is None else str(v)) for k, v in row.items()} for row in
            clean.to_dict(orient="records")]  # fmt: skip


def read_sites(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A site table and its metadata: ``settings`` (the ``sites`` section) and
    ``rejected`` (the source's refused structures, as ``rejected.csv`` rows)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    info = {
        "settings": json.loads(meta.get(b"mlxas.sites", b"{}")),
        "rejected": json.loads(meta.get(b"mlxas.rejected", b"[]")),
    }
    return table.to_pandas(), info
