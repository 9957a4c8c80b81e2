"""The feffit baseline: real FEFF8L paths, real measured foils, FEFF-simulated spectra."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlxas.baseline import (
    BaselineError,
    FitSettings,
    first_shell_path,
    fit_chi,
    fit_files,
    read_reference_path,
    write_results,
)
from mlxas.cli import main

EXPERIMENTAL = Path(__file__).resolve().parent / "data" / "experimental"
CU_FOIL = EXPERIMENTAL / "cu_metal_rt.xdi"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feff_paths")


@pytest.fixture(scope="module")
def cu_path(cache: Path):
    return first_shell_path("Cu", "K", cache_dir=cache)


def test_reference_path_is_the_fcc_first_shell(cu_path, cache: Path) -> None:
    # ASE's Cu reference crystal: fcc, a = 3.61 Å; 12 neighbours at a/sqrt(2).
    assert cu_path.reff == pytest.approx(3.61 / math.sqrt(2), abs=2e-4)
    assert cu_path.degeneracy == 12
    # S0² from FEFF's atomic overlap integrals: below 1, as measured values are.
    assert 0.8 < cu_path.s02 < 1.0
    assert not cu_path.cached and cu_path.feff_seconds > 0
    assert cu_path.file.is_file() and cu_path.file.parent.parent == cache
    # The run folder keeps the input and the log beside the path.
    assert (cu_path.file.parent / "feff.inp").read_text().count("RPATH") == 1
    again = first_shell_path("Cu", "K", cache_dir=cache)
    assert again.cached and again.file == cu_path.file and again.s02 == cu_path.s02


def test_cu_foil_within_tolerance(cu_path, cache: Path) -> None:
    (res,) = fit_files([CU_FOIL], cache_dir=cache)
    assert res.status == "ok", res.reason
    # Truth (tests/data/experimental/README.md): fcc, a = 3.615 Å, N = 12 at 2.556 Å.
    assert res.r == pytest.approx(2.556, abs=0.03)
    assert res.cn == pytest.approx(12, abs=1.5)
    assert 0.004 < res.sigma2 < 0.015
    assert res.r_factor < 0.05
    assert res.s02 == cu_path.s02
    assert res.seconds > 0 and res.seconds_total >= res.seconds
    assert res.kmax == 14.0 and res.rmin < 2.0 < 2.9 < res.rmax


def _simulated_cu(tmp: Path, a: float, removed: int, sig2: float, s02: float):
    """chi(k) of a Cu site with 12 - removed first-shell neighbours at a/sqrt(2) (FEFF8L)."""
    from ase.build import bulk

    from mlxas.feff.cards import merged_cards
    from mlxas.feff.checks import check_log, read_chi_dat
    from mlxas.feff.engines import get_engine
    from mlxas.feff.inputs import cluster_around, feff_input_text

    symbols, pos = cluster_around(bulk("Cu", a=a, cubic=True), 0, 5.5)
    keep = np.ones(len(symbols), bool)
    keep[1 : 1 + removed] = False  # the first `removed` neighbours of the sorted shell
    cards = merged_cards("feff8l", "K", {"RPATH": 4.6, "NLEGS": 2, "SIG2": sig2, "S02": s02})
    kept = [s for s, k in zip(symbols, keep, strict=True) if k]
    text = feff_input_text(kept, pos[keep], cards, "test")
    (tmp / "feff.inp").write_text(text)
    get_engine("feff8l").run(tmp, 300, tmp / "feff.log")
    check_log((tmp / "feff.log").read_text())
    return read_chi_dat(tmp / "chi.dat")


def test_recovers_a_feff_simulated_shell(cu_path, tmp_path: Path) -> None:
    # 8 neighbours at 2.6163 Å (a 2.5 % larger lattice than the reference path's),
    # sigma2 = 0.006 Å², S0² = 0.9; the second and third shells are in the spectrum too.
    a = 3.61 * 1.025
    k, chi = _simulated_cu(tmp_path, a, removed=4, sig2=0.006, s02=0.9)
    res = fit_chi(k, chi, cu_path, FitSettings(s02=0.9), source="feff")
    assert res.status == "ok", res.reason
    assert res.cn == pytest.approx(8.0, abs=0.4)
    assert res.r == pytest.approx(a / math.sqrt(2), abs=0.01)
    assert res.sigma2 == pytest.approx(0.006, abs=0.0008)
    assert abs(res.delta_e0) < 3.0


def test_fit_chi_refuses_bad_spectra(cu_path) -> None:
    k = np.arange(0, 20, 0.05)
    chi = np.sin(2 * 2.55 * k) * np.exp(-2 * 0.005 * k**2) / k.clip(0.5)
    bad = chi.copy()
    bad[100] = np.nan
    assert "NaN" in fit_chi(k, bad, cu_path).reason
    assert "does not increase" in fit_chi(k[::-1], chi, cu_path).reason
    short = fit_chi(k[k < 6], chi[k < 6], cu_path)
    assert short.status == "refused" and "too short" in short.reason
    cut = fit_chi(k[k < 12], chi[k < 12], cu_path)
    assert cut.status == "ok" and cut.kmax == pytest.approx(11.95)
    assert any("ends at the data" in n for n in cut.notes)
    with pytest.raises(BaselineError, match="empty"):
        fit_chi(k, chi, cu_path, FitSettings(rmin=3.0, rmax=2.0))


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"kmin": 10.0, "kmax": 3.0}, "fit k-range is empty: kmin 10, kmax 3"),
        ({"kmin": math.nan}, "kmin nan: not a number"),
        ({"rmax": math.inf}, "rmax inf: not a number"),
        ({"s02": 0.0}, "s02 0: must be more than 0"),
        ({"dk": -1.0}, "dk -1: the window sill cannot be negative"),
    ],
)
def test_settings_that_are_no_fit_window_are_refused_at_once(kw, message) -> None:
    """`baseline --kmin 10 --kmax 3` said 'k-range too short' for every file, `--kmin nan`
    'feffit failed (cannot convert float NaN to integer)'."""
    with pytest.raises(BaselineError, match=re.escape(message)):
        FitSettings(**kw)


def test_files_refused_with_reasons(cu_path, cache: Path, tmp_path: Path) -> None:
    ni = EXPERIMENTAL / "ni_metal_rt.xdi"
    damaged = tmp_path / "cu_nan.xdi"
    text = CU_FOIL.read_text().splitlines()
    last = len(text) - 5
    text[last] = " ".join(["nan"] * len(text[last].split()))
    damaged.write_text("\n".join(text) + "\n")
    res = fit_files([ni, damaged, tmp_path / "missing.xdi"], element="Cu", cache_dir=cache)
    assert [r.status for r in res] == ["refused"] * 3
    assert "element Ni in the file, the fit is for Cu" in res[0].reason
    assert "NaN" in res[1].reason and res[1].source.endswith("cu_nan.xdi")
    assert "no such file" in res[2].reason


def test_user_path_file(cu_path, tmp_path: Path) -> None:
    p = read_reference_path(cu_path.file, "Cu", "K", cu_path.s02)
    assert p.reff == cu_path.reff and p.degeneracy == 12
    (tmp_path / "bad.dat").write_text("not a feff file\n")
    with pytest.raises(BaselineError, match=r"bad\.dat"):
        read_reference_path(tmp_path / "bad.dat")
    with pytest.raises(BaselineError, match="no such"):
        read_reference_path(tmp_path / "none.dat")


def test_cli(cu_path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "fits.json"
    ok = tmp_path / "cu.xdi"
    shutil.copy(CU_FOIL, ok)
    rc = main(["baseline", str(ok), "--cache", str(cache), "--out", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "cu.xdi" in table and "R (Å)" in table
    (row,) = json.loads(out.read_text())["results"]
    assert row["status"] == "ok" and abs(row["r"] - 2.556) < 0.03
    # One refused file: one line on stderr, exit status 2.
    rc = main(["baseline", str(ok), "--element", "Pt", "--cache", str(cache)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"mlxas: error: {ok}: element Cu in the file, the fit is for Pt"]
    csv = tmp_path / "fits.csv"
    write_results(fit_files([ok], cache_dir=cache), csv)
    assert csv.read_text().splitlines()[0].startswith("source,status,reason,cn,cn_err,r")


def test_unknown_output_format_is_refused_before_fitting(tmp_path):
    from mlxas.baseline import BaselineError, output_format

    assert [output_format(tmp_path / f"fits.{e}") for e in ("csv", "json", "jsonl")] == [
        "csv",
        "json",
        "jsonl",
    ]
    with pytest.raises(BaselineError, match=r"fits\.txt: unknown output format"):
        output_format(tmp_path / "fits.txt")
