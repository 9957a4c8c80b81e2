"""Content hashes shared by every stage: structure ids, input hashes, code versions.

Snakemake reruns a job when its ``params`` change, but it does not see edits to the
Python modules a rule imports.  :func:`code_version` hashes the source of a module
together with every ``mlxas`` module it imports (transitively), so passing it as a rule
parameter makes a code change rerun exactly the stages whose code changed.

A module that reads package data (a prototype table, FEFF card templates) names those
files in ``__data_files__``: a tuple of glob patterns relative to the module's folder,
read from the source (the module is not imported).  They are hashed with the module, so
editing ``xanes/prototypes.yaml`` reruns the structures stage like editing its code would.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "code_version",
    "hash_bytes",
    "hash_json",
    "structure_hash",
]


def hash_bytes(data: bytes, length: int = 16) -> str:
    """Hex digest (blake2b) of ``data``, shortened to ``length`` characters."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()[:length]


def hash_json(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of dict key order."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hash_bytes(text.encode(), length)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot hash object of type {type(obj).__name__}")


def structure_hash(
    symbols: list[str],
    positions: np.ndarray,
    cell: np.ndarray | None = None,
    pbc: Any = None,
    decimals: int = 4,
) -> str:
    """Content hash of a structure: species and positions rounded to ``decimals`` Å.

    Rounding makes the id stable against last-digit noise from file round trips;
    1e-4 Å is far below any structural difference that changes a spectrum.
    """
    pos = np.round(np.asarray(positions, dtype=float), decimals) + 0.0  # +0.0 folds -0.0
    h = hashlib.blake2b(digest_size=32)
    h.update("|".join(symbols).encode())
    h.update(np.ascontiguousarray(pos).tobytes())
    if cell is not None and pbc is not None and np.any(pbc):
        h.update(np.ascontiguousarray(np.round(np.asarray(cell, float), decimals) + 0.0).tobytes())
        h.update(np.asarray(pbc, dtype=bool).tobytes())
    return h.hexdigest()[:16]


def _module_file(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _package_imports(path: Path, module: str) -> set[str]:
    """Modules of the same top-level package imported (anywhere) by the module at ``path``."""
    root = module.split(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == root)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != root:
                continue
            found.add(target)
            # "from mlxas.feff import runner" may name a submodule rather than an attribute
            if _is_package(target):
                for alias in node.names:
                    if importlib.util.find_spec(f"{target}.{alias.name}") is not None:
                        found.add(f"{target}.{alias.name}")
    return found


def _is_package(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def _data_files(path: Path) -> list[Path]:
    """The files matched by the ``__data_files__`` patterns of the module at ``path``.

    A pattern that matches nothing is an error: a renamed data file would otherwise drop
    out of the hash silently.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__data_files__" for t in targets):
            found: list[Path] = []
            for pattern in ast.literal_eval(node.value):
                matched = sorted(p for p in path.parent.glob(pattern) if p.is_file())
                if not matched:
                    raise FileNotFoundError(
                        f"{path}: __data_files__ pattern {pattern!r} matches no file"
                    )
                found += matched
            return found
    return []


@cache
def code_version(*modules: str) -> str:
    """Hash of the source of ``modules`` and of all modules of their package they import.

    Parent packages' ``__init__`` files count too, since importing a submodule runs them,
    and so do the data files each module declares in ``__data_files__``.
    """
    seen: dict[str, Path] = {}
    todo = list(modules)
    requested = set(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            if name in requested:
                raise ModuleNotFoundError(f"code_version: no Python source for module {name!r}")
            continue  # an optional import that is absent cannot change behaviour
        seen[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_package_imports(path, name))
    h = hashlib.blake2b(digest_size=32)
    for name in sorted(seen):
        h.update(name.encode())
        h.update(seen[name].read_bytes())
        for data in _data_files(seen[name]):
            h.update(data.relative_to(seen[name].parent).as_posix().encode())
            h.update(data.read_bytes())
    return h.hexdigest()[:16]
