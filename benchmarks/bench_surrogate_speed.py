"""Surrogate against FEFF per site, on the same sites and the same 2 cores, in one run.

The machine is shared with other jobs, so every time is CPU time (this process and its
FEFF child processes, ``os.times``), which load does not inflate the way it inflates
wall time; wall times are recorded too.

1. FEFF8L (the Cu K EXAFS settings of the training set: RPATH 6, NLEGS 6, 7 Å clusters)
   on ``--feff8l-sites`` held-out test sites, two runs at a time, from scratch in a fresh
   folder, through the workflow's FEFF engine and runner (the input hashes are checked to
   be those of the training set's chunk files: the same sites, the same inputs).
2. FEFF10 XANES (FMS 4 Å, no SCF, XANES to k = 5 Å⁻¹, 6.5 Å clusters; the template's
   SCF 4.5 Å + FMS 6 Å costs minutes per site) on the first ``--feff10-sites`` of them.
3. The surrogate (``--model``, the graph ensemble of bench_surrogate_exafs.py) in batch,
   end to end from the structures: neighbour search, graphs, network, for all atoms of
   the test structures, repeated to at least ``--batch-sites`` sites.  The network runs
   as the engine runs it (``Surrogate.backend``: numpy for graph EXAFS); on the test
   structures' sites it is checked against the Keras model (XLA), whose CPU per site is
   recorded too.
4. The ``surrogate`` engine of the simulation stage one item at a time (input text, then
   ``run``, as the stage's runner calls it) on ``--engine-sites`` sites.

Speed-up = FEFF's CPU seconds per site / the surrogate's.  Target ≥ 10⁴ against both.

    nice -n 15 .venv/bin/python benchmarks/bench_surrogate_speed.py

Writes benchmarks/results/surrogate_speed.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_result
from _surrogate_common import MODELS, RESULTS, load_set, structures_of


def surrogate_throughput(sur, atoms_list: list, min_sites: int, batch: int = 4096) -> dict:
    """Per-site CPU and wall time of structures → spectra for all atoms of ``atoms_list``
    (repeated to ``min_sites``), after a warm-up call of the same batch shape (tracing and
    XLA compilation, reported apart)."""
    from mlxas.surrogate.environments import Environments, environments

    reps = max(1, -(-min_sites // sum(len(a) for a in atoms_list)))
    work = [a for _ in range(reps) for a in atoms_list]
    c0 = _cpu()
    x0 = sur.featurize(environments(work[0], None, sur.kind.cutoff))
    rows = np.resize(np.arange(len(next(iter(x0.values())))), batch)
    sur.predict_inputs({k: v[rows] for k, v in x0.items()}, batch_size=batch)
    warm = _cpu() - c0
    c0, t0 = _cpu(), time.perf_counter()
    env = Environments.concat([environments(a, None, sur.kind.cutoff) for a in work])
    c1 = _cpu()
    x = sur.featurize(env)
    c2 = _cpu()
    sur.predict_inputs(x, batch_size=batch)
    c3, t3 = _cpu(), time.perf_counter()
    n = len(env)
    return {
        "sites": n,
        "cpu_s": c3 - c0,
        "cpu_per_site_s": (c3 - c0) / n,
        "wall_s": t3 - t0,
        "neighbours_cpu_s": c1 - c0,
        "graphs_cpu_s": c2 - c1,
        "network_cpu_s": c3 - c2,
        "warmup_cpu_s": warm,
        "batch": batch,
    }


def keras_agreement(sur, atoms_list: list) -> dict:
    """The network as ``sur.backend`` runs it against its Keras model on all sites of
    ``atoms_list``: largest difference per site relative to the site's largest |k²chi|,
    against Keras as loaded and XLA-compiled (Keras' own float32 rounding differs between
    the two), and Keras' CPU per site with XLA (after a warm-up).  Leaves the model
    XLA-compiled."""
    from mlxas.surrogate.environments import Environments, environments

    env = Environments.concat([environments(a, None, sur.kind.cutoff) for a in atoms_list])
    x = sur.featurize(env)
    fast = sur.network_outputs(x)
    backend, sur.backend = sur.backend, "keras"
    try:
        plain = sur.network_outputs(x)
        sur.use_xla()
        sur.network_outputs(x)
        c0 = _cpu()
        xla = sur.network_outputs(x)
        keras_cpu = (_cpu() - c0) / len(env)
    finally:
        sur.backend = backend
    n = len(env)

    def rel(a, b):
        return np.abs(a - b).reshape(n, -1).max(1) / np.abs(b).reshape(n, -1).max(1)

    return {
        "sites": n,
        "max_relative_difference_keras": float(rel(fast, plain).max()),
        "median_relative_difference_keras": float(np.median(rel(fast, plain))),
        "max_relative_difference_keras_xla": float(rel(fast, xla).max()),
        "keras_xla_vs_keras_max_relative_difference": float(rel(xla, plain).max()),
        "keras_xla_network_cpu_per_site_s": keras_cpu,
    }


def _cpu() -> float:
    """CPU seconds of this process and its finished children so far."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _feff(items, engine, folder: Path) -> dict:
    from mlxas.surrogate.feff_runs import run_sites

    c0 = _cpu()
    res, wall = run_sites(items, engine, folder, threads=2, timeout=1800)
    cpu = _cpu() - c0
    return {
        "sites": len(items),
        "ok": sum(r.ok for r in res),
        "cpu_s": cpu,
        "cpu_per_site_s": cpu / len(items),
        "wall_s": wall,
        "median_single_run_wall_s": float(np.median([r.seconds for r in res])),
        "threads": 2,
    }


