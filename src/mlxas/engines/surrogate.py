"""The learned surrogate as an engine of the simulation stage (``simulation.engine: surrogate``).

A trained surrogate (:mod:`mlxas.surrogate`) predicts each absorbing site's spectrum from
its neighbours in milliseconds.  Where it is unsure -- ensemble spread above
``max_spread`` or an environment unlike the training ones (OOD score above ``max_ood``)
-- the site is run by FEFF instead, with the FEFF engine and settings the surrogate was
trained on (recorded in its card), in the same run folder.

Input of an item (canonical JSON): the surrogate's model id, the site's environment
(absorber, neighbour symbols, positions relative to the absorber rounded to 1e-4 Å, the
surrogate's cutoff) and the ``feff.inp`` text FEFF would run.  The engine's version is
the model id, so every input hash names the model.

Results go into the stage's ordinary chunk files (the arrays ``k``/``chi`` for EXAFS,
``energy``/``mu`` for XANES, as FEFF's) and are marked: a surrogate row has ``engine``
``surrogate`` and ``engine_version`` = the model id; a routed row is FEFF's own result
(``engine`` feff8l/feff10, FEFF's version) whose ``detail`` starts with
:data:`mlxas.surrogate.routing.ROUTED` and the reason.  Both carry the scalars ``spread``
and ``ood``.  :func:`mlxas.surrogate.routing.routing_report` counts the split.

Featurizing for ``gather`` is the FEFF engine's own (same arrays, same features).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlxas.engines.base import (
    EngineError,
    InputError,
    ItemInput,
    ItemResult,
    SignalEngine,
    register,
)

__all__ = ["SurrogateEngine", "SurrogateSettings"]


@dataclass(frozen=True)
class SurrogateSettings:
    """The ``surrogate`` config section, resolved.

    ``model``: the surrogate's model folder (or a ``models/<name>.json`` pointer, or its
    ``model.keras``), resolved to the folder; ``model_id``: its id (filled in when the
    config is read); ``max_spread``: largest relative ensemble spread a surrogate
    spectrum is kept at (None: no test); ``max_ood``: largest OOD score kept (None: no
    test); ``feff_engine``, ``feff_settings``: the FEFF engine of the training spectra
    (from the card), which runs the routed sites.
    """

    model: str
    model_id: str = ""
    max_spread: float | None = 0.14
    max_ood: float | None = 1.0
    feff_engine: str = ""
    feff_settings: dict[str, Any] = field(default_factory=dict)


@register
class SurrogateEngine(SignalEngine):
    """Surrogate spectra, FEFF where the surrogate is unsure."""

    name: ClassVar[str] = "surrogate"
    unit: ClassVar[str] = "site"
    arrays: ClassVar[tuple[str, ...]] = ("k", "chi", "energy", "mu")
    scalars: ClassVar[tuple[str, ...]] = ("e0", "spread", "ood")
    settings_class: ClassVar[type] = SurrogateSettings

    def __init__(self, settings: SurrogateSettings):
        super().__init__(settings)
        self._lock = threading.Lock()
        self._surrogate = None

    @classmethod
    def settings_from_config(
        cls, section: Mapping[str, Any] | None, *, absorber: str | None, edge: str | None
    ) -> SurrogateSettings:
        from mlxas.models.card import ModelLoadError, resolve_model_dir, verify_model_dir
        from mlxas.surrogate.model import check_surrogate_card

        section = dict(section or {})
        if not section.get("model"):
            raise EngineError("surrogate.model: the trained surrogate's model folder is needed")
        try:
            folder = resolve_model_dir(section["model"])
            card = verify_model_dir(folder)
            check_surrogate_card(card, folder)
        except ModelLoadError as err:
            raise EngineError(f"surrogate.model: {err}") from None
        feff = card.get("feff") or {}
        if "engine" not in feff:
            raise EngineError(f"surrogate.model: {folder}: the card names no FEFF engine")
        card_edge = feff["settings"].get("edge")
        if edge and card_edge and edge != card_edge:
            raise EngineError(
                f"surrogate.model: {folder} was trained on {card_edge} edges, the "
                f"experiment computes {edge} edges"
            )
        return SurrogateSettings(
            model=str(folder),
            model_id=card["model_id"],
            max_spread=section.get("max_spread", 0.14),
            max_ood=section.get("max_ood", 1.0),
            feff_engine=feff["engine"],
            feff_settings=feff["settings"],
        )

    @property
    def version(self) -> str:
        return self.settings.model_id

    @property
    def feff(self) -> SignalEngine:
        """The FEFF engine of the routed sites (and of featurizing)."""
        from mlxas.engines.base import get_engine

        return get_engine(self.settings.feff_engine, self.settings.feff_settings)

    def surrogate(self):
        """The loaded surrogate (files verified against its card), loaded once."""
        from mlxas.surrogate.model import Surrogate

        with self._lock:
            if self._surrogate is None:
                sur = Surrogate.load(self.settings.model)
                if sur.model_id != self.settings.model_id:
                    raise EngineError(
                        f"{self.settings.model}: holds model {sur.model_id}, the inputs were "
                        f"written for {self.settings.model_id}"
                    )
                self._surrogate = sur
        return self._surrogate

    def prepare(self) -> None:
        self.surrogate()
        self.feff.prepare()

    def input_text(self, atoms: Any, site_index: int | None, item_id: str) -> str:
        from mlxas.models.card import read_card
        from mlxas.surrogate.environments import SurrogateInputError, environments

        if site_index is None:
            raise EngineError("the surrogate computes absorbing sites, not whole structures")
        cutoff = float(read_card(self.settings.model)["surrogate"]["kind"]["cutoff"])
        try:
            env = environments(atoms, [int(site_index)], cutoff)
        except SurrogateInputError as err:
            raise InputError("surrogate_input", str(err)) from None
        absorber, vectors, symbols = env.site(0)
        return json.dumps(
            {
                "model_id": self.settings.model_id,
                "absorber": absorber,
                "cutoff": cutoff,
                "symbols": symbols.tolist(),
                "positions": np.round(vectors, 4).tolist(),
                "feff_inp": self.feff.input_text(atoms, site_index, item_id),
            },
            sort_keys=True,
        )

    def run(self, item: ItemInput, rundir: Path, timeout: float) -> ItemResult:
        from mlxas.simulation.inputs import input_hash
        from mlxas.surrogate.routing import ROUTED, RoutingSettings
        from mlxas.surrogate.stage import predict_sites

        start = time.perf_counter()
        data = json.loads(item.text)
        env = _environment(data)
        sur = self.surrogate()
        settings = RoutingSettings(self.settings.max_spread, self.settings.max_ood)
        with self._lock:  # one network call at a time; FEFF runs outside the lock
            results, routing = predict_sites(sur, env, [item.item_id], settings)
        scalars = {"e0": float("nan"), "spread": float(routing.spread[0]),
                   "ood": float(routing.ood[0])}  # fmt: skip
        if results:
            r = results[0]
            r.input_hash, r.scalars, r.seconds = (
                item.input_hash,
                scalars,
                time.perf_counter() - start,
            )
            return r
        feff = self.feff
        text = data["feff_inp"]
        res = feff.run(ItemInput(item.item_id, item.structure_id, item.chunk, text,
                                 input_hash(feff, text)), rundir, timeout)  # fmt: skip
        res.input_hash = item.input_hash
        res.scalars = {**res.scalars, "spread": scalars["spread"], "ood": scalars["ood"]}
        if res.ok:
            res.detail = f"{ROUTED} {routing.reason[0]} (surrogate {self.settings.model_id})"
        return res

    # --- dataset side: FEFF's arrays, FEFF's features ----------------------------------

    def item_engines(self) -> tuple[str, ...]:
        return (self.name, self.settings.feff_engine)

    def check_item(self, result: ItemResult, features: Any) -> tuple[str, str] | None:
        return self.feff.check_item(result, features)

    def signal_names(self, features: Any) -> tuple[str, ...]:
        return self.feff.signal_names(features)

    def featurize(self, results: Sequence[ItemResult], features: Any) -> dict[str, np.ndarray]:
        return self.feff.featurize(results, features)

    def featurize_signals(self, signals: Mapping[str, np.ndarray], features: Any):
        return self.feff.featurize_signals(signals, features)

    def feature_axes(self, features: Any):
        return self.feff.feature_axes(features)

    def feature_units(self, features: Any):
        return self.feff.feature_units(features)


def _environment(data: Mapping[str, Any]):
    """The one-site :class:`~mlxas.surrogate.environments.Environments` of an input."""
    from mlxas.surrogate.environments import Environments

    pos = np.asarray(data["positions"], dtype=np.float64).reshape(-1, 3)
    return Environments(
        absorber=np.asarray([data["absorber"]]),
        offsets=np.asarray([0, len(pos)], dtype=np.int64),
        vectors=pos,
        symbols=np.asarray(data["symbols"], dtype=str),
        cutoff=float(data["cutoff"]),
    )
