"""Build a powder-XRD dataset with the ``xrd`` engine, outside the workflow (a script-level
stand-in for structures → labels → simulate → gather until the shared stage runs the
engine; the same engine, labels and item ids are used).

Output (HDF5):

- ``features/intensity`` float32 [N, n_points], the engine's ``featurize``; ``axis``;
- ``labels/crystal_system``, ``labels/space_group`` (1..230), ``labels/structure_type``
  (int); ``items/item_id``, ``items/structure_id``, ``items/source``, ``items/formula``,
  ``items/split`` (0 train, 1 validation, 2 test);
- attributes: ``settings`` (engine settings JSON), ``features``, ``class_names`` (JSON
  per label), ``engine_version``, counts, failures and timings.

Splits are grouped by reduced formula, so a test structure's composition is never in the
training data (its structure neither: structures are drawn per composition and group).
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.provenance import hash_json, structure_hash
from mlxas.xrd.engine import (
    ENGINE_REVISION,
    XRDEngine,
    item_input,
    pattern_item_id,
    structure_json,
)
from mlxas.xrd.labels import CRYSTAL_SYSTEMS, structure_labels, structure_types
from mlxas.xrd.settings import XRDFeatures, XRDSettings

__all__ = ["StructureTask", "build_dataset", "group_split", "structure_tasks"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class StructureTask:
    """One structure to make: a random crystal (space group, seed) or a prototype
    instance (name, seed)."""

    source: str  #: random | prototype
    key: str  #: space-group number or prototype name
    seed: int
    #: CPU seconds per pyxtal placement (RandomCrystalSettings.time_limit); None: none
    time_limit: float | None = None


def structure_tasks(
    n_random: int, n_prototype: int, seed: int, time_limit: float | None = None
) -> list[StructureTask]:
    """``n_random`` random crystals spread evenly over the 230 groups and
    ``n_prototype`` prototype instances spread over the table."""
    from mlxas.xrd.prototypes import prototype_names

    tasks = [
        StructureTask("random", str(1 + i % 230), seed * 1_000_003 + i, time_limit)
        for i in range(n_random)
    ]
    names = prototype_names()
    tasks += [
        StructureTask("prototype", names[i % len(names)], seed * 1_000_003 + i)
        for i in range(n_prototype)
    ]
    return tasks


def group_split(group: str, fractions: tuple[float, float, float], seed: int) -> int:
    """Split index of a group key: a hash of (seed, key) placed in the cumulative fractions."""
    u = int(hash_json({"seed": seed, "group": group}), 16) / 16**16
    cum = np.cumsum(fractions)
    return int(min(np.searchsorted(cum, u, side="right"), 2))


def _make_structure(task: StructureTask):
    if task.source == "random":
        from mlxas.xrd.random_crystals import RandomCrystalSettings, random_crystal

        return random_crystal(
            int(task.key), task.seed, RandomCrystalSettings(time_limit=task.time_limit)
        )
    from mlxas.xrd.prototypes import prototype_structure

    return prototype_structure(task.key, np.random.default_rng(task.seed))


def _structure_id(structure) -> str:
    return structure_hash(
        [s.specie.symbol for s in structure], structure.cart_coords, structure.lattice.matrix, True
    )


def _work(
    args: tuple[StructureTask, XRDSettings, int, XRDSettings, int],
) -> dict[str, Any]:
    """One structure: make it, label it, simulate its patterns (in a worker process)."""
    task, settings, n_patterns, clean_settings, clean = args
    t0 = time.process_time()
    try:
        s = _make_structure(task)
    except Exception as err:
        return {"task": task, "failed": f"structure: {type(err).__name__}: {err}"}
    t_struct = time.process_time() - t0
    if s is None:
        return {"task": task, "failed": "structure: no placement", "t_struct": t_struct}
    sid = _structure_id(s)
    t1 = time.process_time()
    try:
        labels = structure_labels(s)
    except ValueError as err:
        return {"task": task, "failed": f"labels: {err}", "t_struct": t_struct}
    out = {"task": task, "structure_id": sid, "labels": labels, "t_struct": t_struct}
    out["t_labels"] = time.process_time() - t1
    out["formula"] = s.composition.reduced_formula
    out["structure"] = structure_json(s)
    for name, st, n in (("patterns", settings, n_patterns), ("clean", clean_settings, clean)):
        eng = XRDEngine(st)
        rows, fails, t2 = [], [], time.process_time()
        for p in range(n):
            it = item_input(eng, s, pattern_item_id(sid, p), sid)
            res = eng.run(it, Path("."), 60.0) if not it.reason else None
            if res is not None and res.ok:
                rows.append((it.item_id, res.arrays["intensity"]))
            else:
                fails.append((it.item_id, it.reason or res.reason, it.detail or res.detail))
        out[name] = rows
        out[f"{name}_failed"] = fails
        out[f"t_{name}"] = time.process_time() - t2
    return out


def run_tasks(
    tasks: list[StructureTask],
    settings: XRDSettings,
    n_patterns: int,
    clean_patterns: int,
    workers: int,
    parts: Path | None = None,
    part_size: int = 100,
) -> Iterator[dict[str, Any]]:
    """Results of :func:`_work` for every task, in order, over ``workers`` processes.

    With ``parts`` (a folder), every ``part_size`` tasks are saved as one part file and a
    rerun loads the parts already there instead of computing them again: a long build
    that stops resumes where it stopped.  Parts are private intermediate files of this
    function (pickles), keyed by a hash of their tasks and the settings.
    """
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for start in range(0, len(tasks), part_size):
            chunk = tasks[start : start + part_size]
            key = hash_json(
                {"tasks": [t.__dict__ for t in chunk], "settings": settings.to_dict(),
                 "n": n_patterns, "clean": clean_patterns, "code": ENGINE_REVISION}
            )  # fmt: skip
            path = parts / f"{start // part_size:05d}-{key}.pkl" if parts else None
            if path is not None and path.is_file():
                yield from pickle.loads(path.read_bytes())
                continue
            args = [(t, settings, n_patterns, settings.clean(), clean_patterns) for t in chunk]
            done = list(pool.map(_work, args, chunksize=2) if pool else map(_work, args))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(pickle.dumps(done, protocol=5))
                os.replace(tmp, path)
            yield from done
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def build_dataset(
    out: str | Path,
    tasks: list[StructureTask],
    settings: XRDSettings,
    n_patterns: int = 5,
    clean_test: bool = True,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    split_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Simulate ``n_patterns`` patterns per structure of ``tasks`` and write ``out``;
    with ``clean_test`` also one effect-free pattern per test structure to
    ``<out stem>_clean.h5``.  Work in progress is kept in ``<out stem>.parts/`` (see
    :func:`run_tasks`): rerunning the same command resumes.  Returns the summary
    written to the file's attributes."""
    from tqdm import tqdm

    t_wall = time.perf_counter()
    parts = Path(out).with_suffix(".parts")
    results = run_tasks(tasks, settings, n_patterns, 1 if clean_test else 0, workers, parts)
    rows: dict[str, list] = {k: [] for k in ("item", "sid", "source", "formula", "cs", "sg", "st")}
    clean_rows: dict[str, list] = {k: [] for k in rows}
    x, xc, failures, structures, cpu = (
        [],
        [],
        [],
        {},
        {"struct": 0.0, "labels": 0.0, "patterns": 0.0},
    )
    seen: set[str] = set()
    for r in tqdm(results, total=len(tasks), disable=not progress, desc="structures"):
        cpu["struct"] += r.get("t_struct", 0.0)
        if "failed" in r:
            failures.append({"task": r["task"].__dict__, "reason": r["failed"]})
            continue
        if r["structure_id"] in seen:  # the same crystal drawn twice: keep the first
            failures.append({"task": r["task"].__dict__, "reason": "duplicate structure"})
            continue
        seen.add(r["structure_id"])
        cpu["labels"] += r["t_labels"]
        cpu["patterns"] += r["t_patterns"]
        lab, src = r["labels"], r["task"].source
        structures[r["structure_id"]] = {
            "source": src,
            "formula": r["formula"],
            **lab,
            "structure": r["structure"],
        }
        split = group_split(r["formula"], fractions, split_seed)
        for item_id, y in r["patterns"]:
            _append(rows, item_id, r, src, lab)
            x.append(y)
        failures += [{"item": i, "reason": a, "detail": b} for i, a, b in r["patterns_failed"]]
        if split == 2:
            for item_id, y in r["clean"]:
                _append(clean_rows, item_id, r, src, lab)
                xc.append(y)
    engine = XRDEngine(settings)
    feats = XRDFeatures()
    summary = {
        "n_tasks": len(tasks),
        "n_structures": len(structures),
        "n_patterns": len(x),
        "n_failures": len(failures),
        "cpu_seconds": cpu,
        "wall_seconds": time.perf_counter() - t_wall,
        "workers": workers,
        "engine_version": engine.version,
    }
    split = np.array(
        [group_split(f, fractions, split_seed) for f in rows["formula"]], dtype=np.int8
    )
    _write(Path(out), engine, feats, x, rows, split, summary, failures, structures)
    if clean_test:
        csplit = np.full(len(xc), 2, dtype=np.int8)
        _write(
            _clean_path(out),
            XRDEngine(settings.clean()),
            feats,
            xc,
            clean_rows,
            csplit,
            summary,
            [],
            {},
        )
    return summary


