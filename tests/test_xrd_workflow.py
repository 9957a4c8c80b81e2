"""Powder XRD on the shared workflow stages: structure sources -> sites (several patterns
per structure) -> labels (``crystal``) -> inputs -> chunk runner -> gather.

Truths: Bragg's law for the prototypes' cubic cells (fcc reflections: h, k, l all even or
all odd), the International Tables' space groups of rock salt and fcc metals (Fm-3m,
225, cubic), and the pyxtal/pymatgen structures themselves.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from mlxas.errors import ConfigError
from mlxas.sites import (
    LabelSettings,
    SitesSettings,
    compute_labels,
    site_table,
    write_labels,
    write_sites,
)
from mlxas.structures import build_source, read_structures
from mlxas.workflow.layout import Layout
from mlxas.xrd.engine import XRDEngine
from mlxas.xrd.labels import CRYSTAL_SYSTEMS, structure_types
from mlxas.xrd.settings import SOURCES, XRDSettings
from mlxas.xrd.sources import PrototypesSource, RandomCrystalsSource

CU1 = SOURCES["CuKa1"][0]
#: Effects that move peaks by at most ~0.1° (zero offset, sample displacement); lattice
#: changes off so that Bragg's law with the stored cell holds.
SHIFT_ONLY = dataclasses.replace(
    XRDSettings(source="CuKa1", axis_min=20.0, axis_max=80.0, n_points=1201),
    impurity_probability=0.0, strain_probability=0.0, alloy_probability=0.0,
)  # fmt: skip


def _fcc_lattice_peaks(a: float, two_theta_max: float) -> np.ndarray:
    """2θ (deg) of every reflection of an F-centred cubic cell below ``two_theta_max``."""
    out = []
    for h in range(8):
        for k in range(h + 1):
            for ll in range(k + 1):
                if len({h % 2, k % 2, ll % 2}) == 1 and h + k + ll > 0:
                    s = CU1 * math.sqrt(h * h + k * k + ll * ll) / (2 * a)
                    if s < 1:
                        out.append(2 * math.degrees(math.asin(s)))
    return np.array(sorted(v for v in out if v < two_theta_max))


def test_patterns_of_prototypes_through_the_shared_stages(tmp_path):
    from mlxas.dataset import DatasetSettings, SplitSettings, gather
    from mlxas.dataset import open as open_dataset
    from mlxas.simulation.chunk import read_chunk
    from mlxas.simulation.inputs import build_inputs
    from mlxas.simulation.runner import run_chunk

    layout = Layout(tmp_path / "results" / "xrd")
    source = PrototypesSource(name="proto", count=2, prototypes=("rocksalt", "fcc"))
    frames = layout.structures_frames("proto")
    build_source(source, None, frames, layout.structures_index("proto"),
                 layout.structures_rejected("proto"))  # fmt: skip
    images = read_structures(frames)
    assert len(images) == 2
    sites_settings = SitesSettings(mode="structure", per_structure=2)
    sites = site_table(images, None, sites_settings)
    sids = [a.info["structure_id"] for a in images]
    assert list(sites["site_id"]) == [sids[0], f"{sids[0]}-p1", sids[1], f"{sids[1]}-p1"]
    write_sites(sites, layout.sites("proto"), sites_settings)
    # Prototype matching (structure_type) is checked in test_xrd_labels; off here because
    # building the 18 references costs more than the rest of this test.
    crystal = {"sets": ["crystal"], "crystal": {"match_prototypes": False}}
    labels, meta = compute_labels(images, sites, None, LabelSettings.from_config(crystal))
    write_labels(labels, meta, layout.labels("proto"))
    assert list(labels["space_group_number"]) == [225] * 4
    columns = meta["columns"]
    assert [columns["space_group"]["classes"][i] for i in labels["space_group"]] == [
        "225 Fm-3m"
    ] * 4  # fmt: skip
    assert [CRYSTAL_SYSTEMS[i] for i in labels["crystal_system"]] == ["cubic"] * 4
    assert columns["crystal_system"]["classes"] == list(CRYSTAL_SYSTEMS)
    assert [structure_types()[i] for i in labels["structure_type"]] == ["other"] * 4
    assert columns["space_group"]["target"] and not columns["space_group_number"]["target"]

    folder = layout.simulation("proto")
    engine = XRDEngine(SHIFT_ONLY)
    build_inputs(sites, dict(zip(sids, images, strict=True)), engine, 3, folder)
    assert json.loads(folder.chunk_plan.read_text())["n_chunks"] == 2
    for chunk in range(2):
        assert all(r.ok for r in run_chunk(folder, chunk, timeout=120))
    results = {r.item_id: r for c in range(2) for r in read_chunk(folder.chunk(c))}
    # Two patterns of one structure: same peaks, their own effects (noise, widths).
    a, b = (results[i].arrays["intensity"] for i in (sids[0], f"{sids[0]}-p1"))
    assert not np.allclose(a, b)

    settings = DatasetSettings(
        features={"xrd": {"normalize": "max", "scale": "linear"}},
        split=SplitSettings((0.5, 0.0, 0.5), "structure", 0),
    )
    report = gather([folder.chunk(c) for c in range(2)], [layout.sites("proto")],
                    [layout.labels("proto")], layout.dataset, settings,
                    inputs_files=[folder.inputs_table])  # fmt: skip
    assert report.n_sites == 4 and report.n_failures == 0
    with open_dataset(layout.dataset) as ds:
        grid, frame = ds.grid("intensity"), ds.frame()
        x = ds.features("intensity")
        assert np.allclose(grid, np.linspace(20.0, 80.0, 1201))
        assert x.shape == (4, 1201) and np.allclose(x.max(axis=1), 1.0)
        by_id = dict(zip(frame["site_id"], x, strict=True))
        assert tuple(ds.classes("crystal_system")) == CRYSTAL_SYSTEMS
        assert list(ds.labels("space_group")) == [224] * 4  # code of 225 Fm-3m
        split = dict(zip(frame["site_id"], frame["split"], strict=True))
    for atoms in images:
        sid = atoms.info["structure_id"]
        assert split[sid] == split[f"{sid}-p1"]  # patterns of a structure stay together
        peaks = _fcc_lattice_peaks(atoms.cell.lengths()[0], 80.0)
        for item in (sid, f"{sid}-p1"):
            strongest = grid[np.argmax(by_id[item])]
            assert np.min(np.abs(peaks - strongest)) < 0.15, (atoms.info["name"], strongest)


def test_per_structure_needs_whole_structures():
    with pytest.raises(ConfigError, match="per_structure"):
        SitesSettings(mode="unique", per_structure=3)
    with pytest.raises(ConfigError, match="per_structure"):
        SitesSettings(mode="structure", per_structure=0)


def test_random_crystals_source_resumes_and_states_refusals(tmp_path):
    src = RandomCrystalsSource(name="r", count=2, space_groups=(225, 14), seed=3)
    first = list(src.generate(tmp_path))
    assert [n for n, *_ in first] == ["sg225_0000000", "sg014_0000001"]
    blocks = list(tmp_path.glob("block-*.pkl"))
    assert len(blocks) == 1
    again = list(src.generate(tmp_path))  # read back from the block, not made again
    for (_, _, _, a), (_, _, _, b) in zip(first, again, strict=True):
        assert np.allclose(a.positions, b.positions) and a.get_chemical_formula() == \
            b.get_chemical_formula()  # fmt: skip
    # A CPU budget too small for any placement: refused with the reason and the attempts.
    tight = dataclasses.replace(src, structure_seconds=1e-4, attempt_seconds=1e-4)
    _, origin, why = tight.crystal(0)
    assert why.reason == "placement_timeout" and "space group 225" in why.detail
    assert origin == "random_crystals:r:0"
