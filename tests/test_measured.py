"""Reading measured files: the real foil files, and damaged copies of them made here.

Every damaged copy must be refused with a reason that names the file; repairs happen
only on request and are reported.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from _bad_spectra import MALFORMED, OVERSIZED, read_in_child
from mlxas.spectra.measured import (
    MAX_POINTS,
    MIN_POINTS,
    SeriesReader,
    SpectrumError,
    read_spectra,
)

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"
CU = EXPERIMENTAL / "cu_metal_rt.xdi"
NI = EXPERIMENTAL / "ni_metal_rt.xdi"
PT = EXPERIMENTAL / "pt_metal_rt.xdi"


def split(path: Path) -> tuple[list[str], list[str]]:
    """(header lines, data lines) of an XDI file."""
    lines = path.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#")]
    data = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    return header, data


def write(tmp_path: Path, name: str, header: list[str], data: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("\n".join(header + data) + "\n")
    return p


def set_field(line: str, col: int, value: str) -> str:
    words = line.split()
    words[col] = value
    return "  ".join(words)


def refused(path: Path, pattern: str, **kw) -> SpectrumError:
    with pytest.raises(SpectrumError) as err:
        read_spectra(path, **kw)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    assert re.search(pattern, msg), msg
    return err.value


# --- real files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, mu_from, element, edge, n",
    [
        (CU, "column mutrans", "Cu", "K", 408),
        (NI, "column mutrans", "Ni", "K", 418),
        (PT, "ln(i0/itrans)", "Pt", "L3", 418),
    ],
)
def test_real_foils(path, mu_from, element, edge, n):
    (s,) = read_spectra(path)
    assert (s.mu_from, s.element, s.edge, len(s.energy)) == (mu_from, element, edge, n)
    assert np.all(np.diff(s.energy) > 0) and s.notes == []
    if mu_from.startswith("ln"):
        _, data = split(path)
        cols = np.array([ln.split() for ln in data], dtype=float).T
        np.testing.assert_allclose(s.mu, np.log(cols[3] / cols[2]))  # i0 is column 4


def test_series_reader_equals_larch_and_skips_larch_for_later_files(tmp_path):
    paths = _noisy_series(tmp_path, 5)
    reader = SeriesReader()
    fast = [reader.read(p)[0] for p in paths]
    assert (reader.n_larch, reader.n_fast) == (1, 4)
    for p, s in zip(paths, fast, strict=True):
        (ref,) = read_spectra(p)
        np.testing.assert_array_equal(s.energy, ref.energy)
        np.testing.assert_array_equal(s.mu, ref.mu)
        assert (s.element, s.edge, s.mu_from) == (ref.element, ref.edge, ref.mu_from)


def test_series_reader_sends_damaged_file_of_known_layout_to_larch(tmp_path):
    header, data = split(CU)
    good = write(tmp_path, "a.xdi", header, data)
    bad_rows = list(data)
    bad_rows[200] = "8990.0  garbage  1.0  2.0"
    bad = write(tmp_path, "b.xdi", header, bad_rows)
    reader = SeriesReader()
    reader.read(good)
    with pytest.raises(SpectrumError, match="would be lost"):
        reader.read(bad)
    assert reader.n_fast == 0


def _noisy_series(tmp_path, n: int, seed: int = 0) -> list:
    header, data = split(CU)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h = [
            re.sub(r"start_time: .*", f"start_time: 2001-06-26T22:{i:02d}:31", ln) for ln in header
        ]
        rows = [
            set_field(ln, 3, f"{float(ln.split()[3]) + rng.normal(0, 1e-3):.7f}") for ln in data
        ]
        paths.append(write(tmp_path, f"scan_{i:03d}.xdi", h, rows))
    return paths


def test_series_reader_block_parse_equals_larch_file_by_file(tmp_path):
    from mlxas.spectra.measured.series import BLOCK_PARSE_MIN

    paths = _noisy_series(tmp_path, BLOCK_PARSE_MIN + 8)
    reader = SeriesReader()
    got = reader.read_many(paths)
    assert (reader.n_larch, reader.n_fast) == (1, len(paths) - 1)
    for p, spectra in zip(paths, got, strict=True):
        (ref,) = read_spectra(p)
        np.testing.assert_array_equal(spectra[0].energy, ref.energy)
        np.testing.assert_array_equal(spectra[0].mu, ref.mu)
        assert spectra[0].source == str(p)


@pytest.mark.parametrize(
    "damage,reason",
    [
        (lambda rows: rows.__setitem__(200, "8990.0  garbage  1.0  2.0"), "would be lost"),
        (lambda rows: rows.__setitem__(200, "8990.0  1.0  2.0"), "NaN or infinite values"),
        (lambda rows: rows.__setitem__(200, "8990.0  1.0  2.0  3.0  4.0"), "not increasing"),
        (lambda rows: rows.insert(200, "   "), None),
    ],
)
def test_series_reader_block_parse_reports_a_damaged_file_as_alone(tmp_path, damage, reason):
    from mlxas.spectra.measured.series import BLOCK_PARSE_MIN

    paths = _noisy_series(tmp_path, BLOCK_PARSE_MIN + 2, seed=1)
    header, _ = split(paths[5])
    _, rows = split(paths[5])
    rows = list(rows)
    damage(rows)
    paths[5] = write(tmp_path, "damaged.xdi", header, rows)
    alone = SeriesReader()
    alone.read(paths[0])
    try:
        want = alone.read(paths[5])
    except SpectrumError as err:
        want = err
    got = SeriesReader().read_many(paths)
    if reason is None:  # a blank line: larch and the file-by-file parse read it whole
        np.testing.assert_array_equal(got[5][0].mu, want[0].mu)
    else:
        assert isinstance(want, SpectrumError) and reason in str(want)
        assert isinstance(got[5], SpectrumError) and str(got[5]) == str(want)
    for i in (0, 4, 6, len(paths) - 1):  # the others are read as before
        (ref,) = read_spectra(paths[i])
        np.testing.assert_array_equal(got[i][0].mu, ref.mu)


def test_plain_column_file(tmp_path):
    _, data = split(NI)
    p = write(tmp_path, "ni.dat", ["# Ni foil", "# energy mutrans i0"], data)
    (s,) = read_spectra(p)
    (ref,) = read_spectra(NI)
    np.testing.assert_array_equal(s.energy, ref.energy)
    np.testing.assert_array_equal(s.mu, ref.mu)
    assert s.element is None and s.mu_from == "column mutrans"


def test_explicit_columns(tmp_path):
    (s,) = read_spectra(CU, mu_label="itrans")
    assert s.mu_from == "column itrans"
    refused(CU, r"missing column 'xmu' \(columns: energy, i0, itrans, mutrans\)", mu_label="xmu")


def test_kev_energies_with_declared_unit_are_converted(tmp_path):
    header, data = split(CU)
    header = [ln.replace("Column.1: energy eV", "Column.1: energy keV") for ln in header]
    rows = [set_field(ln, 0, f"{float(ln.split()[0]) / 1000:.7f}") for ln in data]
    (s,) = read_spectra(write(tmp_path, "kev.xdi", header, rows))
    (ref,) = read_spectra(CU)
    np.testing.assert_allclose(s.energy, ref.energy, rtol=1e-9)
    assert "energy converted from keV" in s.notes


def athena_project(path: Path, files: list[Path]) -> Path:
    from larch import Group
    from larch.io import create_athena

    proj = create_athena(str(path))
    for f in files:
        (s,) = read_spectra(f)
        name = f.stem.split("_")[0]
        proj.add_group(Group(energy=s.energy, mu=s.mu, filename=name, groupname=name))
    proj.save()
    return path


def test_athena_project(tmp_path):
    prj = athena_project(tmp_path / "foils.prj", [CU, PT])
    spectra = read_spectra(prj)
    assert [s.source for s in spectra] == [f"{prj}#cu", f"{prj}#pt"]
    assert [(s.element, s.edge) for s in spectra] == [("Cu", "K"), ("Pt", "L3")]
    (ref,) = read_spectra(PT)
    np.testing.assert_allclose(spectra[1].mu, ref.mu)


# --- damaged copies: each refused with the file and the reason ----------------------------


def test_nan_in_mu(tmp_path):
    header, data = split(CU)
    data[100] = set_field(data[100], 3, "nan")
    refused(
        write(tmp_path, "nan.xdi", header, data),
        r"NaN or infinite values: 1 in mu \(column mutrans\), first at 9",
    )


def test_zero_intensity_gives_infinite_mu(tmp_path):
    header, data = split(PT)
    data[50] = set_field(data[50], 3, "0.0")  # i0 = 0
    refused(
        write(tmp_path, "i0zero.xdi", header, data),
        r"NaN or infinite values: 1 in mu \(ln\(i0/itrans\)\)",
    )


def test_partially_written_file(tmp_path):
    text = CU.read_text()
    cut = text[: text.index("\n", len(text) // 2) - 12]  # stops in the middle of a line
    p = tmp_path / "partial.xdi"
    p.write_text(cut)
    refused(p, r"NaN or infinite values")


def test_unsorted_energies(tmp_path):
    header, data = split(CU)
    data[150], data[151] = data[151], data[150]
    p = write(tmp_path, "unsorted.xdi", header, data)
    refused(p, r"energies are not increasing: 1 step\(s\) go down.*larch would sort them silently")
    (s,) = read_spectra(p, repair=True)
    assert np.all(np.diff(s.energy) > 0)
    assert s.notes == ["repaired: energies sorted (1 out of order)"]


def test_duplicated_energies(tmp_path):
    header, data = split(CU)
    data.insert(201, data[200])
    p = write(tmp_path, "dup.xdi", header, data)
    refused(p, r"1 duplicated energies, first .*larch would shift them")
    (s,) = read_spectra(p, repair=True)
    assert np.all(np.diff(s.energy) > 0)
    assert s.notes == ["repaired: 1 duplicated energies shifted by larch remove_dups"]


def test_missing_mu_columns(tmp_path):
    header, data = split(PT)  # energy, time, itrans, i0: drop i0
    header = [ln for ln in header if not ln.startswith("# Column.4")]
    header[-1] = "#   energy    time      itrans"
    rows = ["  ".join(ln.split()[:3]) for ln in data]
    refused(write(tmp_path, "noi0.xdi", header, rows), r"missing columns: no mu column and no i0")


def test_missing_energy_column(tmp_path):
    header, data = split(NI)
    header = [ln.replace("Column.1: energy eV", "Column.1: counter") for ln in header]
    refused(
        write(tmp_path, "noenergy.xdi", header, data),
        r"missing energy column \(columns: counter, mutrans, i0\)",
    )


def test_too_few_points(tmp_path):
    header, data = split(CU)
    refused(
        write(tmp_path, "short.xdi", header, data[: MIN_POINTS - 5]),
        rf"too few points: {MIN_POINTS - 5}",
    )


def test_damaged_line_in_the_data(tmp_path):
    header, data = split(NI)
    data[300] = "8790.0 -1.1 ### 151941.70"
    refused(
        write(tmp_path, "damaged.xdi", header, data),
        r"301 data line\(s\) would be lost: larch stops at line 327 \('8790.0 -1.1 ###",
    )


def test_unreadable_files(tmp_path):
    empty = tmp_path / "empty.xdi"
    empty.write_text("")
    refused(empty, "empty file")
    refused(tmp_path / "missing.xdi", "no such file")
    junk = tmp_path / "junk.dat"
    junk.write_bytes(np.random.default_rng(1).bytes(3000))
    refused(junk, "binary data, not a text spectrum file")
    text_only = tmp_path / "notes.txt"
    text_only.write_text("beamtime notes\nsample changed at 14:00\n")
    refused(text_only, "no numeric data")


def test_header_only_xdi_is_refused_plainly(tmp_path):
    """An XDI file whose data were never written: the reason says so, not larch's
    'not enough values to unpack' or 'data file too small'."""
    header, _ = split(CU)
    refused(write(tmp_path, "header.xdi", header, []), r"no numeric data found \(header only\)")
    cols = ["# XDI/1.0", "# Column.1: energy eV", "# Column.2: mu", "#----", "# energy mu"]
    refused(write(tmp_path, "short_header.xdi", cols, []), r"no numeric data found")


def test_damaged_athena_project(tmp_path):
    prj = athena_project(tmp_path / "foils.prj", [CU])
    raw = prj.read_bytes()
    cut = tmp_path / "cut.prj"
    cut.write_bytes(raw[: len(raw) // 2])
    refused(cut, "cannot read as Athena project")
    refused(cut, r"the file is cut short")  # the reason, not larch's 'failed to read'
    # A project whose group carries NaNs is refused group by group.
    text = gzip.decompress(raw).decode()
    bad = tmp_path / "nan.prj"
    bad.write_bytes(gzip.compress(text.replace("-1.3070486", "nan", 1).encode()))
    with pytest.raises(SpectrumError, match=r"nan\.prj#cu: NaN or infinite"):
        read_spectra(bad)


def test_kev_energies_without_unit_refused(tmp_path):
    header, data = split(CU)
    rows = [set_field(ln, 0, f"{float(ln.split()[0]) / 1000:.7f}") for ln in data]
    refused(write(tmp_path, "kev.xdi", header, rows), r"energies end at 10\.15: not eV \(keV")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_corpus_is_refused_with_reasons(case, tmp_path):
    """The corpus that benchmarks/bench_reliability.py counts: each file refused, named."""
    name, make, pattern = MALFORMED[case]
    refused(make(tmp_path / name), pattern)


# --- bounded cost: files far larger than any spectrum --------------------------------------


@pytest.mark.parametrize("case", sorted(OVERSIZED))
def test_oversized_files_are_refused_within_1_s_and_200_mb(case, tmp_path):
    """Refused before larch parses them: within 1 s of the read call, 200 MB peak memory
    of the whole reading process (interpreter and numpy, ~40 MB, included).  The old
    reader took 17 s and 1 GB for 50 MB of random bytes."""
    name, make, pattern = OVERSIZED[case]
    path = make(tmp_path / name)
    out = read_in_child(path)
    assert out["refused"], out
    assert out["reason"].startswith(f"{path}: ") and re.search(pattern, out["reason"]), out
    assert out["seconds"] < 1.0, out
    assert out["peak_rss_mb"] < 200.0, out


def test_size_limits_leave_room_for_real_spectra(tmp_path):
    """The size and shape checks pass a quick-EXAFS-sized file: MAX_POINTS rows of the Cu
    foil's layout with a long header (parsing it in full is timed by the benchmark)."""
    from mlxas.spectra.measured.files import check_file

    header, data = split(CU)
    rows = [ln.split() for ln in data]
    step = 1500.0 / MAX_POINTS  # eV: the foil's range, finely sampled
    e0 = float(rows[0][0])
    big = ["  ".join([f"{e0 + i * step:.5f}", *rows[i % len(rows)][1:]]) for i in range(MAX_POINTS)]
    path = write(tmp_path, "qexafs.xdi", header + ["# comment"] * 5000, big)
    assert path.stat().st_size > 4 * 2**20
    assert check_file(path) == "xdi"
