"""Step 2 of :func:`mlxas.dataset.build.gather`: the gathered items joined with their
site rows and labels, the failures listed, split by group, ordered by split and drawn
into averaged examples, as the :class:`~mlxas.dataset.writer.GatherPlan` that the
writer stores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlxas.dataset.cache import ChunkSummary
from mlxas.dataset.schema import SPLITS, DatasetError
from mlxas.dataset.settings import DatasetSettings
from mlxas.dataset.splitting import example_members, group_keys, split_groups
from mlxas.dataset.writer import GatherPlan

__all__ = ["gather_plan", "plain_strings"]


def plain_strings(df: pd.DataFrame) -> pd.DataFrame:
    """String columns as numpy objects: ``isin`` and lookups on pandas' Arrow-backed
    strings convert every value to a scalar, ~100x slower for 100k sites."""
    text = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)]
    return df.astype({c: object for c in text}) if text else df


def _failures(results: pd.DataFrame, table: pd.DataFrame, inputs: pd.DataFrame) -> list[dict]:
    """Failed items, refused inputs and planned items that no chunk file holds."""
    refused = set(inputs.loc[inputs["reason"].fillna("") != "", "site_id"])
    failures = []
    for row in results[~results["ok"].astype(bool)].itertuples(index=False):
        known = row.site_id in table.index
        failures.append(
            {
                "site_id": row.site_id,
                "structure_id": table.at[row.site_id, "structure_id"] if known else "",
                "source": table.at[row.site_id, "source"] if known else "",
                "stage": "inputs" if row.site_id in refused else "simulation",
                "reason": row.reason or "failed",
                "detail": row.detail,
            }
        )
    planned = inputs.loc[inputs["reason"].fillna("") == ""]
    for row in planned[~planned["site_id"].isin(results["site_id"])].itertuples(index=False):
        known = row.site_id in table.index
        failures.append(
            {
                "site_id": row.site_id,
                "structure_id": row.structure_id,
                "source": table.at[row.site_id, "source"] if known else "",
                "stage": "simulation",
                "reason": "no_result",
                "detail": "none of the gathered chunk files holds this item",
            }
        )
    return failures


def gather_plan(
    summaries: list[ChunkSummary],
    table: pd.DataFrame,
    inputs: pd.DataFrame,
    settings: DatasetSettings,
    targets: dict,
    engine_targets: dict[str, np.ndarray] | None = None,
) -> GatherPlan:
    """Join results with site rows and labels, find failures, split, order, average.
    ``engine_targets``: labels computed by the engine, rows as the ok items in chunk
    order."""
    parts = []
    for s in summaries:
        df = s.sites.copy()
        df["chunk"] = s.chunk
        parts.append(df)
    results = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["site_id", "ok", "reason", "detail", "input_hash", "chunk"])
    )
    results = plain_strings(results)
    inputs = plain_strings(inputs)
    dup = results["site_id"].duplicated(keep=False)
    if dup.any():
        first = results[dup].iloc[0]["site_id"]
        where = sorted(results.loc[results["site_id"] == first, "chunk"])
        raise DatasetError(f"item {first} appears in more than one chunk file: {where}")
    failures = _failures(results, table, inputs)
    ok = results[results["ok"].astype(bool)].reset_index(drop=True)
    missing = ~ok["site_id"].isin(table.index)
    if missing.any():
        row = ok[missing].iloc[0]
        raise DatasetError(f"{row['chunk']}: item {row['site_id']} has no row in the site tables")
    rows = table.loc[ok["site_id"]].reset_index(drop=True)
    joined = pd.concat([ok, rows.drop(columns=["site_id"])], axis=1)
    joined["frame"] = joined["frame"].astype("Int64").fillna(-1)
    split_s, avg = settings.split, settings.averaging
    groups = group_keys(joined, split_s.group_by)
    try:
        split = split_groups(groups, split_s.fractions, split_s.seed)
    except ValueError as err:
        raise DatasetError(str(err)) from None
    order = np.argsort(split, kind="stable")
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    joined = joined.iloc[order].reset_index(drop=True)
    split = split[order]
    joined["group"] = groups[order]
    joined["avg_pool"] = (
        np.asarray(SPLITS, dtype=object)[split]
        if avg.within == "split"
        else joined["group"].to_numpy()
    )
    members = example_members(split, joined["avg_pool"].to_numpy(), avg.k, avg.n_examples, avg.seed)
    w = (
        joined["multiplicity"].to_numpy(dtype=float)[members]
        if avg.weighted
        else np.ones(members.shape)
    )
    weights = w / w.sum(axis=1, keepdims=True) if len(w) else w
    labels = {name: arr[order] for name, arr in (engine_targets or {}).items()}
    for name in targets:
        if name in labels:
            continue
        col = joined[name]
        if len(col) and isinstance(col.iloc[0], np.ndarray):
            labels[name] = np.stack(col.to_numpy()).astype(np.float32)
        else:
            labels[name] = col.to_numpy(dtype=np.float64)
    return GatherPlan(joined, pos, split, members, weights, failures, labels, targets)
