"""Loading cctbx's C++ runtime before any other C++ extension.

The cctbx-base wheel bundles its own libstdc++ (``cctbx_base.libs/libstdc++-*.so.6.0.34``),
newer than the system's on many clusters.  When a library that links the system
libstdc++ (pandas, pyarrow, h5py, scipy.special, gemmi, ...) is imported first, the
older runtime is already in the process and cctbx's boost.python start-up crashes the
interpreter (a segmentation fault, no Python traceback).  Every mlxas process therefore
loads the bundled runtime globally first; libstdc++ is backward compatible, so the
other extensions run on the newer one.  Looking it up imports nothing (about 1 ms).

Set ``MLXAS_NO_CCTBX_PRELOAD=1`` to skip it (a system whose own libstdc++ is newer than
the bundled one).
"""

from __future__ import annotations

import os

__all__ = ["preload_cctbx_runtime"]


def preload_cctbx_runtime() -> str | None:
    """Load cctbx's bundled libstdc++ with ``RTLD_GLOBAL``; returns its path, or None
    when cctbx-base is not installed, has no bundled runtime, or the preload is off."""
    if os.environ.get("MLXAS_NO_CCTBX_PRELOAD"):
        return None
    import ctypes
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("cctbx")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = Path(next(iter(spec.submodule_search_locations))).parent / "cctbx_base.libs"
    found = sorted(libs.glob("libstdc++*.so*"))
    if not found:
        return None
    ctypes.CDLL(str(found[-1]), mode=ctypes.RTLD_GLOBAL)
    return str(found[-1])
