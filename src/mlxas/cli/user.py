"""User commands of ``mlxas``: ``status``, ``dataset inspect``, ``config check``,
``predict``, ``models list|show``, ``serve``, ``phases predict`` and ``baseline``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["PREDICT_LINE", "add_user_commands"]

#: ``mlxas predict`` in ``mlxas --help``: what it reads and gives, for every model kind
#: (docs/predict.md, docs/xanes.md, docs/xrd.md).
PREDICT_LINE = (
    "apply a trained model to measured files: CN and R (EXAFS) or coordination geometry "
    "(XANES) from XAS spectra (XDI, .prj, columns); space group from powder XRD patterns "
    "(.xy, .xye, .csv, RRUFF)"
)


def cmd_config_check(a: argparse.Namespace) -> int:
    from mlxas.workflow.checks import load_experiment

    exp = load_experiment(a.files)
    print(f"{exp.source}: valid (experiment {exp.name}, results in {exp.layout.root})")
    if a.show:
        print(exp.show())
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    from mlxas.status import print_status

    return print_status(a.target, as_json=a.json, resumable=a.resumable)


def cmd_dataset_inspect(a: argparse.Namespace) -> int:
    from mlxas.inspect import inspect_dataset

    return inspect_dataset(a.path, a.plots)


def cmd_predict(a: argparse.Namespace) -> int:
    from mlxas.predict import main as predict_main

    return predict_main(a)


def cmd_serve(a: argparse.Namespace) -> int:
    from mlxas.serve import main as serve_main

    return serve_main(a)


def cmd_phases_predict(a: argparse.Namespace) -> int:
    from mlxas.phases.command import run_predict

    return run_predict(a)


def cmd_baseline(a: argparse.Namespace) -> int:
    from mlxas.baseline import run_command

    return run_command(a)


def _status_args(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "target",
        nargs="?",
        default=None,
        help="a config file or an existing results/<experiment> folder (default: the "
        "default experiment, config/config.yaml); a folder that does not exist is an error",
    )
    s.add_argument("--json", action="store_true", help="print the counts as JSON")
    s.add_argument(
        "--resumable",
        action="store_true",
        help="also count pending items whose run already finished (reads every pending run)",
    )


def _baseline_args(bl: argparse.ArgumentParser) -> None:
    bl.add_argument("files", metavar="FILE", nargs="+", help="XDI, Athena .prj or column files")
    bl.add_argument("--element", help="absorbing element (default: from the file header)")
    bl.add_argument("--edge", help="edge, K, L3, ... (default: from the file header, else K)")
    bl.add_argument("--path", help="a first-shell FEFF path file instead of computing one")
    bl.add_argument("--cache", help="folder of computed FEFF paths (default: $MLXAS_CACHE, /tmp)")
    bl.add_argument("--kmin", type=float, default=3.0, help="1/Å (default: %(default)s)")
    bl.add_argument("--kmax", type=float, default=14.0, help="1/Å (default: %(default)s)")
    bl.add_argument("--kweight", type=float, default=2.0, help="(default: %(default)s)")
    bl.add_argument("--dk", type=float, default=1.0, help="1/Å, window sill (default: %(default)s)")
    bl.add_argument("--rmin", type=float, help="Å (default: R_eff - 0.9)")
    bl.add_argument("--rmax", type=float, help="Å (default: R_eff + 0.45)")
    bl.add_argument("--s02", type=float, help="fixed S0² (default: the value FEFF computes)")
    bl.add_argument("--mu", metavar="LABEL", help="column holding mu(E)")
    bl.add_argument("--energy", metavar="LABEL", help="column holding the energy in eV")
    bl.add_argument("--repair", action="store_true", help="sort/de-duplicate energies, reported")
    bl.add_argument("--out", "-o", help="write results to a .csv, .json or .jsonl file")
    bl.add_argument("--quiet", "-q", action="store_true", help="no table on the terminal")


def add_user_commands(
    sub: argparse._SubParsersAction,
    add: Callable[[str, Callable, str], argparse.ArgumentParser],
) -> None:
    """Register the user commands (``add(name, function, help)`` for plain ones)."""
    from mlxas.predict import add_arguments as predict_arguments

    _status_args(add("status", cmd_status, "done, pending and failed items per source"))

    d = sub.add_parser("dataset", help="inspect an HDF5 dataset")
    dsub = d.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)
    di = dsub.add_parser("inspect", help="counts, label distributions, failures, example spectra")
    di.add_argument("path", help="the dataset file")
    di.add_argument("--plots", default=None, help="folder for PNG plots (default: beside the file)")
    di.set_defaults(func=cmd_dataset_inspect)

    from mlxas.phases.command import PREDICT_DESCRIPTION, PREDICT_HELP, add_predict_arguments

    ph = sub.add_parser("phases", help="the crystallographic phase problem (docs/phases.md)")
    phsub = ph.add_subparsers(dest="phases_command", metavar="SUBCOMMAND", required=True)
    pp = phsub.add_parser("predict", help=PREDICT_HELP, description=PREDICT_DESCRIPTION)
    add_predict_arguments(pp)
    pp.set_defaults(func=cmd_phases_predict)

    c = sub.add_parser("config", help="validate a config")
    csub = c.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    cc = csub.add_parser(
        "check",
        help="run every check the workflow runs on FILE (several files merge in order, "
        "as with snakemake --configfile)",
    )
    cc.add_argument("files", metavar="FILE", nargs="+")
    cc.add_argument("--show", action="store_true", help="print the config with defaults filled in")
    cc.set_defaults(func=cmd_config_check)

    predict_arguments(add("predict", cmd_predict, PREDICT_LINE))
    from mlxas.predict.models_command import add_arguments as models_arguments
    from mlxas.serve import add_arguments as serve_arguments

    models_arguments(sub.add_parser("models", help="the bundled models and their cards"))
    serve_arguments(
        add("serve", cmd_serve, "a prediction service on localhost (HTTP, models kept loaded)")
    )
    _baseline_args(
        add(
            "baseline",
            cmd_baseline,
            "first-shell feffit of measured spectra (CN, R, sigma2, E0 shift) with a FEFF path",
        )
    )
