"""The baseline: charge flipping from cctbx (``smtbx.ab_initio.charge_flipping``).

:func:`charge_flip` runs smtbx's solving state machine as its own tests do: the
weak-reflection-improved flipping iterator (Oszlányi & Sütő 2005) on quasi-normalised
amplitudes (shells of 200 reflections as smtbx's own function, through
:func:`mlxas.phases.reflections.quasi_normalisations`, which narrows them where smtbx's
call fails on the few reflections of 2 Å data), delta guessed from the map sigma,
restarts from random phases when no phase transition is seen, low-density-elimination
polishing, and the search for the origin
that symmetrises the P1 solution into the space group.  The phases of that symmetrised
solution are returned on the caller's reflections.  When smtbx finds no symmetrising
origin (no solution) the P1 phases of the last cycle are returned with
``symmetrised=False``; they are at an arbitrary origin and score accordingly.
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass

import numpy as np

from mlxas.phases.reflections import quasi_normalisations

__all__ = ["FlipResult", "charge_flip"]


@dataclass
class FlipResult:
    phase: np.ndarray  #: [m] radians on the caller's reflections
    symmetrised: bool  #: smtbx found a phase transition and a symmetrising origin
    seconds: float
    attempts: int  #: phase transitions seen (restarts + 1 when solved)


class _Iterations(int):
    """An iteration count that stays an int when smtbx scales it by 1.5 after its second
    restart (smtbx passes the product to ``itertools.islice``, which refuses a float)."""

    def __mul__(self, factor: float) -> _Iterations:
        return _Iterations(int(int(self) * factor))

    __rmul__ = __mul__


class _StartPhases:
    """smtbx's ``initial_phases_for``: the given phases (expanded to P1 by cctbx) at the
    first start, random phases at every restart."""

    def __init__(self, f_obs, phase: np.ndarray):
        from cctbx.array_family import flex

        self.p1 = f_obs.phase_transfer(flex.double(phase)).expand_to_p1()
        self.used = False

    def __call__(self, f_p1):
        from cctbx.array_family import flex

        if self.used:
            return (2 * np.pi) * flex.random_double(f_p1.size())
        self.used = True
        phase = _phases_on(np.array(f_p1.indices()), self.p1)
        return flex.double(np.nan_to_num(phase))


def _phases_on(hkl: np.ndarray, f) -> np.ndarray:
    """Phases of cctbx array ``f`` at indices ``hkl``, via Friedel mates if needed."""
    pairs = zip(f.indices(), f.data(), strict=True)
    table = {tuple(int(x) for x in h): complex(v) for h, v in pairs}
    out = np.full(len(hkl), np.nan)
    for i, h in enumerate(np.asarray(hkl, int)):
        key = tuple(int(x) for x in h)
        if key in table:
            out[i] = np.angle(table[key])
        elif (mate := tuple(-x for x in key)) in table:
            out[i] = -np.angle(table[mate])
    return out


def charge_flip(
    cell,
    space_group: str,
    hkl: np.ndarray,
    amplitude: np.ndarray,
    seed: int = 0,
    max_solving_iterations: int = 500,
    max_attempts: int = 5,
    start_phase: np.ndarray | None = None,
) -> FlipResult:
    """Phases of ``amplitude`` (|F| on ``hkl`` [m, 3]) by charge flipping.

    ``start_phase`` [m] (radians, e.g. a model's prediction) replaces the random
    phases of the first start; restarts begin from random phases as usual."""
    from cctbx import crystal, miller
    from cctbx.array_family import flex
    from smtbx.ab_initio import charge_flipping as cf

    t0 = time.perf_counter()
    sym = crystal.symmetry(unit_cell=tuple(cell), space_group_symbol=space_group)
    indices = flex.miller_index(np.asarray(hkl).tolist())
    f_obs = miller.array(
        miller.set(sym, indices, anomalous_flag=False), flex.double(np.asarray(amplitude, float))
    ).set_observation_type_xray_amplitude()
    flex.set_random_seed(seed)
    random.seed(seed)
    extra = {}
    if start_phase is not None:
        extra["initial_phases_for"] = _StartPhases(f_obs, np.asarray(start_phase, float))
    solving = cf.solving_iterator(
        cf.weak_reflection_improved_iterator(delta=None),
        f_obs,
        yield_during_delta_guessing=True,
        normalisations_for=lambda f: quasi_normalisations(f, 200),
        max_solving_iterations=_Iterations(max_solving_iterations),
        max_attempts_to_get_phase_transition=max_attempts,
        **extra,
    )
    cf.loop(solving, verbose=False, out=io.StringIO())  # its failure note is in the result
    if solving.f_calc_solutions:
        phase = _phases_on(hkl, solving.f_calc_solutions[0][0])
        symmetrised = True
    else:
        phase = _phases_on(hkl, solving.flipping_iterator.f_calc)
        symmetrised = False
    # Reflections smtbx left out (none expected) get phase 0 rather than NaN.
    phase = np.nan_to_num(phase)
    return FlipResult(phase, symmetrised, time.perf_counter() - t0, len(solving.attempts))
