"""The ``mlxas`` command.

User commands: ``status``, ``dataset inspect``, ``predict``, ``baseline``, ``config check``.
Stage commands (called by the workflow rules, usable by hand): ``structures``,
``sites``, ``feff-inputs``, ``run-feff``, ``gather``, ``train``, ``evaluate``, ``tune``.

Heavy libraries are imported inside each command so that ``mlxas --help`` and the
FEFF stage start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from mlxas import __version__


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that come from the user's input, not a bug: one clear line, no traceback."""
    from mlxas.config import ConfigError
    from mlxas.dataset import DatasetError
    from mlxas.feff.cards import CardError
    from mlxas.models.card import ModelLoadError
    from mlxas.models.registry import ModelConfigError
    from mlxas.structures.readers import StructureReadError

    errors: list[type[BaseException]] = [
        ConfigError,
        DatasetError,
        CardError,
        ModelLoadError,
        ModelConfigError,
        StructureReadError,
        FileNotFoundError,
    ]
    try:
        from mlxas.predict import SpectrumError

        errors.append(SpectrumError)
    except ImportError:
        pass
    try:
        from mlxas.baseline import BaselineError

        errors.append(BaselineError)
    except ImportError:
        pass
    return tuple(errors)


def _spec(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError as err:
        raise SystemExit(f"mlxas: error: --spec is not valid JSON: {err}") from None


# --- stage commands ---------------------------------------------------------------------


def cmd_structures(a: argparse.Namespace) -> int:
    from mlxas.feff.engines import get_engine
    from mlxas.structures import build_source
    from mlxas.structures.checks import FeffLimits
    from mlxas.structures.index import format_rejected

    spec = _spec(a.spec)
    engine = get_engine(spec["engine"])
    limits = FeffLimits(
        max_atoms=engine.max_atoms,
        max_potentials=engine.max_potentials,
        cluster_radius=float(spec.get("cluster_radius", 8.0)),
        engine=engine.name,
    )
    index, rejected = build_source(spec["source"], spec["absorber"], a.out_dir, limits)
    print(f"{spec['source']['name']}: {len(index)} structures, {len(rejected)} rejected")
    if len(rejected):
        print(f"rejected inputs (also in {Path(a.out_dir) / 'rejected.csv'}):")
        print(format_rejected(rejected))
    return 0


def cmd_sites(a: argparse.Namespace) -> int:
    from mlxas.sites import enumerate_sites, write_sites
    from mlxas.structures import read_structures

    spec = _spec(a.spec)
    images = read_structures(a.structures)
    df = enumerate_sites(images, spec["absorber"], spec["sites"], spec["labels"])
    write_sites(df, a.out, spec["labels"])
    shell = df.attrs.get("shell_radius")
    rule = spec["labels"]["cn_rule"]
    print(
        f"{len(df)} absorbing sites from {len(images)} structures (mode {spec['sites']['mode']}); "
        f"first shell: {rule}" + (f", radius {shell:.3f} Å" if shell is not None else "")
    )
    return 0


def cmd_feff_inputs(a: argparse.Namespace) -> int:
    import pandas as pd

    from mlxas.feff.inputs import build_inputs
    from mlxas.structures import read_structures

    spec = _spec(a.spec)
    images = {at.info["structure_id"]: at for at in read_structures(a.structures)}
    sites = pd.read_parquet(a.sites)
    Path(a.table).parent.mkdir(parents=True, exist_ok=True)
    table = build_inputs(sites, images, spec["feff"], spec["edge"], a.table, a.chunks)
    bad = table[table["reason"] != ""]
    print(f"{len(table)} FEFF inputs in {table['chunk'].nunique()} chunks; {len(bad)} refused")
    for row in bad.itertuples(index=False):
        print(f"  refused {row.site_id}: {row.reason}: {row.detail}")
    return 0


def cmd_run_feff(a: argparse.Namespace) -> int:
    from mlxas.feff.runner import run_chunk

    results = run_chunk(
        a.inputs,
        a.chunk,
        a.workdir,
        a.out,
        a.engine,
        a.timeout,
        a.threads,
        keep_files=a.keep_files,
        progress=not a.quiet,
        quarantine=a.quarantine,
    )
    failed = [r for r in results if not r.ok]
    print(f"chunk {a.chunk}: {len(results) - len(failed)} ok, {len(failed)} failed")
    for r in failed:
        print(f"  failed {r.site_id}: {r.reason}: {r.detail}")
    return 0


def _lines(paths: list[str]) -> list[str]:
    """Expand ``@file`` arguments (one path per line), for very long lists of chunks."""
    out: list[str] = []
    for p in paths:
        if p.startswith("@"):
            out.extend(
                line.strip() for line in Path(p[1:]).read_text().splitlines() if line.strip()
            )
        else:
            out.append(p)
    return out


def cmd_gather(a: argparse.Namespace) -> int:
    from mlxas.dataset import gather

    spec = _spec(a.spec)
    report = gather(
        _lines(a.chunks),
        _lines(a.sites),
        a.out,
        spec["settings"],
        rejected_files=_lines(a.rejected),
        inputs_files=_lines(a.inputs),
        absorber=spec["absorber"],
        edge=spec["edge"],
        cache_dir=a.cache,
        workers=a.threads,
        log=lambda msg: print(msg, flush=True),
    )
    print(report)
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from mlxas.models.train import train, write_pointer

    spec = _spec(a.spec)
    mid, card = train(a.dataset, spec, a.models_dir, threads=a.threads, verbose=2)
    write_pointer(a.out, mid, card)
    test = json.dumps(card["metrics"].get("test", {}))
    print(f"model {spec['name']}: id {mid}, test metrics {test}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from mlxas.evaluate import evaluate

    res = evaluate(a.dataset, a.models, a.out_dir, primary=a.primary)
    for name, entry in res["models"].items():
        for t, m in entry["targets"].items():
            print(f"{name:>12s} {t:>4s}: MSE {m['mse']:.4g}  MAE {m['mae']:.4g}  R2 {m['r2']:.3f}")
    return 0


def cmd_tune(a: argparse.Namespace) -> int:
    from mlxas.models.tune import tune

    spec = _spec(a.spec)
    res = tune(a.dataset, spec["tune"], spec["model"], a.out_dir, threads=a.threads, verbose=1)
    print(
        f"tune {res['model']}: best validation loss {res['best_value']:.4g} "
        f"(trial {res['best_trial']}, {res['n_complete']} complete, {res['n_pruned']} pruned): "
        f"{json.dumps(res['best_params'])}"
    )
    return 0


# --- user commands ----------------------------------------------------------------------


def cmd_config_check(a: argparse.Namespace) -> int:
    from mlxas.config import dumps, load_config
    from mlxas.feff.cards import check_feff_config

    cfg = load_config(a.file)
    check_feff_config(cfg)
    print(f"{a.file}: valid")
    if a.show:
        print(json.dumps(json.loads(dumps(cfg)), indent=2))
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


def cmd_baseline(a: argparse.Namespace) -> int:
    from mlxas.baseline import run_command

    return run_command(a)


# --- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlxas",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mlxas {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    s = add("status", cmd_status, "done, pending and failed FEFF sites per source, with reasons")
    s.add_argument(
        "target",
        nargs="?",
        default="config/config.yaml",
        help="a config file or a results/<experiment> directory (default: %(default)s)",
    )
    s.add_argument("--json", action="store_true", help="print the counts as JSON")
    s.add_argument(
        "--resumable",
        action="store_true",
        help="also count pending sites whose run already finished (reads every pending run)",
    )

    d = sub.add_parser("dataset", help="inspect an HDF5 dataset")
    dsub = d.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)
    di = dsub.add_parser("inspect", help="counts, label distributions, failures, example spectra")
    di.add_argument("path", help="dataset.h5")
    di.add_argument(
        "--plots", default=None, help="directory for PNG plots (default: next to the file)"
    )
    di.set_defaults(func=cmd_dataset_inspect)

    c = sub.add_parser("config", help="validate a config file")
    csub = c.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    cc = csub.add_parser("check", help="validate FILE against the schema")
    cc.add_argument("file")
    cc.add_argument("--show", action="store_true", help="print the config with defaults filled in")
    cc.set_defaults(func=cmd_config_check)

    pr = add(
        "predict", cmd_predict, "predict CN and R from measured spectra (XDI, Athena .prj, columns)"
    )
    try:
        from mlxas.predict import add_arguments
    except ImportError:
        add_arguments = None
    if add_arguments is not None:
        add_arguments(pr)

    bl = add(
        "baseline",
        cmd_baseline,
        "first-shell feffit of measured spectra (CN, R, sigma2, E0 shift) with a FEFF path",
    )
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

    st = add("structures", cmd_structures, "stage: build or read the structures of one source")
    st.add_argument(
        "--spec", required=True, help="JSON: {source, absorber, engine, cluster_radius}"
    )
    st.add_argument("--out-dir", required=True)

    si = add("sites", cmd_sites, "stage: absorbing sites and labels of one source")
    si.add_argument("--spec", required=True, help="JSON: {absorber, sites, labels}")
    si.add_argument("--structures", required=True, help="structures.extxyz of the source")
    si.add_argument("--out", required=True, help="sites parquet file")

    fi = add("feff-inputs", cmd_feff_inputs, "stage: FEFF inputs and chunk plan of one source")
    fi.add_argument("--spec", required=True, help="JSON: {feff, edge}")
    fi.add_argument("--structures", required=True)
    fi.add_argument("--sites", required=True)
    fi.add_argument("--table", required=True, help="output inputs.parquet")
    fi.add_argument("--chunks", required=True, help="output chunks.json")

    rf = add("run-feff", cmd_run_feff, "stage: run the FEFF jobs of one chunk")
    rf.add_argument("--inputs", required=True, help="inputs.parquet of the source")
    rf.add_argument("--chunk", required=True, type=int)
    rf.add_argument(
        "--workdir", required=True, help="parent directory of the per-site run directories"
    )
    rf.add_argument("--out", required=True, help="chunk result file (.h5)")
    rf.add_argument("--engine", default="feff8l")
    rf.add_argument("--timeout", type=float, default=900.0, help="seconds per site")
    rf.add_argument("--threads", type=int, default=1, help="FEFF runs in parallel")
    rf.add_argument("--keep-files", action="store_true")
    rf.add_argument(
        "--quarantine", default=None, help="folder for failed runs (default: beside --workdir)"
    )
    rf.add_argument("--quiet", action="store_true", help="no progress bar")

    g = add("gather", cmd_gather, "stage: gather FEFF chunks and labels into dataset.h5")
    g.add_argument("--spec", required=True, help="JSON: {settings, absorber, edge}")
    g.add_argument("--chunks", nargs="*", default=[], help="chunk files, or @listfile")
    g.add_argument("--sites", nargs="+", required=True, help="site tables, or @listfile")
    g.add_argument("--rejected", nargs="*", default=[], help="rejected.csv files")
    g.add_argument(
        "--inputs", nargs="*", default=[], help="inputs.parquet files (refused inputs, pending)"
    )
    g.add_argument("--out", required=True)
    g.add_argument(
        "--cache", default=None, help="per-chunk cache directory (default: <out stem>.cache)"
    )
    g.add_argument("--threads", type=int, default=1, help="worker processes for features")

    t = add("train", cmd_train, "stage: train one model")
    t.add_argument("--spec", required=True, help="JSON: one entry of `models`")
    t.add_argument("--dataset", required=True)
    t.add_argument("--models-dir", required=True)
    t.add_argument("--out", required=True, help="pointer file models/<name>.json")
    t.add_argument("--threads", type=int, default=1)

    e = add("evaluate", cmd_evaluate, "stage: metrics and parity plots on the test split")
    e.add_argument("--dataset", required=True)
    e.add_argument("--models", nargs="+", required=True, help="model pointers or directories")
    e.add_argument("--out-dir", required=True)
    e.add_argument("--primary", default=None)

    tu = add("tune", cmd_tune, "stage: hyperparameter search (Optuna) over one model entry")
    tu.add_argument("--spec", required=True, help="JSON: {tune, model}")
    tu.add_argument("--dataset", required=True)
    tu.add_argument("--out-dir", required=True, help="folder for best.json, trials.csv")
    tu.add_argument("--threads", type=int, default=1)
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
