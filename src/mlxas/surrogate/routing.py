"""Routing sites between the surrogate and FEFF, and marking surrogate output.

The surrogate stage predicts every site, then sends to FEFF the sites it should not be
trusted on:

- ``spread``: the ensemble disagrees: relative spread
  s = √(Σ_grid σ²) / √(Σ_grid mean²) of the weighted spectrum (k^w·chi or mu) above
  ``max_spread``.  For a well-calibrated ensemble s² estimates the normalised residual
  of the prediction (the EXAFS accuracy measure), so ``max_spread`` = √0.02 ≈ 0.14
  sends the sites expected to miss the 0.02 target;
- ``ood``: the site's environment is unlike every training environment (OOD score of
  its radial symmetry functions above ``max_ood``, :mod:`mlxas.ood`).

Surrogate spectra are results of the simulation stage's one interface
(:class:`mlxas.engines.base.ItemResult`) with FEFF's array names (``k``, ``chi`` for
EXAFS; ``energy``, ``mu`` for XANES), so they go into the same chunk files as FEFF's,
marked so that they are never taken for FEFF output: ``engine`` is ``"surrogate"``,
``engine_version`` the surrogate's model id, ``detail`` names both, the scalars
``spread`` and ``ood`` hold the routing measures, ``seconds`` the per-site share of the
batch's time.  XANES results hold ``energy`` = E − E0 on the surrogate's grid (eV) and
the normalised ``mu``.  The ``surrogate`` engine (:mod:`mlxas.engines.surrogate`) writes
them, with the FEFF rows of the routed sites (``detail`` starting with :data:`ROUTED`),
into the simulation stage's chunk files; :func:`routing_report` counts the split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlxas.engines.base import ItemResult
from mlxas.surrogate.environments import Environments
from mlxas.surrogate.grids import SpectrumGrid

__all__ = [
    "ROUTED",
    "SURROGATE_ENGINE",
    "Routing",
    "RoutingSettings",
    "is_surrogate",
    "merge_results",
    "relative_spread",
    "route",
    "routed_reason",
    "routing_report",
    "site_input_hash",
    "surrogate_results",
]

#: ``engine`` of every surrogate row in a chunk file.
SURROGATE_ENGINE = "surrogate"


@dataclass(frozen=True)
class RoutingSettings:
    """``max_spread``: largest relative ensemble spread kept (dimensionless; None: no
    spread test); ``max_ood``: largest OOD score kept (None: no OOD test)."""

    max_spread: float | None = 0.14
    max_ood: float | None = 1.0


@dataclass
class Routing:
    """Per site: ``to_feff`` (bool), ``reason`` (``""``, ``spread``, ``ood`` or
    ``spread+ood``), ``spread`` and ``ood`` (the measured values)."""

    to_feff: np.ndarray
    reason: np.ndarray
    spread: np.ndarray
    ood: np.ndarray
    settings: RoutingSettings = field(default_factory=RoutingSettings)

    def summary(self) -> dict:
        """Counts: sites, sent to the surrogate and to FEFF, FEFF sites per reason."""
        n_feff = int(self.to_feff.sum())
        return {
            "n_sites": len(self.to_feff),
            "n_surrogate": len(self.to_feff) - n_feff,
            "n_feff": n_feff,
            "reasons": dict(sorted(Counter(self.reason[self.to_feff].tolist()).items())),
            "max_spread": self.settings.max_spread,
            "max_ood": self.settings.max_ood,
        }


def relative_spread(mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """√(Σσ²)/√(Σmean²) per row of weighted spectra [n, n_grid]."""
    num = np.sqrt((np.asarray(spread, float) ** 2).sum(axis=1))
    return num / np.maximum(np.sqrt((np.asarray(mean, float) ** 2).sum(axis=1)), 1e-300)


def route(
    spread: np.ndarray | None, ood: np.ndarray | None, settings: RoutingSettings | None = None
) -> Routing:
    """Which sites go to FEFF.  ``spread``: relative spreads (None: single network, no
    spread test); ``ood``: OOD scores (None: not computed).  A non-finite value counts as
    untrusted."""
    settings = settings or RoutingSettings()
    n = len(spread) if spread is not None else len(ood) if ood is not None else 0
    s = np.zeros(n) if spread is None else np.asarray(spread, float)
    o = np.zeros(n) if ood is None else np.asarray(ood, float)
    if len(s) != n or len(o) != n:
        raise ValueError(f"spread and ood have different lengths: {len(s)}, {len(o)}")
    bad_s = np.zeros(n, bool)
    if spread is not None and settings.max_spread is not None:
        bad_s = ~(s <= settings.max_spread)
    bad_o = np.zeros(n, bool)
    if ood is not None and settings.max_ood is not None:
        bad_o = ~(o <= settings.max_ood)
    reason = np.where(
        bad_s & bad_o, "spread+ood", np.where(bad_s, "spread", np.where(bad_o, "ood", ""))
    )
    return Routing(bad_s | bad_o, reason.astype(object), s, o, settings)


def site_input_hash(env: Environments, i: int, model_id: str) -> str:
    """Hash of a site's environment (elements, positions rounded to 1e-4 Å) and the model
    id: the surrogate's ``input_hash`` (equal hashes, equal predictions)."""
    from mlxas.provenance import hash_json

    absorber, vec, sym = env.site(i)
    return hash_json(
        {
            "model": model_id,
            "absorber": absorber,
            "symbols": sym.tolist(),
            "positions": np.round(vec, 4).tolist(),
            "cutoff": env.cutoff,
        }
    )


