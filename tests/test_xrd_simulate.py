"""The powder-XRD simulator against known patterns and each experimental effect.

Truths: Bragg's law with the lattice constant (peak positions), pymatgen's own
``XRDCalculator`` (relative intensities), Scherrer's equation, the March–Dollase factor at
α = 0 and 90°, the Cu Kα2 wavelength, Vegard's law.
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import cache

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure
from scipy.signal import find_peaks

from mlxas.engines.base import EngineError, engine_class
from mlxas.xrd.effects import Effects, draw_effects, strained_alloyed
from mlxas.xrd.engine import XRDEngine, item_input
from mlxas.xrd.pattern import axis_grid, simulate_pattern
from mlxas.xrd.settings import SOURCES, XRDSettings

CU1, CU2 = SOURCES["CuKa"]
SI_A, NACL_A = 5.431, 5.64


@cache
def _built(name: str) -> Structure:
    # Built once: pymatgen's SpaceGroup() takes about a second each time.
    if name == "si":
        return Structure.from_spacegroup("Fd-3m", Lattice.cubic(SI_A), ["Si"], [[0, 0, 0]])
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(NACL_A), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _si():
    return _built("si").copy()


def _nacl():
    return _built("nacl").copy()


def _effects(**kw) -> Effects:
    """Ideal effects: Cu Kα1 only, a narrow constant Gaussian width, nothing else."""
    base = dict(
        wavelength=CU1, wavelength2=None, ka2_ratio=0.0, u=0.0, v=0.0, w=0.0004, eta=0.0,
        size_nm=None, microstrain=0.0, po_r=1.0, po_hkl=(0, 0, 1), zero_shift_deg=0.0,
        displacement_mm=0.0, background=(0.0,) * 5, background_level=0.0, counts=None,
        impurity=None, impurity_fraction=0.0, strain=(0.0,) * 9, strain_max=0.0,
        alloy_element=None, alloy_partner=None, alloy_fraction=0.0, noise_seed=0,
    )  # fmt: skip
    base.update(kw)
    return Effects(**base)


FINE = XRDSettings(axis_min=20.0, axis_max=80.0, n_points=12001)


def _pattern(structure, settings=FINE, **kw):
    y, _ = simulate_pattern(structure, _effects(**kw), settings)
    return axis_grid(settings), y


def _maxima(x, y, rel=0.01):
    idx, _ = find_peaks(y, height=rel * y.max())
    # Parabolic refinement of each maximum.
    a, b, c = y[idx - 1], y[idx], y[idx + 1]
    off = 0.5 * (a - c) / (a - 2 * b + c)
    return x[idx] + off * (x[1] - x[0]), b


def _bragg(a, hkls, lam=CU1):
    return np.array(
        [
            2 * math.degrees(math.asin(lam * math.sqrt(sum(i * i for i in hkl)) / (2 * a)))
            for hkl in hkls
        ]
    )


def _fwhm(x, y, centre):
    i = int(np.argmin(abs(x - centre)))
    half = y[i] / 2
    lo = i
    while y[lo] > half:
        lo -= 1
    hi = i
    while y[hi] > half:
        hi += 1
    # Linear interpolation of both half-maximum crossings.
    xl = x[lo] + (half - y[lo]) * (x[lo + 1] - x[lo]) / (y[lo + 1] - y[lo])
    xr = x[hi - 1] + (half - y[hi - 1]) * (x[hi] - x[hi - 1]) / (y[hi] - y[hi - 1])
    return xr - xl


@pytest.mark.parametrize(
    ("make", "a", "hkls"),
    [
        (_si, SI_A, [(1, 1, 1), (2, 2, 0), (3, 1, 1), (4, 0, 0), (3, 3, 1)]),
        (
            _nacl,
            NACL_A,
            [
                (1, 1, 1),
                (2, 0, 0),
                (2, 2, 0),
                (3, 1, 1),
                (2, 2, 2),
                (4, 0, 0),
                (3, 3, 1),
                (4, 2, 0),
            ],
        ),
    ],
)
def test_peak_positions_follow_bragg(make, a, hkls):
    x, y = _pattern(make())
    pos, _ = _maxima(x, y, rel=0.003)
    expected = _bragg(a, hkls)
    assert len(pos) == len(expected)
    np.testing.assert_allclose(pos, expected, atol=0.003)


@pytest.mark.parametrize("make", [_si, _nacl])
def test_relative_intensities_match_pymatgen(make):
    x, y = _pattern(make(), w=0.0004)
    pos, _ = _maxima(x, y, rel=0.003)
    ref = XRDCalculator("CuKa1").get_pattern(make(), two_theta_range=(20, 80))
    np.testing.assert_allclose(pos, ref.x, atol=0.003)
    areas = np.array([_area(x, y, c, half=0.1) for c in pos])
    np.testing.assert_allclose(areas / areas.max(), ref.y / ref.y.max(), atol=0.002)


def test_scherrer_width_scales_with_crystallite_size():
    x, y20 = _pattern(_si(), w=1e-10, size_nm=20.0)
    _, y40 = _pattern(_si(), w=1e-10, size_nm=40.0)
    centre = _bragg(SI_A, [(2, 2, 0)])[0]
    theta = math.radians(centre / 2)
    expected = math.degrees(0.9 * CU1 / (200.0 * math.cos(theta)))  # K λ / (L cos θ), L in Å
    w20, w40 = _fwhm(x, y20, centre), _fwhm(x, y40, centre)
    assert w20 == pytest.approx(expected, rel=0.02)
    assert w20 / w40 == pytest.approx(2.0, rel=0.02)


def test_microstrain_broadens_with_tan_theta():
    x, y = _pattern(_si(), w=1e-10, microstrain=0.003)
    lo, hi = _bragg(SI_A, [(1, 1, 1), (4, 0, 0)])
    for c in (lo, hi):
        expected = math.degrees(4 * 0.003 * math.tan(math.radians(c / 2)))
        assert _fwhm(x, y, c) == pytest.approx(expected, rel=0.02)


def test_zero_shift_moves_every_peak_by_the_set_amount():
    x, y0 = _pattern(_nacl())
    _, y1 = _pattern(_nacl(), zero_shift_deg=0.137)
    p0, _ = _maxima(x, y0)
    p1, _ = _maxima(x, y1)
    np.testing.assert_allclose(p1 - p0, 0.137, atol=0.002)


def test_sample_displacement_shift_follows_cos_theta():
    x, y0 = _pattern(_nacl())
    _, y1 = _pattern(_nacl(), displacement_mm=0.3)
    p0, _ = _maxima(x, y0)
    p1, _ = _maxima(x, y1)
    # Δ2θ = −2 s cosθ / R (radians), s = 0.3 mm, R = 240 mm: peaks move to lower angle,
    # the low-angle ones most.
    expected = -np.degrees(2 * 0.3 * np.cos(np.radians(p0 / 2)) / 240.0)
    np.testing.assert_allclose(p1 - p0, expected, atol=0.002)
    assert np.all(np.diff(p1 - p0) > 0)


def _zno():
    return Structure.from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.25, 5.207),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
    )


def _area(x, y, centre, half=0.15):
    m = abs(x - centre) < half
    return float(y[m].sum())


def test_march_dollase_changes_the_right_reflections():
    s = _zno()
    ref = XRDCalculator("CuKa1").get_pattern(s, two_theta_range=(20, 80))
    d = {tuple(f[0]["hkl"]): tt for f, tt in zip(ref.hkls, ref.x, strict=True)}
    c100, c002, c101 = d[(1, 0, -1, 0)], d[(0, 0, 0, 2)], d[(1, 0, -1, 1)]
    r = 0.6
    x, y0 = _pattern(s)
    _, y1 = _pattern(s, po_r=r, po_hkl=(0, 0, 1))
    a0 = {c: _area(x, y0, c) for c in (c100, c002, c101)}
    a1 = {c: _area(x, y1, c) for c in (c100, c002, c101)}
    # Plates normal to c: (00l) gains r^-3, (hk0) r^(3/2); both patterns are max-scaled,
    # so compare ratios.  (101) lies in between.
    ratio = (a1[c002] / a1[c100]) / (a0[c002] / a0[c100])
    assert ratio == pytest.approx(r**-4.5, rel=0.01)
    mid = (a1[c101] / a1[c100]) / (a0[c101] / a0[c100])
    assert 1.0 < mid < r**-4.5


def test_cu_ka2_doublet_splitting_and_ratio():
    x, y = _pattern(_si(), wavelength2=CU2, ka2_ratio=0.5, w=0.0002)
    (h,) = [(3, 3, 1)]
    a1, a2 = _bragg(SI_A, [h])[0], _bragg(SI_A, [h], lam=CU2)[0]
    pos, heights = _maxima(
        x[(x > a1 - 0.3) & (x < a2 + 0.3)], y[(x > a1 - 0.3) & (x < a2 + 0.3)], rel=0.1
    )
    np.testing.assert_allclose(pos, [a1, a2], atol=0.003)
    assert heights[1] / heights[0] == pytest.approx(0.5, rel=0.03)


def test_poisson_noise_has_counting_statistics():
    _x, clean = _pattern(_nacl(), background_level=0.05, background=(0.0, 0.2, 0.1, 0.0, 0.0))
    _, noisy = _pattern(
        _nacl(),
        background_level=0.05,
        background=(0.0, 0.2, 0.1, 0.0, 0.0),
        counts=1000.0,
        noise_seed=3,
    )
    counts = noisy * 1000.0 / clean.max()
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6)  # whole counts
    lam = clean * 1000.0 / clean.max()
    z = (counts - lam) / np.sqrt(lam)
    assert abs(z.mean()) < 0.05
    assert z.std() == pytest.approx(1.0, abs=0.05)


def test_background_has_the_drawn_mean_level():
    _x, y0 = _pattern(_si())
    _, y1 = _pattern(_si(), background_level=0.08, background=(0.0, 0.3, -0.2, 0.1, 0.0))
    bg = y1 - y0
    assert bg.mean() == pytest.approx(0.08, rel=1e-6)
    assert bg.min() >= 0


def test_impurity_phase_adds_its_peaks_at_the_set_fraction():
    x, y = _pattern(_si(), impurity="rocksalt", impurity_fraction=0.04)
    nacl200 = _bragg(NACL_A, [(2, 0, 0)])[0]  # strongest NaCl line, no Si line near it
    i = int(np.argmin(abs(x - nacl200)))
    assert y[i - 20 : i + 20].max() == pytest.approx(0.04, rel=0.02)


def test_lattice_strain_keeps_the_space_group():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    for s in (_zno(), _nacl()):
        eff = _effects(strain=(0.3, 0.1, -0.2, 0.1, 0.5, 0.0, -0.2, 0.0, 0.9), strain_max=0.01)
        t = strained_alloyed(s, eff)
        assert (
            SpacegroupAnalyzer(t).get_space_group_number()
            == SpacegroupAnalyzer(s).get_space_group_number()
        )
        # The largest principal strain is the drawn one: F = L⁻¹ L' = 1 + ε.
        f = np.linalg.solve(s.lattice.matrix, t.lattice.matrix)
        eps = 0.5 * (f + f.T) - np.eye(3)
        assert np.abs(np.linalg.eigvalsh(eps)).max() == pytest.approx(0.01, rel=1e-6)


def test_alloying_follows_vegard_and_shifts_peaks():
    from pymatgen.core import Element

    eff = _effects(alloy_element="Cl", alloy_partner="Br", alloy_fraction=0.5)
    t = strained_alloyed(_nacl(), eff)
    share = 0.5  # Cl is half of the atoms
    scale = 1 + 0.5 * share * (Element("Br").atomic_radius / Element("Cl").atomic_radius - 1)
    assert t.lattice.a == pytest.approx(NACL_A * scale, rel=1e-9)
    assert t.composition["Br"] == pytest.approx(2.0)  # half of the 4 Cl sites' occupancy
    x, y = _pattern(_nacl(), alloy_element="Cl", alloy_partner="Br", alloy_fraction=0.5)
    pos, _ = _maxima(x, y, rel=0.05)
    expected = _bragg(NACL_A * scale, [(2, 0, 0), (2, 2, 0)])
    np.testing.assert_allclose(
        [pos[np.argmin(abs(pos - e))] for e in expected], expected, atol=0.003
    )


def test_synchrotron_energy_on_a_q_grid():
    settings = XRDSettings(
        axis="q",
        axis_min=1.0,
        axis_max=5.0,
        n_points=8001,
        source="synchrotron",
        energy_kev=(20.0, 30.0),
    )
    lam = 12.398419843320026 / 25.0
    x, y = _pattern(_nacl(), settings=settings, wavelength=lam)
    pos, _ = _maxima(x, y, rel=0.05)
    q = [
        2 * math.pi * math.sqrt(sum(i * i for i in h)) / NACL_A
        for h in [(1, 1, 1), (2, 0, 0), (2, 2, 0)]
    ]
    np.testing.assert_allclose(pos[:3], q, atol=0.002)


def test_engine_items_are_reproducible_and_distinct():
    eng = engine_class("xrd")(XRDSettings())
    assert isinstance(eng, XRDEngine) and eng.unit == "structure"
    a = item_input(eng, _nacl(), "s1", "s1")
    b = item_input(eng, _nacl(), "s1", "s1")
    c = item_input(eng, _nacl(), "s1-p1", "s1")
    assert a.text == b.text and a.input_hash == b.input_hash
    assert a.input_hash != c.input_hash
    ra, rb = eng.run(a, None, 10), eng.run(b, None, 10)
    assert ra.ok and np.array_equal(ra.arrays["intensity"], rb.arrays["intensity"])
    doc = json.loads(a.text)
    assert set(doc) == {"structure", "effects", "settings"}
    feats = eng.featurize([ra, eng.run(c, None, 10)], None)["intensity"]
    assert feats.dtype == np.float32 and feats.shape == (2, 1401)
    np.testing.assert_allclose(feats.max(axis=1), 1.0)


def test_effects_are_drawn_within_their_ranges():
    s = XRDSettings()
    for i in range(50):
        e = draw_effects(s, f"id{i}", ["Na", "Cl"], s.impurities)
        assert s.zero_shift_deg[0] <= e.zero_shift_deg <= s.zero_shift_deg[1]
        assert s.crystallite_size_nm[0] <= e.size_nm <= s.crystallite_size_nm[1]
        assert s.march_dollase_r[0] <= e.po_r <= s.march_dollase_r[1]
        assert e.impurity is None or e.impurity in s.impurities
        assert e.alloy_partner is None or e.alloy_element in ("Na", "Cl")
    off = dataclasses.replace(s, zero_shift_deg=None)
    a, b = draw_effects(s, "x", ["Na"], ()), draw_effects(off, "x", ["Na"], ())
    assert b.zero_shift_deg == 0.0 and a.displacement_mm == b.displacement_mm


def test_refusals_and_bad_settings():
    eng = XRDEngine(XRDSettings(max_atoms=4))
    it = item_input(eng, _nacl(), "n", "n")
    assert it.reason == "too_many_atoms"
    with pytest.raises(EngineError, match="axis: q"):
        XRDSettings(source="synchrotron", energy_kev=(20.0, 30.0))
    with pytest.raises(EngineError, match="CuKx"):
        XRDSettings(source="CuKx")
    with pytest.raises(EngineError, match="low <= high"):
        XRDSettings(zero_shift_deg=(0.1, -0.1))


def test_reused_reflections_give_the_same_pattern():
    eng = XRDEngine(
        dataclasses.replace(XRDSettings(), strain_probability=0.0, alloy_probability=0.0)
    )
    items = [item_input(eng, _nacl(), f"s-p{i}", "s") for i in range(3)]
    first = [eng.run(it, None, 10).arrays["intensity"] for it in items]  # 2nd, 3rd reuse
    from mlxas.xrd import pattern

    pattern._RECENT.clear()
    again = eng.run(items[2], None, 10).arrays["intensity"]  # computed afresh
    np.testing.assert_array_equal(first[2], again)
