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

One start often ends in a false phase transition or none.  As charge-flipping programs
do, :func:`charge_flip` runs several independent *trials* (``trials``, each from its own
random start) and keeps the symmetrised solution whose density best explains the
measured amplitudes (lowest :func:`r1_factor`); no true phase enters the choice.  On
the first 60 *training* crystals at 1.0 Å (seed 0; the test crystals were not used,
docs/phases.md) one trial solved 33, the best of 6 trials 50 and the best of 24 trials
59: hence :data:`DEFAULT_TRIALS`.
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass

import numpy as np

from mlxas.phases.reflections import quasi_normalisations

__all__ = ["DEFAULT_TRIALS", "FlipResult", "charge_flip", "r1_factor"]

#: Independent starts of :func:`charge_flip` (see the module doc for how it was chosen).
DEFAULT_TRIALS = 24


@dataclass
class FlipResult:
    phase: np.ndarray  #: [m] radians on the caller's reflections
    symmetrised: bool  #: smtbx found a phase transition and a symmetrising origin
    seconds: float  #: all trials together
    attempts: int  #: phase transitions seen in the chosen trial
    r1: float = float("inf")  #: :func:`r1_factor` of the chosen trial
    trials: int = 1  #: trials run
    chosen: int = 0  #: index of the trial kept


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
        phase = np.angle(_values_on(np.array(f_p1.indices()), self.p1))
        return flex.double(np.nan_to_num(phase))


def _values_on(hkl: np.ndarray, f) -> np.ndarray:
    """Complex values of cctbx array ``f`` at indices ``hkl`` (Friedel mates conjugated),
    NaN where ``f`` holds neither the reflection nor its mate."""
    pairs = zip(f.indices(), f.data(), strict=True)
    table = {tuple(int(x) for x in h): complex(v) for h, v in pairs}
    out = np.full(len(hkl), np.nan, dtype=complex)
    for i, h in enumerate(np.asarray(hkl, int)):
        key = tuple(int(x) for x in h)
        if key in table:
            out[i] = table[key]
        elif (mate := tuple(-x for x in key)) in table:
            out[i] = np.conj(table[mate])
    return out


def r1_factor(amplitude: np.ndarray, f_calc: np.ndarray) -> float:
    """Σ| |F_obs| − k|F_calc| | / Σ|F_obs| over the reflections with a value, with the
    least-squares scale k: how well a trial's density explains the measured amplitudes
    (it needs no true phases, so it can choose among trials)."""
    fo = np.asarray(amplitude, dtype=float)
    fc = np.abs(np.asarray(f_calc))
    ok = np.isfinite(fc)
    if not ok.any() or not (fc[ok] @ fc[ok]) > 0:
        return float("inf")
    k = (fo[ok] @ fc[ok]) / (fc[ok] @ fc[ok])
    return float(np.abs(fo[ok] - k * fc[ok]).sum() / fo[ok].sum())


def charge_flip(
    cell,
    space_group: str,
    hkl: np.ndarray,
    amplitude: np.ndarray,
    seed: int = 0,
    max_solving_iterations: int = 500,
    max_attempts: int = 5,
    start_phase: np.ndarray | None = None,
    trials: int = DEFAULT_TRIALS,
) -> FlipResult:
    """Phases of ``amplitude`` (|F| on ``hkl`` [m, 3]) by charge flipping.

    ``trials`` independent runs, trial ``t`` from random seed ``seed + t``; the kept one is
    the symmetrised solution with the lowest :func:`r1_factor` (else, when no trial found
    one, the trial with the lowest R1).  ``start_phase`` [m] (radians, e.g. a model's
    prediction) replaces the random phases of the first trial's first start; restarts
    and the other trials begin from random phases as usual."""
    from cctbx import crystal, miller
    from cctbx.array_family import flex

    if trials < 1:
        raise ValueError(f"trials must be at least 1, not {trials}")
    t0 = time.perf_counter()
    sym = crystal.symmetry(unit_cell=tuple(cell), space_group_symbol=space_group)
    indices = flex.miller_index(np.asarray(hkl).tolist())
    f_obs = miller.array(
        miller.set(sym, indices, anomalous_flag=False), flex.double(np.asarray(amplitude, float))
    ).set_observation_type_xray_amplitude()
    runs = []
    for t in range(trials):
        start = start_phase if t == 0 else None
        runs.append(
            _trial(f_obs, hkl, amplitude, seed + t, max_solving_iterations, max_attempts, start)
        )
    # Symmetrised solutions first, then the lowest R1 (ties: the earliest trial).
    chosen = min(range(trials), key=lambda t: (not runs[t][1], runs[t][2], t))
    phase, symmetrised, r1, attempts = runs[chosen]
    # Reflections smtbx left out (none expected) get phase 0 rather than NaN.
    return FlipResult(
        np.nan_to_num(phase), symmetrised, time.perf_counter() - t0, attempts, r1, trials, chosen
    )


def _trial(f_obs, hkl, amplitude, seed, max_solving_iterations, max_attempts, start_phase):
    """One run of smtbx's solving state machine: (phases on ``hkl``, symmetrised, R1,
    phase transitions seen)."""
    from cctbx.array_family import flex
    from smtbx.ab_initio import charge_flipping as cf

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
    symmetrised = bool(solving.f_calc_solutions)
    f_calc = solving.f_calc_solutions[0][0] if symmetrised else solving.flipping_iterator.f_calc
    values = _values_on(hkl, f_calc)
    return np.angle(values), symmetrised, r1_factor(amplitude, values), len(solving.attempts)
