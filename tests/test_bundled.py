"""Bundled models: ``mlxas models list|show``, and ``mlxas predict FILE...`` without a model
picking one per file by absorber and edge (header, else E0), naming it, and refusing the
files no model covers.  The models are real ones trained by the test fixtures (a Cu K and
a Ni K model on EXAFS-equation spectra) placed in a temporary bundled folder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import EXPERIMENTAL
from mlxas.cli import main as cli_main
from mlxas.models.card import read_card

CU, NI, PT = (EXPERIMENTAL / f"{e}_metal_rt.xdi" for e in ("cu", "ni", "pt"))


def _place(pointer: Path, folder: Path, root: Path, experiment: str) -> Path:
    """Copy a pointer and its model folder into ``root/<experiment>/`` as the workflow
    wrote them (``<entry>.json``, ``<entry>/<model id>/``)."""
    exp = root / experiment
    exp.mkdir(parents=True, exist_ok=True)
    entry = json.loads(pointer.read_text())["name"]
    shutil.copy(pointer, exp / f"{entry}.json")
    shutil.copytree(folder, exp / entry / folder.name)
    return exp / entry / folder.name


@pytest.fixture(scope="module")
def bundled(synthetic_models, tmp_path_factory) -> Path:
    """A bundled folder with ``synth_cu/mt`` (the session's Cu K model) and ``synth_ni/mlp``
    (trained here on the same spectra declared as Ni K)."""
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import train, write_pointer
    from mlxas.workflow.layout import Layout
    from synthetic_exafs import SyntheticDataset

    root = tmp_path_factory.mktemp("bundled")
    cu_pointer = Path(synthetic_models["pointers"]["mt"])
    _place(cu_pointer, synthetic_models["folders"]["mt"], root, "synth_cu")
    ds = SyntheticDataset(n=120, seed=3)
    ds.attrs = {"absorber": "Ni", "edge": "K"}
    spec = ModelSpec.from_config(
        {"name": "mlp", "kind": "mlp", "epochs": 2, "params": {"hidden": [8]}, "jit_compile": False}
    )
    layout = Layout(tmp_path_factory.mktemp("ni_results"))
    mid, card, folder = train(ds, spec, layout.model_store("mlp"), threads=1, verbose=0)
    write_pointer(layout.model_pointer("mlp"), mid, card)
    _place(layout.model_pointer("mlp"), folder, root, "synth_ni")
    return root


def _headerless(path: Path, out: Path) -> Path:
    """The file without the element and edge in its header: the edge must come from E0."""
    drop = ("element.", "scan.edge", "scan.element")
    lines = [ln for ln in path.read_text().splitlines() if not any(d in ln.lower() for d in drop)]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_predict_without_model_picks_per_file(bundled, tmp_path, capsys):
    cu_bare = _headerless(CU, tmp_path / "mystery.xdi")
    out = tmp_path / "out.json"
    argv = ["predict", str(CU), str(NI), str(PT), str(cu_bare), "--models", str(bundled)]
    code = cli_main([*argv, "--out", str(out), "-j", "1", "--allow-short-k"])
    assert code == 1  # one refused file
    cap = capsys.readouterr()
    recs = {Path(r["source"]).name: r for r in json.loads(out.read_text())["results"]}
    assert recs["cu_metal_rt.xdi"]["model"] == "synth_cu/mt"
    assert recs["ni_metal_rt.xdi"]["model"] == "synth_ni/mlp"
    assert recs["cu_metal_rt.xdi"]["status"] == recs["ni_metal_rt.xdi"]["status"] == "ok"
    # No element in the header: the edge found at E0 (Cu K, 8979 eV) chooses the model.
    assert recs["mystery.xdi"]["model"] == "synth_cu/mt"
    assert any("chosen from E0" in n for n in recs["mystery.xdi"]["notes"])
    # The table names that model once: in the note that says how it was chosen.
    row = next(ln for ln in cap.out.splitlines() if "mystery.xdi" in ln)
    assert row.count("synth_cu/mt") == 1 and "model synth_cu/mt chosen from E0" in row
    assert recs["pt_metal_rt.xdi"]["status"] == "refused"
    want = "no bundled model for Pt L3 (models for: Cu K, Ni K)"
    assert recs["pt_metal_rt.xdi"]["reason"] == want
    assert f"refused {PT}: no bundled model for Pt L3" in cap.err
    cu_id = read_card(next((bundled / "synth_cu" / "mt").iterdir()))["model_id"]
    assert f"using bundled model synth_cu/mt (Cu K, id {cu_id})" in cap.err
    assert "model synth_ni/mlp" in cap.out  # the table names each file's model


def test_predict_takes_a_bundled_model_by_name(bundled, tmp_path, capsys, monkeypatch):
    """`mlxas predict synth_cu/mt FILE`, from --models or $MLXAS_MODELS, as `models show`
    and serve requests take the name; an argument that is neither a file nor a bundled
    name is still a file, refused as missing."""
    out = tmp_path / "out.json"
    argv = ["predict", "synth_cu/mt", str(CU), "-j", "1", "--allow-short-k", "-q"]
    assert cli_main([*argv, "--models", str(bundled), "--out", str(out)]) == 0
    assert "using bundled model synth_cu/mt" in capsys.readouterr().err
    assert json.loads(out.read_text())["model"]["bundled"] == "synth_cu/mt"
    monkeypatch.setenv("MLXAS_MODELS", str(bundled))
    assert cli_main(argv) == 0
    capsys.readouterr()
    assert cli_main(["predict", "synth_cu/nosuch", str(CU), "-j", "1", "-q"]) == 1
    assert "refused synth_cu/nosuch: no such file" in capsys.readouterr().err


def test_a_folder_of_model_pointers_is_refused_naming_the_pointers(bundled, capsys):
    code = cli_main(["predict", str(bundled / "synth_cu"), str(CU), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    pointer = bundled / "synth_cu" / "mt.json"
    assert f"{bundled / 'synth_cu'}: a folder of model pointers" in err
    assert f"give {pointer} as MODEL" in err and "would be lost" not in err


def test_a_file_at_an_edge_no_model_has_is_refused_with_the_edge(bundled, tmp_path, capsys):
    fe = _headerless(EXPERIMENTAL / "fe_metal_rt.xdi", tmp_path / "fe.xdi")
    code = cli_main(["predict", str(fe), "--models", str(bundled), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{fe}: no element in the header and no bundled model's edge within 50 eV" in err
    assert "it looks like Fe K" in err


def test_a_tampered_bundled_model_refuses_its_files(bundled, tmp_path, capsys):
    root = tmp_path / "models"
    shutil.copytree(bundled, root)
    folder = next((root / "synth_ni" / "mlp").iterdir())
    ood = folder / "ood.json"
    ood.write_text(ood.read_text() + " ")  # one byte more: no longer the bound file
    code = cli_main(["predict", str(NI), "--models", str(root), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bundled model synth_ni/mlp refused" in err and "ood.json: SHA-256" in err


def test_a_damaged_bundled_pointer_is_listed_and_named_not_skipped(bundled, tmp_path, capsys):
    """A pointer cut short is listed as refused by `models list`, and a file for its edge
    is refused naming it, instead of the model vanishing from the folder unseen."""
    root = tmp_path / "models"
    shutil.copytree(bundled, root)
    pointer = root / "synth_ni" / "mlp.json"
    pointer.write_text(pointer.read_text()[:10])
    assert cli_main(["models", "list", "--models", str(root), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert sorted(rows) == ["synth_cu/mt", "synth_ni/mlp"]
    assert "model pointer is not valid JSON" in json.dumps(rows["synth_ni/mlp"])
    assert cli_main(["predict", str(NI), "--models", str(root), "-q"]) == 2
    err = capsys.readouterr().err
    assert "no bundled model for Ni K (models for: Cu K; unusable: synth_ni/mlp" in err


def test_serve_names_the_bundled_models_it_cannot_serve(bundled, tmp_path, capsys):
    from mlxas.serve import bundled_models

    root = tmp_path / "models"
    shutil.copytree(bundled, root)
    card = next((root / "synth_ni" / "mlp").iterdir()) / "card.json"
    card.write_text(card.read_text()[:100])
    paths, names = bundled_models(str(root))
    assert names == ["synth_cu/mt"] and len(paths) == 1
    err = capsys.readouterr().err
    assert f"mlxas serve: warning: not serving synth_ni/mlp: {card}: card is not valid" in err


def test_models_list_and_show(bundled, capsys):
    assert cli_main(["models", "list", "--models", str(bundled), "--verify", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert sorted(rows) == ["synth_cu/mt", "synth_ni/mlp"]
    ni = next((bundled / "synth_ni" / "mlp").iterdir())
    assert rows["synth_ni/mlp"]["model_id"] == ni.name and rows["synth_ni/mlp"]["edge"] == "Ni K"
    assert rows["synth_ni/mlp"]["size_bytes"] == sum(p.stat().st_size for p in ni.iterdir())
    assert rows["synth_cu/mt"]["k_range"] == [2.0, 12.0]  # the model's input_range
    assert {r["status"] for r in rows.values()} == {"verified"}

    assert cli_main(["models", "show", "synth_ni", "--models", str(bundled)]) == 0
    text = capsys.readouterr().out
    card = read_card(ni)
    assert f"model id        {card['model_id']}" in text
    assert "absorber, edge  Ni K" in text and "edge energy     8333.0 eV" in text
    assert f"hash {card['dataset']['hash']}" in text
    assert cli_main(["models", "show", card["model_id"][:8], "--models", str(bundled)]) == 0
    assert card["model_id"] in capsys.readouterr().out
    assert cli_main(["models", "show", "nothing", "--models", str(bundled)]) == 2
    assert "nothing: no such bundled model" in capsys.readouterr().err


def test_serve_picks_the_bundled_model_of_each_spectrum(bundled):
    from fastapi.testclient import TestClient

    from mlxas.predict.bundled import list_models
    from mlxas.serve.app import ServeSettings, create_app
    from mlxas.spectra.measured import read_spectra

    models = list_models(bundled)
    settings = ServeSettings(
        tuple(str(m.pointer) for m in models), tuple(m.name for m in models), allow_short_k=True
    )
    with TestClient(create_app(settings)) as client:
        assert [m["name"] for m in client.get("/health").json()["models"]] == [
            "synth_cu/mt",
            "synth_ni/mlp",
        ]
        ni = read_spectra(NI)[0]
        body = {"energy": ni.energy.tolist(), "mu": ni.mu.tolist(), "name": "scan"}
        r = client.post("/predict", json=body)  # no element: Ni K from E0
        assert r.status_code == 200 and r.json()["model"]["name"] == "synth_ni/mlp"
        with open(CU, "rb") as fh:  # the header says Cu K
            r = client.post("/predict/file", files={"file": ("cu.xdi", fh)})
        assert r.status_code == 200 and r.json()["model"]["name"] == "synth_cu/mt"
        with open(PT, "rb") as fh:
            r = client.post("/predict/file", files={"file": ("pt.xdi", fh)})
        assert r.status_code == 422
        assert r.json()["detail"] == "pt.xdi: no bundled model for Pt L3 (models for: Cu K, Ni K)"


def test_no_bundled_models_is_said_plainly(tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    assert cli_main(["predict", str(CU), "--models", str(empty)]) == 2
    assert f"no MODEL given and no bundled models in {empty}" in capsys.readouterr().err
    assert cli_main(["models", "list", "--models", str(empty)]) == 1
    assert f"no bundled models in {empty}" in capsys.readouterr().err


def test_a_models_folder_that_does_not_exist_is_named(tmp_path, capsys, monkeypatch):
    """`models list|show --models DIR` with a mistyped DIR says the folder does not exist
    (not 'no bundled models in DIR', as if it were an empty folder)."""
    missing = tmp_path / "nonexist"
    for argv in (["list"], ["list", "--json"], ["show", "foil_cu"]):
        assert cli_main(["models", *argv, "--models", str(missing)]) == 2
        err = capsys.readouterr().err
        assert f"{missing}: no such models folder" in err and "no bundled models" not in err
    monkeypatch.setenv("MLXAS_MODELS", str(missing))
    assert cli_main(["models", "list"]) == 2
    assert f"{missing}: no such models folder (from $MLXAS_MODELS)" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli_main(["models", "list", "--models", str(tmp_path / "file")]) == 2
    assert f"{tmp_path / 'file'}: is not a folder" in capsys.readouterr().err
    from mlxas.serve import bundled_models

    with pytest.raises(FileNotFoundError, match=r"no MODEL given and .*: no such models folder"):
        bundled_models(str(missing))
    assert cli_main(["predict", str(CU), "--models", str(missing)]) == 2
    assert f"no MODEL given and {missing}: no such models folder" in capsys.readouterr().err


def test_two_models_for_one_edge_the_file_gets_the_closer_one(tmp_path, capsys):
    """The repository's models hold Ni metal (foil_ni) and NiO (nio), both Ni K: each file
    gets the model with the lower OOD score, and the notes give both scores."""
    root = Path(__file__).resolve().parent.parent / "models"
    nio = EXPERIMENTAL / "nio_rt.xdi"
    out = tmp_path / "out.json"
    argv = ["predict", str(NI), str(nio), "--models", str(root), "-j", "1", "--out", str(out)]
    assert cli_main(argv) == 0
    recs = {Path(r["source"]).name: r for r in json.loads(out.read_text())["results"]}
    assert recs["ni_metal_rt.xdi"]["model"] == "foil_ni/ensemble"
    assert recs["nio_rt.xdi"]["model"] == "nio/ensemble"
    for rec in recs.values():
        (note,) = [n for n in rec["notes"] if n.startswith("lowest OOD score")]
        scores = dict(re.findall(r"([a-z_]+/ensemble) ([0-9.]+)", note))
        assert set(scores) == {"foil_ni/ensemble", "nio/ensemble"}
        assert float(scores[rec["model"]]) == min(map(float, scores.values()))
        assert float(scores[rec["model"]]) == pytest.approx(rec["ood_score"], abs=0.005)
    # mlxas serve chooses the same way for a single spectrum.
    from fastapi.testclient import TestClient

    from mlxas.predict.bundled import list_models
    from mlxas.serve.app import ServeSettings, create_app
    from mlxas.spectra.measured import read_spectra

    ni_models = [m for m in list_models(root) if m.name in ("foil_ni/ensemble", "nio/ensemble")]
    settings = ServeSettings(
        tuple(str(m.pointer) for m in ni_models), tuple(m.name for m in ni_models)
    )
    with TestClient(create_app(settings)) as client:
        for path, rec in ((NI, recs["ni_metal_rt.xdi"]), (nio, recs["nio_rt.xdi"])):
            sp = read_spectra(path)[0]
            body = {"energy": sp.energy.tolist(), "mu": sp.mu.tolist(), "element": "Ni"}
            r = client.post("/predict", json=body)
            assert r.status_code == 200 and r.json()["model"]["name"] == rec["model"]
            assert r.json()["result"]["ood_score"] == pytest.approx(rec["ood_score"], rel=1e-4)
            with open(path, "rb") as fh:  # an uploaded file
                r = client.post("/predict/file", files={"file": (path.name, fh)})
            assert r.status_code == 200 and r.json()["model"]["name"] == rec["model"]
            assert r.json()["results"][0]["model"] == rec["model"]
        # a series: each spectrum gets its own closest model
        both = [read_spectra(p)[0] for p in (nio, NI)]
        series = [{"energy": b.energy.tolist(), "mu": b.mu.tolist(), "element": "Ni"} for b in both]
        r = client.post("/predict/batch", json={"spectra": series})
        assert r.status_code == 200
        got = [x["model"] for x in r.json()["results"]]
        assert got == [recs["nio_rt.xdi"]["model"], recs["ni_metal_rt.xdi"]["model"]]
    # The NiO model reads one CN and R per neighbour shell: the table shows them.
    assert cli_main(["predict", str(nio), "--models", str(root), "-j", "1"]) == 0
    table = capsys.readouterr().out
    assert "shells: CN El R (Å)" in table
    assert re.search(r"\d\.\d\d O 2\.\d{3}; \d+\.\d\d Ni 2\.\d{3}", table)


def test_models_list_without_verify_does_not_call_a_tampered_model_ok(tmp_path, capsys):
    """Without --verify the SHA-256 check is skipped, so a model is 'unverified' (with a
    footnote), never 'ok'; --verify refuses the tampered file by name."""
    from mlxas.predict.bundled import REPO_ROOT

    root = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "models" / "foil_cu", root / "foil_cu")
    folder = next(p for p in (root / "foil_cu" / "ensemble").iterdir() if p.is_dir())
    ood = folder / "ood.json"
    ood.write_text(ood.read_text() + " ")  # one byte more: no longer the bound file
    assert cli_main(["models", "list", "--models", str(root)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("foil_cu/"))
    assert row.split()[-1] == "unverified" and " ok" not in row
    assert "unverified: files not checked against their card's SHA-256 (--verify" in out
    assert cli_main(["models", "list", "--models", str(root), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["models"]
    assert entry["status"] == "unverified"
    assert cli_main(["models", "list", "--models", str(root), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "refused:" in out and "ood.json: SHA-256" in out and "unverified:" not in out
