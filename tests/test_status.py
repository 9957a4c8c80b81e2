"""``mlxas status``: counts per source from input tables, chunk summaries and run markers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlxas.feff.chunk import SiteResult, write_chunk
from mlxas.feff.layout import DONE_MARKER

from conftest import VENV_BIN
from mlxas.status import collect_status, print_status


def _fake_source(
    results: Path, name: str, n_sites: int, chunk_size: int, refused=(), plan=True
) -> Path:
    """An input table and chunk plan as `mlxas feff-inputs` writes them (what status reads)."""
    folder = results / "feff" / name
    (folder / "chunks").mkdir(parents=True)
    ids = [f"{name}-{i:05d}" for i in range(n_sites)]
    table = pd.DataFrame(
        {
            "site_id": ids,
            "chunk": [i // chunk_size for i in range(n_sites)],
            "feff_inp": ["TITLE x\nEND\n"] * n_sites,
            "reason": ["too_many_atoms" if i in refused else "" for i in range(n_sites)],
        }
    )
    table.to_parquet(folder / "inputs.parquet", row_group_size=chunk_size)
    if plan:
        per_chunk: dict[str, dict[str, int]] = {}
        for i in refused:
            per_chunk.setdefault(str(i // chunk_size), {})["too_many_atoms"] = 1
        sizes = table["chunk"].value_counts().sort_index().tolist()
        (folder / "chunks.json").write_text(
            json.dumps({"sites_per_chunk": sizes, "refused_per_chunk": per_chunk})
        )
    return folder


def _result(site_id: str, reason: str = "") -> SiteResult:
    if reason:
        return SiteResult(site_id=site_id, status="failed", reason=reason, seconds=1.0)
    k = np.arange(1, 21) * 0.5
    return SiteResult(site_id=site_id, status="ok", seconds=2.0, k=k, chi=np.sin(k))


@pytest.mark.parametrize("plan", [True, False], ids=["chunks.json", "input table"])
def test_counts_reasons_and_resumable(tmp_path, capsys, plan):
    res = tmp_path / "results" / "exp"
    octa = _fake_source(res, "octa", 10, 4, refused={9}, plan=plan)
    # chunk 0 finished: 3 ok, 1 timeout; chunk 1 finished: 2 ok, 2 atoms_very_close.
    write_chunk(
        octa / "chunks" / "00000.h5",
        [_result("octa-00000"), _result("octa-00001"), _result("octa-00002"),
         _result("octa-00003", "timeout")],
    )  # fmt: skip
    write_chunk(
        octa / "chunks" / "00001.h5",
        [_result("octa-00004"), _result("octa-00005", "atoms_very_close"),
         _result("octa-00006", "atoms_very_close"), _result("octa-00007")],
    )  # fmt: skip
    # chunk 2 (sites 8, 9) not written; site 8 already ran (killed job), site 9 was refused.
    marker = octa / "runs" / "octa-00008" / DONE_MARKER
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"input_hash": "x"}))
    _fake_source(res, "cubes", 5, 5)  # nothing ran yet
    (res / "structures" / "spheres").mkdir(parents=True)  # inputs not written yet

    stats = {s.source: s for s in collect_status(res, resumable=True)}
    octa_st, cubes_st = stats["octa"], stats["cubes"]
    assert (octa_st.sites, octa_st.done, octa_st.failed, octa_st.pending) == (10, 5, 4, 1)
    assert (octa_st.resumable, octa_st.chunks, octa_st.chunks_done) == (1, 3, 2)
    assert octa_st.reasons == {"atoms_very_close": 2, "timeout": 1, "too_many_atoms": 1}
    assert (cubes_st.done, cubes_st.failed, cubes_st.pending, cubes_st.chunks_done) == (0, 0, 5, 0)

    assert print_status(res, resumable=True) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == [
        "source",
        "sites",
        "done",
        "failed",
        "pending",
        "resumable",
        "chunks",
    ]
    assert out.splitlines()[2].split() == ["cubes", "5", "0", "0", "5", "0", "0/1"]
    assert "spheres: structures built, FEFF inputs not written yet" in out
    assert "octa failures: atoms_very_close ×2, timeout ×1, too_many_atoms ×1" in out
    assert "total: 5 done, 6 pending, 4 failed of 15 sites" in out


def test_cli_json(tmp_path):
    res = tmp_path / "results" / "exp"
    src = _fake_source(res, "octa", 3, 3)
    write_chunk(src / "chunks" / "00000.h5", [_result(f"octa-0000{i}") for i in range(3)])
    out = subprocess.run(
        [str(VENV_BIN / "mlxas"), "status", str(res), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (entry,) = json.loads(out.stdout)
    assert entry["source"] == "octa" and entry["done"] == 3 and entry["pending"] == 0


def test_nothing_run_yet(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "experiment: fresh\nabsorber: Cu\nstructures:\n"
        "  - {name: a, kind: nanoparticles, element: Cu, shape: cube, sizes: [2]}\n"
    )
    assert print_status(cfg) == 0  # results/fresh does not exist (relative to the cwd)
    assert "results/fresh: no results yet" in capsys.readouterr().out
    assert print_status(tmp_path / "results" / "never") == 0  # a results folder not made yet
    assert "no results yet" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert print_status(tmp_path / "empty") == 0
    assert "no FEFF inputs yet" in capsys.readouterr().out
