"""File names of a source's FEFF folder, shared by the runner and ``mlxas status``.

Kept free of imports so that reading progress does not load the FEFF machinery.
"""

from __future__ import annotations

__all__ = ["DONE_MARKER", "FAILURE_FILE", "chunk_name"]

#: In ``runs/<site_id>/``: written atomically, last, when a run passed every check.
DONE_MARKER = ".mlxas-done.json"
#: In ``quarantine/<site_id>/``: reason, detail and input hash of a failed run.
FAILURE_FILE = "mlxas-failure.json"


def chunk_name(chunk: int) -> str:
    """File name of chunk number ``chunk`` under ``chunks/``."""
    return f"{chunk:05d}.h5"
