"""Every check of a config, in one place, for ``mlxas config check`` and the Snakefile.

:func:`load_experiment` reads and layers the files (:mod:`mlxas.workflow.config`) and
calls :func:`check_config`, which applies the schema and then the checks that need more
than one key or outside knowledge:

- source and model names are unique;
- the absorber, every element a source names and the edge exist (xraydb), and the
  absorber has that edge;
- the sites mode fits the absorber (every mode but ``structure`` and ``marked`` needs
  one) and the engine's unit (site engines need sites, structure engines
  ``sites.mode: structure``);
- the engine is registered, its own config section is valid (FEFF cards included) and
  it can feed the enabled features (FEFF XANES runs have no chi(k));
- every label set is registered and can label the items of the sites mode;
- the split fractions sum to 1 (nothing is rescaled);
- averaging over k > 1 items is supported by the engine;
- every model entry resolves, and every model target is a label the config produces
  (a label set's column or a target of the engine, e.g. the reflections' phase signs);
- a sigma2 augmentation that removes damping has sigma² labels to bound it;
- ``evaluation.primary`` and ``tune.model`` name existing models.

Every refusal is a :class:`~mlxas.errors.ConfigError` whose message starts with the
config's source and names the key; both paths print the same text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlxas.dataset.settings import FRACTION_TOLERANCE
from mlxas.errors import ConfigError
from mlxas.workflow.config import apply_schema, raw_experiment

__all__ = ["check_config", "load_experiment"]


def load_experiment(
    configfiles: Sequence[str | Path] = (), overrides: Mapping[str, Any] | None = None
):
    """The checked :class:`~mlxas.workflow.experiment.Experiment` of ``configfiles``
    (merged in order; none selects the default experiment) and ``overrides``."""
    raw, source = raw_experiment(configfiles, overrides)
    return check_config(raw, source)


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _element(symbol: str, key: str) -> None:
    import xraydb

    try:
        xraydb.atomic_number(symbol)
    except ValueError:
        raise ConfigError(f"{key}: {symbol!r} is not a chemical element") from None


def _check_elements(cfg: dict[str, Any], sources: Mapping[str, Any]) -> None:
    import xraydb

    absorber, edge = cfg.get("absorber"), cfg.get("edge")
    if absorber:
        _element(absorber, "absorber")
        if xraydb.xray_edge(absorber, edge) is None:
            have = ", ".join(sorted(xraydb.xray_edges(absorber))) or "none"
            raise ConfigError(f"edge: {absorber} has no {edge} edge (its edges: {have})")
    for name, src in sources.items():
        for el in src.elements():
            _element(el, f"structures.{name}")


def check_config(raw: Mapping[str, Any], source: str = "config"):
    """Schema, defaults and every cross-field check; returns the
    :class:`~mlxas.workflow.experiment.Experiment`.  Messages start with ``source``."""
    cfg = apply_schema(raw, source)
    try:
        return _build(cfg, source)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _engine(cfg: dict[str, Any], sites, absorber: str | None):
    """The simulation settings and the engine with its own section read, checked against
    the sites mode."""
    from mlxas.engines.base import engine_class
    from mlxas.settings import from_mapping
    from mlxas.simulation.settings import SimulationSettings

    sim = from_mapping(SimulationSettings, cfg["simulation"], "simulation")
    cls = engine_class(sim.engine)
    if cls.unit != sites.unit:
        want = "sites.mode: structure" if cls.unit == "structure" else "a sites.mode of sites"
        raise ConfigError(
            f"simulation.engine: {sim.engine} computes one item per {cls.unit}; "
            f"it needs {want} (sites.mode is {sites.mode!r})"
        )
    # Marked sites of several elements share the experiment's edge (K for the 3d metals).
    edge = cfg.get("edge") if absorber or sites.mode == "marked" else None
    section = cfg.get(cls.config_section())
    return sim, cls(cls.settings_from_config(section, absorber=absorber, edge=edge)), edge


def _models(
    cfg: dict[str, Any], labels, engine_targets: tuple[str, ...] = ()
) -> tuple[dict, str, Any, str]:
    """Model entries resolved, their targets checked (a label set's column or one of the
    engine's own targets); the primary and the tuned model."""
    from mlxas.models.spec import ModelSpec
    from mlxas.models.tune import TuneSettings
    from mlxas.settings import from_mapping

    models = {m["name"]: ModelSpec.from_config(m) for m in cfg["models"]}
    sets = labels.label_sets()
    for name, spec in models.items():
        for target in spec.targets:
            if target not in engine_targets and not any(s.provides(target) for s in sets):
                extra = f" or of the engine ({list(engine_targets)})" if engine_targets else ""
                raise ConfigError(
                    f"models.{name}.targets: {target!r} is not a label of the label sets "
                    f"{list(labels.sets)}{extra}"
                )
        _check_undamping(name, spec, labels)
    first = cfg["models"][0]["name"]
    primary = cfg["evaluation"]["primary"] or first
    if primary not in models:
        raise ConfigError(
            f"evaluation.primary: no model named {primary!r} (models: {sorted(models)})"
        )
    tune = from_mapping(TuneSettings, cfg["tune"], "tune")
    tune_model = tune.model or first
    if tune_model not in models:
        raise ConfigError(f"tune.model: no model named {tune_model!r} (models: {sorted(models)})")
    return models, primary, tune, tune_model


def _check_undamping(name: str, spec, labels) -> None:
    """A sigma2 augmentation reaching below 0 needs each spectrum's sigma² labels."""
    rng = (spec.augment or {}).get("sigma2")
    if rng is None:
        return
    if float(rng[0]) > float(rng[1]):
        raise ConfigError(f"models.{name}.augment.sigma2: {list(rng)} has low > high")
    shells = labels.settings.get("shells")
    if float(rng[0]) < 0 and (shells is None or shells.sigma2 == "none"):
        raise ConfigError(
            f"models.{name}.augment.sigma2: a low end below 0 removes damping and needs "
            "the sigma² labels of the shells label set (labels.sets with shells, "
            "labels.shells.sigma2 auto or geometry)"
        )


def _build(cfg: dict[str, Any], source: str):
    from mlxas.dataset.settings import DatasetSettings
    from mlxas.settings import from_mapping
    from mlxas.sites.labelsets import LabelSettings
    from mlxas.sites.table import SitesSettings
    from mlxas.structures.sources import source_from_config
    from mlxas.workflow.experiment import Experiment
    from mlxas.workflow.layout import Layout

    names = [m["name"] for m in cfg["models"]]
    for section, dupes in (
        (
            "structures: duplicate source name(s)",
            _duplicates([s["name"] for s in cfg["structures"]]),
        ),
        ("models: duplicate model name(s)", _duplicates(names)),
    ):
        if dupes:
            raise ConfigError(f"{section} {dupes}")
    if "latest" in names:
        raise ConfigError("models: 'latest' is the link to the newest model, not a model name")
    sources = {s["name"]: source_from_config(s) for s in cfg["structures"]}
    _check_elements(cfg, sources)
    absorber = cfg.get("absorber")
    sites = from_mapping(SitesSettings, cfg["sites"], "sites")
    if sites.needs_absorber and not absorber:
        raise ConfigError(f"absorber: sites.mode {sites.mode!r} needs an absorbing element")
    sim, engine, edge = _engine(cfg, sites, absorber)
    labels = LabelSettings.from_config(cfg["labels"])
    for label_set in labels.label_sets():
        if sites.unit not in label_set.units:
            raise ConfigError(
                f"labels.sets: {label_set.name} labels items of unit "
                f"{'/'.join(label_set.units)}, sites.mode {sites.mode!r} makes {sites.unit}s"
            )
    dataset = DatasetSettings.from_config(cfg)
    engine.check_features(dataset.features)
    total = sum(dataset.split.fractions)
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise ConfigError(
            f"dataset.split.fractions: {list(dataset.split.fractions)} sum to {total:g}, "
            "not 1; give train, validation and test shares that add up to 1"
        )
    if dataset.averaging.k > 1 and not engine.signal_names(dataset.features):
        raise ConfigError(
            f"averaging.k: {sim.engine} items cannot be averaged (k = {dataset.averaging.k})"
        )
    models, primary, tune, tune_model = _models(
        cfg, labels, tuple(engine.target_names(dataset.features))
    )
    return Experiment(
        name=cfg["experiment"],
        source=source,
        config=cfg,
        layout=Layout.for_experiment(cfg["experiment"]),
        absorber=absorber,
        edge=edge,
        sources=sources,
        sites=sites,
        labels=labels,
        simulation=sim,
        engine=engine,
        dataset=dataset,
        models=models,
        tune=tune,
        primary=primary,
        tune_model=tune_model,
    )
