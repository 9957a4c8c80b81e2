"""What a model reads: its input feature and its targets, per split.

A model entry reads one dataset feature (``input``).  When the entry changes the feature
settings (``features``, e.g. another k-weight) or augments chi(k) while training, the
feature is computed from the dataset's unweighted chi(k) with
:func:`mlxas.spectra.features.compute_features` — the same function that `gather` used
for the stored features and that `mlxas predict` uses for measured spectra.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec
from mlxas.settings import deep_merge

__all__ = [
    "SplitData",
    "TargetLayout",
    "TrainingData",
    "k_range_used",
    "load_training_data",
    "model_features_cfg",
    "model_inputs",
    "opened",
]

#: Features computed from mu(E), not from chi(k): they cannot be recomputed from chi(k).
_NOT_FROM_CHI = ("xanes", "mu")


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
        cfg["xanes"]["enabled"] = name in _NOT_FROM_CHI
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


def model_inputs(ds, spec: ModelSpec, split: str | None) -> np.ndarray:
    """Raw model input for ``split``: stored feature, or computed from the dataset's chi(k)."""
    if _stored(ds, spec):
        return np.asarray(ds.features(spec.input, split), dtype=np.float32)
    if spec.input in _NOT_FROM_CHI:
        raise ModelConfigError(
            f"models.{spec.name}: input {spec.input!r} is not stored in "
            f"{getattr(ds, 'path', 'the dataset')} and cannot be computed from chi(k)"
        )
    cfg = model_features_cfg(ds.settings["features"], spec)
    return compute_input(ds.chi(split), cfg, spec.input)


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


def k_range_used(features_cfg: dict[str, Any], spec: ModelSpec, grid) -> list[float]:
    """The k-range (Å⁻¹) of chi(k) that the model's input depends on.

    chi_k: the grid, narrowed by ``input_range``; FT features: the FT window's k-range;
    other features: the whole k grid.
    """
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


def _as_columns(y: np.ndarray) -> np.ndarray:
    """A target as a 2D float32 array: one column for a scalar label, one per bin for a vector."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        return y[:, None]
    return y if y.ndim == 2 else y.reshape(len(y), int(np.prod(y.shape[1:])))


@dataclass
class TargetLayout:
    """Targets of a model and the columns they occupy in its output."""

    widths: dict[str, int]

    @property
    def names(self) -> list[str]:
        return list(self.widths)

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for t, n in self.widths.items():
            cols.extend([t] if n == 1 else [f"{t}[{i}]" for i in range(n)])
        return cols

    def slices(self) -> dict[str, list[int]]:
        out, start = {}, 0
        for t, n in self.widths.items():
            out[t] = [start, start + n]
            start += n
        return out


@dataclass
class SplitData:
    """Raw inputs, targets (one 2D array per target) and unweighted chi(k) of one split;
    ``sigma2_base`` (Å², one per example): the smallest sigma² label, which bounds an
    augmentation that removes damping (:func:`mlxas.spectra.augment.draw_parameters`)."""

    x: np.ndarray
    y: dict[str, np.ndarray]
    chi: np.ndarray | None = None
    sigma2_base: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def y_matrix(self) -> np.ndarray:
        return np.concatenate([v for v in self.y.values()], axis=1)


@dataclass
class TrainingData:
    """Everything training needs, independent of where it came from."""

    splits: dict[str, SplitData]
    layout: TargetLayout
    features_cfg: dict[str, Any]
    k: np.ndarray
    grid: np.ndarray | None = None
    dataset: dict[str, Any] = field(default_factory=dict)

    def select_targets(self, targets: list[str]) -> TrainingData:
        """The same inputs with only ``targets`` (for one network per target)."""
        splits = {
            s: SplitData(d.x, {t: d.y[t] for t in targets}, d.chi, d.sigma2_base)
            for s, d in self.splits.items()
        }
        layout = TargetLayout({t: self.layout.widths[t] for t in targets})
        return TrainingData(splits, layout, self.features_cfg, self.k, self.grid, self.dataset)

    @classmethod
    def from_arrays(
        cls,
        splits: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
        features_cfg: dict[str, Any],
        chi: dict[str, np.ndarray] | None = None,
        grid: np.ndarray | None = None,
        dataset: dict[str, Any] | None = None,
        sigma2_base: dict[str, np.ndarray] | None = None,
    ) -> TrainingData:
        """Build from ``{split: (x, {target: y})}``; ``chi`` is needed for augmentation,
        ``sigma2_base`` for an augmentation that removes damping."""
        from mlxas.spectra.grids import k_grid

        out = {}
        for s, (x, ys) in splits.items():
            y2 = {t: _as_columns(v) for t, v in ys.items()}
            out[s] = SplitData(
                np.asarray(x, dtype=np.float32),
                y2,
                None if chi is None else chi.get(s),
                None if sigma2_base is None else sigma2_base.get(s),
            )
        first = next(iter(out.values()))
        layout = TargetLayout({t: v.shape[1] for t, v in first.y.items()})
        return cls(out, layout, features_cfg, k_grid(features_cfg["k_grid"]), grid, dataset or {})


def load_training_data(
    ds, spec: ModelSpec, splits: tuple[str, ...] = ("train", "val", "test")
) -> TrainingData:
    """Inputs and targets of ``spec`` from a dataset."""
    from mlxas.spectra.augment import is_enabled

    cfg = model_features_cfg(ds.settings["features"], spec)
    need_chi = is_enabled(spec.augment)
    if need_chi and spec.input in _NOT_FROM_CHI:
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
    arrays, chis, bases = {}, {}, {}
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
        "edge": str(attrs.get("edge", "")),
    }
    return TrainingData.from_arrays(
        arrays,
        cfg,
        chi=chis or None,
        grid=_input_grid(ds, spec, cfg),
        dataset=info,
        sigma2_base=bases or None,
    )


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
