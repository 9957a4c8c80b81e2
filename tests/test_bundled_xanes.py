"""A bundled XANES geometry model beside bundled EXAFS models: which file gets which.

The XANES model is a small random forest fitted here by the real trainer on
``tests/data/xanes/geometry_small.h5`` (FEFF10 K edges of Ti–Zn oxides; its card lists
every absorber of its training sites); the EXAFS model is the repository's bundled Ni
metal model.  Nothing here asserts which class a measured file gets, only which model
reads it and why.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _xanes_support import train_small_forest
from conftest import EXPERIMENTAL
from mlxas.cli import main as cli_main
from mlxas.models.card import read_card
from mlxas.predict.bundled import list_models, pick_model
from mlxas.spectra.measured import read_spectra

ROOT = Path(__file__).resolve().parents[1]
KMNO4, MNO, NIO, NI = (
    EXPERIMENTAL / f"{n}.xdi" for n in ("kmno4_rt", "mno_rt", "nio_rt", "ni_metal_rt")
)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    """``xanes_small/random_forest`` (Ti–Zn K XANES) and ``foil_ni/ensemble`` (Ni K EXAFS)."""
    root = tmp_path_factory.mktemp("bundled")
    folder = train_small_forest(tmp_path_factory.mktemp("store"))
    exp = root / "xanes_small"
    exp.mkdir()
    shutil.copytree(folder, exp / "random_forest" / folder.name)
    pointer = {"name": "random_forest", "model_id": read_card(folder)["model_id"], "metrics": {}}
    (exp / "random_forest.json").write_text(json.dumps(pointer))
    shutil.copytree(ROOT / "models" / "foil_ni", root / "foil_ni")
    return root


def _cut(path: Path, out: Path, emax_rel: float, keep_header: bool = True) -> Path:
    """``path`` with its data cut at E0 + ``emax_rel`` eV (a XANES-only scan), and
    without the element and edge in its header unless ``keep_header``."""
    from mlxas.spectra.xafsmath import find_e0

    sp = read_spectra(path)[0]
    e0 = float(find_e0(sp.energy, sp.mu))
    lines = path.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#")]
    if not keep_header:
        head = [ln for ln in head if "element." not in ln.lower()]
    rows = [f"{e:.4f} {m:.7g}" for e, m in zip(sp.energy, sp.mu, strict=True) if e <= e0 + emax_rel]
    out.write_text("\n".join([*head, *rows]) + "\n")
    return out


def test_the_card_s_absorbers_are_what_the_model_covers(bundled, capsys):
    models = {m.name: m for m in list_models(bundled)}
    xanes = models["xanes_small/random_forest"]
    absorbers = read_card(xanes.folder)["preprocessing"]["absorbers"]
    assert list(xanes.covered) == absorbers and len(absorbers) > 1 and "Mn" in absorbers
    assert xanes.reads_edge and not models["foil_ni/ensemble"].reads_edge
    assert list(models["foil_ni/ensemble"].covered) == ["Ni"]
    assert cli_main(["models", "list", "--models", str(bundled)]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("xanes_small"))
    assert f"{','.join(absorbers)} K" in row
    assert cli_main(["models", "show", xanes.name, "--models", str(bundled)]) == 0
    shown = capsys.readouterr().out
    assert "E - E0 read            -20 to 60 eV" in shown and "k-range" not in shown
    acc = read_card(xanes.folder)["metrics"]["test"]["geometry"]["accuracy"]
    assert f"test geometry          accuracy {acc:.3f}" in shown
    assert "forest of 40 trees" in shown  # a forest has trees, not epochs


def test_each_file_goes_to_the_model_that_answers_for_it(bundled, tmp_path, capsys):
    """Mn K (no EXAFS model): the XANES model, from the header or from E0; Ni K with EXAFS:
    the EXAFS model (CN and R), never compared with the XANES model by OOD score; a Ni K
    scan that ends 60 eV above the edge: the XANES model; Pt L3: refused, naming what the
    folder covers."""
    bare_mn = _cut(MNO, tmp_path / "mystery_mn.xdi", 400.0, keep_header=False)
    short_ni = _cut(NIO, tmp_path / "nio_xanes_scan.xdi", 65.0)
    pt = EXPERIMENTAL / "pt_metal_rt.xdi"
    out = tmp_path / "out.json"
    files = [KMNO4, MNO, NI, bare_mn, short_ni, pt]
    argv = ["predict", *map(str, files), "--models", str(bundled), "-j", "1", "--out", str(out)]
    assert cli_main(argv) == 1  # the Pt file is refused
    recs = {Path(r["source"]).name: r for r in json.loads(out.read_text())["results"]}
    for name in ("kmno4_rt.xdi", "mno_rt.xdi", "mystery_mn.xdi", "nio_xanes_scan.xdi"):
        assert recs[name]["model"] == "xanes_small/random_forest", name
        assert recs[name]["status"] == "ok" and recs[name]["geometry"]
    assert any("chosen from E0" in n for n in recs["mystery_mn.xdi"]["notes"])
    assert recs["ni_metal_rt.xdi"]["model"] == "foil_ni/ensemble"
    # A XANES model trained now bounds CN and R in its error flag like an EXAFS model,
    # so neither reading carries the note that they are unflagged (a model calibrated
    # before, such as the bundled xanes_geometry forest until it is recalibrated, still
    # does: tests/test_error_flag_edge.py).
    folder = next((bundled / "xanes_small" / "random_forest").iterdir())
    error = json.loads((folder / "ood.json").read_text())["error"]
    assert error["status"] == "fitted" and {"cn", "r"} <= set(error["bounds"])
    for name in ("mno_rt.xdi", "ni_metal_rt.xdi"):
        assert not any("not covered by the OOD flag" in n for n in recs[name]["notes"]), name
    assert not any("lowest OOD score" in n for n in recs["ni_metal_rt.xdi"]["notes"])
    assert recs["pt_metal_rt.xdi"]["status"] == "refused"
    assert "no bundled model for Pt L3 (models for: " in recs["pt_metal_rt.xdi"]["reason"]
    assert "Mn K" in recs["pt_metal_rt.xdi"]["reason"]
    assert "Ni K" in recs["pt_metal_rt.xdi"]["reason"]
    capsys.readouterr()


def test_the_xanes_model_is_taken_by_name_for_a_file_an_exafs_model_would_read(bundled):
    """``pick_model`` prefers the EXAFS model for the Ni foil; naming the XANES model (as
    ``mlxas predict xanes_small FILE`` does) reads its edge instead."""
    models = list_models(bundled)
    pick = pick_model(read_spectra(NI)[0], models)
    assert pick.model.name == "foil_ni/ensemble" and not pick.alternatives
    out = cli_main(["predict", "xanes_small", str(NI), "--models", str(bundled), "-j", "1", "-q"])
    assert out == 0


def test_facts_of_a_xanes_model_carry_its_measured_readings(bundled, tmp_path, capsys):
    """``mlxas models facts`` takes ``bench_xanes_measured.py``'s output for a XANES model:
    ``models show`` then gives each measured file's class, probability and oxidation state
    against the truth; readings of another model id are refused."""
    out = tmp_path / "pred.json"
    argv = ["predict", "xanes_small", str(KMNO4), "--models", str(bundled), "-j", "1", "-q"]
    assert cli_main([*argv, "--out", str(out)]) == 0
    (rec,) = json.loads(out.read_text())["results"]
    model = next(m for m in list_models(bundled) if m.name == "xanes_small/random_forest")
    truth = {"geometry": "tetrahedral", "oxidation_state": 7}
    reading = {
        "truth": truth,
        "geometry": rec["geometry"],
        "probabilities": rec["geometry_probabilities"],
        "oxidation_state": rec["oxidation_state"],
        "ood": rec["ood"],
        "class_correct": rec["geometry"] == "tetrahedral",
        "oxidation_within_1": abs(rec["oxidation_state"] - 7) <= 1,
    }
    bench = {
        "experiment": "xanes_small",
        "command": "bench_xanes_measured.py",
        "date": "today",
        "models": {
            "random_forest": {"model_id": model.model_id, "spectra": {"kmno4_rt.xdi": reading}}
        },
    }
    path = tmp_path / "xanes_measured.json"
    path.write_text(json.dumps(bench))
    dataset = ROOT / "tests/data/xanes/geometry_small.h5"
    assert cli_main(["models", "facts", model.name, str(dataset), "--measured", str(path),
                     "--models", str(bundled)]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli_main(["models", "show", model.name, "--models", str(bundled)]) == 0
    shown = capsys.readouterr().out
    p = rec["geometry_probabilities"][rec["geometry"]]
    line = next(ln for ln in shown.splitlines() if ln.lstrip().startswith("kmno4_rt.xdi"))
    assert f"{rec['geometry']} (p {p:.2f}; truth tetrahedral" in line
    assert f"oxidation state {rec['oxidation_state']:.1f} (truth 7" in line
    assert "range oxidation_state" in shown and "range geometry" not in shown
    counts = dict(
        part.rsplit(" ", 1)
        for part in next(ln for ln in shown.splitlines() if ln.startswith("classes geometry"))
        .split("geometry", 1)[1]
        .strip()
        .split(", ")
    )
    trained = read_card(model.folder)["dataset"]["split"]["sizes"]["train"]
    assert sum(map(int, counts.values())) == trained and "octahedral" in counts
    bench["models"]["random_forest"]["model_id"] = "0" * 16
    path.write_text(json.dumps(bench))
    assert cli_main(["models", "facts", model.name, str(dataset), "--measured", str(path),
                     "--models", str(bundled)]) != 0  # fmt: skip
    assert f"was read with model id {'0' * 16}, not {model.model_id}" in capsys.readouterr().err


# --- the bundled XANES model (models/xanes_geometry) on the measured edges --------------

BUNDLED_XANES = ROOT / "models" / "xanes_geometry"
#: Measured edges with known geometry and oxidation state (tests/data/experimental/README.md).
XANES_TRUTH = {"kmno4_rt.xdi": ("tetrahedral", 7), "mno_rt.xdi": ("octahedral", 2),
               "nio_rt.xdi": ("octahedral", 2)}  # fmt: skip


@pytest.fixture(scope="module")
def bundled_readings() -> dict:
    if not BUNDLED_XANES.is_dir():
        pytest.skip("no bundled XANES model (models/xanes_geometry) in this checkout")
    from mlxas.predict.bundled import find_model
    from mlxas.predict.predictor import Predictor

    model = find_model("xanes_geometry", ROOT / "models")
    with Predictor(model.pointer, jobs=1) as pred:
        res = pred.predict([EXPERIMENTAL / name for name in XANES_TRUTH])
    return {Path(r.source).name: r for r in res}


@pytest.mark.parametrize("name", sorted(XANES_TRUTH))
def test_bundled_xanes_model_reads_the_geometry_of_each_measured_edge(bundled_readings, name):
    r = bundled_readings[name]
    assert r.status == "ok", r.reason
    assert r.values["geometry"] == XANES_TRUTH[name][0], r.values


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "kmno4_rt.xdi",
            marks=pytest.mark.xfail(
                raises=AssertionError,
                strict=True,
                reason="issue 19: KMnO4 read as Mn(+4.45), truth +7 (docs/xanes.md); flagged",
            ),
        ),
        "mno_rt.xdi",
        "nio_rt.xdi",
    ],
)
def test_bundled_xanes_model_reads_the_oxidation_state_within_one(bundled_readings, name):
    assert abs(bundled_readings[name].values["oxidation_state"] - XANES_TRUTH[name][1]) <= 1


def test_the_bundled_xanes_model_misses_kmno4_only_as_recorded(bundled_readings):
    """The recorded miss is flagged, and off by no more than recorded: 4.45 for 7 (the
    forest bundled before the 2026-12-08 retraining read 4.83)."""
    v = bundled_readings["kmno4_rt.xdi"].values
    assert v["ood"] is True, v
    assert 4.2 <= v["oxidation_state"] < 6.0, v
