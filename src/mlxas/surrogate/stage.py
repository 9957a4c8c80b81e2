"""The surrogate's work for one batch of sites: predict, route, run FEFF where needed.

The workflow's ``surrogate`` engine (:mod:`mlxas.engines.surrogate`) does this one site
at a time inside the simulation stage; these functions do it for a whole batch at once
(many thousand MD sites in one network call), for library users and the benchmarks.
Every site gets a spectrum, from the surrogate where it is trusted and from FEFF where it
is not (:mod:`mlxas.surrogate.routing`).  FEFF runs go through
:mod:`mlxas.surrogate.feff_runs`, i.e. the workflow's own FEFF engine and runner, with
the FEFF settings the surrogate was trained to imitate (:meth:`Surrogate.feff_engine`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from mlxas.engines.base import ItemResult
from mlxas.surrogate.environments import Environments, environments
from mlxas.surrogate.feff_runs import run_sites
from mlxas.surrogate.model import Surrogate
from mlxas.surrogate.routing import (
    ROUTED,
    Routing,
    RoutingSettings,
    merge_results,
    relative_spread,
    route,
    site_input_hash,
    surrogate_results,
)

__all__ = ["predict_sites", "run_routed"]


def predict_sites(
    sur: Surrogate, env: Environments, site_ids: Sequence[str], settings: RoutingSettings
) -> tuple[list[ItemResult], Routing]:
    """Surrogate results of the trusted sites of ``env`` and the routing of all of them.

    The sites with ``routing.to_feff`` get no result here; their spectra must come from
    FEFF.  ``seconds`` of each result is the batch's time divided by its sites.
    """
    if len(site_ids) != len(env):
        raise ValueError(f"{len(site_ids)} site ids for {len(env)} environments")
    start = time.perf_counter()
    pred = sur.predict(env)
    spread = None if pred.spread is None else relative_spread(pred.weighted, pred.spread)
    ood = sur.ood(env) if "ood" in sur.card else None
    routing = route(spread, ood, settings)
    keep = np.nonzero(~routing.to_feff)[0]
    seconds = (time.perf_counter() - start) / max(len(env), 1)
    ids = np.asarray(site_ids, dtype=object)
    results = surrogate_results(
        ids[keep].tolist(),
        [site_input_hash(env, int(i), sur.model_id) for i in keep],
        pred.spectra[keep],
        sur.grid,
        sur.model_id,
        seconds=seconds,
        spread=routing.spread[keep],
        ood=routing.ood[keep],
    )
    return results, routing


def run_routed(
    sur: Surrogate,
    items: Sequence[tuple[str, Atoms, int]],
    workdir: str | Path,
    settings: RoutingSettings | None = None,
    threads: int = 2,
    timeout: float = 900.0,
) -> tuple[list[ItemResult], Routing]:
    """Spectra of every ``(site_id, atoms, atom index)``: surrogate where trusted, FEFF
    (the surrogate's own FEFF settings, run folders under ``workdir``) elsewhere, in the
    order of ``items``.  FEFF failures are kept as failed results with FEFF's reason;
    FEFF's successful rows say in ``detail`` why they were routed."""
    settings = settings or RoutingSettings()
    env = Environments.concat([environments(a, [i], sur.kind.cutoff) for _, a, i in items])
    ids = [s for s, _, _ in items]
    results, routing = predict_sites(sur, env, ids, settings)
    routed = [items[i] for i in np.nonzero(routing.to_feff)[0]]
    feff_results: list[ItemResult] = []
    if routed:
        feff_results, _ = run_sites(routed, sur.feff_engine(), workdir, threads, timeout)
        why = routing.reason[routing.to_feff]
        for r, reason in zip(feff_results, why, strict=True):
            if r.ok:
                r.detail = f"{ROUTED} {reason} (surrogate {sur.model_id})"
    return merge_results(ids, results, feff_results), routing
