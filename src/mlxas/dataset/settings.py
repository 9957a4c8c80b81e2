"""Typed settings of the ``gather`` stage: the ``features``, ``averaging`` and
``dataset.split`` sections, read once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FRACTION_TOLERANCE", "AveragingSettings", "DatasetSettings", "SplitSettings"]

#: How far from 1 the split fractions may sum (rounding of decimal fractions); the config
#: check and the split refuse anything else, nothing is rescaled.
FRACTION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SplitSettings:
    """Grouped split: ``fractions`` of train, validation and test (sum 1), ``group_by``
    (``structure``, ``frame``, ``site``, ``source`` or ``name``) and the shuffle
    ``seed``."""

    fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
    group_by: str = "structure"
    seed: int = 0


@dataclass(frozen=True)
class AveragingSettings:
    """Examples as means of ``k`` sites of one pool (``within``: ``split`` or ``group``),
    ``n_examples`` per pool (None: every combination), weighted by multiplicity if
    ``weighted``; draws seeded by ``seed``."""

    k: int = 1
    n_examples: int | None = None
    within: str = "split"
    weighted: bool = False
    seed: int = 0


@dataclass(frozen=True)
class DatasetSettings:
    """Everything ``gather`` is told besides its input files.

    ``features`` is the ``features`` config section as plain data (defaults filled in):
    it is handed unchanged to the engine's ``featurize`` and stored in the dataset, the
    model cards and ``mlxas predict``, each of which reads the keys it knows.
    """

    features: Mapping[str, Any] = field(default_factory=dict)
    averaging: AveragingSettings = field(default_factory=AveragingSettings)
    split: SplitSettings = field(default_factory=SplitSettings)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DatasetSettings:
        """From a whole config (schema defaults filled in)."""
        from mlxas.settings import from_mapping

        return cls(
            features=dict(config["features"]),
            averaging=from_mapping(AveragingSettings, config["averaging"], "averaging"),
            split=from_mapping(SplitSettings, config["dataset"]["split"], "dataset.split"),
        )
