"""Errors shared by every stage.

Kept in a module of its own, free of imports, so that a stage importing it does not pull
in the workflow contract (and :func:`mlxas.provenance.code_version` of the stage does not
change when the contract does).
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration that mlxas refuses; the message names the file and the key."""
