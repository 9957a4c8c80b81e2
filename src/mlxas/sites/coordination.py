"""The ``coordination`` label set: CN, mean first-shell distance R, partial CNs, RDF.

Columns (one row per absorbing site):

``cn``            first-shell coordination number
``r``             mean absorber-neighbour distance in the first shell (Å; NaN for CN 0)
``cn_<El>``       first-shell neighbours of element ``El`` (one column per element present
                  in the source)
``rdf``           radial distribution n(r) (atoms per Å) on the ``labels.coordination.rdf``
                  grid
``shell_radius``  the first-shell radius (Å) the rule resolved to (information, not a target)

The first shell follows ``labels.coordination.cn_rule`` (see :mod:`mlxas.sites.labels`).
Neighbour pairs of many structures are labelled together in batches, which bounds the
memory of one step to about 100 MB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlxas.sites.labels import (
    CoordinationSettings,
    LabelError,
    element_slots,
    labels_from_pairs,
    rdf_grid,
    shell_radii,
    site_pairs,
)
from mlxas.sites.labelsets import LabelColumns, LabelSet, register_label_set

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CoordinationLabels"]

#: Neighbour pairs labelled together (bounds the memory of one labelling step to ~100 MB).
_BATCH_PAIRS = 500_000
_PARTIAL = re.compile(r"^cn_([A-Z][a-z]?)$")


@register_label_set
class CoordinationLabels(LabelSet):
    """First-shell coordination of absorbing sites."""

    name = "coordination"
    units: ClassVar[tuple[str, ...]] = ("site",)
    settings_class: ClassVar[type] = CoordinationSettings

    def provides(self, target: str) -> bool:
        m = _PARTIAL.match(target)
        return target in ("cn", "r", "rdf") or (m is not None and m.group(1) in chemical_symbols)

    def compute(
        self, images: Sequence[Atoms], items: pd.DataFrame, absorber: str | None
    ) -> LabelColumns:
        import pandas as pd

        if not absorber:
            raise LabelError("labels.sets: coordination labels need an absorber")
        settings: CoordinationSettings = self.settings
        elements = sorted(
            {chemical_symbols[z] for atoms in images for z in np.unique(atoms.numbers)}
        )
        by_id = {str(a.info["structure_id"]): k for k, a in enumerate(images)}
        shells = shell_radii(list(images), absorber, settings)
        slots = element_slots(elements)
        sid = items["structure_id"].astype(str).to_numpy()
        index = items["site_index"].to_numpy(dtype=np.int64)
        order: list[np.ndarray] = []
        parts: dict[str, list[np.ndarray]] = {}
        batch: list[tuple[np.ndarray, ...]] = []
        n_batch = n_pairs = 0

        def flush() -> None:
            nonlocal batch, n_batch, n_pairs
            if n_batch:
                joined = [np.concatenate(x) for x in zip(*batch, strict=True)]
                for key, value in labels_from_pairs(*joined, n_batch, elements, settings).items():
                    parts.setdefault(key, []).append(value)
            batch, n_batch, n_pairs = [], 0, 0

        for structure, rows in pd.Series(np.arange(len(sid))).groupby(sid, sort=False):
            k = by_id[structure]
            rows = rows.to_numpy()
            centres = index[rows]
            slot, d, el, in_shell = site_pairs(images[k], centres, settings, shells[k], slots)
            shell = np.nan if shells[k] is None else shells[k]
            parts.setdefault("shell_radius", []).append(np.full(len(rows), shell))
            batch.append((slot + n_batch, d, el, in_shell))
            n_batch += len(rows)
            n_pairs += len(d)
            order.append(rows)
            if n_pairs >= _BATCH_PAIRS:
                flush()
        flush()
        n_rdf = len(rdf_grid(settings.rdf))
        values = {
            key: np.concatenate(v) if v else np.zeros((0, n_rdf) if key == "rdf" else 0)
            for key, v in parts.items()
        }
        for key in ("cn", "r", "rdf", "shell_radius", *(f"cn_{e}" for e in elements)):
            values.setdefault(key, np.zeros((0, n_rdf) if key == "rdf" else 0))
        # back to the order of the item table
        inverse = np.empty(len(sid), dtype=np.int64)
        if order:
            inverse[np.concatenate(order)] = np.arange(len(sid))
        values = {key: v[inverse] for key, v in values.items()}
        radii = np.unique(values["shell_radius"])
        one = len(radii) == 1 and np.isfinite(radii[0])
        partial = [f"cn_{e}" for e in elements]
        return LabelColumns(
            values={k: values[k] for k in ("cn", "r", *partial, "rdf", "shell_radius")},
            units={"r": "Angstrom", "rdf": "1/Angstrom", "shell_radius": "Angstrom"},
            grids={"rdf": (rdf_grid(settings.rdf), "Angstrom")},
            targets=("cn", "r", *partial, "rdf"),
            info={"shell_radius": float(radii[0]) if one else None},
        )
