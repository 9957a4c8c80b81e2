"""Structures: source kinds (fcc nanoparticles, MD, files read with ASE or pymatgen).

Every ``structures`` entry of the config is one source of a registered kind
(:mod:`mlxas.structures.sources`); :func:`build_source` writes its structures (extended
XYZ), an index (one row per structure) and the refused inputs with their reasons.
"""

# Submodules load on first use (reading a config needs the source kinds, not pandas).
_EXPORTS = {
    "build_source": "index",
    "read_index": "index",
    "read_structures": "index",
    "register_source": "sources",
    "source_from_config": "sources",
    "source_kinds": "sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
