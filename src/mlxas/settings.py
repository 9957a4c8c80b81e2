"""Typed settings: frozen dataclasses read once from a config section.

Every stage reads its config section into one small frozen dataclass
(:func:`from_mapping`); library functions take those objects or keyword arguments.
Workflow rules pass a stage its settings as canonical JSON (:func:`to_json`), which the
stage command reads back with :func:`from_mapping`, so the rule parameter, the stage's
settings and the provenance hashes are one and the same text.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from mlxas.errors import ConfigError

__all__ = ["deep_merge", "from_mapping", "lazy_exports", "to_dict", "to_json"]

T = TypeVar("T")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_in(tp: Any) -> type | None:
    """The dataclass named by an annotation such as ``Foo`` or ``Foo | None``."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None


def _is_tuple(tp: Any) -> bool:
    if typing.get_origin(tp) is tuple:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is tuple for a in typing.get_args(tp))
    return False


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """An instance of the dataclass ``cls`` from a mapping (a config section or JSON).

    Nested dataclass fields are built from nested mappings, lists become tuples where the
    field is a tuple.  A key ``cls`` does not know is a :class:`ConfigError` naming
    ``where`` (the config key of the section); absent keys take the field defaults.
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}")
    hints = _hints(cls)
    kwargs = {}
    for name, value in data.items():
        tp = hints.get(name)
        sub = _dataclass_in(tp)
        if sub is not None and isinstance(value, Mapping):
            value = from_mapping(sub, value, f"{where}.{name}" if where else name)
        elif _is_tuple(tp) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def to_dict(obj: Any) -> Any:
    """Plain JSON-ready data of a settings object (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) of a settings object or plain data."""
    return json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"))


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: mappings merge key by key, every other value
    (lists included) is replaced -- the rule Snakemake uses for several config files."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def lazy_exports(package: str, exports: Mapping[str, str]):
    """A module ``__getattr__`` that imports ``package.<exports[name]>`` on first use.

    Packages of stages use it so that importing one stage's module neither imports the
    other stages nor makes their code part of its :func:`mlxas.provenance.code_version`.
    """

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return getattr_