def surrogate_results(
    site_ids: Sequence[str],
    input_hashes: Sequence[str],
    spectra: np.ndarray,
    grid: SpectrumGrid,
    model_id: str,
    seconds: float = 0.0,
    spread: np.ndarray | None = None,
    ood: np.ndarray | None = None,
) -> list[ItemResult]:
    """Results of the simulation stage's interface (:class:`ItemResult`) for surrogate
    spectra, marked as described in the module text; ``spread`` and ``ood`` (per site)
    become the scalars of the same names (NaN when not given)."""
    spectra = np.asarray(spectra, dtype=np.float64)
    if spectra.shape != (len(site_ids), len(grid)):
        raise ValueError(
            f"spectra {spectra.shape} do not match {len(site_ids)} sites × grid {len(grid)}"
        )
    n = len(site_ids)
    spread = np.full(n, np.nan) if spread is None else np.asarray(spread, float)
    ood = np.full(n, np.nan) if ood is None else np.asarray(ood, float)
    x = grid.values.copy()
    names = ("k", "chi") if grid.target == "exafs" else ("energy", "mu")
    return [
        ItemResult(
            item_id=site_id,
            status="ok",
            input_hash=h,
            engine=SURROGATE_ENGINE,
            engine_version=model_id,
            detail=f"surrogate {model_id}",
            seconds=seconds,
            scalars={"spread": float(sp), "ood": float(o)},
            arrays=dict(zip(names, (x, row), strict=True)),
        )
        for site_id, h, row, sp, o in zip(site_ids, input_hashes, spectra, spread, ood, strict=True)
    ]


def is_surrogate(result: ItemResult) -> bool:
    """True for a result (or chunk row) written by the surrogate."""
    return result.engine == SURROGATE_ENGINE


def merge_results(
    order: Sequence[str], surrogate: Sequence[ItemResult], feff: Sequence[ItemResult]
) -> list[ItemResult]:
    """Results of both kinds in the order of ``order`` (site ids); each site exactly once."""
    by_id: dict[str, ItemResult] = {}
    for r in [*surrogate, *feff]:
        if r.item_id in by_id:
            raise ValueError(f"site {r.item_id} has both a surrogate and a FEFF result")
        by_id[r.item_id] = r
    missing = [s for s in order if s not in by_id]
    if missing or len(by_id) != len(order):
        raise ValueError(
            f"results do not match the sites: missing {missing[:5]}, "
            f"{len(by_id)} results for {len(order)} sites"
        )
    return [by_id[s] for s in order]


def routing_report(chunks: Sequence[str | Path]) -> dict:
    """The split between surrogate and FEFF of finished chunk files: ``n_items``,
    ``n_surrogate``, ``n_feff`` (items FEFF computed, failed ones included), ``n_failed``,
    ``reasons`` (why sites went to FEFF, from each FEFF row's ``detail``) and the
    surrogate ``model_ids`` found."""
    from mlxas.simulation.chunk import read_chunk

    n_sur = n_feff = n_failed = n = 0
    reasons: Counter = Counter()
    models: set[str] = set()
    for path in chunks:
        for r in read_chunk(path):
            n += 1
            if is_surrogate(r):
                n_sur += 1
                models.add(r.engine_version)
                continue
            n_feff += 1
            n_failed += not r.ok
            reasons[routed_reason(r)] += 1
    return {
        "n_items": n,
        "n_surrogate": n_sur,
        "n_feff": n_feff,
        "n_failed": n_failed,
        "reasons": dict(sorted(reasons.items())),
        "model_ids": sorted(models),
    }


#: Start of the ``detail`` of a FEFF row the surrogate engine routed; the reason follows.
ROUTED = "routed to FEFF:"


def routed_reason(result: ItemResult) -> str:
    """Why a FEFF row of a surrogate chunk went to FEFF (``spread``, ``ood``, ...); the
    FEFF failure reason for failed rows."""
    if not result.ok:
        return f"failed:{result.reason}"
    if result.detail.startswith(ROUTED):
        return result.detail[len(ROUTED) :].split()[0]
    return "unknown"
