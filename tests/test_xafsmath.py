"""larch's definitions re-stated without larch (mlxas.spectra.xafsmath, mlxas.spectra.xdi)
give larch's own answers, on every measured file of tests/data/experimental."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from larch.io import read_athena, read_xdi
from larch.math import index_nearest, index_of, remove_dups
from larch.xafs import find_e0, ftwindow, xftf_fast
from larch.xafs.pre_edge import preedge
from larch.xafs.xafsutils import ETOK, TINY_ENERGY

from mlxas.spectra import xafsmath
from mlxas.spectra.e0_batch import find_e0_many
from mlxas.spectra.measured import read_spectra
from mlxas.spectra.xdi import read_xdi_columns

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"
XDI_FILES = sorted(EXPERIMENTAL.glob("*.xdi"))


def _measured() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, energy, mu) of every measured spectrum, Athena groups included."""
    out = []
    for p in [*XDI_FILES, *EXPERIMENTAL.glob("*.prj")]:
        for s in read_spectra(p):
            out.append((s.source.split("/")[-1], s.energy, s.mu))
    return out


SPECTRA = _measured()


def _noisy(energy, mu, seed):
    rng = np.random.default_rng(seed)
    step = np.ptp(mu)
    return energy, mu + rng.normal(0, 0.003 * step, len(mu))


def test_constants_are_larchs():
    assert xafsmath.ETOK == ETOK and xafsmath.TINY_ENERGY == TINY_ENERGY


@pytest.mark.parametrize("name,energy,mu", SPECTRA, ids=[s[0] for s in SPECTRA])
def test_find_e0_and_pre_edge_ranges_are_larchs(name, energy, mu):
    cases = [(energy, mu), _noisy(energy, mu, 0), _noisy(energy, mu, 1)]
    # Cut in front of the edge and after it: the E0 search must follow larch there too.
    n = len(energy)
    cases.append((energy[n // 10 :], mu[n // 10 :]))
    cases.append((energy[: n // 2], mu[: n // 2]))
    for e, m in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = find_e0(e, m)
        assert xafsmath.find_e0(e, m) == want
        for e0 in (None, want, want + 7.3, float(e[0]) - 1.0):
            ref = preedge(e, m, e0=e0)
            got = xafsmath.preedge_ranges(e, m, e0)
            for key in ("e0", "pre1", "pre2", "norm1", "norm2", "nnorm", "nvict"):
                assert got[key] == ref[key], (key, e0)


@pytest.mark.parametrize("name,energy,mu", SPECTRA, ids=[s[0] for s in SPECTRA])
def test_find_e0_many_gives_larchs_e0_for_every_row(name, energy, mu):
    rng = np.random.default_rng(5)
    step = np.ptp(mu)
    rows = [mu] + [mu + rng.normal(0, f * step, len(mu)) for f in (0.001, 0.003, 0.01, 0.03)]
    rows.append(np.where(np.arange(len(mu)) == len(mu) // 3, np.nan, mu))  # own grid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = [find_e0(energy[np.isfinite(m)], m[np.isfinite(m)]) for m in rows]
    np.testing.assert_array_equal(find_e0_many(energy, np.stack(rows)), want)
    assert find_e0_many(energy, mu)[0] == want[0]


def test_index_helpers_and_remove_dups_are_larchs():
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.uniform(0.1, 2.0, 200)) + 8000.0
    for v in (x[0] - 5, x[0], x[17] + 0.01, x[-1], x[-1] + 3, float(x.mean())):
        assert xafsmath.index_of(x, v) == index_of(x, v)
        assert xafsmath.index_nearest(x, v) == index_nearest(x, v)
    dup = np.array([1.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, np.nan, 6.0, 6.0, 7.0])
    for tiny in (1e-6, TINY_ENERGY):
        np.testing.assert_array_equal(xafsmath.remove_dups(dup, tiny), remove_dups(dup, tiny))
    np.testing.assert_array_equal(xafsmath.remove_dups(x, TINY_ENERGY), remove_dups(x))
    assert np.all(np.diff(xafsmath.remove_dups(dup, 1e-6)[:8]) > 0)


@pytest.mark.parametrize("window", ["hanning", "parzen", "welch", "sine", "gaussian", "kaiser"])
def test_ftwindow_is_larchs(window):
    for k in (0.05 * np.arange(401), 0.1 * np.arange(5, 151)):
        for xmin, xmax, dx, dx2 in ((2.0, 12.0, 1.0, None), (3.0, 14.5, 0.5, 2.0), (0, 20, 3, 3)):
            want = ftwindow(k, xmin=xmin, xmax=xmax, dx=dx, dx2=dx2, window=window)
            got = xafsmath.ftwindow(k, xmin=xmin, xmax=xmax, dx=dx, dx2=dx2, window=window)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="invalid window name"):
        xafsmath.ftwindow(k, window="boxcar")


def test_xftf_fast_is_larchs():
    chi = np.random.default_rng(4).normal(size=300)
    for nfft, kstep in ((2048, 0.05), (1024, 0.1)):
        np.testing.assert_allclose(
            xafsmath.xftf_fast(chi, nfft=nfft, kstep=kstep),
            xftf_fast(chi, nfft=nfft, kstep=kstep),
            rtol=1e-12,
            atol=1e-13,
        )


@pytest.mark.parametrize("path", XDI_FILES, ids=[p.name for p in XDI_FILES])
def test_xdi_columns_are_larchs(path):
    g = read_xdi(str(path))
    got = read_xdi_columns(path)
    assert got is not None, "a clean XDI file must be read without larch"
    assert got.array_labels == list(g.array_labels)
    assert got.array_units == list(g.array_units)
    np.testing.assert_array_equal(got.data, np.asarray(g.data, dtype=float))
    assert got.attrs == g.attrs


def test_unusual_xdi_files_go_to_larch(tmp_path):
    text = (EXPERIMENTAL / "cu_metal_rt.xdi").read_text()
    cases = {
        "comma.xdi": text.replace("  ", ",", 50),
        "damaged.xdi": text.replace("\n", "\n 1.0 x\n", 1).replace("#  1.0 x", "#"),
        "no_columns.xdi": "\n".join(ln for ln in text.splitlines() if "Column." not in ln),
        "short_row.xdi": text.rstrip("\n").rsplit(" ", 1)[0] + "\n",
        "angle.xdi": text.replace("Column.1: energy", "Column.1: angle"),
        "not_xdi.txt": text.replace("XDI/", "XYZ/", 1),
    }
    for name, content in cases.items():
        p = tmp_path / name
        p.write_text(content)
        assert read_xdi_columns(p) is None, name


def test_athena_groups_keep_their_larch_e0():
    # The Athena project's groups are read by larch; their E0 from our find_e0 is larch's.
    proj = read_athena(str(EXPERIMENTAL / "pt_nanoparticles_T.prj"), do_preedge=False)
    for name in list(proj.groups)[:2]:
        g = getattr(proj, name)
        assert xafsmath.find_e0(g.energy, g.mu) == find_e0(g.energy, g.mu)
