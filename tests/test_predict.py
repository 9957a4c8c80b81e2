"""``mlxas predict`` with the tiny workflow's Cu K model on real foil files and damaged
copies of them: checks against the model, batching, outputs, watch mode, the CLI."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlxas.predict.pipeline import required_k_range
from mlxas.predict.predictor import Predictor
from mlxas.predict.watch import Watcher, watch

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"
CU = EXPERIMENTAL / "cu_metal_rt.xdi"
NI = EXPERIMENTAL / "ni_metal_rt.xdi"
PT = EXPERIMENTAL / "pt_metal_rt.xdi"
ETOK = 0.2624682843  # 2 m_e / hbar², 1/(eV·Å²)


def split(path: Path) -> tuple[list[str], list[str]]:
    lines = path.read_text().splitlines()
    return (
        [ln for ln in lines if ln.startswith("#")],
        [ln for ln in lines if ln.strip() and not ln.startswith("#")],
    )


def write(path: Path, header: list[str], data: list[str]) -> Path:
    path.write_text("\n".join(header + data) + "\n")
    return path


def noisy_copies(directory: Path, n: int, sigma: float = 0.002, seed: int = 0) -> list[Path]:
    """n copies of the Cu foil on its own energy grid with noise on mutrans (a QEXAFS run)."""
    header, data = split(CU)
    cols = np.array([ln.split() for ln in data], dtype=float)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c = cols.copy()
        c[:, 3] += rng.normal(0.0, sigma, len(c))
        rows = [f"{e:.2f} {a:.1f} {b:.6f} {m:.7f}" for e, a, b, m in c]
        out.append(write(directory / f"cu_{i:04d}.xdi", header, rows))
    return out


def model_path(exp: Path) -> Path:
    return exp / "results" / "tiny" / "models" / "mlp.json"


@pytest.fixture(scope="module")
def predictor(tiny_experiment):
    with Predictor(model_path(tiny_experiment), jobs=1) as p:
        yield p


@contextmanager
def options(pred: Predictor, **changes):
    saved = pred.spec
    pred.spec = replace(saved, **changes)
    try:
        yield pred
    finally:
        pred.spec = saved


def one(pred: Predictor, path: Path):
    (r,) = pred.predict([path])
    assert r.source == str(path)
    return r


def refused(pred: Predictor, path: Path, pattern: str):
    r = one(pred, path)
    assert r.status == "refused" and re.search(pattern, r.reason), r.reason
    return r


# --- checks against the model ---------------------------------------------------------


def test_model_requirements(predictor):
    spec = predictor.spec
    assert (spec.absorber, spec.edge, spec.edge_energy) == ("Cu", "K", 8979.0)
    # A chi_k model without an input range reads chi(k) over its whole k grid.
    pre = predictor.card["preprocessing"]
    assert pre["input"] == "chi_k" and predictor.card["config"]["input_range"] is None
    grid = pre["features"]["k_grid"]
    assert spec.k_required == pytest.approx((grid["kmin"], grid["kmax"]))
    assert required_k_range(predictor.card) == spec.k_required


def larch_reading(pred: Predictor, path: Path) -> dict[str, float]:
    """CN and R of the measured file by a path that uses no mlxas code but the model:
    larch reads it, finds E0 and removes the background (the predictor's AUTOBK
    settings), chi(k) goes onto the model's k grid (zero beyond the data) times k^w, and
    the saved network's raw Keras output is read by column name."""
    from larch import Group
    from larch.io import read_xdi
    from larch.xafs import autobk, pre_edge

    data = read_xdi(str(path))
    g = Group()
    pre_edge(data.energy, data.mutrans, group=g)
    autobk(data.energy, data.mutrans, group=g, **pred.spec.background.larch_kws())
    pre = pred.card["preprocessing"]
    grid = pre["features"]["k_grid"]
    n = round((grid["kmax"] - grid["kmin"]) / grid["dk"]) + 1
    k = np.round(grid["kmin"] + grid["dk"] * np.arange(n), 9)  # exact multiples of dk
    x = np.interp(k, g.k, g.chi, left=0.0, right=0.0) * k ** pre["features"]["kweight"]
    from mlxas.models.card import load_model  # Keras itself, not the numpy path under test

    keras_model, _ = load_model(pred.model_dir)
    raw = np.asarray(keras_model.predict(x[None, :].astype(np.float32), verbose=0))[0]
    columns = pred.card["outputs"]["columns"]
    return {t: float(raw[columns.index(t)]) for t in ("cn", "r")}


