"""``mlxas status``: counts per source from chunk plans, chunk summaries and run markers."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from conftest import VENV_BIN
from mlxas.engines import ItemResult
from mlxas.simulation.chunk import write_chunk
from mlxas.status import collect_status, print_status
from mlxas.workflow.layout import DONE_MARKER, Layout, SimulationFolder


def _fake_source(
    layout: Layout, name: str, n_sites: int, chunk_size: int, refused=()
) -> SimulationFolder:
    """An input table and chunk plan as `mlxas inputs` writes them (what status reads)."""
    folder = layout.simulation(name)
    folder.chunks_dir.mkdir(parents=True)
    ids = [f"{name}-{i:05d}" for i in range(n_sites)]
    table = pd.DataFrame(
        {
            "item_id": ids,
            "chunk": [i // chunk_size for i in range(n_sites)],
            "text": ["TITLE x\nEND\n"] * n_sites,
            "reason": ["too_many_atoms" if i in refused else "" for i in range(n_sites)],
        }
    )
    table.to_parquet(folder.inputs_table, row_group_size=chunk_size)
    per_chunk: dict[str, dict[str, int]] = {}
    for i in refused:
        per_chunk.setdefault(str(i // chunk_size), {})["too_many_atoms"] = 1
    sizes = table["chunk"].value_counts().sort_index().tolist()
    folder.chunk_plan.write_text(
        json.dumps({"items_per_chunk": sizes, "refused_per_chunk": per_chunk})
    )
    return folder


def _result(item_id: str, reason: str = "") -> ItemResult:
    if reason:
        return ItemResult(item_id, "failed", "h", "feff8l", "v", reason=reason, seconds=1.0)
    k = np.arange(1, 21) * 0.5
    return ItemResult(item_id, "ok", "h", "feff8l", "v", seconds=2.0,
                      arrays={"k": k, "chi": np.sin(k)})  # fmt: skip


def _write(folder: SimulationFolder, chunk: int, results: list[ItemResult]) -> None:
    write_chunk(folder.chunk(chunk), results, folder.chunk_summary(chunk), "feff8l", {})


def test_counts_reasons_and_resumable(tmp_path, capsys):
    layout = Layout(tmp_path / "results" / "exp")
    octa = _fake_source(layout, "octa", 10, 4, refused={9})
    # chunk 0 finished: 3 ok, 1 timeout; chunk 1 finished: 2 ok, 2 atoms_very_close.
    _write(octa, 0, [_result("octa-00000"), _result("octa-00001"), _result("octa-00002"),
                     _result("octa-00003", "timeout")])  # fmt: skip
    _write(octa, 1, [_result("octa-00004"), _result("octa-00005", "atoms_very_close"),
                     _result("octa-00006", "atoms_very_close"), _result("octa-00007")])  # fmt: skip
    # chunk 2 (sites 8, 9) not written; site 8 already ran (killed job), site 9 was refused.
    marker = octa.runs_dir / "octa-00008" / DONE_MARKER
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"input_hash": "x"}))
    _fake_source(layout, "cubes", 5, 5)  # nothing ran yet
    spheres = layout.structures_frames("spheres")  # structures built, inputs not written
    spheres.parent.mkdir(parents=True)
    spheres.write_text("")

    stats = {s.source: s for s in collect_status(layout, resumable=True)}
    octa_st, cubes_st = stats["octa"], stats["cubes"]
    assert (octa_st.sites, octa_st.done, octa_st.failed, octa_st.pending) == (10, 5, 4, 1)
    assert (octa_st.resumable, octa_st.chunks, octa_st.chunks_done) == (1, 3, 2)
    assert octa_st.reasons == {"atoms_very_close": 2, "timeout": 1, "too_many_atoms": 1}
    assert (cubes_st.done, cubes_st.failed, cubes_st.pending, cubes_st.chunks_done) == (0, 0, 5, 0)

    assert print_status(layout.root, resumable=True) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == [
        "source",
        "items",
        "done",
        "failed",
        "pending",
        "resumable",
        "chunks",
    ]
    assert out.splitlines()[2].split() == ["cubes", "5", "0", "0", "5", "0", "0/1"]
    assert "spheres: structures built, simulation inputs not written yet" in out
    assert "octa failures: atoms_very_close ×2, timeout ×1, too_many_atoms ×1" in out
    assert "total: 5 done, 6 pending, 4 failed of 15 items" in out


def test_cli_json(tmp_path):
    layout = Layout(tmp_path / "results" / "exp")
    src = _fake_source(layout, "octa", 3, 3)
    _write(src, 0, [_result(f"octa-0000{i}") for i in range(3)])
    out = subprocess.run(
        [str(VENV_BIN / "mlxas"), "status", str(layout.root), "--json"],
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
    (tmp_path / "empty").mkdir()
    assert print_status(tmp_path / "empty") == 0
    assert "no simulation inputs yet" in capsys.readouterr().out


def test_missing_results_folder_is_refused(tmp_path):
    """A path that is neither a results folder nor a config file is an error naming it,
    not "no results yet": a mistyped path must not look like a fresh experiment."""
    missing = tmp_path / "results" / "nevr"
    with pytest.raises(FileNotFoundError, match="nevr: no such results folder or config file"):
        print_status(missing)
    out = subprocess.run(
        [str(VENV_BIN / "mlxas"), "status", str(missing), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert f"{missing}: no such results folder or config file" in out.stderr
