"""Readers of measured powder patterns: the formats, the wavelength header fields, clear
errors for bad files, and the conversion onto a model's grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.signal import find_peaks

from mlxas.xrd.effects import Effects
from mlxas.xrd.measured import MeasuredPatternError, on_model_grid, read_pattern
from mlxas.xrd.pattern import axis_grid, simulate_pattern
from mlxas.xrd.settings import SOURCES, XRDSettings

CU1 = SOURCES["CuKa1"][0]
MO1 = SOURCES["MoKa1"][0]
X = np.linspace(10, 80, 200)
Y = 100 + 50 * np.exp(-((X - 31.7) ** 2) / 0.01)


def _write(path, header: str, rows: str):
    path.write_text(header + rows)
    return path


def _rows(sep=" ", errors=False):
    if errors:
        return "".join(
            f"{x:.4f}{sep}{y:.3f}{sep}{math.sqrt(y):.3f}\n" for x, y in zip(X, Y, strict=True)
        )
    return "".join(f"{x:.4f}{sep}{y:.3f}\n" for x, y in zip(X, Y, strict=True))


def test_xy_with_comment_header_and_wavelength(tmp_path):
    p = _write(tmp_path / "a.xy", "# sample A\n# Wavelength = 1.5406 A\n", _rows())
    pat = read_pattern(p)
    np.testing.assert_allclose(pat.x, np.round(X, 4))
    np.testing.assert_allclose(pat.intensity, np.round(Y, 3))
    assert pat.axis == "two_theta" and pat.wavelength == pytest.approx(1.5406)


def test_xye_three_columns_and_anode(tmp_path):
    p = _write(tmp_path / "b.xye", "# Anode: Mo\n", _rows(errors=True))
    pat = read_pattern(p)
    assert len(pat.x) == len(X) and pat.wavelength == pytest.approx(MO1)


def test_csv_with_header_row_and_energy(tmp_path):
    p = _write(tmp_path / "c.csv", "# energy = 20 keV\n2theta,intensity\n", _rows(sep=","))
    pat = read_pattern(p)
    assert pat.wavelength == pytest.approx(12.398419843320026 / 20)
    np.testing.assert_allclose(pat.intensity[:3], np.round(Y[:3], 3))


def test_rruff_format(tmp_path):
    header = (
        "##NAMES=Halite\n##RRUFFID=R000000\n##IDEAL CHEMISTRY=NaCl\n"
        "##CELL PARAMETERS=a: 5.64 b: 5.64 c: 5.64\n##X-RAY WAVELENGTH=1.5418\n"
    )
    p = _write(tmp_path / "halite.txt", header, _rows(sep=", ") + "##END=\n")
    pat = read_pattern(p)
    assert pat.header["NAMES"] == "Halite" and pat.wavelength == pytest.approx(1.5418)
    assert len(pat.x) == len(X)


def test_pyfai_q_in_inverse_nm_and_si_wavelength(tmp_path):
    q_nm = np.linspace(10, 50, 100)
    rows = "".join(f"{q:.5f} {1 + q:.3f}\n" for q in q_nm)
    p = _write(tmp_path / "d.xy", "# Wavelength: 1.0332e-10 m\n# q_nm^-1  I\n", rows)
    pat = read_pattern(p)
    assert pat.axis == "q" and pat.wavelength == pytest.approx(1.0332)
    np.testing.assert_allclose(pat.x, np.round(q_nm, 5) / 10)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "no data rows"),
        ("# only a header\n", "no data rows"),
        ("".join(f"{x}\n" for x in X), "one column"),
        ("10 1\n9 2\n" + _rows(), "not strictly increasing"),
        (_rows() + "# trailing note\n", "text after the data rows"),
        ("5 nan\n" + _rows(), "non-finite"),
        ("10 1\n11 x\n", "not numbers"),
        ("".join(f"{x} 1\n" for x in range(5)), "at least"),
        ("# wavelength = 154.06\n" + _rows(), "implausible"),
        ("".join(f"{x} 0\n" for x in range(30)), "no positive intensity"),
        ("".join(f"{x} 1\n" for x in range(170, 200)), "outside 0..180"),
    ],
)
def test_bad_files_name_file_and_reason(tmp_path, content, reason):
    p = tmp_path / "bad.xy"
    p.write_text(content)
    with pytest.raises(MeasuredPatternError, match=reason) as err:
        read_pattern(p)
    assert str(p) in str(err.value)


def _cols(*extra):
    """Rows of 2θ, intensity and the ``extra`` columns (functions of x, y)."""
    return "".join(
        " ".join(f"{v:.4f}" for v in (x, y, *(f(x, y) for f in extra))) + "\n"
        for x, y in zip(X, Y, strict=True)
    )


def test_a_third_column_that_is_an_uncertainty_is_read_in_any_file(tmp_path):
    pat = read_pattern(_write(tmp_path / "e.dat", "", _cols(lambda x, y: math.sqrt(y))))
    np.testing.assert_allclose(pat.intensity, np.round(Y, 4))


@pytest.mark.parametrize(
    ("name", "rows", "reason"),
    [  # more than 3 columns: which one is the intensity is not known
        ("four.xy", _cols(lambda x, y: 1.0, lambda x, y: 2 * y), "line 1: 4 columns"),
        ("four.xye", _cols(lambda x, y: 1.0, lambda x, y: 2 * y), "line 1: 4 columns"),
        ("mixed.xy", _rows() + "80.5 10 3\n", "line 201: 3 columns; the rows before it have 2"),
        # a calculated pattern beside the measured one is not an uncertainty
        (
            "fit.dat",
            _cols(lambda x, y: 0.98 * y),
            r"third column \(median .*\) is not small beside",
        ),
        ("fit.csv", _cols(lambda x, y: 0.98 * y).replace(" ", ","), "not small beside"),
        ("neg.xye", _cols(lambda x, y: -1.0), "line 1: third column -1 is not a standard"),
        ("nan.xye", "10 1 nan\n" + _cols(lambda x, y: 1.0), "line 1: third column nan"),
    ],
)
def test_columns_that_are_not_x_intensity_uncertainty_are_refused(tmp_path, name, rows, reason):
    """Extra columns were dropped without a word: a 4-column file or a third column that
    cannot be an uncertainty is refused, naming the file, the line and the reason."""
    p = _write(tmp_path / name, "", rows)
    with pytest.raises(MeasuredPatternError, match=reason) as err:
        read_pattern(p)
    assert str(err.value).startswith(f"{p}: ")


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(MeasuredPatternError, match="no such file"):
        read_pattern(tmp_path / "none.xy")
    b = tmp_path / "b.xy"
    b.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(MeasuredPatternError, match="not a text file"):
        read_pattern(b)


def _ideal(lam: float) -> Effects:
    return Effects(
        wavelength=lam, wavelength2=None, ka2_ratio=0.0, u=0.0, v=0.0, w=0.002, eta=0.0,
        size_nm=None, microstrain=0.0, po_r=1.0, po_hkl=(0, 0, 1), zero_shift_deg=0.0,
        displacement_mm=0.0, background=(0.0,), background_level=0.0, counts=None,
        impurity=None, impurity_fraction=0.0, strain=(0.0,) * 9, strain_max=0.0,
        alloy_element=None, alloy_partner=None, alloy_fraction=0.0, noise_seed=0,
    )  # fmt: skip


def test_mo_measurement_lands_where_cu_puts_the_peaks(tmp_path):
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]
    )
    mo = XRDSettings(axis_min=4.0, axis_max=40.0, n_points=7201, source="MoKa1")
    y_mo, _ = simulate_pattern(nacl, _ideal(MO1), mo)
    rows = "".join(f"{x:.5f} {1000 * y:.4f}\n" for x, y in zip(axis_grid(mo), y_mo, strict=True))
    p = _write(tmp_path / "nacl_mo.xy", "# Anode: Mo\n", rows)
    cu = XRDSettings(source="CuKa1")  # the model's grid: 10-80° at Cu Kα1
    y, notes = on_model_grid(read_pattern(p), cu)
    assert notes["wavelength_source"] == "header" and notes["wavelength"] == pytest.approx(MO1)
    grid = axis_grid(cu)
    i = find_peaks(y, height=0.5 * y.max())[0]
    expected = 2 * np.degrees(np.arcsin(CU1 * math.sqrt(4) / (2 * 5.64)))  # NaCl (200), Cu
    assert grid[i[0]] == pytest.approx(expected, abs=0.06)
    assert notes["coverage"] == pytest.approx(1.0)


def test_unknown_wavelength_is_assumed_and_reported(tmp_path):
    p = _write(tmp_path / "a.xy", "", _rows())
    y, notes = on_model_grid(read_pattern(p), XRDSettings())
    assert notes["wavelength_source"] == "model" and notes["wavelength"] == pytest.approx(CU1)
    grid = axis_grid(XRDSettings())
    assert grid[np.argmax(y)] == pytest.approx(31.7, abs=0.2)  # the file samples 2θ every 0.35°
