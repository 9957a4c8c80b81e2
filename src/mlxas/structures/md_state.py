"""The work folder of an MD run: its key, checkpoints, saved frames and thermo log.

See :mod:`mlxas.structures.md` for the run itself.  Files of the folder: ``run.json``
(settings and key), ``start.extxyz``/``start.json`` (the start structure),
``checkpoint.npz`` (replaced atomically), ``frames.f64`` (snapshot positions, appended)
and ``thermo.csv``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from mlxas.structures.md import MDSettings

__all__ = ["THERMO_COLUMNS", "read_thermo"]

THERMO_COLUMNS = [
    "step",
    "time_ps",
    "phase",
    "temperature_K",
    "potential_eV",
    "kinetic_eV",
    "conserved_eV",
]
_STATE_FILES = ("checkpoint.npz", "frames.f64", "thermo.csv")


def say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def prepare_folder(s: MDSettings, work: Path, progress: bool) -> None:
    """Keep the folder's state only if it belongs to these settings and this code."""
    meta_path = work / "run.json"
    key = s.key()
    if meta_path.exists():
        try:
            old_key = json.loads(meta_path.read_text()).get("key")
        except ValueError:
            old_key = None
        if old_key == key:
            return
        say(progress, f"{work}: MD settings or code changed; starting the run over")
    for name in ("start.extxyz", "start.json", *_STATE_FILES):
        (work / name).unlink(missing_ok=True)
    meta = {
        "key": key,
        "settings": dataclasses.asdict(s),
        "n_steps": s.n_steps,
        "n_frames": s.n_frames,
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")


def read_thermo(work_dir: str | Path):
    """The thermo log of an MD work folder as a DataFrame (one row per record)."""
    import pandas as pd

    return pd.read_csv(Path(work_dir) / "thermo.csv")


def summary(thermo_path: Path) -> str:
    import pandas as pd

    df = pd.read_csv(thermo_path)
    prod = df[df["phase"] == "production"]
    if prod.empty:
        return "MD finished"
    drift = prod["conserved_eV"].iloc[-1] - prod["conserved_eV"].iloc[0]
    return (
        f"MD finished: production T = {prod['temperature_K'].mean():.1f} "
        f"± {prod['temperature_K'].std():.1f} K, <E_pot> = {prod['potential_eV'].mean():.4f} eV, "
        f"conserved-energy drift {drift:+.2e} eV"
    )


def truncate_thermo(path: Path, rows: int) -> None:
    """Keep the header and the first ``rows`` records (all of them written before the
    checkpoint we resume from); 0 empties the file."""
    if rows == 0 or not path.exists():
        path.write_text("")
        return
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: rows + 1]))


def save_checkpoint(work: Path, step: int, atoms: Atoms, dyn) -> None:
    tmp = work / "checkpoint.tmp"
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            step=np.int64(step),
            positions=atoms.positions,
            momenta=atoms.get_momenta(),
            eta=dyn._thermostat._eta,
            p_eta=dyn._thermostat._p_eta,
        )
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(work / "checkpoint.npz")


def load_checkpoint(work: Path, n_atoms: int, s: MDSettings, progress: bool) -> dict | None:
    """The last checkpoint, or None to start from step 0 (none yet, or not usable)."""
    path = work / "checkpoint.npz"
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            state = {k: data[k].copy() for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        say(progress, f"{path}: unreadable checkpoint ({err}); starting the MD over")
        return None
    step = int(state["step"])
    frames, thermo = work / "frames.f64", work / "thermo.csv"
    have_frames = frames.stat().st_size // (n_atoms * 3 * 8) if frames.exists() else 0
    with open(thermo, "rb") if thermo.exists() else open(os.devnull, "rb") as fh:
        have_rows = sum(1 for _ in fh) - 1
    if (
        state["positions"].shape != (n_atoms, 3)
        or have_frames < s.frames_done(step)
        or have_rows < s.thermo_rows(step)
    ):
        say(progress, f"{path}: checkpoint does not match the saved frames; starting over")
        return None
    return state


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
