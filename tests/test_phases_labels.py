"""Phase targets: restrictions against cctbx, sign labels, origin shifts against moved
structures, and the P2_1/c reflection-class relations."""

from __future__ import annotations

import numpy as np
import pytest

from mlxas.phases.labels import (
    LabelError,
    origin_flips,
    origin_shifts,
    phase_restrictions,
    sign_labels,
    signs_to_phases,
)
from mlxas.phases.reflection_list import reflection_list
from mlxas.phases.reflections import structure_factors

CELL_P1 = (6.1, 7.3, 8.2, 82.0, 97.0, 104.0)
CELL_P21C = (6.1, 7.3, 8.2, 90.0, 103.0, 90.0)


def _p1bar(rng, n=4):
    x = rng.random((n, 3))
    return ["C", "N", "O", "S"][:n] * 2, np.vstack([x, -x]) % 1.0


def _p21c(rng, n=3):
    """General position of P2_1/c (ITA): x,y,z; -x,y+½,-z+½; -x,-y,-z; x,-y+½,z+½."""
    x = rng.random((n, 3))
    ops = [
        lambda v: v,
        lambda v: np.array([-v[0], v[1] + 0.5, -v[2] + 0.5]),
        lambda v: -v,
        lambda v: np.array([v[0], -v[1] + 0.5, v[2] + 0.5]),
    ]
    frac = np.array([op(v) for op in ops for v in x]) % 1.0
    return ["C", "N", "O"][:n] * 4, frac


GROUPS = [("P-1", _p1bar, CELL_P1), ("P 1 21/c 1", _p21c, CELL_P21C)]


def _computed(sg, maker, cell, seed, b):
    """``(hkl, F, symbols, frac, B)`` of a random crystal of group ``sg`` (index box 4)."""
    symbols, frac = maker(np.random.default_rng(seed))
    hkl = reflection_list(sg, 4)
    bs = np.full(len(symbols), b)
    return hkl, structure_factors(cell, symbols, frac, bs, hkl), symbols, frac, bs


@pytest.mark.parametrize("sg", ["P-1", "P 1 21/c 1"])
def test_every_reflection_is_centric_with_ht_zero(sg):
    from cctbx import sgtbx

    hkl = reflection_list(sg, 5)
    centric, ht = phase_restrictions(sg, hkl)
    group = sgtbx.space_group_info(sg).group()
    assert all(group.is_centric(tuple(map(int, h))) for h in hkl)
    assert centric.all() and np.allclose(ht, 0.0)


@pytest.mark.parametrize("sg,maker,cell", GROUPS)
def test_computed_phases_are_signs_of_real_f(sg, maker, cell):
    hkl, f, *_ = _computed(sg, maker, cell, seed=1, b=3.0)
    assert np.abs(f.imag).max() < 1e-9 * np.abs(f).max()
    labels = sign_labels(np.angle(f), phase_restrictions(sg, hkl)[1], tolerance=1e-6)
    strong = np.abs(f) > 1e-6 * np.abs(f).max()
    assert np.array_equal(labels[strong] == 1, f.real[strong] > 0)
    back = signs_to_phases(labels, np.zeros(len(hkl)))
    assert np.allclose(np.exp(1j * back[strong]), np.exp(1j * np.angle(f)[strong]), atol=1e-6)


def test_p21c_equivalent_reflections_follow_the_screw_and_glide():
    """F(-h,k,-l) = (-1)^(k+l) F(h,k,l) in P2_1/c (phase shift of the 2_1 at y+½, z+½)."""
    rng = np.random.default_rng(2)
    symbols, frac = _p21c(rng)
    hkl = reflection_list("P 1 21/c 1", 4)
    mates = hkl * np.array([-1, 1, -1])
    b = np.full(len(symbols), 2.5)
    f = structure_factors(CELL_P21C, symbols, frac, b, hkl)
    g = structure_factors(CELL_P21C, symbols, frac, b, mates)
    assert np.allclose(g, f * (-1.0) ** (hkl[:, 1] + hkl[:, 2]), atol=1e-8 * np.abs(f).max())


def test_sign_labels_refuse_unrestricted_phases():
    with pytest.raises(LabelError, match="crystal-7"):
        sign_labels(np.array([0.0, np.pi, 1.0]), np.zeros(3), where="crystal-7")


@pytest.mark.parametrize("sg", ["P-1", "P 1 21/c 1"])
def test_origin_shifts_are_cctbx_allowed_and_complete(sg):
    from cctbx import sgtbx

    info = sgtbx.space_group_info(sg)
    shifts = origin_shifts(sg)
    assert len(shifts) == 8
    assert all(info.is_allowed_origin_shift(tuple(t), 1e-6) for t in shifts)
    assert not info.is_allowed_origin_shift((0.25, 0.0, 0.0), 1e-6)


@pytest.mark.parametrize("sg,maker,cell", GROUPS)
def test_origin_flips_match_structures_moved_to_each_inversion_centre(sg, maker, cell):
    hkl, f0, symbols, frac, b = _computed(sg, maker, cell, seed=4, b=2.0)
    f0 = f0.real
    strong = np.abs(f0) > 1e-6 * np.abs(f0).max()
    flips = origin_flips(sg, hkl)
    assert np.all(flips[0] == 1)
    for t, row in zip(origin_shifts(sg), flips, strict=True):
        moved = structure_factors(cell, symbols, (frac - t) % 1.0, b, hkl).real
        assert np.array_equal(np.sign(moved[strong]), np.sign(f0[strong]) * row[strong])


def test_origin_flips_need_a_centrosymmetric_group():
    with pytest.raises(LabelError, match="not centrosymmetric"):
        origin_flips("P 1 21 1", np.array([[1, 0, 0]]))
