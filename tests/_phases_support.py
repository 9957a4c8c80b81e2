"""Small hand-made P-1 crystals for the phase tests (no pyxtal: fast and fixed)."""

from __future__ import annotations

import json
import math

import numpy as np
from ase import Atoms

from mlxas.provenance import structure_hash

CELL = (6.3, 7.1, 7.9, 84.0, 98.0, 103.0)


def p1bar_crystal(seed=0, elements=("C", "N", "O", "C", "S"), cell=CELL, name="c") -> Atoms:
    """Atoms at random x and their inversion images -x, at least 1.3 Å apart."""
    rng = np.random.default_rng(seed)
    els = list(elements)
    while True:
        x = rng.random((len(els), 3))
        atoms = Atoms(els * 2, scaled_positions=np.vstack([x, -x]) % 1.0, cell=cell, pbc=True)
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        if d.min() > 1.3:
            atoms.info.update(name=f"{name}{seed}", structure_id=f"{seed + 1:016x}")
            return atoms


def gemmi_structure_factors(atoms: Atoms, b_by_element: dict, hkl: np.ndarray) -> np.ndarray:
    """Complex F(hkl) of the whole cell by gemmi (IT92 form factors), an independent
    library: the cell in P1, isotropic B (Å²) per element."""
    import gemmi

    st = gemmi.SmallStructure()
    st.cell = gemmi.UnitCell(*atoms.cell.cellpar())
    st.spacegroup_hm = "P 1"
    for el, f in zip(atoms.get_chemical_symbols(), atoms.get_scaled_positions(), strict=True):
        site = gemmi.SmallStructure.Site()
        site.label, site.type_symbol, site.element = el, el, gemmi.Element(el)
        site.fract = gemmi.Fractional(*f)
        site.u_iso = b_by_element[el] / (8 * math.pi**2)
        site.occ = 1.0
        st.add_site(site)
    st.setup_cell_images()
    calc = gemmi.StructureFactorCalculatorX(st.cell)
    return np.array([calc.calculate_sf_from_small_structure(st, tuple(map(int, h))) for h in hkl])


def stage_crystals(n: int, elements=("C", "N", "O", "C", "S")) -> list[Atoms]:
    """P-1 crystals with the ``info`` the structures stage writes (ids from their atoms)."""
    images = []
    for seed in range(n):
        atoms = p1bar_crystal(seed, elements)
        sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions, atoms.cell.array,
                             atoms.pbc)  # fmt: skip
        atoms.info = {"structure_id": sid, "source": "xtals", "name": f"c{seed}", "frame": -1}
        images.append(atoms)
    return images


def gather_crystals(tmp_path, images, settings, fractions=(0.34, 0.33, 0.33)):
    """``(report, dataset path, engine)``: ``images`` through the workflow's stage
    functions (sites, inputs, simulate, labels with no set, gather) with the
    ``reflections`` engine of ``settings``."""
    from mlxas.dataset import DatasetSettings, SplitSettings, gather
    from mlxas.engines import get_engine
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

    layout = Layout(tmp_path / "results" / "phases")
    sites = site_table(images, None, SitesSettings(mode="structure"))
    folder = layout.simulation("xtals")
    engine = get_engine("reflections", settings)
    build_inputs(sites, {a.info["structure_id"]: a for a in images}, engine, 2, folder)
    n_chunks = json.loads(folder.chunk_plan.read_text())["n_chunks"]
    for chunk in range(n_chunks):
        assert all(r.ok for r in run_chunk(folder, chunk, timeout=60))
    write_sites(sites, layout.sites("xtals"), SitesSettings(mode="structure"))
    labels, meta = compute_labels(images, sites, None, LabelSettings(sets=()))
    write_labels(labels, meta, layout.labels("xtals"))
    from mlxas.workflow.config import apply_schema

    # the features section as the workflow has it: schema defaults filled in
    minimal = {"experiment": "t", "structures": [{"name": "x", "kind": "files", "paths": ["x"]}]}
    features = apply_schema(minimal, "test")["features"]
    split = SplitSettings(tuple(fractions), "structure", 0)
    report = gather(
        [folder.chunk(c) for c in range(n_chunks)],
        [layout.sites("xtals")],
        [layout.labels("xtals")],
        layout.dataset,
        DatasetSettings(features=features, split=split),
        inputs_files=[folder.inputs_table],
    )
    return report, layout.dataset, engine
