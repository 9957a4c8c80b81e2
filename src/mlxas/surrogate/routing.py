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

Surrogate spectra are written in the layout of FEFF chunk files
(:func:`mlxas.feff.chunk.write_chunk`), one :class:`~mlxas.feff.chunk.SiteResult` per
site, marked so that they are never taken for FEFF output: ``engine`` is
``"surrogate"``, ``engine_version`` the surrogate's model id, ``detail`` names both,
``card_hash`` the FEFF settings the surrogate imitates, ``seconds`` the per-site share
of the batch's time.  XANES rows hold ``energy`` = E − E0 on the surrogate's grid (eV),
``mu`` the normalised mu(E) and ``e0`` = 0.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlxas.feff.chunk import SiteResult, write_chunk
from mlxas.surrogate.environments import Environments
from mlxas.surrogate.grids import SpectrumGrid

__all__ = [
    "SURROGATE_ENGINE",
    "Routing",
    "RoutingSettings",
    "is_surrogate",
    "merge_results",
    "relative_spread",
    "route",
    "site_input_hash",
    "surrogate_results",
    "write_routed_chunk",
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
    card_hash: str = "",
    seconds: float = 0.0,
) -> list[SiteResult]:
    """Chunk rows of surrogate spectra (marked as described in the module text)."""
    spectra = np.asarray(spectra, dtype=np.float64)
    if spectra.shape != (len(site_ids), len(grid)):
        raise ValueError(
            f"spectra {spectra.shape} do not match {len(site_ids)} sites × grid {len(grid)}"
        )
    out = []
    for site_id, h, row in zip(site_ids, input_hashes, spectra, strict=True):
        r = SiteResult(
            site_id=site_id,
            status="ok",
            input_hash=h,
            card_hash=card_hash,
            engine=SURROGATE_ENGINE,
            engine_version=model_id,
            detail=f"surrogate {model_id}",
            seconds=seconds,
        )
        if grid.target == "exafs":
            r.k, r.chi = grid.values.copy(), row
        else:
            r.energy, r.mu, r.mu0, r.e0 = grid.values.copy(), row, np.zeros_like(row), 0.0
        out.append(r)
    return out


def is_surrogate(result: SiteResult) -> bool:
    """True for a chunk row written by the surrogate."""
    return result.engine == SURROGATE_ENGINE


def merge_results(
    order: Sequence[str], surrogate: Sequence[SiteResult], feff: Sequence[SiteResult]
) -> list[SiteResult]:
    """Rows of both kinds in the order of ``order`` (site ids); each site exactly once."""
    by_id: dict[str, SiteResult] = {}
    for r in [*surrogate, *feff]:
        if r.site_id in by_id:
            raise ValueError(f"site {r.site_id} has both a surrogate and a FEFF result")
        by_id[r.site_id] = r
    missing = [s for s in order if s not in by_id]
    if missing or len(by_id) != len(order):
        raise ValueError(
            f"results do not match the sites: missing {missing[:5]}, "
            f"{len(by_id)} results for {len(order)} sites"
        )
    return [by_id[s] for s in order]


def write_routed_chunk(
    path: str | Path, results: Sequence[SiteResult], routing: Routing, model_id: str
) -> None:
    """The chunk file (FEFF layout) and ``<stem>.routing.json`` beside it: the split
    between surrogate and FEFF sites, the reasons and the surrogate's model id."""
    path = Path(path)
    write_chunk(path, list(results))
    report = {
        **routing.summary(),
        "model_id": model_id,
        "surrogate_rows": sum(is_surrogate(r) for r in results),
    }
    side = path.with_name(f"{path.stem}.routing.json")
    tmp = side.with_name(f".{side.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(side)
