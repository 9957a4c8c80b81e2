"""The crystallographic phase problem: random crystals, structure factors, phase targets,
models, charge flipping and evaluation (see ``docs/phases.md``).

cctbx must find its own bundled libstdc++ in the process before any other C++ extension
loads the system's; importing :mod:`mlxas` does that (:mod:`mlxas._native`), so the
submodules import cctbx lazily, where they use it.
"""

from __future__ import annotations
