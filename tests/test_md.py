"""The ``md`` structure source: protocol bookkeeping, thermostat, checkpoints and resume,
and its place in the ``structures`` stage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import mlxas.structures.cluster_search as cluster_search
import mlxas.structures.sutton_chen as sutton_chen
from mlxas.errors import ConfigError
from mlxas.structures import build_source, read_structures, source_from_config
from mlxas.structures.md import MDSettings, read_thermo
from mlxas.structures.md import md_frames as _md_frames
from mlxas.workflow.config import SCHEMA_PATH

#: Au13 for 1.5 ps: 1000 steps of equilibration, 2000 of production, 20 frames.
TINY = {
    "name": "au13",
    "kind": "md",
    "element": "Au",
    "n_atoms": 13,
    "equilibration": 0.5,
    "production": 1.0,
    "snapshot_every": 100,
    "checkpoint_every": 250,
    "start_candidates": 1,
    "anneal_time": 0.2,
    "seed": 7,
}


def md_frames(spec: dict, work, progress: bool = False):
    """The frames of a config entry, read into its typed source as the stage reads it."""
    return _md_frames(source_from_config(spec), work, progress=progress)


def build(spec: dict, out: Path):
    return build_source(source_from_config(spec), "Au", out / "structures.extxyz",
                        out / "index.csv", out / "rejected.csv")  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, list[tuple[int, np.ndarray]]]:
    """One uninterrupted run of TINY: its folder and its frames."""
    work = tmp_path_factory.mktemp("md_reference")
    frames = [(k, at.positions.copy()) for k, at in md_frames(TINY, work, progress=False)]
    return work, frames


def test_settings_defaults_are_the_schema_defaults():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    branches = schema["properties"]["structures"]["items"]["allOf"]
    md = next(b for b in branches if b["if"]["properties"]["kind"]["const"] == "md")
    props = md["then"]["properties"]
    settings = MDSettings("Au", 150)
    for name, prop in props.items():
        if "default" in prop:
            assert getattr(settings, name) == prop["default"], name
    fields = set(MDSettings.__dataclass_fields__)
    assert fields == set(props) - {"name", "kind"}


def test_protocol_step_bookkeeping():
    s = MDSettings("Au", 150, equilibration=20.0, production=20.0, snapshot_every=10)
    assert (s.n_equilibration, s.n_production, s.n_frames) == (40000, 40000, 4000)  # paper
    # Walk the run event by event, as the MD loop does, and collect what it records.
    s = MDSettings("Au", 13, equilibration=0.105, production=0.2, snapshot_every=40,
                   checkpoint_every=70)  # fmt: skip
    step, rows, frames = 0, [0], []
    while step < s.n_steps:
        step = s.next_event(step)
        if s.is_thermo_step(step):
            rows.append(step)
        if s.frame_at(step) is not None:
            frames.append((s.frame_at(step), step))
        assert s.thermo_rows(step) == len(rows)
        assert s.frames_done(step) == len(frames)
    assert s.n_equilibration == 210 and s.n_steps == 610
    assert frames == [(0, 250), (1, 290), (2, 330), (3, 370), (4, 410), (5, 450), (6, 490),
                      (7, 530), (8, 570), (9, 610)]  # fmt: skip
    assert rows[:7] == [0, 40, 80, 120, 160, 200, 250]


def test_tiny_run_frames_and_thermostat(reference):
    work, frames = reference
    assert [k for k, _ in frames] == list(range(20))
    assert all(pos.shape == (13, 3) for _, pos in frames)
    assert not np.array_equal(frames[0][1], frames[-1][1])  # the atoms move
    thermo = read_thermo(work)
    assert len(thermo) == 1000 // 100 + 1 + 20
    assert list(thermo["phase"].unique()) == ["equilibration", "production"]
    # The Nosé–Hoover chain conserves its extended energy: integrator and forces agree.
    drift = np.ptp(thermo["conserved_eV"])
    assert drift < 1e-4, drift
    start = json.loads((work / "start.json").read_text())
    assert start["motif"].startswith("icosahedron")  # Au13 under Sutton–Chen


def test_thermostat_holds_the_canonical_temperature(tmp_path):
    """Production rows only: the mean internal temperature is 300 K within three standard
    errors, and the spread is the canonical one.

    Au13 has N_f = 3·13 − 6 = 33 kinetic degrees of freedom; in the canonical ensemble
    the instantaneous temperature fluctuates by T·sqrt(2/N_f) = 74 K.  2.5 ps sampled
    every 5 fs give 500 rows; the mean's standard error comes from 10 blocks of 250 fs
    (longer than the kinetic energy's correlation time, ~100 fs here), ~10 K, so the
    band is ~±30 K.  A thermostat aimed at 3N instead of 3N − 6 degrees of freedom
    (355 K), or one that damps the fluctuations (Berendsen-like), fails.
    """
    spec = {**TINY, "production": 2.5, "snapshot_every": 10, "checkpoint_every": 2000}
    for _ in md_frames(spec, tmp_path, progress=False):
        pass
    thermo = read_thermo(tmp_path)
    temp = thermo.loc[thermo["phase"] == "production", "temperature_K"].to_numpy()
    assert len(temp) == 500
    blocks = temp.reshape(10, 50).mean(axis=1)
    stderr = blocks.std(ddof=1) / np.sqrt(len(blocks))
    assert stderr < 15.0, stderr  # the band below is tight, not a formality
    assert abs(temp.mean() - 300.0) < 3 * stderr, (temp.mean(), stderr)
    canonical = 300.0 * np.sqrt(2 / (3 * 13 - 6))
    # ~100 effectively independent rows: the spread is known to ~7 %; 3σ band.
    assert temp.std(ddof=1) / canonical == pytest.approx(1.0, abs=0.25)


def test_interrupted_run_resumes_from_its_checkpoint(reference, tmp_path, monkeypatch):
    _, expected = reference
    work = tmp_path / "md"
    run = md_frames(TINY, work, progress=False)
    first = [next(run) for _ in range(7)]  # stop consuming after 7 of 20 frames
    run.close()
    with np.load(work / "checkpoint.npz") as ck:
        step = int(ck["step"])
    # Frame 6 is written at step 1700; the checkpoint before it is at step 1500.
    assert step == 1500

    calls = []
    original = sutton_chen.SuttonChen.calculate
    monkeypatch.setattr(
        sutton_chen.SuttonChen,
        "calculate",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )

    def no_search(*args, **kwargs):
        raise AssertionError("the start structure must come from the work folder")

    monkeypatch.setattr(cluster_search, "global_minimum", no_search)
    resumed = [(k, at.positions.copy()) for k, at in md_frames(TINY, work, progress=False)]

    assert [k for k, _ in resumed] == list(range(20))
    for (k, pos), (_, ref) in zip(resumed, expected, strict=True):
        np.testing.assert_array_equal(pos, ref, err_msg=f"frame {k}")
    for (k, atoms), (_, ref) in zip(first, expected, strict=False):
        np.testing.assert_array_equal(atoms.positions, ref, err_msg=f"frame {k}")
    # One force evaluation per remaining step (and one to start): no work was redone.
    assert len(calls) == TINY_STEPS - step + 1
    assert len(read_thermo(work)) == len(read_thermo(reference[0]))


TINY_STEPS = 3000


def test_killed_process_resumes(reference, tmp_path):
    """SIGKILL a real MD process mid-run, start again, and get the uninterrupted frames.

    The killed process started from scratch, so this also shows that a seeded run is
    reproducible across processes.
    """
    _, expected = reference
    work = tmp_path / "md"
    script = textwrap.dedent(
        f"""
        from mlxas.structures import source_from_config
        from mlxas.structures.md import md_frames
        for _ in md_frames(source_from_config({TINY!r}), {str(work)!r}, progress=False):
            pass
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 120
    step = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with np.load(work / "checkpoint.npz") as ck:
                    step = int(ck["step"])
            except (OSError, ValueError, EOFError, KeyError):
                step = 0
            if step >= 1250:
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 1250 <= step < TINY_STEPS
    frames = [(k, at.positions) for k, at in md_frames(TINY, work, progress=False)]
    assert [k for k, _ in frames] == list(range(20))
    for (k, pos), (_, ref) in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(pos, ref, err_msg=f"frame {k}")
    assert (work / "frames.f64").stat().st_size == 20 * 13 * 3 * 8


def test_changed_settings_start_over(reference, tmp_path):
    work = tmp_path / "md"
    spec = {**TINY, "production": 0.1}  # 200 steps, 2 frames
    assert len(list(md_frames(spec, work, progress=False))) == 2
    hotter = {**spec, "temperature": 600.0}
    frames = [at.positions for _, at in md_frames(hotter, work, progress=False)]
    meta = json.loads((work / "run.json").read_text())
    assert meta["settings"]["temperature"] == 600.0
    assert len(frames) == 2 and len(read_thermo(work)) == 1000 // 100 + 1 + 2


def test_structures_stage_writes_md_frames(reference, tmp_path):
    """``kind: md`` inside build_source: one structure per frame, each with its own id.

    The source's work folder is ``<out>/work``; it is seeded with the finished reference
    run, so build_source reads the frames back instead of computing them again.
    """
    work, expected = reference
    out = tmp_path / "structures" / "au13"
    shutil.copytree(work, out / "work")
    index, rejected = build(TINY, out)
    assert rejected.empty
    assert list(index["frame"]) == list(range(20))
    assert index["structure_id"].is_unique
    assert set(index["origin"]) == {"md:Au13"}
    images = read_structures(out / "structures.extxyz")
    assert [at.info["frame"] for at in images] == list(range(20))
    for atoms, (_, ref) in zip(images, expected, strict=True):
        np.testing.assert_allclose(atoms.positions, ref, atol=1e-6)
    # A rebuilt source has the same ids.
    again, _ = build(TINY, out)
    pd.testing.assert_frame_equal(index, again)


def test_emt_potential_runs():
    spec = {
        **TINY,
        "element": "Cu",
        "n_atoms": 6,
        "potential": "emt",
        "production": 0.1,
        "equilibration": 0.05,
    }
    frames = list(md_frames(spec, None, progress=False))
    assert [k for k, _ in frames] == [0, 1]
    assert frames[0][1].get_chemical_formula() == "Cu6"
    # A Cu6 cluster moving under EMT at 300 K: the atoms move between frames and stay
    # bonded at Cu-Cu distances (2.56 Å in the bulk; shorter in a small cluster).
    first, second = (at.positions for _, at in frames)
    assert 0.01 < np.abs(second - first).max() < 1.0
    for _, atoms in frames:
        d = atoms.get_all_distances()
        nearest = np.sort(d, axis=1)[:, 1]
        assert np.all((nearest > 2.2) & (nearest < 2.7)), nearest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"element": "Fe"}, "no Sutton–Chen parameters for 'Fe'"),
        ({"element": "Fe", "potential": "emt"}, "EMT has no metal parameters"),
        ({"production": 0.01}, "no frame would be saved"),
    ],
)
def test_bad_settings_are_config_errors(change, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        next(md_frames({**TINY, **change}, tmp_path, progress=False))
    assert not os.listdir(tmp_path) or not (tmp_path / "checkpoint.npz").exists()
