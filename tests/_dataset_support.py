"""Real FEFF results for the dataset, feature and inspect tests.

:func:`feff_results` runs the real stages (``mlxas structures``, ``sites``,
``feff-inputs``, ``run-feff`` with FEFF8L) on a Cu octahedron (4 unique sites) once per
test session.  A second source, a cuboctahedron, is run with a timeout too short for
FEFF and one input marked as refused, which gives real failure records.

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
from mlxas.config import validate_config

CONFIG = validate_config(cu_nanoparticles_config("dataset_tests", [4], [2], chunk_size=2))


def settings(**over: dict) -> dict:
    """Dataset settings from the test config's defaults, with sections updated by ``over``."""
    cfg = json.loads(json.dumps(CONFIG))
    for section, values in over.items():
        target = cfg["dataset"] if section == "split" else cfg
        key = section
        if isinstance(values, dict):
            merged = target[key]
            for k, v in values.items():
                if isinstance(v, dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
        else:
            target[key] = values
    cfg = validate_config(cfg)
    return {
        "features": cfg["features"],
        "averaging": cfg["averaging"],
        "split": cfg["dataset"]["split"],
    }


@dataclass
class FeffResults:
    root: Path
    chunks: list[Path]  # octa: real spectra
    failed_chunks: list[Path]  # cubo: a timeout and a refused input
    sites: list[Path]
    rejected: list[Path]
    inputs: list[Path]


def _run(*args: str) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = mlxas(list(args))
    if rc != 0:
        raise AssertionError(f"mlxas {args[0]} failed ({rc}):\n{out.getvalue()}")


def _source(root: Path, src: dict, timeout: float, refuse: str | None) -> list[Path]:
    res = root / "results"
    sdir = res / "structures" / src["name"]
    _run(
        "structures",
        "--spec",
        json.dumps({"source": src, "absorber": "Cu", "engine": "feff8l"}),
        "--out-dir",
        str(sdir),
    )
    sites = res / "sites" / f"{src['name']}.parquet"
    sites.parent.mkdir(parents=True, exist_ok=True)
    spec = {"absorber": "Cu", "sites": CONFIG["sites"], "labels": CONFIG["labels"]}
    _run(
        "sites",
        "--spec",
        json.dumps(spec),
        "--structures",
        str(sdir / "structures.extxyz"),
        "--out",
        str(sites),
    )
    fdir = res / "feff" / src["name"]
    fdir.mkdir(parents=True, exist_ok=True)
    _run(
        "feff-inputs",
        "--spec",
        json.dumps({"feff": CONFIG["feff"], "edge": "K"}),
        "--structures",
        str(sdir / "structures.extxyz"),
        "--sites",
        str(sites),
        "--table",
        str(fdir / "inputs.parquet"),
        "--chunks",
        str(fdir / "chunks.json"),
    )
    if refuse:
        table = pd.read_parquet(fdir / "inputs.parquet")
        table.loc[0, ["feff_inp", "input_hash", "reason", "detail"]] = [
            "",
            "",
            refuse,
            "marked as refused by the test",
        ]
        table.to_parquet(fdir / "inputs.parquet", index=False)
    n_chunks = json.loads((fdir / "chunks.json").read_text())["n_chunks"]
    chunks = []
    for i in range(n_chunks):
        out = fdir / "chunks" / f"{i:05d}.h5"
        out.parent.mkdir(parents=True, exist_ok=True)
        _run(
            "run-feff",
            "--inputs",
            str(fdir / "inputs.parquet"),
            "--chunk",
            str(i),
            "--workdir",
            str(fdir / "runs"),
            "--out",
            str(out),
            "--timeout",
            str(timeout),
            "--threads",
            "2",
            "--quiet",
        )
        chunks.append(out)
    return chunks


@cache
def feff_results(root: Path) -> FeffResults:
    """Run the real stages once per session under ``root``."""
    octa, cubo = CONFIG["structures"]
    chunks = _source(root, octa, timeout=300.0, refuse=None)
    failed = _source(root, cubo, timeout=0.001, refuse="cluster_too_large")
    res = root / "results"
    return FeffResults(
        root=root,
        chunks=chunks,
        failed_chunks=failed,
        sites=[res / "sites" / "octa.parquet", res / "sites" / "cubo.parquet"],
        rejected=sorted((res / "structures").glob("*/rejected.csv")),
        inputs=sorted((res / "feff").glob("*/inputs.parquet")),
    )


def derived_copies(
    feff: FeffResults,
    out_dir: Path,
    n_structures: int,
    chunk_size: int = 8,
    frames: bool = False,
    first: int = 0,
    scale: bool = True,
) -> tuple[list[Path], Path]:
    """``n_structures`` copies of the real octahedron's sites as new structures.

    Copy ``i`` gets structure id ``d{i:015x}`` (or frame ``i`` of one trajectory with
    ``frames``); its chi(k) is the real one scaled by ``1 + i/1000`` so copies differ.
    Returns the chunk files and the site table.
    """
    from mlxas.feff.chunk import read_chunk, write_chunk
    from mlxas.sites import write_sites

    out_dir.mkdir(parents=True, exist_ok=True)
    real = [r for c in feff.chunks for r in read_chunk(c)]
    sites = pd.read_parquet(feff.sites[0]).set_index("site_id")
    results, rows = [], []
    for i in range(first, first + n_structures):
        sid = f"d{i:015x}"
        for r in real:
            index = int(sites.at[r.site_id, "site_index"])
            new_id = f"{sid}-{index:05d}"
            factor = 1 + i / 1000 if scale else 1.0
            results.append(replace(r, site_id=new_id, chi=r.chi * factor, input_hash=f"in{new_id}"))
            row = sites.loc[r.site_id].to_dict()
            row.update(
                site_id=new_id,
                structure_id=sid,
                source="md" if frames else "copies",
                name=f"md_{i:06d}" if frames else f"copy_{i}",
                frame=i if frames else None,
            )
            rows.append(row)
    chunks = []
    for a in range(0, len(results), chunk_size):
        path = out_dir / f"{first:05d}-{a // chunk_size:05d}.h5"
        write_chunk(path, results[a : a + chunk_size])
        chunks.append(path)
    table = pd.DataFrame(rows)
    table["frame"] = table["frame"].astype("Int64")
    site_file = out_dir / f"sites_{first}.parquet"
    write_sites(table, site_file, CONFIG["labels"])
    return chunks, site_file


def k_grid() -> np.ndarray:
    from mlxas.spectra.grids import k_grid as grid

    return grid(CONFIG["features"]["k_grid"])
