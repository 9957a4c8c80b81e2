"""The simulation stage is engine-blind: an engine whose unit is a whole structure plugs
into the same inputs step, chunk runner, chunk files and gather as FEFF.

The engine here is a powder-diffraction pattern computed by pymatgen's XRDCalculator (a
real computation, not a stand-in), registered by this test only.  Its peaks are checked
against Bragg's law for fcc Cu.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from ase.build import bulk

from mlxas.engines import ItemInput, ItemResult, SignalEngine, engine_names, register
from mlxas.provenance import structure_hash
from mlxas.simulation.chunk import chunk_engine, read_chunk
from mlxas.simulation.inputs import build_inputs
from mlxas.simulation.runner import run_chunk
from mlxas.sites import (
    LabelSettings,
    SitesSettings,
    compute_labels,
    site_table,
    write_labels,
    write_sites,
)
from mlxas.workflow.layout import Layout

CU_KA = 1.54184  # Å, the CuKa wavelength pymatgen uses (weighted Ka1/Ka2)


@dataclass(frozen=True)
class PowderSettings:
    """Wavelength name (pymatgen) and the 2θ range (degrees) of the pattern."""

    wavelength: str = "CuKa"
    two_theta_min: float = 20.0
    two_theta_max: float = 90.0
    step: float = 0.5


@register
class PowderPattern(SignalEngine):
    """Powder XRD of one structure: peak positions (2θ, degrees) and intensities."""

    name = "test_powder_xrd"
    unit: ClassVar[str] = "structure"
    arrays: ClassVar[tuple[str, ...]] = ("two_theta", "intensity")
    settings_class: ClassVar[type] = PowderSettings

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"xrd+pymatgen{version('pymatgen')}"

    def input_text(self, atoms: Any, site_index: int | None, item_id: str) -> str:
        assert site_index is None
        return json.dumps(
            {"symbols": atoms.get_chemical_symbols(), "positions": atoms.positions.tolist(),
             "cell": atoms.cell.array.tolist()}, sort_keys=True,
        )  # fmt: skip

    def run(self, item: ItemInput, rundir: Path, timeout: float) -> ItemResult:
        from pymatgen.analysis.diffraction.xrd import XRDCalculator
        from pymatgen.core import Lattice, Structure

        d = json.loads(item.text)
        s = self.settings
        structure = Structure(
            Lattice(d["cell"]), d["symbols"], d["positions"], coords_are_cartesian=True
        )
        pattern = XRDCalculator(wavelength=s.wavelength).get_pattern(
            structure, two_theta_range=(s.two_theta_min, s.two_theta_max)
        )
        arrays = {"two_theta": np.asarray(pattern.x), "intensity": np.asarray(pattern.y)}
        return ItemResult(item.item_id, "ok", item.input_hash, self.name, self.version,
                          arrays=arrays)  # fmt: skip

    def _grid(self) -> np.ndarray:
        s = self.settings
        return np.arange(s.two_theta_min, s.two_theta_max + s.step / 2, s.step)

    def featurize(self, results: Sequence[ItemResult], features: Any) -> dict[str, np.ndarray]:
        grid = self._grid()
        out = np.zeros((len(results), len(grid)), dtype=np.float32)
        for i, r in enumerate(results):
            bins = np.rint((r.arrays["two_theta"] - grid[0]) / self.settings.step).astype(int)
            np.add.at(out[i], bins, r.arrays["intensity"])
        return {"xrd": out}

    def feature_axes(self, features: Any):
        return {"xrd": (self._grid(), "degree")}


def _crystal(a: float):
    atoms = bulk("Cu", "fcc", a=a)
    sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array,
                         atoms.pbc)  # fmt: skip
    atoms.info = {"structure_id": sid, "source": "crystals", "name": f"cu_{a}", "frame": -1}
    return atoms


def _bragg_111(a: float) -> float:
    """2θ (degrees) of the fcc (111) reflection: d = a/√3, λ = 2 d sin θ."""
    return float(2 * np.degrees(np.arcsin(CU_KA / (2 * a / np.sqrt(3)))))


def test_a_structure_engine_runs_through_the_shared_stage(tmp_path):
    from mlxas.dataset import DatasetSettings, SplitSettings, gather
    from mlxas.dataset import open as open_dataset

    assert "test_powder_xrd" in engine_names()
    lattice = (3.61, 3.70, 3.80)
    images = [_crystal(a) for a in lattice]
    layout = Layout(tmp_path / "results" / "xrd")
    sites = site_table(images, None, SitesSettings(mode="structure"))
    folder = layout.simulation("crystals")
    engine = PowderPattern(PowderSettings())
    table = build_inputs(sites, {a.info["structure_id"]: a for a in images}, engine, 2, folder)
    assert list(table["item_id"]) == [a.info["structure_id"] for a in images]
    plan = json.loads(folder.chunk_plan.read_text())
    assert (plan["unit"], plan["n_chunks"], plan["engine"]) == ("structure", 2, engine.name)

    for chunk in range(plan["n_chunks"]):
        results = run_chunk(folder, chunk, timeout=120)  # the engine comes from the plan
        assert all(r.ok for r in results)
    results = [r for c in range(2) for r in read_chunk(folder.chunk(c))]
    assert chunk_engine(folder.chunk(0))[0].settings == PowderSettings()
    for a, r in zip(lattice, results, strict=True):
        assert set(r.arrays) == {"two_theta", "intensity"}
        strongest = r.arrays["two_theta"][np.argmax(r.arrays["intensity"])]
        assert strongest == pytest.approx(_bragg_111(a), abs=0.01)

    write_sites(sites, layout.sites("crystals"), SitesSettings(mode="structure"))
    labels, meta = compute_labels(images, sites, None, LabelSettings(sets=()))
    write_labels(labels, meta, layout.labels("crystals"))
    settings = DatasetSettings(features={}, split=SplitSettings((0.34, 0.33, 0.33), "site", 0))
    report = gather(
        [folder.chunk(c) for c in range(2)],
        [layout.sites("crystals")],
        [layout.labels("crystals")],
        layout.dataset,
        settings,
        inputs_files=[folder.inputs_table],
    )
    assert report.n_sites == 3 and report.n_failures == 0
    with open_dataset(layout.dataset) as ds:
        grid = ds.grid("xrd")
        x = ds.features("xrd")
        assert ds.unit("xrd") == "degree" and x.shape == (3, len(grid))
        by_id = dict(zip(ds.frame()["site_id"], x, strict=True))
    for atoms, a in zip(images, lattice, strict=True):
        peak = grid[np.argmax(by_id[atoms.info["structure_id"]])]
        assert abs(peak - _bragg_111(a)) <= 0.25  # half a bin
