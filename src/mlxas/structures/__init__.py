"""Structures: source kinds (fcc nanoparticles, MD, files read with ASE or pymatgen).

Every ``structures`` entry of the config is one source of a registered kind
(:mod:`mlxas.structures.sources`); :func:`build_source` writes its structures (extended
XYZ), an index (one row per structure) and the refused inputs with their reasons.
"""

from mlxas.settings import lazy_exports

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

__getattr__ = lazy_exports(__name__, _EXPORTS)
