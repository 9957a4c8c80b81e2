"""The conventional baseline: a first-shell EXAFS fit with larch's ``feffit``.

An expert reads CN and R off a measured spectrum by fitting one FEFF scattering path, the
first shell of a reference crystal, to chi(R) over a window around that shell.  mlxas
runs that fit on the same spectra as its models, so the two can be compared file by file
(``mlxas baseline``, ``benchmarks/bench_predict_foils.py``).

The path comes from the FEFF engine mlxas uses for its training spectra (FEFF8L): a
cluster cut from the element's reference crystal in ASE (fcc Cu, Ni, Pt, Au, ...), one
FEFF run with ``RPATH`` just past the first shell.  ``S02 0`` makes FEFF compute S0² from
atomic overlap integrals; that value is the fit's fixed S0² unless the user gives one.
The run's ``feff0001.dat`` is cached under a key that is the hash of the exact
``feff.inp`` and the engine version, so it is computed once per element, edge and
settings.

Fitted parameters (larch ``feffit``, path degeneracy set to 1):

- ``n``: coordination number N; the path amplitude is S0²·N with S0² fixed;
- ``delta_r``: R − R_eff (Å); R = R_eff + ΔR;
- ``sigma2``: Debye–Waller factor σ² (Å²);
- ``delta_e0``: E0 shift (eV) between the data's E0 (larch ``find_e0``) and FEFF's.

Units: k in Å⁻¹, R in Å, σ² in Å², energies in eV, times in s.

Modules: :mod:`.reference` (the FEFF reference path, run through
:func:`mlxas.simulation.runner.run_item` like every FEFF run of mlxas), :mod:`.fit` (the
``feffit`` fit of one chi(k) and of measured files), :mod:`.output` (table, files and
the ``mlxas baseline`` command).
"""

from __future__ import annotations

from mlxas.baseline.fit import BaselineResult, FitSettings, fit_chi, fit_files
from mlxas.baseline.output import format_table, output_format, run_command, write_results
from mlxas.baseline.reference import (
    BaselineError,
    ReferencePath,
    default_cache_dir,
    first_shell_path,
    read_reference_path,
)

__all__ = [
    "BaselineError",
    "BaselineResult",
    "FitSettings",
    "ReferencePath",
    "default_cache_dir",
    "first_shell_path",
    "fit_chi",
    "fit_files",
    "format_table",
    "output_format",
    "read_reference_path",
    "run_command",
    "write_results",
]
