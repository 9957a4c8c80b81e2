"""``mlxas predict --plot``: the training band, the curves behind a prediction (against
larch), the pictures, the series against a header field, the live page, and the page as
a real browser (Debian's headless Chromium) shows it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlxas.predict.band import band_from_card, band_to_json, view_band
from mlxas.predict.live import PlotWriter
from mlxas.predict.plots import header_value, spectrum_details
from mlxas.predict.predictor import Predictor
from test_predict import CU, EXPERIMENTAL, NI, model_path


@pytest.fixture(scope="module")
def predictor(tiny_experiment):
    with Predictor(model_path(tiny_experiment), jobs=1, allow_short_k=True) as p:
        yield p


def series(directory: Path, temperatures: list[float | None]) -> list[Path]:
    """Noisy copies of the Cu foil, each with a Sample.temperature header line."""
    lines = CU.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    data = np.array([ln.split() for ln in lines if ln.strip() and ln[0] != "#"], dtype=float)
    rng = np.random.default_rng(5)
    out = []
    for i, t in enumerate(temperatures):
        h = list(header)
        if t is not None:
            h.insert(5, f"# Sample.temperature: {t:g} K")
        d = data.copy()
        d[:, 3] += rng.normal(0, 0.002, len(d))
        body = [" ".join(f"{v:.7g}" for v in row) for row in d]
        p = directory / f"scan_{i:03d}.xdi"
        p.write_text("\n".join(h + body) + "\n")
        out.append(p)
    return out


# --- band -----------------------------------------------------------------------------------


def test_train_band_holds_the_quantiles_of_the_training_spectra(tmp_path):
    from larch import Group
    from larch.xafs import xftf

    from mlxas.spectra.grids import k_grid
    from synthetic_exafs import exafs, features_cfg

    cfg = features_cfg()
    k = k_grid(cfg["k_grid"])
    rng = np.random.default_rng(0)
    n = 40
    chi = exafs(k, rng.uniform(4, 12, n), rng.uniform(2.4, 2.6, n), rng.uniform(0.003, 0.01, n))
    band = view_band(chi, cfg)
    # Through the JSON of training_band.json and back, as a loaded card carries it.
    band = band_from_card({"training_band": {"views": band_to_json(band)}})
    assert band.n_train == n
    w = cfg["kweight"]
    q = band.quantiles
    np.testing.assert_allclose(band.chi_k, np.quantile(chi * k**w, q, axis=0), rtol=1e-5, atol=1e-6)
    # |chi(R)| of each spectrum by larch's own xftf with the model's FT settings.
    ft = cfg["ft"]
    mags = []
    for row in chi:
        g = Group()
        xftf(k, row, group=g, kweight=w, kmin=ft["kmin"], kmax=ft["kmax"], dk=ft["dk"],
             window=ft["window"], rmax_out=ft["rmax"])  # fmt: skip
        mags.append(g.chir_mag[: len(band.r)])
        np.testing.assert_allclose(g.r[: len(band.r)], band.r, atol=1e-12)
    np.testing.assert_allclose(band.chir_mag, np.quantile(mags, q, axis=0), rtol=1e-4, atol=1e-5)
    med = band.chir_mag[band.level(0.5)]
    assert 1.5 < band.r[np.argmax(med)] < 2.5  # first shell at R - phase shift
    assert band_from_card({"training_band": {"percentiles": [5, 50, 95]}}) is None
    with pytest.raises(ValueError, match="at least 2 spectra"):
        view_band(chi[:1], cfg)


def test_training_writes_the_band_into_the_model_folder(tiny_experiment):
    from mlxas.dataset import open as open_dataset
    from mlxas.models.card import load_model

    _, card = load_model(model_path(tiny_experiment))  # training_band.json, verified
    band = band_from_card(card)
    assert band is not None
    with open_dataset(tiny_experiment / "results" / "tiny" / "dataset.h5") as ds:
        chi = ds.chi("train")
        k = ds.grid("chi_k")
    assert band.n_train == len(chi)
    assert band.chi_k.shape == (5, len(band.k)) and band.chir_mag.shape == (5, len(band.r))
    # The band is the training split's own spectra: quantiles of k²·chi(k) on the
    # dataset's k grid (the tiny experiment keeps config.yaml's k-weight 2).
    assert band.kweight == 2
    np.testing.assert_allclose(band.k, k, atol=1e-9)
    np.testing.assert_allclose(
        band.chi_k, np.quantile(chi * k**2, band.quantiles, axis=0), rtol=1e-5, atol=1e-6
    )
    med = band.chir_mag[band.level(0.5)]
    assert 1.5 < band.r[np.argmax(med)] < 2.5  # Cu first shell (2.55 Å) less the phase shift


# --- curves -----------------------------------------------------------------------------------


def test_curves_behind_a_prediction_are_larchs(predictor):
    from larch import Group
    from larch.xafs import autobk, pre_edge

    from mlxas.spectra.measured import read_spectra

    (r,) = predictor.predict([CU])
    d = spectrum_details([r], predictor.spec)[str(CU)]
    s = read_spectra(CU)[0]
    g = Group()
    pre_edge(s.energy, s.mu, group=g, e0=r.e0)
    assert d.e0 == r.e0 and d.edge_step == pytest.approx(g.edge_step, rel=1e-9)
    np.testing.assert_allclose(d.pre_edge, g.pre_edge, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d.post_edge, g.post_edge, rtol=1e-9, atol=1e-9)
    autobk(s.energy, s.mu, group=g, ek0=r.e0, edge_step=g.edge_step)
    w = predictor.spec.features["kweight"]
    want = np.interp(d.k, g.k, g.chi, right=0.0) * d.k**w
    assert np.max(np.abs(d.chi_k - want)) < 1e-3 * np.max(np.abs(want))


def test_header_values():
    assert header_value(CU, "scan.edge_energy") == (8980.0, "")
    assert header_value(CU, "Mono.d_spacing") == (3.13553, "")
    t, unit = header_value(CU, "start_time")
    assert (t.year, t.hour, unit) == (2001, 22, "")
    assert header_value(CU, "temperature") is None
    assert header_value(EXPERIMENTAL / "missing.xdi", "temperature") is None


# --- pictures ---------------------------------------------------------------------------------


def _png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return (imread(path)[..., :3] * 255).round().astype(int)


def _has_color(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 8, n: int = 20) -> bool:
    return int((np.abs(img - np.array(rgb)).max(axis=-1) <= tol).sum()) >= n


OOD_RGB = (0xC6, 0x28, 0x28)


def test_cli_plot_writes_one_picture_per_spectrum_and_a_page(tiny_experiment, tmp_path, capsys):
    from mlxas.cli import main

    out = tmp_path / "pics"
    args = ["predict", str(model_path(tiny_experiment)), str(CU), str(NI), "--allow-short-k"]
    assert main([*args, "-j", "1", "--plot", str(out), "--out", str(tmp_path / "r.json")]) == 1
    capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cu_metal_rt.png", "index.html", "series_cn.png", "series_r.png"]
    img = _png(out / "cu_metal_rt.png")
    assert img.shape == (800, 1100, 3)
    import json

    rec = json.loads((tmp_path / "r.json").read_text())["results"][0]
    # OOD spectra get a red frame; others none.
    frame = np.concatenate([img[:4].reshape(-1, 3), img[-4:].reshape(-1, 3)])
    assert bool((np.abs(frame - OOD_RGB).max(axis=1) <= 8).mean() > 0.9) == rec["ood"]
    # The training band is drawn (its 5-95 % fill, half-transparent on white).
    assert _has_color(img, (200, 229, 252), tol=6, n=500)
    page = (out / "index.html").read_text()
    assert 'http-equiv="refresh"' not in page  # not watching: no reload
    assert page.count("data:image/png;base64,") == 3
    assert "element Ni in the file, the model is for Cu K" in page
    assert re.search(r"1 predicted, 1 refused", page)


def test_series_against_a_header_field(predictor, tmp_path):
    files = series(tmp_path, [20.0, 150.0, 300.0, None, 77.0])
    warnings: list[str] = []
    w = PlotWriter(tmp_path / "pics", predictor, x_axis="temperature", warn=warnings.append)
    w.update(predictor.predict(files[:3]))
    w.update(predictor.predict(files[3:]))
    assert w.x == [20.0, 150.0, 300.0, None, 77.0] and w.unit == "K"
    assert any("scan_003.xdi: no header field 'temperature'" in m for m in warnings)
    img = _png(tmp_path / "pics" / "series_cn.png")
    assert img.shape == (480, 900, 3)
    ood = [bool(r.values.get("ood")) for r in w.results]
    # In-distribution points are blue circles, OOD points red crosses.
    assert _has_color(img, OOD_RGB) == any(ood)
    assert _has_color(img, (0x15, 0x65, 0xC0)) == (not all(ood))


def test_series_when_no_spectrum_has_the_header_field(tiny_experiment, tmp_path, capsys):
    """The first spectra of a batch (or of --watch) may lack the --x-axis field: an empty
    series is drawn with a warning, not a crash, and the per-spectrum pictures are kept."""
    from mlxas.cli import main

    out = tmp_path / "pics"
    args = ["predict", str(model_path(tiny_experiment)), str(CU), "--allow-short-k", "-j", "1"]
    assert main([*args, "--plot", str(out), "--x-axis", "temperature"]) == 0
    err = capsys.readouterr().err
    assert "cu_metal_rt.xdi: no header field 'temperature'; left out of the series" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cu_metal_rt.png", "index.html", "series_cn.png", "series_r.png"]
    assert _png(out / "series_cn.png").shape == (480, 900, 3)


def test_watch_page_is_rewritten_whole(predictor, tmp_path):
    files = series(tmp_path, [None] * 4)
    pics = tmp_path / "pics"
    w = PlotWriter(pics, predictor, watch=True)
    w.update(predictor.predict(files[:1]))
    first = (pics / "index.html").read_text()
    assert '<meta http-equiv="refresh" content="5">' in first and "1 spectra" in first
    w.update(predictor.predict(files[1:]))
    page = (pics / "index.html").read_text()
    assert "4 spectra, 4 predicted" in page and page.count('<tr class="') == 4
    assert not [p for p in pics.iterdir() if p.name.startswith(".")]  # no temporary left


# --- a real browser -----------------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}", "--hide-scrollbars",
    ]  # fmt: skip
    return subprocess.run(
        [_chromium(), *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def test_page_in_headless_chromium(predictor, tmp_path):
    if _chromium() is None:
        if os.environ.get("MLXAS_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (MLXAS_REQUIRE_BROWSER) but not installed")
        pytest.skip("Chromium not installed (apt-get install -y chromium chromium-driver)")
    pics = tmp_path / "pics"
    w = PlotWriter(pics, predictor, watch=True)
    w.update(predictor.predict(series(tmp_path, [None] * 3)))
    url = (pics / "index.html").resolve().as_uri()
    dom = _browser("--dump-dom", url, tmp=tmp_path).stdout
    for ident in ("series-cn", "series-r", "latest"):
        assert re.search(rf'<img id="{ident}"[^>]*src="data:image/png;base64,', dom), ident
    assert dom.count('<tr class="') == 3 and "3 spectra, 3 predicted" in dom
    shot = tmp_path / "page.png"
    _browser(f"--screenshot={shot}", "--window-size=1280,3200", url, tmp=tmp_path)
    img = _png(shot)
    assert img.shape[:2] == (3200, 1280)
    rows = np.nonzero((img < 250).any(axis=(1, 2)))[0]
    # The pictures are decoded and drawn: the training band's fill, the series' markers...
    assert _has_color(img, (200, 229, 252), tol=6, n=500)
    ood = any(r.values.get("ood") for r in w.results)
    assert _has_color(img, OOD_RGB if ood else (0x15, 0x65, 0xC0))
    # ...and the table below them: its header cells' background, at the bottom of the page.
    header = np.nonzero((np.abs(img - (0xE3, 0xF2, 0xFD)).max(axis=-1) <= 3).any(axis=1))[0]
    assert len(header) > 5 and header.min() > 1500 and rows.max() > header.min()


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io
    import sys

    from mlxas.predict import predictor as mod

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, shown in ((io.StringIO(), False), (Tty(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setattr(mod, "PROGRESS_AFTER_S", 0.0)
        with mod._progress(30) as bar:
            bar.update(30)
        assert ("mlxas predict" in stream.getvalue() and "/30" in stream.getvalue()) == shown
    monkeypatch.setattr(mod, "PROGRESS_AFTER_S", 3.0)
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    with mod._progress(30) as bar:  # a batch shorter than the delay shows nothing
        bar.update(30)
    assert tty.getvalue() == ""