def test_cu_foil_short_k_refused_or_allowed_with_warning(predictor, tmp_path):
    header, data = split(CU)
    e0 = 8980.5
    kmax = 10.0
    rows = [ln for ln in data if float(ln.split()[0]) <= e0 + kmax**2 / ETOK]
    short = write(tmp_path / "cu_k10.xdi", header, rows)
    r = refused(predictor, short, r"k-range too short: data end at k = 9\.9\d 1/Å, the model")
    assert "--allow-short-k" in r.reason
    with options(predictor, allow_short_k=True):
        r = one(predictor, short)
    assert r.status == "ok" and r.notes[0].startswith("warning: k-range too short")
    # The short spectrum is read as larch and the model read it, zero beyond k = 9.9.
    ref = larch_reading(predictor, short)
    for t in ("cn", "r"):
        assert r.values[t] == pytest.approx(ref[t], rel=1e-3, abs=1e-3), t


def test_full_cu_foil(predictor):
    with options(predictor, allow_short_k=True, min_batch=10**9):
        r = one(predictor, CU)
    assert r.status == "ok", r.reason
    assert r.e0 == pytest.approx(8980.5) and r.edge_step == pytest.approx(2.729, rel=1e-3)
    assert r.background == "larch" and r.mu_from == "column mutrans"
    assert r.k_max == pytest.approx(np.sqrt(ETOK * (float(split(CU)[1][-1].split()[0]) - r.e0)))
    # The tiny test model's numbers mean nothing about the foil (3 epochs on a handful
    # of sites; tests/test_foil_reading.py checks a real model against the structure),
    # but they must be what the network gives for the foil processed by larch itself.
    ref = larch_reading(predictor, CU)
    for t in ("cn", "r"):
        assert r.values[t] == pytest.approx(ref[t], rel=1e-3, abs=1e-3), t
    assert predictor.ood is not None  # the card holds the OOD statistics of training
    assert isinstance(r.values["ood"], bool) and r.values["ood_score"] >= 0


def test_other_elements_refused(predictor, tmp_path):
    refused(predictor, NI, r"element Ni in the file, the model is for Cu K")
    refused(predictor, PT, r"element Pt in the file, the model is for Cu K")
    header, data = split(NI)
    anonymous = write(
        tmp_path / "ni_no_header.xdi", [h for h in header if "Element." not in h], data
    )
    refused(predictor, anonymous, r"edge at 83\d\d\.\d eV does not match .* Cu K .*looks like Ni K")
    header, data = split(CU)
    wrong_edge = write(
        tmp_path / "cu_l3.xdi", [h.replace("Scan.edge: K", "Scan.edge: L3") for h in header], data
    )
    refused(predictor, wrong_edge, r"edge L3 in the file, the model is for Cu K")


def test_kev_without_unit_refused(predictor, tmp_path):
    header, data = split(CU)
    rows = [f"{float(ln.split()[0]) / 1000:.6f} " + " ".join(ln.split()[1:]) for ln in data]
    refused(
        predictor,
        write(tmp_path / "kev.xdi", header, rows),
        r"not eV \(keV without a declared unit",
    )


def test_no_pre_edge_refused(predictor, tmp_path):
    header, data = split(CU)
    rows = [ln for ln in data if float(ln.split()[0]) >= 8970.0]
    refused(predictor, write(tmp_path / "edge_only.xdi", header, rows), r"no pre-edge region")


def test_inverted_mu_refused(predictor, tmp_path):
    header, data = split(CU)
    rows = [" ".join([*ln.split()[:3], str(-float(ln.split()[3]))]) for ln in data]
    inverted = write(tmp_path / "inverted.xdi", header, rows)
    # larch's E0 search finds no real edge in it; with E0 given the negative edge step is
    # caught.  Either way: refused, never predicted.
    with options(predictor, allow_short_k=True):
        refused(predictor, inverted, r"edge at|no pre-edge|edge step")
        with options(predictor, e0=8980.5):
            refused(predictor, inverted, r"edge step is -2\.7\d*: mu does not rise at the edge")


