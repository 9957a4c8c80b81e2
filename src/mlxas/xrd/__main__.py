"""Command line of the powder-XRD tools: ``python -m mlxas.xrd <command> --help``.

Commands: ``dataset`` (structures → labels → patterns → HDF5), ``train`` (one classifier),
``evaluate`` (test split, clean and augmented; metrics and confusion matrices),
``predict`` (measured pattern files; with ``--labels`` the accuracy table of a labelled
folder).  They become rules and ``mlxas`` subcommands when the workflow runs the engine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _dataset(args: argparse.Namespace) -> int:
    from mlxas.xrd.dataset import build_dataset, structure_tasks
    from mlxas.xrd.settings import XRDSettings, settings_from_dict

    section = json.loads(Path(args.settings).read_text()) if args.settings else {}
    settings = settings_from_dict(section) if section else XRDSettings()
    limit = args.pyxtal_time_limit or None
    tasks = structure_tasks(args.random, args.prototypes, args.seed, limit)
    summary = build_dataset(
        args.out, tasks, settings, n_patterns=args.patterns, clean_test=not args.no_clean,
        workers=args.workers, split_seed=args.seed,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    from mlxas.xrd.train import train_classifier

    overrides = json.loads(args.params) if args.params else {}
    card = train_classifier(
        args.dataset, args.out, args.kind, epochs=args.epochs, batch_size=args.batch_size,
        threads=args.threads, seed=args.seed, params=overrides, max_train=args.max_train,
    )  # fmt: skip
    print(json.dumps(card["metrics"], indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from mlxas.xrd.evaluate import evaluate_models

    report = evaluate_models(args.models, args.dataset, args.out, clean=args.clean)
    print(json.dumps(report["summary"], indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from mlxas.xrd.predict import predict_command

    return predict_command(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlxas.xrd", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dataset", help="simulate a dataset of random and prototype crystals")
    d.add_argument("--out", required=True, help="dataset file (.h5)")
    d.add_argument(
        "--random", type=int, default=2300, help="random crystals (spread over 230 groups)"
    )
    d.add_argument("--prototypes", type=int, default=360, help="prototype instances")
    d.add_argument("--patterns", type=int, default=5, help="patterns per structure")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--workers", type=int, default=1, help="worker processes")
    d.add_argument(
        "--pyxtal-time-limit", type=float, default=5.0,
        help="CPU s per pyxtal placement before the composition is given up (a few take "
        "pyxtal many minutes); 0: no limit, fully seed-reproducible",
    )  # fmt: skip
    d.add_argument("--settings", help="JSON file with engine settings (the config's xrd section)")
    d.add_argument("--no-clean", action="store_true", help="skip the effect-free test patterns")
    d.set_defaults(func=_dataset)

    t = sub.add_parser("train", help="train one classifier on a dataset")
    t.add_argument("--dataset", required=True)
    t.add_argument("--out", required=True, help="model directory")
    t.add_argument("--kind", required=True, help="npcnn | cnn_pool | logq_cnn")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--max-train", type=int, default=None, help="use at most this many training patterns"
    )
    t.add_argument("--params", help="JSON of builder parameters overriding the kind's defaults")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="metrics and confusion matrices on the test split")
    e.add_argument("--dataset", required=True)
    e.add_argument("--clean", help="the effect-free test patterns (<dataset>_clean.h5)")
    e.add_argument("--models", nargs="+", required=True, help="model directories")
    e.add_argument("--out", required=True, help="evaluation folder")
    e.set_defaults(func=_evaluate)

    r = sub.add_parser("predict", help="classify measured pattern files")
    r.add_argument("paths", nargs="+", help="pattern files or folders")
    r.add_argument("--model", required=True, help="model directory")
    r.add_argument("--wavelength", type=float, default=None, help="Å; overrides file headers")
    r.add_argument("--top", type=int, default=5, help="space groups listed per pattern")
    r.add_argument(
        "--labels",
        help="CSV (file, space_group[, crystal_system, structure_type]) of a labelled folder",
    )
    r.add_argument(
        "--out", help="write predictions (JSON) and, with --labels, the accuracy table here"
    )
    r.set_defaults(func=_predict)

    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
