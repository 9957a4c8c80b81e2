"""``python -m mlxas.serve``: the same as ``mlxas serve``."""

import argparse
import sys

from mlxas.models.card import ModelLoadError
from mlxas.serve import add_arguments, main
from mlxas.spectra.measured import SpectrumError

parser = argparse.ArgumentParser(prog="mlxas serve", description=__doc__)
add_arguments(parser)
args = parser.parse_args()
try:
    sys.exit(main(args))
except (ModelLoadError, SpectrumError, FileNotFoundError) as err:
    print(f"mlxas: error: {err}", file=sys.stderr)
    sys.exit(2)
