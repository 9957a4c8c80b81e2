"""Measured-data path: the HKLF 4 reader (good and bad files), the .ins symmetry, phases
by charge flipping and by a saved model, and the CCP4 map read back with gemmi."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _phases_support import CELL, gather_crystals, p1bar_crystal, stage_crystals
from mlxas.phases.dataset import make_arrays
from mlxas.phases.dataset import test_crystals as make_test_crystals
from mlxas.phases.evaluate import density_map, map_correlation
from mlxas.phases.models import train_signs
from mlxas.phases.predict import predict_measured, save_sign_model
from mlxas.phases.reflections import PhaseFeatures, ReflectionSettings
from mlxas.phases.shelx import ShelxError, read_hklf4, read_ins_symmetry

INS = """TITL sim
CELL 0.71073 {a} {b} {c} {al} {be} {ga}
ZERR 2 0.001 0.001 0.001 0.01 0.01 0.01
LATT 1
SFAC C N O
UNIT 6 2 2
HKLF 4
END
"""


def _atoms(seed=0):
    return p1bar_crystal(seed, ("C", "N", "O", "C", "C"), name="m")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """HKLF 4 (written by iotbx, all Friedel mates, F² with σ) + .ins of a P-1 crystal."""
    from cctbx import crystal, miller
    from cctbx.array_family import flex
    from iotbx.shelx.hklf import miller_array_export_as_shelx_hklf

    settings = ReflectionSettings(d_min=0.9, index_max=9)
    truth = make_test_crystals(settings, [_atoms()])[0][0]
    sym = crystal.symmetry(unit_cell=CELL, space_group_symbol="P-1")
    both = np.vstack([truth.hkl, -truth.hkl])
    amp = np.concatenate([truth.amplitude, truth.amplitude])
    ms = miller.set(sym, flex.miller_index(both.tolist()), anomalous_flag=True)
    f2 = miller.array(ms, flex.double(amp**2), flex.double(0.01 * amp**2 + 0.1))
    f2 = f2.set_observation_type_xray_intensity()
    d = tmp_path_factory.mktemp("measured")
    with open(d / "x.hkl", "w") as fh:
        miller_array_export_as_shelx_hklf(f2, file_object=fh)
    al, be, ga = CELL[3:]
    (d / "x.ins").write_text(INS.format(a=CELL[0], b=CELL[1], c=CELL[2], al=al, be=be, ga=ga))
    return d, truth, settings


def test_reader_reads_what_iotbx_wrote(measured):
    d, truth, _ = measured
    data = read_hklf4(d / "x.hkl")
    assert len(data.hkl) == 2 * len(truth.hkl)  # each reflection and its Friedel mate
    row = {tuple(h): i for i, h in enumerate(data.hkl.tolist())}
    i = row[tuple(truth.hkl[0])]
    assert data.intensity[i] == pytest.approx(truth.amplitude[0] ** 2, rel=1e-3, abs=0.01)


@pytest.mark.parametrize(
    "text,where,reason",
    [
        ("   1   2   3   10.00    1.00\n   1   x   3   10.00    1.00\n", ":2:", "k"),
        ("   1   2   3   10.00    1.00\n   2   2   3   1o.00    1.00\n", ":2:", "F²"),
        ("   1   2   3   10.00    1.00\n   1   2\n", ":2:", "too short"),
        ("   1   2   3   10.00\n", ":1:", "σ"),
        ("   1   2   3   10.00   -1.00\n", ":1:", "not usable"),
        ("   0   0   0    0.00    0.00\n", "bad.hkl:", "no reflections"),
    ],
)
def test_bad_hklf_files_name_file_and_line(tmp_path, text, where, reason):
    p = tmp_path / "bad.hkl"
    p.write_text(text)
    with pytest.raises(ShelxError) as err:
        read_hklf4(p)
    assert "bad.hkl" in str(err.value) and where in str(err.value) and reason in str(err.value)


def test_ins_symmetry_and_bad_cell(tmp_path, measured):
    d, _, _ = measured
    sym = read_ins_symmetry(d / "x.ins")
    assert str(sym.space_group_info()) == "P -1"
    assert np.allclose(sym.unit_cell().parameters(), CELL)
    bad = tmp_path / "bad.ins"
    bad.write_text("TITL x\nCELL 0.71 6.3 7.1\nLATT 1\nEND\n")
    with pytest.raises(ShelxError, match=r"bad.ins:2: CELL"):
        read_ins_symmetry(bad)


def test_charge_flipping_phases_and_map_read_back_with_gemmi(measured, tmp_path):
    import gemmi

    d, truth, _ = measured
    out = tmp_path / "cf"
    res = predict_measured(d / "x.hkl", d / "x.ins", out, method="charge_flipping")
    assert res.counts["used"] == len(truth.hkl) and res.counts["unique"] == len(truth.hkl)
    # the merged amplitudes are the true ones; the phases solve the structure
    order = np.lexsort(res.hkl.T[::-1])
    torder = np.lexsort(truth.hkl.T[::-1])
    # F² is written with two decimals (F8.2)
    assert np.allclose(res.amplitude[order] ** 2, truth.amplitude[torder] ** 2, rtol=0, atol=0.006)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["charge_flipping_symmetrised"]
    m = gemmi.read_ccp4_map(str(out / "map.ccp4"))
    m.setup(float("nan"))
    assert np.allclose(
        [m.grid.unit_cell.a, m.grid.unit_cell.b, m.grid.unit_cell.c], CELL[:3], atol=1e-3
    )
    grid = np.array(m.grid, copy=False)
    ref = density_map(CELL, "P-1", res.hkl, res.amplitude, res.phase).real_map_unpadded()
    assert grid.shape == tuple(ref.all())
    assert np.corrcoef(grid.ravel(), ref.as_numpy_array().ravel())[0, 1] > 0.999
    # the charge-flipping map is the true one up to an origin shift: correlation at best
    from mlxas.phases.evaluate import best_origin

    phase_on_truth = res.phase[order][np.argsort(torder)]
    assert best_origin(truth, phase_on_truth)[2] > 0.8
    assert map_correlation(CELL, "P-1", truth.hkl, truth.amplitude, truth.phase, truth.phase) > 0.99


def test_saved_model_predicts_on_measured_data(measured, tmp_path):
    d, truth, settings = measured
    arrays = make_arrays(settings, [_atoms(s) for s in range(1, 9)])
    result = train_signs({"kind": "sign_mlp", "epochs": 2, "params": {"hidden": [8]}},
                         arrays.e_value, arrays.mask, arrays.sign, arrays.hkl, "P-1")  # fmt: skip
    save_sign_model(tmp_path / "model", result, settings, PhaseFeatures())
    out = tmp_path / "pred"
    res = predict_measured(d / "x.hkl", d / "x.ins", out, model_dir=tmp_path / "model")
    assert res.phase.shape == (len(truth.hkl),)
    assert np.all(np.isin(np.round(np.degrees(res.phase)) % 360, [0, 180]))
    assert np.all((res.p_sign >= 0.5) & (res.p_sign <= 1.0))
    lines = (out / "phases.csv").read_text().splitlines()
    assert lines[0] == "h,k,l,d,F,sigma_F,phase,p_sign" and len(lines) == len(truth.hkl) + 1
    wrong = tmp_path / "p21c.ins"
    text = (d / "x.ins").read_text().replace("LATT 1", "LATT 1\nSYMM -X, 1/2+Y, 1/2-Z")
    wrong.write_text(text.replace(" 84.0 98.0 103.0", " 90 98.0 90"))
    with pytest.raises(ShelxError, match="trained for P-1"):
        predict_measured(d / "x.hkl", wrong, tmp_path / "w", model_dir=tmp_path / "model")


def test_a_workflow_model_predicts_on_measured_data(measured, tmp_path):
    """A sign_mlp trained by the workflow's train stage on a gathered dataset phases the
    measured data; its card carries the engine settings that rebuild the inputs."""
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import train

    d, truth, settings = measured
    images = stage_crystals(8, ("C", "N", "O", "C", "C"))
    path = gather_crystals(tmp_path, images, settings, (0.6, 0.2, 0.2))[1]
    entry = {"name": "ref", "kind": "sign_mlp", "input": "e_value", "targets": ["sign"],
             "sample_weight": "intensity", "epochs": 2, "params": {"hidden": [8]}}  # fmt: skip
    _, card, folder = train(path, ModelSpec.from_config(entry), tmp_path / "models", verbose=0)
    assert card["preprocessing"]["engine"]["settings"]["index_max"] == settings.index_max
    res = predict_measured(d / "x.hkl", d / "x.ins", tmp_path / "pred", model_dir=folder)
    assert res.phase.shape == (len(truth.hkl),)
    assert np.all(np.isin(np.round(np.degrees(res.phase)) % 360, [0, 180]))
    assert np.all((res.p_sign >= 0.5) & (res.p_sign <= 1.0))


def test_command_charge_flipping_trials(measured, tmp_path, capsys):
    from mlxas.phases.command import main

    d, _, _ = measured
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(d / "x.hkl"), "--trials", "0", "--out", str(tmp_path / "a")])
    assert exc.value.code == 2
    assert "--trials: must be at least 1, not 0" in capsys.readouterr().err
    out = tmp_path / "b"
    args = ["predict", str(d / "x.hkl"), "--method", "charge_flipping", "--trials", "2"]
    assert main([*args, "--out", str(out)]) == 0
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert counts["charge_flipping_trials"] == 2
    assert 0.0 <= counts["charge_flipping_r1"] < 0.5