def _clean_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + "_clean.h5")


def _append(rows: dict, item_id: str, r: dict, src: str, lab: dict) -> None:
    rows["item"].append(item_id)
    rows["sid"].append(r["structure_id"])
    rows["source"].append(src)
    rows["formula"].append(r["formula"])
    rows["cs"].append(lab["crystal_system"])
    rows["sg"].append(lab["space_group"])
    rows["st"].append(lab["structure_type"])


def _write(path, engine, feats, x, rows, split, summary, failures, structures) -> None:
    import h5py

    from mlxas.xrd.engine import pattern_features
    from mlxas.xrd.pattern import axis_grid

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".h5.tmp")
    arr = np.stack(x) if x else np.zeros((0, engine.settings.n_points), np.float32)
    str_dt = h5py.string_dtype()
    with h5py.File(tmp, "w") as f:
        f.create_dataset("features/intensity", data=pattern_features(arr, feats), chunks=True)
        f["axis"] = axis_grid(engine.settings)
        f["labels/crystal_system"] = np.asarray(rows["cs"], dtype=np.int16)
        f["labels/space_group"] = np.asarray(rows["sg"], dtype=np.int16)
        f["labels/structure_type"] = np.asarray(rows["st"], dtype=np.int16)
        for key, name in (
            ("item", "item_id"),
            ("sid", "structure_id"),
            ("source", "source"),
            ("formula", "formula"),
        ):
            f.create_dataset(
                f"items/{name}", data=np.asarray(rows[key], dtype=object), dtype=str_dt
            )
        f["items/split"] = split
        f.attrs["settings"] = json.dumps(engine.settings.to_dict())
        f.attrs["features"] = json.dumps(feats.__dict__)
        f.attrs["axis_unit"] = "deg" if engine.settings.axis == "two_theta" else "1/Å"
        f.attrs["class_names"] = json.dumps(
            {
                "crystal_system": CRYSTAL_SYSTEMS,
                "space_group": list(range(1, 231)),
                "structure_type": structure_types(),
            }
        )
        f.attrs["summary"] = json.dumps(summary)
        f.attrs["failures"] = json.dumps(failures[:10000])
        if structures:
            ids = list(structures)
            f.create_dataset(
                "structures/structure_id", data=np.asarray(ids, dtype=object), dtype=str_dt
            )
            docs = [json.dumps(structures[i], default=str) for i in ids]
            f.create_dataset("structures/json", data=np.asarray(docs, dtype=object), dtype=str_dt)
    os.replace(tmp, path)
