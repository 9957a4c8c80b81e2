"""FEFF cards a structure brings to its own input: the per-structure DEBYE card.

A crystal source with ``temperature.model: debye_card`` sweeps the temperature by giving
every static structure its own T and Debye temperature θ (``atoms.info["temperature"]``,
``atoms.info["debye_temperature"]``, K).  The inputs stage merges these cards over the
config's cards for that structure's sites:

    cards = merged_cards(engine, edge, {**config_cards, **structure_cards(atoms)}, ...)

Structures whose geometry already holds the thermal disorder (snapshots of the
``einstein``, ``debye`` and ``md`` models) remove any DEBYE card of the config (value
``None``), so that the disorder is not counted twice.  Structures without thermal
provenance bring no card.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ase import Atoms

__all__ = [
    "SNAPSHOT_MODELS",
    "read_norman_radii",
    "read_path_sigma2",
    "shell_sigma2_from_feff",
    "structure_cards",
]

_RNM = re.compile(r"#\s*(Abs|Pot\s+(\d+))\s+Z=\s*\d+\s+Rmt=\s*[0-9.]+\s+Rnm=\s*([0-9.]+)")
#: Thermal models whose structures carry their disorder in the atomic positions.
SNAPSHOT_MODELS = ("einstein", "debye", "md_emt")


def structure_cards(atoms: Atoms) -> dict[str, Any]:
    """The FEFF cards of one structure: ``{"DEBYE": [T, θ]}``, ``{"DEBYE": None}`` (remove
    the config's card) or ``{}``; values as :func:`mlxas.feff.cards.merged_cards` takes them."""
    thermal = atoms.info.get("thermal")
    if thermal == "debye_card":
        t = float(atoms.info["temperature"])
        theta = float(atoms.info["debye_temperature"])
        if t <= 0 or theta <= 0:
            raise ValueError(f"DEBYE card needs T > 0 and θ > 0 K, got T={t}, θ={theta}")
        return {"DEBYE": [_number(t), _number(theta)]}
    if thermal in SNAPSHOT_MODELS:
        return {"DEBYE": None}
    return {}


def _number(x: float) -> float | int:
    """An integer-valued float as int, so the card reads ``DEBYE 300 315``."""
    return int(x) if float(x).is_integer() else round(float(x), 3)


def read_path_sigma2(chi_dat: str | Path) -> list[dict[str, float]]:
    """The paths FEFF8L lists in the header of ``chi.dat``: per path its total sigma² (Å²,
    the Debye-model value when the DEBYE card is on), degeneracy, legs and half path
    length reff (Å).  An independent check of the sigma² labels."""
    rows = []
    in_table = False
    for line in Path(chi_dat).read_text(errors="replace").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if text.startswith("file") and "sig2" in text:
            in_table = True
            continue
        if in_table:
            parts = text.split()
            if len(parts) < 6 or not parts[0].isdigit():
                in_table = False
                continue
            rows.append(
                {
                    "path": int(parts[0]),
                    "sigma2": float(parts[1]),
                    "degeneracy": float(parts[3]),
                    "nlegs": int(parts[4]),
                    "reff": float(parts[5]),
                }
            )
    if not rows:
        raise ValueError(f"{chi_dat}: no path table in the header (not a FEFF8L chi.dat?)")
    return rows


def read_norman_radii(chi_dat: str | Path) -> dict[int, float]:
    """Norman radius (Å) of each potential FEFF8L prints in the ``chi.dat`` header
    (``Abs`` is potential 0)."""
    out: dict[int, float] = {}
    for line in Path(chi_dat).read_text(errors="replace").splitlines():
        if not line.startswith("#"):
            break
        m = _RNM.search(line)
        if m:
            out[0 if m.group(1) == "Abs" else int(m.group(2))] = float(m.group(3))
    return out


def shell_sigma2_from_feff(chi_dat: str | Path, shells) -> dict[str, float]:
    """FEFF's own Debye-model sigma² per shell: the degeneracy-weighted mean of the
    printed sigma² of the single-scattering paths whose reff lies in each shell window
    (``shells`` is a :class:`mlxas.sites.shells.ShellSettings`; neighbour elements are
    not told apart, so the windows of one site should not overlap).  ``nan`` for a shell
    without a path.  This is the exact value the spectrum was damped with; the labels of
    :mod:`mlxas.sites.shells` estimate it before FEFF runs."""
    paths = [p for p in read_path_sigma2(chi_dat) if p["nlegs"] == 2]
    out = {}
    for shell in shells.shells:
        inside = [p for p in paths if shell.r_min <= p["reff"] < shell.r_max]
        deg = sum(p["degeneracy"] for p in inside)
        value = sum(p["degeneracy"] * p["sigma2"] for p in inside) / deg if deg else float("nan")
        out[f"sigma2_{shell.name}"] = value
    return out
