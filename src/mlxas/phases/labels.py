"""Phase targets of centrosymmetric space groups: restricted phases, signs, origin shifts.

With the origin on an inversion centre every reflection of P-1 and P2_1/c is centric:
its phase is restricted to ``ht`` or ``ht + π`` where ``ht`` is cctbx's
``space_group.phase_restriction(h).ht_angle()`` (0 in the standard settings).  The
target of a reflection is then its **sign**: 1 when the phase is ``ht`` (F > 0 for
``ht = 0``), 0 when it is ``ht + π``.

A centrosymmetric structure has 8 inversion centres per cell that are equally valid
origins (cctbx's structure seminvariants: vectors (1,0,0), (0,1,0), (0,0,1) modulo 2 in
P-1 and P2_1/c).  Moving the origin by ``t`` (each component 0 or ½) changes every
phase by ``-2π h·t``, i.e. flips the sign of the reflections with odd ``h·2t``.  The
amplitudes do not change, so a sign set is known from amplitudes only up to these 8
patterns; :func:`origin_flips` lists them, and metrics and losses take the best one.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = [
    "LabelError",
    "origin_flips",
    "origin_shifts",
    "phase_restrictions",
    "sign_labels",
    "signs_to_phases",
]


class LabelError(ValueError):
    """Phases that are not at their restricted values (wrong space group or origin)."""


def _space_group(symbol: str):
    from cctbx import sgtbx

    return sgtbx.space_group_info(symbol).group()


def phase_restrictions(space_group: str, hkl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(centric [n] bool, ht [n] radians)`` of each reflection, from cctbx.

    A centric reflection's phase is ``ht`` or ``ht + π``; an acentric one is free.
    """
    sg = _space_group(space_group)
    centric = np.zeros(len(hkl), dtype=bool)
    ht = np.zeros(len(hkl))
    for i, h in enumerate(np.asarray(hkl, dtype=int)):
        r = sg.phase_restriction(tuple(int(x) for x in h))
        centric[i] = r.is_centric()
        ht[i] = r.ht_angle() if centric[i] else np.nan
    return centric, ht


def sign_labels(
    phase: np.ndarray, ht: np.ndarray, tolerance: float = 1e-3, where: str = ""
) -> np.ndarray:
    """Sign targets (1: phase = ``ht``, 0: phase = ``ht + π``) of restricted phases.

    ``phase`` and ``ht`` in radians, any shape.  A phase farther than ``tolerance``
    (radians) from both allowed values raises :class:`LabelError` naming ``where``:
    the structure does not have the space group's symmetry at this origin.
    """
    d = np.angle(np.exp(1j * (np.asarray(phase) - np.asarray(ht))))  # in (-π, π]
    plus = np.abs(d) <= tolerance
    minus = np.abs(np.abs(d) - np.pi) <= tolerance
    bad = ~(plus | minus)
    if np.any(bad):
        raise LabelError(
            f"{where or 'phases'}: {int(bad.sum())} of {bad.size} phases are not 0 or π "
            f"from their restricted value (largest deviation "
            f"{float(np.max(np.minimum(np.abs(d), np.pi - np.abs(d))[bad])):.3g} rad)"
        )
    return plus.astype(np.int8)


def signs_to_phases(signs: np.ndarray, ht: np.ndarray) -> np.ndarray:
    """Phases (radians) from sign targets or probabilities (> 0.5 means sign 1)."""
    return np.where(np.asarray(signs) > 0.5, ht, ht + np.pi)


def origin_shifts(space_group: str) -> np.ndarray:
    """The permissible origin shifts of a centrosymmetric group that are built from
    cctbx's structure seminvariants with modulus 2: ``[n_shifts, 3]`` fractional."""
    from cctbx import sgtbx

    sg = _space_group(space_group)
    if not sg.is_centric():
        raise LabelError(f"{space_group} is not centrosymmetric: phases are not signs")
    vm = sgtbx.structure_seminvariants(sg).vectors_and_moduli()
    if any(v.m != 2 for v in vm):
        raise LabelError(f"{space_group}: origin shifts other than ½ are not supported")
    vectors = np.array([v.v for v in vm], dtype=float) / 2.0
    shifts = {
        tuple(np.mod(np.asarray(c, float) @ vectors, 1.0))
        for c in itertools.product((0, 1), repeat=len(vectors))
    }
    return np.array(sorted(shifts))


def origin_flips(space_group: str, hkl: np.ndarray) -> np.ndarray:
    """``[n_shifts, n]`` +1/-1: the sign change of each reflection under each
    permissible origin shift (row 0 is the unshifted origin, all +1)."""
    shifts = origin_shifts(space_group)
    parity = np.rint(2.0 * np.asarray(hkl, float) @ shifts.T).astype(int) % 2
    return np.where(parity.T == 1, -1, 1).astype(np.int8)
