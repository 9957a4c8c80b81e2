"""Structures: generators (fcc nanoparticles, MD) and readers (ASE, pymatgen).

Every source in the config becomes one folder with ``structures.extxyz`` (all its
structures or frames), ``index.csv`` (one row per structure) and ``rejected.csv``
(inputs that were refused, with the file and the reason).
"""

from mlxas.structures.index import build_source, read_index, read_structures

__all__ = ["build_source", "read_index", "read_structures"]
