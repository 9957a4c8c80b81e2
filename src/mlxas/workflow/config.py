"""Reading a config: the files, their layering and the schema.

Layering, the same for the Snakefile, ``mlxas config check`` and ``mlxas status``:

1. the schema's defaults (``mlxas/schemas/config.schema.yaml``);
2. the experiment: the config files given (``--configfile``), merged in order the way
   Snakemake merges them (nested mappings merge, every other value is replaced), then
   ``--config KEY=VALUE`` overrides.  With no file given, the default experiment
   ``config/config.yaml`` is selected; it is never merged under another file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from mlxas.errors import ConfigError
from mlxas.settings import deep_merge as merge

__all__ = [
    "DEFAULT_EXPERIMENT",
    "SCHEMA_PATH",
    "ConfigError",
    "apply_schema",
    "merge",
    "raw_experiment",
    "read_config_file",
]

SCHEMA_PATH = Path(str(files("mlxas") / "schemas" / "config.schema.yaml"))
#: The experiment selected when no config file is given (relative to the working folder).
DEFAULT_EXPERIMENT = Path("config") / "config.yaml"


def read_config_file(path: str | Path) -> dict[str, Any]:
    """One YAML config file as a mapping; errors name the file."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def raw_experiment(
    configfiles: Sequence[str | Path] = (), overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """The experiment's config before the schema, and the name of its source for messages.

    ``configfiles`` empty selects :data:`DEFAULT_EXPERIMENT`.
    """
    paths = [Path(p) for p in configfiles]
    if not paths:
        if not DEFAULT_EXPERIMENT.is_file():
            raise ConfigError(
                f"no config file given and the default experiment {DEFAULT_EXPERIMENT} "
                f"does not exist in {Path.cwd()}"
            )
        paths = [DEFAULT_EXPERIMENT]
    raw: dict[str, Any] = {}
    for path in paths:
        raw = merge(raw, read_config_file(path))
    raw = merge(raw, dict(overrides or {}))
    return raw, " + ".join(str(p) for p in paths)


def apply_schema(raw: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """A copy of ``raw`` checked against the schema, with its defaults filled in."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg = copy.deepcopy(dict(raw))
    try:
        validate(cfg, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as err:
        raise ConfigError(f"{source}: {_first_line_naming_key(err)}") from None
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
