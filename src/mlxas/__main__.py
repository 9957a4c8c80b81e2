import sys

from mlxas.cli import main

sys.exit(main())
