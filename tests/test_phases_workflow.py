"""The phase problem as stages of the workflow: the reflections engine through the shared
inputs/simulate/gather stages (features and sign/phase labels in dataset.h5, checked
against gemmi), the random_molecular structure source, the config and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import spglib

from _phases_support import gather_crystals, gemmi_structure_factors, stage_crystals
from mlxas.errors import ConfigError
from mlxas.workflow.checks import check_config, load_experiment

PHASES_CONFIG = "config/experiments/phases_p1.yaml"


def test_gathered_dataset_holds_amplitudes_and_sign_labels_that_gemmi_confirms(tmp_path):
    from mlxas.dataset import open as open_dataset
    from mlxas.phases.reflection_list import reflection_list
    from mlxas.phases.reflections import ReflectionSettings

    images = stage_crystals(3)
    settings = ReflectionSettings(d_min=1.5, index_max=6, table="it1992")
    report, path, engine = gather_crystals(tmp_path, images, settings)
    assert report.n_sites == 3 and report.n_failures == 0
    hkl = reflection_list(settings.space_group, settings.index_max)
    with open_dataset(path) as ds:
        assert {"amplitude", "e_value", "intensity", "mask"} <= set(ds.feature_names())
        assert np.allclose(ds.features("intensity"), ds.features("e_value") ** 2)
        ids = list(ds.frame()["site_id"])
        amp, mask = ds.features("amplitude"), ds.features("mask")
        sign, phase = ds.labels("sign"), ds.labels("phase")
        assert ds.unit("phase") == "rad" and len(ds.grid("amplitude")) == len(hkl)
    assert sign.shape == phase.shape == amp.shape == (3, len(hkl))
    by_id = {a.info["structure_id"]: a for a in images}
    for i, sid in enumerate(ids):
        atoms = by_id[sid]
        doc = json.loads(engine.input_text(atoms, None, sid))
        inside = mask[i] > 0
        f = gemmi_structure_factors(atoms, doc["b_iso"]["elements"], hkl[inside])
        assert np.abs(amp[i, inside] - np.abs(f)).max() < 2e-3 * np.abs(f).max()
        # P-1 with the inversion at the origin: F is real, the phase 0 or π, the sign
        # label 1 where F > 0 (reflections stronger than 1 % of the largest)
        strong = np.abs(f) > 0.01 * np.abs(f).max()
        assert np.all(np.abs(f.imag) < 1e-6 * np.abs(f).max())
        assert np.array_equal(sign[i, inside][strong] > 0.5, f.real[strong] > 0)
        assert np.allclose(np.abs(np.sin(phase[i, inside])), 0.0, atol=1e-4)
        assert np.all(sign[i, ~inside] == 0) and np.all(amp[i, ~inside] == 0)


def test_friedel_mates_are_merged_in_the_list_the_dataset_uses():
    from mlxas.phases.reflection_list import reflection_list

    hkl = reflection_list("P-1", 6)
    seen = {tuple(h) for h in hkl.tolist()}
    assert len(seen) == len(hkl) == (13**3 - 1) // 2
    assert not any((-a, -b, -c) in seen for a, b, c in seen)


def test_random_molecular_source_makes_p1bar_crystals_through_the_structures_stage(tmp_path):
    from mlxas.structures.index import build_source, read_structures
    from mlxas.structures.sources import source_from_config

    entry = {"name": "p1bar", "kind": "random_molecular", "n": 1, "seed": 3, "start": 4}
    source = source_from_config(entry)
    frames = tmp_path / "structures.extxyz"
    table, rejected = build_source(source, None, frames, tmp_path / "i.csv", tmp_path / "r.csv")
    assert (len(table), len(rejected)) == (1, 0)
    (atoms,) = read_structures(frames)
    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    assert spglib.get_symmetry_dataset(cell, symprec=1e-3).number == 2
    assert set(atoms.get_chemical_symbols()) <= set(source.elements())
    assert "seed=3 index=4 " in table["origin"].iloc[0]  # crystal 4 of stream 3


def test_phases_experiment_config_is_valid_and_reads_the_engine_targets():
    exp = load_experiment([PHASES_CONFIG])
    assert exp.engine.name == "reflections" and exp.sites.mode == "structure"
    assert type(exp.sources["p1bar"]).kind == "random_molecular"
    assert exp.engine.settings.d_min == 1.0 and exp.engine.settings.b_iso == (2.0, 5.0)
    ref = exp.models["reference"]
    assert (ref.kind, ref.input, ref.targets, ref.sample_weight) == (
        "sign_mlp", "e_value", ("sign",), "intensity"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": [{"name": "m", "kind": "mlp", "targets": ["cn"]}]}, "of the engine"),
        ({"reflections": {"d_min": -1.0}}, "d_min"),
        ({"structures": [{"name": "x", "kind": "random_molecular", "n": 5, "space_group": 3}]},
         "space_group"),
    ],
)  # fmt: skip
def test_bad_phases_configs_are_refused(change, message):
    import yaml

    with open(PHASES_CONFIG) as fh:
        raw = {**yaml.safe_load(fh), **change}
    with pytest.raises(ConfigError, match=message):
        check_config(raw, "phases")


def test_cctbx_works_after_the_libraries_that_load_the_system_cpp_runtime():
    """Importing mlxas first lets cctbx start after h5py and gemmi (which crash it
    otherwise: two libstdc++ copies, see mlxas._native)."""
    code = (
        "import mlxas, h5py, gemmi\n"
        "from cctbx import crystal\n"
        "print(crystal.symmetry(unit_cell=(5, 6, 7, 90, 90, 90), space_group_symbol='P-1')"
        ".space_group().order_z())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "2"
