"""What a model reads: its input feature and its targets, per split.

A model entry reads one dataset feature (``input``).  When the entry changes the feature
settings (``features``, e.g. another k-weight) or augments chi(k) while training, the
feature is computed from the dataset's unweighted chi(k) with
:func:`mlxas.spectra.features.compute_features` — the same function that `gather` used
for the stored features and that `mlxas predict` uses for measured spectra.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec

# SplitData and TargetLayout are re-exported: importers of mlxas.models.data keep them.
from mlxas.models.training_data import SplitData, TargetLayout, TrainingData
from mlxas.settings import deep_merge

# Inputs read from mu(E) near the edge are not computed from chi(k): they are neither
# recomputed from it nor augmented through it.
from mlxas.spectra.input_names import EDGE_INPUTS

__all__ = [
    "SplitData",
    "TargetLayout",
    "TrainingData",
    "k_range_used",
    "label_classes",
    "load_training_data",
    "model_features_cfg",
    "model_inputs",
    "opened",
]


@contextlib.contextmanager
def opened(dataset) -> Iterator[Any]:
    """A dataset to read: a path is opened (and closed afterwards), an object passes through."""
    if not isinstance(dataset, str | Path):
        yield dataset
        return
    from mlxas.dataset import open as open_dataset

    ds = open_dataset(dataset)
    try:
        yield ds
    finally:
        ds.close()


def model_features_cfg(dataset_features: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """Feature settings of one model: the dataset's, with the entry's ``features`` merged in.

    Only the model's own input is switched on, so that computing it (every epoch when
    augmenting, and for every measured spectrum) does no wasted work.
    """
    cfg = deep_merge(dataset_features, spec.features)
    name = spec.input
    if "chi_k" in cfg:
        cfg["chi_k"] = name == "chi_k"
    if isinstance(cfg.get("ft"), dict):
        cfg["ft"]["enabled"] = name.startswith("ft_")
    if isinstance(cfg.get("wavelet"), dict):
        for kind in ("morlet", "cauchy"):
            if kind in cfg["wavelet"]:
                cfg["wavelet"][kind] = name == f"wavelet_{kind}"
    if isinstance(cfg.get("xanes"), dict):
        cfg["xanes"]["enabled"] = name in EDGE_INPUTS
        if "mu" in cfg["xanes"]:
            cfg["xanes"]["mu"] = name == "mu"
    return cfg


def compute_input(chi: np.ndarray, features_cfg: dict[str, Any], name: str) -> np.ndarray:
    """The model input ``name`` computed from unweighted chi(k) rows."""
    from mlxas.spectra.features import compute_features

    feats = compute_features(chi, features_cfg)
    if name not in feats:
        raise ModelConfigError(
            f"feature {name!r} is not computed from chi(k) with these settings "
            f"(computed: {sorted(feats)})"
        )
    return np.asarray(feats[name], dtype=np.float32)


def _stored(ds, spec: ModelSpec) -> bool:
    """True when the dataset already holds the model's input as the model wants it."""
    return not spec.features and spec.input in ds.feature_names()


def _main_input(ds, spec: ModelSpec, split: str | None) -> np.ndarray:
    if _stored(ds, spec):
        return np.asarray(ds.features(spec.input, split), dtype=np.float32)
    if spec.input in EDGE_INPUTS or spec.extra_inputs:
        raise ModelConfigError(
            f"models.{spec.name}: input {spec.input!r} is not stored in "
            f"{getattr(ds, 'path', 'the dataset')} and cannot be computed from chi(k)"
            + (" (a model with extra_inputs reads stored features)" if spec.extra_inputs else "")
        )
    cfg = model_features_cfg(ds.settings["features"], spec)
    return compute_input(ds.chi(split), cfg, spec.input)


