"""The training data of a model in memory: its targets' output columns
(:class:`TargetLayout`), the arrays of each split (:class:`SplitData`) and the whole
(:class:`TrainingData`), independent of the dataset they were read from
(:func:`mlxas.models.data.load_training_data`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlxas.models.registry import Head, ModelConfigError

__all__ = ["SplitData", "TargetLayout", "TrainingData"]


def _as_columns(y: np.ndarray) -> np.ndarray:
    """A target as a 2D float32 array: one column for a scalar label, one per bin for a vector."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        return y[:, None]
    return y if y.ndim == 2 else y.reshape(len(y), int(np.prod(y.shape[1:])))


def _class_codes(y: np.ndarray, classes: tuple[str, ...], target: str) -> np.ndarray:
    """Class codes as int32 ``[n, 1]``; codes outside 0..n_classes-1 are refused."""
    y = np.asarray(y)
    codes = y.astype(np.int64).reshape(len(y), -1)
    if codes.shape[1] != 1 or np.any(codes != y.reshape(codes.shape)):
        raise ModelConfigError(f"class target {target!r}: labels are not integer class codes")
    if len(codes) and (codes.min() < 0 or codes.max() >= len(classes)):
        raise ModelConfigError(
            f"class target {target!r}: codes {int(codes.min())}..{int(codes.max())} outside "
            f"0..{len(classes) - 1} ({len(classes)} classes)"
        )
    return codes.astype(np.int32)


@dataclass
class TargetLayout:
    """Targets of a model and the columns they occupy in its output: a value target one
    column per element, a class target one probability column per class."""

    widths: dict[str, int]
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.widths)

    @property
    def heads(self) -> dict[str, Head]:
        return {t: Head(n, self.classes.get(t)) for t, n in self.widths.items()}

    def kinds(self) -> dict[str, str]:
        return {t: h.target_kind for t, h in self.heads.items()}

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for t, n in self.widths.items():
            if t in self.classes:
                cols.extend(f"{t}[{c}]" for c in self.classes[t])
            else:
                cols.extend([t] if n == 1 else [f"{t}[{i}]" for i in range(n)])
        return cols

    def select(self, targets: list[str]) -> TargetLayout:
        return TargetLayout(
            {t: self.widths[t] for t in targets},
            {t: c for t, c in self.classes.items() if t in targets},
        )

    def slices(self) -> dict[str, list[int]]:
        out, start = {}, 0
        for t, n in self.widths.items():
            out[t] = [start, start + n]
            start += n
        return out


@dataclass
class SplitData:
    """Raw inputs, targets (one 2D array per target: float32 values, or int32 class
    codes ``[n, 1]``), unweighted chi(k) and the kind's extra arrays of one split;
    ``sigma2_base`` (Å², one per example): the smallest sigma² label, which bounds an
    augmentation that removes damping (:func:`mlxas.spectra.augment.draw_parameters`)."""

    x: np.ndarray
    y: dict[str, np.ndarray]
    chi: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
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
    k: np.ndarray | None
    grid: np.ndarray | None = None
    dataset: dict[str, Any] = field(default_factory=dict)

    def select_targets(self, targets: list[str]) -> TrainingData:
        """The same inputs with only ``targets`` (for one network per target)."""
        splits = {
            s: SplitData(d.x, {t: d.y[t] for t in targets}, d.chi, d.extra, d.sigma2_base)
            for s, d in self.splits.items()
        }
        layout = self.layout.select(targets)
        return TrainingData(splits, layout, self.features_cfg, self.k, self.grid, self.dataset)

    @classmethod
    def from_arrays(
        cls,
        splits: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
        features_cfg: dict[str, Any],
        chi: dict[str, np.ndarray] | None = None,
        grid: np.ndarray | None = None,
        dataset: dict[str, Any] | None = None,
        classes: dict[str, tuple[str, ...]] | None = None,
        extra: dict[str, dict[str, np.ndarray]] | None = None,
        sigma2_base: dict[str, np.ndarray] | None = None,
    ) -> TrainingData:
        """Build from ``{split: (x, {target: y})}``; ``chi`` is needed for augmentation,
        ``sigma2_base`` for an augmentation that removes damping; ``classes`` names the
        classes of categorical targets (their ``y`` are codes 0..n-1); ``extra`` holds
        the kind's extra arrays per split."""
        from mlxas.spectra.grids import k_grid

        classes = {t: tuple(c) for t, c in (classes or {}).items()}
        out = {}
        for s, (x, ys) in splits.items():
            y2 = {t: _class_codes(v, classes[t], t) if t in classes else _as_columns(v)
                  for t, v in ys.items()}  # fmt: skip
            out[s] = SplitData(
                np.asarray(x, dtype=np.float32),
                y2,
                None if chi is None else chi.get(s),
                dict((extra or {}).get(s, {})),
                None if sigma2_base is None else sigma2_base.get(s),
            )
        first = next(iter(out.values()))
        widths = {t: len(classes[t]) if t in classes else v.shape[1] for t, v in first.y.items()}
        layout = TargetLayout(widths, {t: c for t, c in classes.items() if t in widths})
        # an engine without a k grid (diffraction, reflections) has no chi(k) to augment
        k = k_grid(features_cfg["k_grid"]) if "k_grid" in features_cfg else None
        return cls(out, layout, features_cfg, k, grid, dataset or {})
