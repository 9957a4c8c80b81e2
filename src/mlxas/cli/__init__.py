"""mlxas trains machine-learning models on simulated X-ray absorption spectra and powder
diffraction patterns, and applies them to measured ones.

The ``mlxas`` command.  The first paragraph above is the description that ``mlxas --help``
prints, as it stands: keep it plain text for a terminal.

User commands: ``status``, ``dataset inspect``, ``predict``, ``models``, ``serve``,
``baseline``, ``config check``
(:mod:`mlxas.cli.user`).  Stage commands, called by the workflow rules and usable by
hand: ``structures``, ``sites``, ``labels``, ``inputs``, ``simulate``, ``gather``,
``train``, ``latest``, ``evaluate``, ``tune`` (:mod:`mlxas.cli.stages`).

Heavy libraries are imported inside each command so that ``mlxas --help`` and the
simulation stage start fast.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable

from mlxas import __version__

__all__ = ["build_parser", "main"]


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that come from the user's input, not a bug: one clear line, no traceback."""
    from mlxas.baseline import BaselineError
    from mlxas.dataset import DatasetError
    from mlxas.errors import ConfigError
    from mlxas.models.card import ModelLoadError
    from mlxas.spectra.measured import SpectrumError
    from mlxas.structures.readers import StructureReadError

    return (
        ConfigError,
        DatasetError,
        ModelLoadError,
        StructureReadError,
        SpectrumError,
        BaselineError,
        FileNotFoundError,
    )


class CommandParser(argparse.ArgumentParser):
    """The parser of a command: an unknown option is reported with the command's own usage.

    argparse hands a subcommand's unrecognized arguments back to the top-level parser,
    which then prints ``usage: mlxas [-h] [--version] COMMAND ...`` — no help for someone
    who mistyped an option of ``mlxas predict``.  Nested subcommands get this class too
    (``add_subparsers`` defaults to the parent's class).
    """

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def build_parser() -> argparse.ArgumentParser:
    from mlxas.cli.stages import add_stage_commands
    from mlxas.cli.user import add_user_commands

    p = argparse.ArgumentParser(
        prog="mlxas",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mlxas {__version__}")
    sub = p.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=CommandParser
    )

    def add(name: str, func: Callable, help_: str) -> argparse.ArgumentParser:
        # Wrapped here: some commands (predict, serve) keep their epilog's layout with
        # RawDescriptionHelpFormatter, which would print a long line as it is.
        sp = sub.add_parser(name, help=help_, description=textwrap.fill(help_, 79))
        sp.set_defaults(func=func)
        return sp

    add_user_commands(sub, add)
    add_stage_commands(add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _user_errors() as err:
        print(f"mlxas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlxas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