def model_inputs(ds, spec: ModelSpec, split: str | None) -> np.ndarray:
    """Raw model input for ``split``: stored feature, or computed from the dataset's chi(k);
    with ``extra_inputs`` the stored features joined by the kind (``join_inputs``)."""
    x = _main_input(ds, spec, split)
    if not spec.extra_inputs:
        return x
    extra = [np.asarray(ds.features(n, split), dtype=np.float32) for n in spec.extra_inputs]
    return spec.model_kind().join_inputs([x, *extra], spec)


def label_classes(ds, name: str) -> tuple[str, ...] | None:
    """Class names of a categorical label of ``ds`` (None for a value label)."""
    classes = getattr(ds, "classes", None)
    found = classes(name) if callable(classes) else None
    return None if found is None else tuple(found)


def _input_grid(ds, spec: ModelSpec, cfg: dict[str, Any]):
    from mlxas.spectra.features import feature_grids

    if _stored(ds, spec):
        try:
            return np.asarray(ds.grid(spec.input))
        except Exception:  # a 2D feature may keep its axes elsewhere; the card then has none
            return None
    grid = feature_grids(cfg).get(spec.input)
    if grid is None:
        return None
    if isinstance(grid[0], tuple):  # a 2-D map: (k axis, unit), (R axis, unit)
        axes = [np.asarray(axis) for axis, _unit in grid]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return np.asarray(grid[0])


def k_range_used(features_cfg: dict[str, Any], spec: ModelSpec, grid) -> list[float] | None:
    """The k-range (Å⁻¹) of chi(k) that the model's input depends on.

    chi_k: the grid, narrowed by ``input_range``; FT features: the FT window's k-range;
    other features: the whole k grid; None for a dataset without a k grid.
    """
    if "k_grid" not in features_cfg:
        return None
    k = features_cfg["k_grid"]
    name = spec.input
    if name == "chi_k":
        lo, hi = float(grid[0]), float(grid[-1])
        if spec.input_range:
            a, b = spec.input_range
            sel = grid[(grid >= a) & (grid <= b)]
            lo, hi = float(sel[0]), float(sel[-1])
        return [lo, hi]
    if name.startswith("ft_"):
        ft = features_cfg["ft"]
        return [float(ft["kmin"]), float(ft["kmax"])]
    return [float(k["kmin"]), float(k["kmax"])]


def load_training_data(
    ds, spec: ModelSpec, splits: tuple[str, ...] = ("train", "val", "test")
) -> TrainingData:
    """Inputs and targets of ``spec`` from a dataset."""
    from mlxas.models.edge_augment import edge_settings
    from mlxas.spectra.augment import is_enabled

    cfg = model_features_cfg(ds.settings["features"], spec)
    edge_settings(spec)  # refuses augment.xanes on other inputs before any training
    need_chi = is_enabled(spec.augment)
    if need_chi and spec.input in EDGE_INPUTS:
        raise ModelConfigError(
            f"models.{spec.name}: augmentation acts on chi(k); "
            f"input {spec.input!r} is not computed from chi(k)"
        )
    missing = [t for t in spec.targets if t not in ds.label_names()]
    if missing:
        raise ModelConfigError(
            f"models.{spec.name}: target(s) {missing} not among the labels of "
            f"{getattr(ds, 'path', 'the dataset')} ({', '.join(ds.label_names())})"
        )
    classes = {t: c for t in spec.targets if (c := label_classes(ds, t)) is not None}
    kind = spec.model_kind()
    refused = sorted(classes) if "class" not in kind.target_kinds else []
    if refused:
        raise ModelConfigError(
            f"models.{spec.name}: kind {spec.member_kind} predicts values only; "
            f"{refused} are class targets"
        )
    arrays, chis, extra, bases = {}, {}, {}, {}
    for s in splits:
        x = model_inputs(ds, spec, s)
        ys = {t: np.asarray(ds.labels(t, s)) for t in spec.targets}
        bad = [t for t, v in ys.items() if not np.all(np.isfinite(v))]
        if bad:
            raise ModelConfigError(
                f"models.{spec.name}: target(s) {bad} are not finite for some {s} examples "
                "(e.g. R or sigma² of a shell with no neighbour); widen the shell window, "
                "prune such sites (shapes' min_neighbours) or choose other targets"
            )
        arrays[s] = (x, ys)
        extra[s] = {n: _array(ds, n, s) for n in kind.arrays(spec)}
        if need_chi and s == "train":
            chis[s] = np.asarray(ds.chi(s), dtype=np.float64)
            if _undamps(spec.augment):
                bases[s] = _sigma2_base(ds, spec, s)
    settings = ds.settings
    attrs = getattr(ds, "attrs", {})
    info = {
        "path": str(getattr(ds, "path", "")),
        "hash": ds.hash,
        "split": dict(settings.get("split", {})),
        "absorber": str(attrs.get("absorber", "")),
        "absorbers": _absorbers(ds, str(attrs.get("absorber", ""))),
        "edge": str(attrs.get("edge", "")),
        "engine": str(attrs.get("engine", "")),
        "engine_settings": json.loads(attrs.get("engine_settings", "{}")),
    }
    return TrainingData.from_arrays(
        arrays, cfg, chi=chis or None, grid=_input_grid(ds, spec, cfg), dataset=info,
        classes=classes, extra=extra, sigma2_base=bases or None,
    )  # fmt: skip