def test_damaged_files_refused_in_a_batch(predictor, tmp_path):
    header, data = split(CU)
    nan = list(data)
    nan[120] = " ".join([*nan[120].split()[:3], "nan"])
    files = [
        write(tmp_path / "nan.xdi", header, nan),
        write(tmp_path / "short.xdi", header, data[:20]),
        tmp_path / "missing.xdi",
        NI,
    ]
    with options(predictor, allow_short_k=True):
        results = predictor.predict([CU, *files])
    assert [r.status for r in results] == ["ok"] + ["refused"] * 4
    assert [r.source for r in results] == [str(p) for p in [CU, *files]]
    assert "NaN" in results[1].reason and "too few points" in results[2].reason


# --- batches ----------------------------------------------------------------------------


def test_batched_background_gives_larch_predictions(predictor, tmp_path):
    files = noisy_copies(tmp_path, 6)
    with options(predictor, allow_short_k=True):
        batched = predictor.predict(files)  # one series: shared E0, batched AUTOBK
        with options(predictor, min_batch=10**9):
            single = [one(predictor, f) for f in files]  # alone: larch find_e0 + autobk
        with options(predictor, e0="file"):
            per_file = predictor.predict(files)  # find_e0 each, then batched per E0
    assert {r.background for r in batched} == {r.background for r in per_file} == {"batched"}
    assert {r.background for r in single} == {"larch"}
    assert len({r.e0 for r in batched}) == 1
    for b, f, s in zip(batched, per_file, single, strict=True):
        assert b.e0 == f.e0 == s.e0 == pytest.approx(8980.5)
        for t in ("cn", "r"):
            assert b.values[t] == pytest.approx(s.values[t], rel=1e-4, abs=1e-4)


def test_files_arriving_one_by_one_share_the_factorisation(predictor, tmp_path):
    files = noisy_copies(tmp_path, 5, seed=7)
    for f in files:  # a grid no other test uses: the last two points dropped
        lines = f.read_text().splitlines()
        f.write_text("\n".join(lines[:-2]) + "\n")
    with options(predictor, allow_short_k=True, min_batch=3):
        seq = [one(predictor, f) for f in files]
        with options(predictor, min_batch=10**9):
            ref = [one(predictor, f) for f in files]
    assert [r.background for r in seq] == ["larch", "larch", "batched", "batched", "batched"]
    for a, b in zip(seq, ref, strict=True):
        assert a.values["cn"] == pytest.approx(b.values["cn"], rel=1e-4, abs=1e-4)


def test_series_e0_leaves_a_shifted_spectrum_its_own(predictor, tmp_path):
    files = noisy_copies(tmp_path, 5)
    header, data = split(files[-1])
    # Same energy grid, each row's values moved 12 points up: near the edge (0.5 eV
    # steps) the edge lies 6 eV higher, as for another sample measured with the same scan.
    rows = [
        a.split()[0] + " " + " ".join(b.split()[1:])
        for a, b in zip(data[12:], data[:-12], strict=True)
    ]
    odd = write(tmp_path / "shifted.xdi", header, rows)
    normal = write(tmp_path / "normal.xdi", header, data[12:])
    with options(predictor, allow_short_k=True):
        results = predictor.predict([*files[:4], normal, odd])
    e0 = [r.e0 for r in results]
    assert len(set(e0[:5])) == 1 and e0[5] == pytest.approx(e0[0] + 6.0, abs=1.0)


@pytest.mark.slow
def test_worker_pool_matches_in_process(tiny_experiment, predictor, tmp_path):
    files = noisy_copies(tmp_path, 40, seed=3)
    with options(predictor, allow_short_k=True):
        ref = predictor.predict(files)
    with Predictor(model_path(tiny_experiment), jobs=2, allow_short_k=True) as pool:
        got = pool.predict(files)
        assert pool._pool is not None
    assert [r.source for r in got] == [r.source for r in ref]
    for a, b in zip(got, ref, strict=True):
        assert a.status == b.status == "ok"
        assert a.values["cn"] == pytest.approx(b.values["cn"], rel=1e-5, abs=1e-6)
        assert a.values["r"] == pytest.approx(b.values["r"], rel=1e-5, abs=1e-6)


