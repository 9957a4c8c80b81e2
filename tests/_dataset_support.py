"""Real FEFF results for the dataset, feature and inspect tests.

:func:`feff_results` runs the real stages (``mlxas structures``, ``sites``, ``labels``,
``inputs``, ``simulate`` with FEFF8L, with the workflow's specs and paths) on a Cu
octahedron (4 unique sites) once per test session.  A second source, a cuboctahedron, is
run with a timeout too short for FEFF and one input marked as refused, which gives real
failure records.

:func:`derived_copies` makes many more sites for the split, averaging, cache and kill
tests by copying the real FEFF spectra under new site and structure ids (optionally
scaled, to make them distinguishable); the labels travel with the spectra.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from _cu_config import cu_nanoparticles_config
from mlxas.cli import main as mlxas
from mlxas.workflow.checks import check_config
from mlxas.workflow.layout import RESULTS, Layout

EXPERIMENT = check_config(cu_nanoparticles_config("dataset_tests", [4], [2], chunk_size=2))
CONFIG = EXPERIMENT.config


def settings(**over: dict):
    """Dataset settings from the test config's defaults, with sections updated by ``over``
    (``features``, ``averaging``, ``split``) the way a config file would."""
    from mlxas.settings import deep_merge as merge

    raw = json.loads(json.dumps(CONFIG))
    for section, values in over.items():
        if section == "split":
            raw["dataset"]["split"] = merge(raw["dataset"]["split"], values)
        else:
            raw[section] = merge(raw[section], values)
    return check_config(raw).dataset


@dataclass
class FeffResults:
    root: Path
    chunks: list[Path]  # octa: real spectra
    failed_chunks: list[Path]  # cubo: a timeout and a refused input
    sites: list[Path]
    labels: list[Path]
    inputs: list[Path]


def _layout(root: Path) -> Layout:
    return Layout.for_experiment(EXPERIMENT.name, root / RESULTS)


def _run(*args: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = mlxas(list(args))
    if rc != 0:
        raise AssertionError(f"mlxas {args[0]} failed ({rc}):\n{out.getvalue()}")


def _source(root: Path, name: str, timeout: float, refuse: str | None) -> list[Path]:
    """The stage commands of one source, with the rules' specs and paths."""
    exp, L = EXPERIMENT, _layout(root)
    frames, sites, labels = L.structures_frames(name), L.sites(name), L.labels(name)
    folder = L.simulation(name)
    _run("structures", "--spec", exp.spec("structures", name), "--frames", str(frames),
         "--index", str(L.structures_index(name)),
         "--rejected", str(L.structures_rejected(name)))  # fmt: skip
    _run("sites", "--spec", exp.spec("sites", name), "--structures", str(frames),
         "--rejected", str(L.structures_rejected(name)), "--out", str(sites))  # fmt: skip
    _run("labels", "--spec", exp.spec("labels"), "--structures", str(frames),
         "--sites", str(sites), "--out", str(labels))  # fmt: skip
    _run("inputs", "--spec", exp.spec("inputs"), "--structures", str(frames),
         "--sites", str(sites), "--folder", str(folder.path))  # fmt: skip
    if refuse:
        table = pd.read_parquet(folder.inputs_table)
        table.loc[0, ["text", "input_hash", "reason", "detail"]] = [
            "",
            "",
            refuse,
            "marked as refused by the test",
        ]
        table.to_parquet(folder.inputs_table, index=False)
    n_chunks = json.loads(folder.chunk_plan.read_text())["n_chunks"]
    spec = json.dumps({"timeout": timeout})
    for i in range(n_chunks):
        _run("simulate", "--spec", spec, "--folder", str(folder.path), "--chunk", str(i),
             "--threads", "2", "--quiet")  # fmt: skip
    return [folder.chunk(i) for i in range(n_chunks)]


@cache
def feff_results(root: Path) -> FeffResults:
    """Run the real stages once per session under ``root``."""
    chunks = _source(root, "octa", timeout=300.0, refuse=None)
    failed = _source(root, "cubo", timeout=0.001, refuse="cluster_too_large")
    L = _layout(root)
    return FeffResults(
        root=root,
        chunks=chunks,
        failed_chunks=failed,
        sites=[L.sites("octa"), L.sites("cubo")],
        labels=[L.labels("octa"), L.labels("cubo")],
        inputs=[L.simulation(s).inputs_table for s in ("octa", "cubo")],
    )


def derived_copies(
    feff: FeffResults,
    out_dir: Path,
    n_structures: int,
    chunk_size: int = 8,
    frames: bool = False,
    first: int = 0,
    scale: bool = True,
) -> tuple[list[Path], Path, Path]:
    """``n_structures`` copies of the real octahedron's sites as new structures.

    Copy ``i`` gets structure id ``d{i:015x}`` (or frame ``i`` of one trajectory with
    ``frames``); its chi(k) is the real one scaled by ``1 + i/1000`` so copies differ.
    Returns the chunk files, the site table and the label table.
    """
    from mlxas.simulation.chunk import chunk_engine, read_chunk, write_chunk
    from mlxas.sites import SitesSettings, read_labels, write_labels, write_sites

    out_dir.mkdir(parents=True, exist_ok=True)
    engine, settings_hash = chunk_engine(feff.chunks[0])
    real = [r for c in feff.chunks for r in read_chunk(c)]
    sites = pd.read_parquet(feff.sites[0]).set_index("site_id")
    labels, meta = read_labels(feff.labels[0])
    labels = labels.set_index("site_id")
    results, rows, label_rows = [], [], []
    for i in range(first, first + n_structures):
        sid = f"d{i:015x}"
        for r in real:
            index = int(sites.at[r.item_id, "site_index"])
            new_id = f"{sid}-{index:05d}"
            factor = 1 + i / 1000 if scale else 1.0
            arrays = {**r.arrays, "chi": r.arrays["chi"] * factor}
            results.append(replace(r, item_id=new_id, arrays=arrays, input_hash=f"in{new_id}"))
            row = sites.loc[r.item_id].to_dict()
            row.update(
                site_id=new_id,
                structure_id=sid,
                source="md" if frames else "copies",
                name=f"md_{i:06d}" if frames else f"copy_{i}",
                frame=i if frames else None,
            )
            rows.append(row)
            label_rows.append({"site_id": new_id, **labels.loc[r.item_id].to_dict()})
    chunks = []
    for a in range(0, len(results), chunk_size):
        path = out_dir / f"{first:05d}-{a // chunk_size:05d}.h5"
        summary = path.with_name(f"{path.stem}.summary.json")
        write_chunk(path, results[a : a + chunk_size], summary, engine.name,
                    engine.settings_dict(), settings_hash)  # fmt: skip
        chunks.append(path)
    table = pd.DataFrame(rows)
    table["frame"] = table["frame"].astype("Int64")
    site_file = out_dir / f"sites_{first}.parquet"
    write_sites(table, site_file, SitesSettings())
    label_file = out_dir / f"labels_{first}.parquet"
    write_labels(pd.DataFrame(label_rows), meta, label_file)
    return chunks, site_file, label_file


def k_grid() -> np.ndarray:
    from mlxas.spectra.grids import k_grid as grid

    return grid(CONFIG["features"]["k_grid"])
