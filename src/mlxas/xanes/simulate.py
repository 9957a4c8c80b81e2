"""FEFF10 XANES of one absorbing site, through the pipeline's own FEFF code path.

The input is written by :func:`mlxas.feff.inputs.feff_input_text` from the cluster that
:func:`mlxas.feff.inputs.cluster_around` cuts, with the cards merged from the feff10
template's ``xanes`` section by :func:`mlxas.feff.cards.merged_cards`; the run is
:func:`mlxas.feff.runner.run_site` (log checks, quarantine, resume by input hash).  So a
site run here and the same site run by the workflow's FEFF stage share one input hash,
and the workflow reuses the finished run folder.

FEFF10 cards set here (everything else is the template's):

``XANES kmax``
    last k (Å⁻¹) above the Fermi level; 5 Å⁻¹ is 95 eV: with SCF potentials the Fermi
    level of a d0 ion (Mn(VII), Cr(VI)) lies ~15 eV below the half-step E0, and the
    features reach E − E0 = +60 eV;
``FMS r``
    full-multiple-scattering radius (Å): the cost driver (see ``docs/xanes.md``);
``SCF r``
    self-consistent potentials within ``r`` Å, or no ``SCF`` card (overlapped atoms).
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["XanesFeffSettings", "cluster_radius", "run_xanes", "site_input"]


@dataclass(frozen=True)
class XanesFeffSettings:
    """FEFF10 XANES settings of the geometry dataset (lengths in Å, time in s)."""

    fms_radius: float = 4.0
    scf_radius: float | None = None
    xanes_kmax: float = 5.0
    margin: float = 2.5  #: the cluster reaches this far beyond the FMS/SCF radius
    edge: str = "K"
    timeout: float = 1200.0

    def cards(self) -> dict[str, Any]:
        """The merged, validated FEFF10 cards."""
        from mlxas.feff.cards import merged_cards

        over = {"FMS": self.fms_radius, "SCF": self.scf_radius, "XANES": self.xanes_kmax}
        return merged_cards("feff10", self.edge, over, "xanes")


def cluster_radius(settings: XanesFeffSettings) -> float:
    """Radius (Å) of the cluster written to ATOMS."""
    return max(settings.fms_radius, settings.scf_radius or 0.0) + settings.margin


def site_input(structure: Any, index: int, settings: XanesFeffSettings, title: str) -> str:
    """feff.inp text for absorbing site ``index`` of a pymatgen Structure or ASE Atoms."""
    from mlxas.feff.engines import get_engine
    from mlxas.feff.inputs import cluster_around, feff_input_text

    atoms = structure
    if not hasattr(atoms, "get_chemical_symbols"):
        from pymatgen.io.ase import AseAtomsAdaptor

        atoms = AseAtomsAdaptor.get_atoms(structure)
    eng = get_engine("feff10")
    syms, xyz = cluster_around(atoms, int(index), cluster_radius(settings))
    return feff_input_text(syms, xyz, settings.cards(), title, eng.max_atoms, eng.max_potentials)


def run_xanes(
    feff_inp: str,
    site_id: str,
    rundir: Path,
    settings: XanesFeffSettings,
    quarantine: Path | None = None,
):
    """Run (or reuse) one site; returns ``(SiteResult, cpu_seconds)``.

    ``cpu_seconds`` is the user + system time of the FEFF processes this call waited for
    (``RUSAGE_CHILDREN``; exact only when one run at a time is made in the process); for
    a reused run, the CPU time recorded when it ran (NaN if none was).
    """
    from mlxas.feff.engines import get_engine
    from mlxas.feff.inputs import input_hash
    from mlxas.feff.runner import run_site

    eng = get_engine("feff10")
    row = {
        "site_id": site_id,
        "input_hash": input_hash(eng, feff_inp),
        "card_hash": "",
        "feff_inp": feff_inp,
        "reason": "",
        "detail": "",
    }
    rundir = Path(rundir)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = run_site(row, rundir, eng, settings.timeout, quarantine=quarantine)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # A reused run returns at once; its CPU time is the one recorded when it ran.
    record = rundir / CPU_RECORD if res.ok else None
    if time.monotonic() - t0 < 0.5 * max(res.seconds, 1e-9):
        cpu = _read_cpu(record, row["input_hash"])
    elif record is not None:
        record.write_text(json.dumps({"input_hash": row["input_hash"], "cpu_s": cpu}))
    return res, float(cpu)


#: File beside a finished run's done marker holding the CPU seconds the run took.
CPU_RECORD = "mlxas-cpu.json"


def _read_cpu(path: Path | None, input_hash: str) -> float:
    try:
        rec = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return float("nan")
    return float(rec["cpu_s"]) if rec.get("input_hash") == input_hash else float("nan")


def fms_atoms(structure: Any, index: int, radius: float) -> int:
    """Atoms (absorber included) within ``radius`` Å of site ``index``: FMS's matrix size."""
    from pymatgen.core import Structure

    s = structure if isinstance(structure, Structure) else None
    if s is None:
        from pymatgen.io.ase import AseAtomsAdaptor

        s = AseAtomsAdaptor.get_structure(structure)
    return 1 + len(s.get_neighbors(s[int(index)], float(radius) + 1e-6))


def spectrum(res) -> tuple[np.ndarray, np.ndarray]:
    """Energy (eV) and mu of a successful run."""
    return np.asarray(res.energy, float), np.asarray(res.mu, float)
