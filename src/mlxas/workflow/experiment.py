"""The checked experiment: each stage's typed settings, rule parameters and outputs.

An :class:`Experiment` is what :func:`mlxas.workflow.checks.load_experiment` returns: the
config with the schema's defaults, read once into the typed settings of every stage.
The Snakefile takes from it each rule's parameter (:meth:`Experiment.spec`, canonical
JSON of exactly the settings the stage command reads, so editing a setting reruns the
stages that use it and no other), the code the rule runs (:meth:`Experiment.code`, so a
code change reruns that stage) and every path (:attr:`Experiment.layout`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlxas.dataset.settings import DatasetSettings
from mlxas.engines.base import SignalEngine
from mlxas.models.spec import ModelSpec
from mlxas.models.tune import TuneSettings
from mlxas.settings import to_dict, to_json
from mlxas.simulation.settings import SimulationSettings
from mlxas.sites.labelsets import LabelSettings
from mlxas.sites.table import SitesSettings
from mlxas.workflow.layout import Layout

__all__ = ["STAGES", "Experiment"]

#: The rules, in data-flow order.
STAGES = (
    "structures",
    "sites",
    "labels",
    "inputs",
    "simulate",
    "gather",
    "train",
    "latest",
    "tune",
    "evaluate",
)

#: Modules each stage runs (their mlxas imports are followed by ``code_version``).
_CODE = {
    "structures": ("mlxas.structures.index", "mlxas.structures.sources"),
    "sites": ("mlxas.sites.table",),
    "labels": ("mlxas.sites.labelsets",),
    "inputs": ("mlxas.simulation.inputs",),
    "simulate": ("mlxas.simulation.runner",),
    "gather": ("mlxas.dataset.build",),
    "train": ("mlxas.models.train", "mlxas.models.folder"),
    "latest": ("mlxas.models.card",),
    "tune": ("mlxas.models.tune",),
    "evaluate": ("mlxas.evaluate",),
}


@dataclass(frozen=True)
class Experiment:
    """A checked config: identity, paths and each stage's settings.

    ``absorber`` and ``edge`` are the experiment's absorbing element and edge (None
    where the experiment has none, e.g. diffraction with ``sites.mode: structure``).
    """

    name: str
    source: str
    config: Mapping[str, Any]
    layout: Layout
    absorber: str | None
    edge: str | None
    sources: Mapping[str, Any]
    sites: SitesSettings
    labels: LabelSettings
    simulation: SimulationSettings
    engine: SignalEngine
    dataset: DatasetSettings
    models: Mapping[str, ModelSpec]
    tune: TuneSettings
    primary: str
    tune_model: str

    # --- rule parameters ----------------------------------------------------------------

    def spec(self, stage: str, name: str | None = None) -> str:
        """Canonical JSON of what the command of ``stage`` reads (``name``: the source of
        per-source stages, the model of ``train``)."""
        return to_json(self.spec_data(stage, name))

    def spec_data(self, stage: str, name: str | None = None) -> Any:
        if stage == "structures":
            src = self.sources[name]
            return {"source": {"kind": src.kind, **to_dict(src)}, "absorber": self.absorber}
        if stage == "sites":
            return {"sites": to_dict(self.sites), "absorber": self.absorber, "source": name}
        if stage == "labels":
            return {"labels": self.labels.to_dict(), "absorber": self.absorber}
        if stage == "inputs":
            return {
                "engine": self.engine.name,
                "engine_version": self.engine.version,
                "settings": self.engine.settings_dict(),
                "chunk_size": self.simulation.chunk_size,
            }
        if stage == "simulate":
            return {"timeout": self.simulation.timeout}
        if stage == "gather":
            return {"settings": to_dict(self.dataset), "absorber": self.absorber,
                    "edge": self.edge}  # fmt: skip
        if stage == "train":
            return self.models[name].to_dict()
        if stage == "tune":
            return {"tune": to_dict(self.tune), "model": self.models[self.tune_model].to_dict()}
        if stage == "evaluate":
            return {"primary": self.primary}
        raise KeyError(f"no stage {stage!r} (stages: {', '.join(STAGES)})")

    def code(self, stage: str) -> str:
        """Hash of the mlxas code ``stage`` runs, registered engines and label sets
        included."""
        from mlxas.provenance import code_version

        modules = list(_CODE[stage])
        if stage in ("inputs", "simulate", "gather"):
            modules.append(type(self.engine).__module__)
        if stage == "labels":
            modules += sorted({type(s).__module__ for s in self.labels.label_sets()})
        if stage == "structures":
            modules += sorted({type(s).__module__ for s in self.sources.values()})
        if stage in ("train", "tune", "evaluate"):
            # model kinds are imported by name on their first look-up
            from mlxas.models.registry import BUILTIN_MODULES as KIND_MODULES

            modules += KIND_MODULES
        return code_version(*modules)

    # --- targets ------------------------------------------------------------------------

    def final_outputs(self) -> list[str]:
        """What ``snakemake`` builds by default."""
        L = self.layout
        out = [
            L.dataset,
            L.latest,
            L.metrics,
            *(L.parity(t) for t in self.models[self.primary].targets),
        ]
        if self.tune.enabled:
            out.append(L.tune_best)
        return [str(p) for p in out]

    def model_plots(self, kind: str) -> list[str]:
        """``parity`` or ``errors`` plots of every model and target."""
        return [
            str(self.layout.model_plot(kind, m, t))
            for m, spec in self.models.items()
            for t in spec.targets
        ]

    def show(self) -> str:
        """The config with every default filled in, as indented JSON."""
        return json.dumps(self.config, indent=2, sort_keys=True)
