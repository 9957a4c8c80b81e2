"""Crystals to model arrays through the ``reflections`` engine (for experiments and tests).

The workflow's gather stage does this from chunk files; this module does it in memory
for a list of crystals, with the same engine calls (:meth:`input_text`, :meth:`run`,
:meth:`featurize`, :meth:`targets`), so experiments and the workflow see the same
numbers.  :func:`make_arrays` returns fixed-size arrays for training;
:func:`test_crystals` the per-crystal data that evaluation and charge flipping need.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from mlxas.engines.base import InputError, ItemInput, ItemResult
from mlxas.phases.evaluate import TestCrystal, asymmetric_sites
from mlxas.phases.labels import phase_restrictions, signs_to_phases
from mlxas.phases.reflections import (
    PhaseFeatures,
    ReflectionsEngine,
    ReflectionSettings,
    quasi_normalise,
)
from mlxas.provenance import hash_bytes

__all__ = ["PhaseArrays", "make_arrays", "run_crystals", "test_crystals"]


@dataclass
class PhaseArrays:
    """Fixed-size arrays of one setting: ``[n_crystals, n_reflections]`` float32."""

    e_value: np.ndarray
    amplitude: np.ndarray
    mask: np.ndarray
    sign: np.ndarray
    names: list[str]
    hkl: np.ndarray  #: the setting's reflection list [n_reflections, 3]
    failures: list[tuple[str, str, str]] = field(default_factory=list)  #: name, reason, detail


def run_crystals(
    engine: ReflectionsEngine, crystals: Iterable[Atoms]
) -> tuple[list[tuple[Atoms, ItemResult]], list[tuple[str, str, str]]]:
    """Run the engine on each crystal: ``([(atoms, ok result)], [(name, reason, detail)])``."""
    ok, failed = [], []
    for atoms in crystals:
        name = str(atoms.info.get("name", atoms.info.get("structure_id", "?")))
        try:
            text = engine.input_text(atoms, None, name)
        except InputError as exc:
            failed.append((name, exc.reason, exc.detail))
            continue
        item = ItemInput(
            name,
            str(atoms.info.get("structure_id", name)),
            0,
            text,
            hash_bytes(f"{engine.version}\n{text}".encode()),
        )
        result = engine.run(item, None, 60.0)
        if result.ok:
            ok.append((atoms, result))
        else:
            failed.append((name, result.reason, result.detail))
    return ok, failed


def make_arrays(
    settings: ReflectionSettings, crystals: Iterable[Atoms], features: PhaseFeatures | None = None
) -> PhaseArrays:
    """Model inputs (``e_value``, ``amplitude``, ``mask``) and sign targets of crystals."""
    from mlxas.phases.reflection_list import reflection_list

    engine = ReflectionsEngine(settings)
    ok, failed = run_crystals(engine, crystals)
    results = [r for _, r in ok]
    feats = engine.featurize(results, features or PhaseFeatures())
    return PhaseArrays(
        e_value=feats["e_value"],
        amplitude=feats["amplitude"],
        mask=feats["mask"],
        sign=feats["sign"],
        names=[r.item_id for r in results],
        hkl=np.asarray(reflection_list(settings.space_group, settings.index_max)),
        failures=failed,
    )


def test_crystals(
    settings: ReflectionSettings, crystals: Iterable[Atoms], features: PhaseFeatures | None = None
) -> tuple[list[TestCrystal], PhaseArrays]:
    """Per-crystal evaluation data and the model arrays of the same crystals (same order)."""
    feats = features or PhaseFeatures()
    crystals = list(crystals)
    arrays = make_arrays(settings, crystals, feats)
    by_name = {str(a.info.get("name")): a for a in crystals}
    ht = phase_restrictions(settings.space_group, arrays.hkl)[1]
    out = []
    for i, name in enumerate(arrays.names):
        atoms = by_name[name]
        idx = np.flatnonzero(arrays.mask[i])
        hkl = arrays.hkl[idx]
        cell = tuple(float(x) for x in atoms.cell.cellpar())
        amp = arrays.amplitude[i, idx].astype(float)
        heavy = atoms.numbers > 1
        out.append(
            TestCrystal(
                name=name,
                cell=cell,
                space_group=settings.space_group,
                hkl=hkl,
                amplitude=amp,
                phase=signs_to_phases(arrays.sign[i, idx], ht[idx]),
                e_value=quasi_normalise(
                    cell, settings.space_group, hkl, amp, feats.reflections_per_bin
                ),
                sites=asymmetric_sites(settings.space_group, atoms.get_scaled_positions()[heavy]),
            )
        )
    return out, arrays