def engine_throughput(pointer: str, items, workdir: Path) -> dict:
    """CPU per site of the workflow's surrogate engine, one item at a time."""
    from mlxas.engines.base import ItemInput, engine_class
    from mlxas.simulation.inputs import input_hash

    cls = engine_class("surrogate")
    engine = cls(cls.settings_from_config({"model": pointer}, absorber="Cu", edge="K"))
    engine.prepare()
    texts, c0 = [], _cpu()
    for site_id, atoms, index in items:
        texts.append(engine.input_text(atoms, index, site_id))
    c1 = _cpu()
    kinds = []
    for (site_id, _, _), text in zip(items, texts, strict=True):
        item = ItemInput(site_id, "", 0, text, input_hash(engine, text))
        rundir = workdir / site_id
        rundir.mkdir(parents=True)
        kinds.append(engine.run(item, rundir, 1800).engine)
    c2 = _cpu()
    n = len(items)
    return {
        "sites": n,
        "input_text_cpu_per_site_s": (c1 - c0) / n,
        "run_cpu_per_site_s": (c2 - c1) / n,
        "routed_to_feff": sum(k != "surrogate" for k in kinds),
        "note": "run includes FEFF for the routed sites",
    }


def main(argv: list[str] | None = None) -> None:
    from mlxas.models.train import set_threads
    from mlxas.simulation.inputs import input_hash
    from mlxas.surrogate.feff_runs import feff_engine, feff_items
    from mlxas.surrogate.model import Surrogate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feff8l-sites", type=int, default=12)
    ap.add_argument("--feff10-sites", type=int, default=2)
    ap.add_argument("--engine-sites", type=int, default=40)
    ap.add_argument("--batch-sites", type=int, default=20000)
    ap.add_argument("--model", default=str(MODELS / "models" / "cu_graph.json"))
    a = ap.parse_args(argv)
    set_threads(2)
    data, split = load_set("cu")
    test = data.take(split == 2)
    structures = structures_of("cu")
    pick = np.linspace(0, len(test) - 1, a.feff8l_sites).round().astype(int)
    items = [
        (
            str(test.sites["site_id"][i]),
            structures[test.sites["structure_id"][i]],
            int(test.sites["site_index"][i]),
        )
        for i in pick
    ]
    f8 = feff_engine("feff8l", {"cards": {"RPATH": 6.0, "NLEGS": 6}, "cluster_radius": 7.0})
    hashes = [r.input_hash for r in feff_items(items, f8)]
    if hashes != test.sites["input_hash"].iloc[pick].tolist():
        raise SystemExit("FEFF8L inputs differ from the training set's: not the same sites")
    f10 = feff_engine("feff10", {"spectroscopy": "xanes", "cluster_radius": 6.5,
                                 "cards": {"FMS": 4.0, "SCF": None, "XANES": 5.0}})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="surrogate-speed-", dir=RESULTS) as tmp:
        feff8 = _feff(items, f8, Path(tmp) / "feff8l")
        feff10 = _feff(items[: a.feff10_sites], f10, Path(tmp) / "feff10")
        eng = engine_throughput(a.model, items[: a.engine_sites], Path(tmp) / "engine")
    sur = Surrogate.load(a.model)
    test_structures = [structures[s] for s in dict.fromkeys(test.sites["structure_id"])]
    agree = keras_agreement(sur, test_structures)
    thr = surrogate_throughput(sur, test_structures, a.batch_sites)
    speed8 = feff8["cpu_per_site_s"] / thr["cpu_per_site_s"]
    speed10 = feff10["cpu_per_site_s"] / thr["cpu_per_site_s"]
    write_result(
        "surrogate_speed",
        float(min(speed8, speed10)),
        "x (FEFF CPU s per site / surrogate CPU s per site, smaller of the two)",
        target="≥ 1e4 against FEFF8L and FEFF10",
        speedup_feff8l=float(speed8),
        speedup_feff10_xanes=float(speed10),
        speedup_engine_one_at_a_time_feff8l=float(
            feff8["cpu_per_site_s"] / max(eng["run_cpu_per_site_s"], 1e-12)
        ),
        feff8l=feff8,
        feff10_xanes=feff10,
        surrogate_batch={
            **thr,
            "model_id": sur.model_id,
            "members": sur.members,
            "kind": sur.card["surrogate"]["kind"]["kind"],
            "tensorflow_threads": 2,
            "network_backend": sur.backend,
            "network_vs_keras_on_test_sites": agree,
        },
        surrogate_engine=eng,
        input_hash_check=input_hash(f8, feff_items(items[:1], f8)[0].text) == hashes[0],
        note="CPU time (os.times, children included) because the machine is shared; the "
        "batch time includes the neighbour search and graph building, not the warm-up call "
        "(tracing, XLA compilation: warmup_cpu_s)",
    )


if __name__ == "__main__":
    main()
