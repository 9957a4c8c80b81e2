"""Time to phase one crystal on the CPU: the sign networks against charge flipping, on
the same held-out crystals in the same run.

    nice -n 10 .venv/bin/python benchmarks/bench_phases_speed.py --n 20 --d-min 1.0

Uses the networks saved by ``bench_phases_accuracy.py``
(``benchmarks/work/phases/models/<name>_d<d_min>``).  The network time of one crystal
is everything from its merged amplitudes to its phases: quasi-normalisation to |E|
(cctbx), the fixed-size input, the network (one crystal per call, TensorFlow limited
to one thread) and the signs to phases; median over the crystals after one warm-up
call.  Charge flipping: smtbx from random phases to its symmetrised solution, median.
Writes ``benchmarks/results/phases_speed.json`` (value: the best network's median CPU
ms per crystal; wall-clock medians beside it).
"""

from __future__ import annotations

# isort: off
import _phases_data as data  # first: mlxas loads cctbx's runtime before scipy/pandas

# isort: on
import argparse
import time

import numpy as np
from _common import write_result

from mlxas.phases.charge_flip import charge_flip
from mlxas.phases.labels import signs_to_phases
from mlxas.phases.models import predict_signs
from mlxas.phases.predict import load_sign_model
from mlxas.phases.reflection_list import box_lookup, list_restrictions
from mlxas.phases.reflections import quasi_normalise


def phase_one(model, card, settings, features, crystal) -> np.ndarray:
    """Phases of one crystal from its amplitudes (what ``mlxas.phases.predict`` does)."""
    n = card["n_reflections"]
    idx = box_lookup(settings.space_group, settings.index_max, crystal.hkl)
    e = np.zeros((1, n), np.float32)
    mask = np.zeros((1, n), np.float32)
    e[0, idx] = quasi_normalise(
        crystal.cell,
        settings.space_group,
        crystal.hkl,
        crystal.amplitude,
        features.reflections_per_bin,
    )
    mask[0, idx] = 1.0
    prob = predict_signs(model, card["spec"], e, mask)[0, idx]
    return signs_to_phases(prob, list_restrictions(settings.space_group, settings.index_max)[idx])


def _stats(wall: list[float], cpu: list[float]) -> dict[str, float]:
    return {
        "median_ms": 1e3 * float(np.median(wall)),
        "median_cpu_ms": 1e3 * float(np.median(cpu)),
        "max_ms": 1e3 * float(np.max(wall)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="test crystals")
    ap.add_argument("--d-min", type=float, default=1.0)
    args = ap.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    crystals, _ = data.test_set(args.d_min, args.n)
    out = {}
    for name in ("reference", "best"):
        model, card, settings, features = load_sign_model(
            data.WORK / "models" / f"{name}_d{args.d_min:.1f}"
        )
        phase_one(model, card, settings, features, crystals[0])  # warm-up (graph tracing)
        wall, cpu = [], []
        for c in crystals:
            t0, c0 = time.perf_counter(), time.process_time()
            phase_one(model, card, settings, features, c)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[name] = _stats(wall, cpu) | {"kind": card["kind"]}
        print(name, out[name], flush=True)
    wall, cpu, solved = [], [], 0
    for c in crystals:
        c0 = time.process_time()
        r = charge_flip(c.cell, c.space_group, c.hkl, c.amplitude, seed=0)
        cpu.append(time.process_time() - c0)
        wall.append(r.seconds)
        solved += r.symmetrised
    out["charge_flipping"] = _stats(wall, cpu) | {"symmetrised": solved}
    print("charge_flipping", out["charge_flipping"], flush=True)
    write_result(
        "phases_speed",
        out["best"]["median_cpu_ms"],
        "ms CPU per crystal",
        value_is="median CPU time of the best sign network for one crystal, amplitudes to "
        "phases (CPU time because the shared machine's wall time is mostly waiting for a "
        "core; median_ms has the wall time)",
        target="<= 10 ms",
        d_min=args.d_min,
        n_crystals=len(crystals),
        n_reflections_median=int(np.median([len(c.hkl) for c in crystals])),
        methods=out,
        speedup_vs_charge_flipping=out["charge_flipping"]["median_ms"] / out["best"]["median_ms"],
        speedup_vs_charge_flipping_cpu=out["charge_flipping"]["median_cpu_ms"]
        / out["best"]["median_cpu_ms"],
        threads=1,
    )


if __name__ == "__main__":
    main()
