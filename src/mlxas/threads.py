"""The environment variables that set the thread count of numpy's BLAS and OpenMP.

They act only on processes that import numpy afterwards: worker processes of
``mlxas predict`` and of ``mlxas serve`` get them set to 1 before they start (one worker
per core; an idle OpenBLAS thread spins on the cores the other workers need).  This module
imports nothing heavy, so it can be used before numpy is loaded.
"""

from __future__ import annotations

__all__ = ["THREAD_VARS"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