# --- CLI ----------------------------------------------------------------------------------


def test_cli_single_bad_file_is_one_error_line(tiny_experiment, capsys):
    from mlxas.cli import main

    rc = main(["predict", str(model_path(tiny_experiment)), str(NI), "-j", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1] == f"mlxas: error: {NI}: element Ni in the file, the model is for Cu K"


def test_cli_outputs(tiny_experiment, predictor, tmp_path, capsys):
    from mlxas.cli import main

    model = str(model_path(tiny_experiment))
    out_csv, out_json = tmp_path / "p.csv", tmp_path / "p.json"
    # Options between the files, as users write them (MODEL [options] FILE...).
    args = ["predict", model, "--allow-short-k", str(CU), "-j", "1", str(NI)]
    assert main([*args, "--out", str(out_csv)]) == 1  # one refused
    table = capsys.readouterr().out
    assert "cu_metal_rt.xdi" in table and "refused: element Ni" in table
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["status"] for r in rows] == ["ok", "refused"]
    with options(predictor, allow_short_k=True):
        ref = one(predictor, CU)
    assert float(rows[0]["cn"]) == pytest.approx(ref.values["cn"], rel=1e-6)
    assert float(rows[0]["r"]) == pytest.approx(ref.values["r"], rel=1e-6)
    assert float(rows[0]["e0"]) == ref.e0 and rows[1]["cn"] == ""
    assert rows[0]["notes"].startswith("warning: k-range too short")
    assert main([*args, "--out", str(out_json), "--quiet"]) == 1
    assert capsys.readouterr().out == ""
    doc = json.loads(out_json.read_text())
    assert doc["model"]["absorber"] == "Cu" and len(doc["results"]) == 2
    assert doc["results"][1]["reason"] == "element Ni in the file, the model is for Cu K"


def test_cli_empty_directory_in_a_batch_is_refused_not_dropped(tiny_experiment, tmp_path, capsys):
    """A directory argument that holds no spectra is listed as refused beside the good
    files (exit 1), not left out of the output without a word."""
    from mlxas.cli import main

    empty = tmp_path / "run42"
    empty.mkdir()
    out = tmp_path / "p.csv"
    argv = ["predict", str(model_path(tiny_experiment)), str(CU), str(empty), "-j", "1"]
    assert main([*argv, "--allow-short-k", "--out", str(out), "-q"]) == 1
    assert f"mlxas: refused {empty}: directory holds no files" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert [(r["source"], r["status"]) for r in rows] == [(str(CU), "ok"), (str(empty), "refused")]


@pytest.mark.parametrize(
    "option,message",
    [
        (["--rbkg", "-1"], "--rbkg: -1.0: expected a radius in Å, more than 0"),
        (["--rbkg", "nan"], "--rbkg: nan: expected a radius"),
        (["--bkg-kweight", "inf"], "--bkg-kweight: inf: expected a k-weight"),
        (["--jobs", "-2"], "--jobs: -2: expected a number of processes"),
        (["--e0", "nan"], "--e0: expected 'auto', 'file' or a number in eV, got 'nan'"),
        (["--e0", "-5"], "--e0: expected 'auto', 'file' or a number in eV, got '-5'"),
        (["--wavelength", "-1"], "--wavelength: -1.0: expected Å, more than 0"),
    ],
)
def test_cli_nonsense_numbers_are_refused_before_reading(option, message, tmp_path, capsys):
    """`--rbkg -1` and `--jobs -2` were used without a word, `--rbkg nan` failed file by
    file ('cannot convert float NaN to integer'), `--e0 nan` said 'found no edge'."""
    from mlxas.cli import main

    assert main(["predict", str(tmp_path / "m.json"), str(CU), *option]) == 2
    assert f"mlxas: error: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["M", "a.xdi", "b.xdi", "--allow-short-k", "-j", "1", "--out", "p.csv"],
        ["M", "--allow-short-k", "a.xdi", "b.xdi", "-j", "1", "--out", "p.csv"],
        ["M", "--allow-short-k", "a.xdi", "-j", "1", "b.xdi", "--out", "p.csv"],
        ["--out", "p.csv", "-j", "1", "M", "a.xdi", "--allow-short-k", "b.xdi"],
    ],
)
def test_cli_options_anywhere(argv):
    from mlxas.cli import build_parser

    a = build_parser().parse_args(["predict", *argv])
    assert (a.model, a.files) == ("M", ["a.xdi", "b.xdi"])
    assert (a.allow_short_k, a.jobs, a.out) == (True, 1, "p.csv")


