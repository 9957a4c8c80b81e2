"""``python -m mlxas.phases``: the same as ``mlxas phases`` (:mod:`mlxas.phases.command`)."""

import sys

from mlxas.phases.command import main

sys.exit(main())
