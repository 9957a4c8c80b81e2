"""Helpers of the crystal-source benchmarks: an experiment read through the workflow
contract, its structures from the registered source, and one real FEFF run of a site
through the experiment's engine (the same input text the inputs stage writes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ase import Atoms

from mlxas.engines.base import ItemInput, ItemResult
from mlxas.workflow.checks import load_experiment
from mlxas.workflow.experiment import Experiment


def experiment(path: Path, overrides: Mapping[str, Any] | None = None) -> Experiment:
    """The checked experiment of one config file (``overrides`` as ``--config`` gives)."""
    return load_experiment([path], overrides)


def source_images(exp: Experiment) -> list[Atoms]:
    """Every structure of every source, as the structures stage generates them."""
    return [atoms for src in exp.sources.values() for _, _, _, atoms in src.generate(None)]


def feff_site(exp: Experiment, atoms: Atoms, index: int, rundir: Path, name: str) -> ItemResult:
    """Run the experiment's engine on absorbing atom ``index`` of ``atoms`` in ``rundir``;
    a failed run raises with FEFF's reason."""
    text = exp.engine.input_text(atoms, int(index), name)
    rundir.mkdir(parents=True, exist_ok=True)
    item = ItemInput(item_id=name, structure_id=name, chunk=0, text=text, input_hash=name)
    res = exp.engine.run(item, rundir, timeout=600)
    if not res.ok:
        raise RuntimeError(f"{name}: FEFF failed: {res.reason} {res.detail}")
    return res