def _absorbers(ds, absorber: str) -> list[str]:
    """Elements of the training split's absorbing sites, by atomic number: what a model
    covers when one dataset holds several absorbers (the XANES geometry set, Ti to Zn);
    the dataset's one absorber otherwise, or when the dataset has no site table."""
    sites = getattr(ds, "sites", None)
    try:
        table = sites(["element", "split"]) if sites is not None else None
    except KeyError:  # a dataset without the element column
        table = None
    if table is None or "element" not in table:
        return [absorber] if absorber else []
    if "split" in table:
        table = table[table["split"] == "train"]
    from ase.data import atomic_numbers

    found = {str(e) for e in table["element"] if str(e)}
    return sorted(found, key=lambda e: atomic_numbers.get(e, 0)) or ([absorber] if absorber else [])


def _undamps(augment: dict[str, Any]) -> bool:
    """Whether the augmentation may remove damping (a sigma2 range reaching below 0)."""
    rng = (augment or {}).get("sigma2")
    return rng is not None and float(rng[0]) < 0


def _sigma2_base(ds, spec: ModelSpec, split: str) -> np.ndarray:
    """Per example the smallest sigma² label of the dataset (Å²; shells without a
    neighbour are skipped, an example without any sigma² gets 0: nothing to remove)."""
    names = [n for n in ds.label_names() if n.startswith("sigma2_")]
    if not names:
        raise ModelConfigError(
            f"models.{spec.name}.augment.sigma2: a range below 0 removes damping and needs "
            f"sigma² labels (labels.sets: [shells]); {getattr(ds, 'path', 'the dataset')} "
            "has none"
        )
    table = np.stack([np.asarray(ds.labels(n, split), dtype=np.float64) for n in names], axis=1)
    with np.errstate(all="ignore"):
        base = np.nanmin(np.where(np.isfinite(table), table, np.nan), axis=1)
    return np.where(np.isfinite(base), np.maximum(base, 0.0), 0.0)


def _array(ds, name: str, split: str) -> np.ndarray:
    """A feature or label of ``split`` by name (the kind's extra arrays)."""
    if name in ds.feature_names():
        return np.asarray(ds.features(name, split))
    if name in ds.label_names():
        return np.asarray(ds.labels(name, split))
    raise ModelConfigError(
        f"{getattr(ds, 'path', 'the dataset')}: no feature or label {name!r} "
        f"(features {ds.feature_names()}, labels {ds.label_names()})"
    )
