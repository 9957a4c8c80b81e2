"""The ``inputs`` step of the simulation stage: one input per item, and the chunk plan.

For every row of a source's site table the engine writes its exact input
(:meth:`~mlxas.engines.base.SignalEngine.input_text`); the input hash is the hash of that
text and the engine's version, so equal hashes mean equal runs.  An item for which no
valid input can be written (:class:`~mlxas.engines.base.InputError`: too many atoms for
FEFF, ...) keeps its reason and is never run.  Items are grouped into chunks of
``chunk_size``, one simulation job each.

The input table (``inputs.parquet``) has one Parquet row group per chunk, so a job reads
only its own rows; columns ``item_id, structure_id, chunk, text, input_hash, reason,
detail``.  The chunk plan (``chunks.json``) holds ``n_chunks, n_items, chunk_size,
engine, engine_version, unit, settings, settings_hash, items_per_chunk,
refused_per_chunk``: every later step rebuilds the engine from it
(:func:`mlxas.engines.base.engine_from_plan`) and ``mlxas status`` counts from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxas.engines.base import InputError, ItemInput, SignalEngine
from mlxas.provenance import hash_bytes, hash_json
from mlxas.workflow.layout import SimulationFolder

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "INPUT_COLUMNS",
    "build_inputs",
    "input_hash",
    "read_chunk_items",
    "read_plan",
    "settings_hash",
]

INPUT_COLUMNS = ["item_id", "structure_id", "chunk", "text", "input_hash", "reason", "detail"]


def input_hash(engine: SignalEngine, text: str) -> str:
    """Hash of the exact input text and the engine's version: equal hashes, equal runs."""
    return hash_bytes((engine.version + "\n" + text).encode())


def settings_hash(engine: SignalEngine) -> str:
    """Hash of the engine's name and settings (FEFF: merged cards, cluster radius, ...)."""
    return hash_json({"engine": engine.name, "settings": engine.settings_dict()})


def build_inputs(
    sites: pd.DataFrame,
    images: Mapping[str, Any],
    engine: SignalEngine,
    chunk_size: int,
    folder: SimulationFolder,
) -> pd.DataFrame:
    """Write the input table and the chunk plan of one source into ``folder``.

    ``sites``: the site table (``site_id``, ``structure_id``, ``site_index``; -1 for
    whole structures); ``images``: structure id -> ASE ``Atoms``.
    """
    import pandas as pd

    rows = []
    structure_unit = engine.unit == "structure"
    for pos, site in enumerate(sites.itertuples(index=False)):
        row = {
            "item_id": site.site_id,
            "structure_id": site.structure_id,
            "chunk": pos // chunk_size,
        }
        index = None if structure_unit else int(site.site_index)
        try:
            text = engine.input_text(images[site.structure_id], index, site.site_id)
            row.update(text=text, input_hash=input_hash(engine, text), reason="", detail="")
        except InputError as err:
            row.update(text="", input_hash="", reason=err.reason, detail=err.detail)
        rows.append(row)
    table = pd.DataFrame(rows, columns=INPUT_COLUMNS)
    folder.path.mkdir(parents=True, exist_ok=True)
    tmp = folder.inputs_table.with_name(f".{folder.inputs_table.name}.tmp")
    # One row group per chunk: a job reads only its own rows (a feff.inp is ~5 kB).
    table.to_parquet(tmp, index=False, row_group_size=chunk_size)
    tmp.replace(folder.inputs_table)
    refused: dict[str, dict[str, int]] = {}
    bad = table.loc[table["reason"] != "", ["chunk", "reason"]]
    for chunk, reason in bad.itertuples(index=False):
        per_chunk = refused.setdefault(str(chunk), {})
        per_chunk[reason] = per_chunk.get(reason, 0) + 1
    plan = {
        "n_chunks": int(table["chunk"].max()) + 1 if len(table) else 0,
        "n_items": len(table),
        "chunk_size": chunk_size,
        "engine": engine.name,
        "engine_version": engine.version,
        "unit": engine.unit,
        "settings": engine.settings_dict(),
        "settings_hash": settings_hash(engine),
        "items_per_chunk": table["chunk"].value_counts().sort_index().tolist(),
        "refused_per_chunk": refused,
    }
    tmp_plan = folder.chunk_plan.with_name(f".{folder.chunk_plan.name}.tmp")
    tmp_plan.write_text(json.dumps(plan))
    tmp_plan.replace(folder.chunk_plan)
    return table


def read_plan(path: str | Path) -> dict[str, Any]:
    """A chunk plan (``chunks.json``)."""
    return json.loads(Path(path).read_text())


def read_chunk_items(inputs: str | Path, chunk: int) -> list[ItemInput]:
    """The items of one chunk; only the row groups that can hold it are read.

    The row groups are picked from their statistics by hand: ``read_table(filters=...)``
    would import pyarrow.dataset, which imports pandas (~1 s for every job).
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(inputs)
    col = pf.schema_arrow.get_field_index("chunk")
    groups = []
    for i in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max or stats.min <= chunk <= stats.max:
            groups.append(i)
    rows = pf.read_row_groups(groups).to_pylist() if groups else []
    return [
        ItemInput(
            item_id=r["item_id"],
            structure_id=r["structure_id"],
            chunk=r["chunk"],
            text=r["text"],
            input_hash=r["input_hash"],
            reason=r["reason"],
            detail=r["detail"],
        )
        for r in rows
        if r["chunk"] == chunk
    ]
