"""The crystallographic phase problem: random crystals, structure factors, phase targets,
models, charge flipping and evaluation (see ``docs/phases.md``).

cctbx is imported here, first: the cctbx-base wheel bundles its own libstdc++ (6.0.34),
and importing it after a module that loaded the system libstdc++ through some C++
extensions (pandas, scipy.special, gemmi, scikit-learn, matplotlib) crashes the process
in boost.python's start-up.  A process that uses the reflections engine, charge flipping
or the phase metrics must import :mod:`mlxas.phases` before those libraries.
"""

from __future__ import annotations

import cctbx.array_family.flex  # noqa: F401  (must precede pandas/scipy; see above)
