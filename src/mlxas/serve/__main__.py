"""``python -m mlxas.serve``: the same as ``mlxas serve``."""

import argparse
import sys

from mlxas.serve import add_arguments, main, one_blas_thread

one_blas_thread()  # before numpy is imported (next lines)

from mlxas.models.card import ModelLoadError  # noqa: E402
from mlxas.spectra.measured import SpectrumError  # noqa: E402

parser = argparse.ArgumentParser(prog="mlxas serve", description=__doc__)
add_arguments(parser)
args = parser.parse_args()
try:
    sys.exit(main(args))
except (ModelLoadError, SpectrumError, FileNotFoundError) as err:
    print(f"mlxas: error: {err}", file=sys.stderr)
    sys.exit(2)
