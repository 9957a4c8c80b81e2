"""Configuration: one JSON schema, with defaults, shared by Snakemake and the CLI.

The schema lives in ``mlxas/schemas/config.schema.yaml``.  The Snakefile validates the
workflow config with Snakemake's own ``validate``; :func:`load_config` runs the same
validator for command-line users, so both fill in the same defaults and report the
same errors (naming the offending key).
"""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SCHEMA_PATH", "ConfigError", "load_config", "validate_config"]

SCHEMA_PATH = Path(str(files("mlxas") / "schemas" / "config.schema.yaml"))


class ConfigError(ValueError):
    """The configuration does not match the schema, or cannot be read."""


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate ``config`` against the schema and return a copy with defaults filled in."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg = copy.deepcopy(config)
    try:
        validate(cfg, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as err:
        raise ConfigError(f"{source}: {_first_line_naming_key(err)}") from None
    names = [s["name"] for s in cfg["structures"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: structures: duplicate source name(s) {dupes}")
    model_names = [m["name"] for m in cfg["models"]]
    dupes = sorted({n for n in model_names if model_names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: models: duplicate model name(s) {dupes}")
    return cfg


def _first_line_naming_key(err: Exception) -> str:
    """Condense Snakemake's multi-line validation error to the message and the key path."""
    text = str(err)
    cause = err.__cause__ or err.__context__
    path = getattr(cause, "absolute_path", None) if cause is not None else None
    message = getattr(cause, "message", None) if cause is not None else None
    if path is not None and message is not None:
        key = ".".join(str(p) for p in path) or "<top level>"
        return f"invalid value at '{key}': {message}"
    return text


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config, apply ``overrides`` (shallow, per top-level key) and validate it."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw.update(overrides or {})
    return validate_config(raw, source=str(path))


def dumps(config: dict[str, Any]) -> str:
    """Canonical JSON text of a config section (sorted keys), as passed to rule CLIs."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