def test_cli_help():
    out = subprocess.run(
        [str(Path(__import__("sys").executable).parent / "mlxas"), "predict", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--out", "--watch", "--allow-short-k", "--repair", "--e0", "--jobs", "OOD"):
        assert option in out


# --- watch mode ---------------------------------------------------------------------------


def test_watcher_waits_for_stable_files(tmp_path):
    old = tmp_path / "old.xdi"
    old.write_text("x")
    w = Watcher(tmp_path, patterns=["*.xdi"], settle=1.0)
    text = CU.read_text()
    new = tmp_path / "new.xdi"
    new.write_text(text[:1000])
    (tmp_path / ".hidden.xdi").write_text(text)
    (tmp_path / "new.xdi.part").write_text(text)
    assert w.ready(now=0.0) == []  # first sight
    with new.open("a") as fh:
        fh.write(text[1000:2000])
    assert w.ready(now=2.0) == []  # grew: wait again
    assert w.ready(now=2.5) == []  # stable for only 0.5 s
    assert w.ready(now=3.1) == [new]
    w.mark_done([new])
    assert w.ready(now=10.0) == []
    with new.open("a") as fh:
        fh.write(text[2000:])
    assert w.ready(now=11.0) == [] and w.ready(now=12.5) == [new]  # changed: predicted again


def test_watch_predicts_a_file_written_slowly(predictor, tmp_path):
    w = Watcher(tmp_path, settle=0.4)
    text = CU.read_text()
    target = tmp_path / "scan_001.xdi"

    def writer() -> None:
        with target.open("w") as fh:
            fh.write(text[: len(text) // 2])
            fh.flush()
            time.sleep(0.3)
            fh.write(text[len(text) // 2 :])

    got: list = []
    deadline = time.monotonic() + 30
    thread = threading.Thread(target=writer)
    thread.start()
    with options(predictor, allow_short_k=True):
        n = watch(w, predictor.predict, got.extend, interval=0.1,
                  stop=lambda: bool(got) or time.monotonic() > deadline)  # fmt: skip
    thread.join()
    assert n == 1 and got[0].source == str(target) and got[0].status == "ok", got[0].reason


@pytest.mark.slow
def test_cli_watch_stops_cleanly_on_ctrl_c(tiny_experiment, tmp_path):
    import sys

    watched = tmp_path / "incoming"
    watched.mkdir()
    out = tmp_path / "live.csv"
    cmd = [str(Path(sys.executable).parent / "mlxas"), "predict", str(model_path(tiny_experiment)),
           "--watch", str(watched), "--out", str(out), "--interval", "0.1", "--settle", "0.2",
           "--allow-short-k", "-j", "1", "--quiet"]  # fmt: skip

    # Started the way a background job of a non-interactive shell is (`mlxas ... &`):
    # with SIGINT ignored. The watcher must still stop on Ctrl-C / kill -INT.
    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigint
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")))
    reader.start()
    try:
        # Generous limits: on a busy machine the start (TensorFlow import) can take minutes.
        deadline = time.monotonic() + 300
        while not any("watching" in ln for ln in lines) and proc.poll() is None:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        (watched / "cu.xdi").write_text(CU.read_text())
        # Ctrl-C while the watcher waits for the next file: the row must be out first.
        deadline = time.monotonic() + 300
        while not (out.exists() and len(out.read_text().splitlines()) >= 2):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no prediction written:\n" + "".join(lines)
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "stopped; 1 predicted, 0 refused" in err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and rows[0]["status"] == "ok"
