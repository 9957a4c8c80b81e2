"""``mlxas phases predict`` (also ``python -m mlxas.phases predict``): phases and a
density map for measured single-crystal data.

mlxas phases predict data.hkl --ins data.ins --model models/best_d1.0 --out out/
mlxas phases predict data.hkl --ins data.res --method charge_flipping --out out/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlxas.phases.charge_flip import DEFAULT_TRIALS
from mlxas.phases.shelx import ShelxError

PREDICT_HELP = "phase a SHELX HKLF 4 file (sign model or charge flipping)"
PREDICT_DESCRIPTION = (
    "Merge the reflections of a SHELX HKLF 4 file (cell and space group from the "
    ".ins/.res), phase them with a sign model or charge flipping, and write phases.csv, "
    "map.ccp4 and summary.json to --out."
)


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``phases predict``."""
    p.add_argument("hkl", type=Path, help="SHELX HKLF 4 file (h k l F² σ, 3I4,2F8.2)")
    p.add_argument(
        "--ins",
        type=Path,
        help="the .ins/.res with CELL, LATT and SYMM "
        "(default: the .ins, else .res, beside the .hkl)",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="a sign model: the workflow's (model folder, models/<name>.json or "
        "models/latest) or a folder written by save_sign_model",
    )
    p.add_argument("--method", choices=["model", "charge_flipping"], default="model")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="charge flipping's first random seed (trial t starts from seed + t)",
    )
    p.add_argument(
        "--trials",
        type=_positive,
        default=DEFAULT_TRIALS,
        help="charge flipping: independent starts; the solution with the lowest R1 is kept "
        "(default: %(default)s)",
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m mlxas.phases", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    add_predict_arguments(
        sub.add_parser("predict", help=PREDICT_HELP, description=PREDICT_DESCRIPTION)
    )
    return ap


def _ins_beside(hkl: Path) -> Path:
    for suffix in (".ins", ".res"):
        if (cand := hkl.with_suffix(suffix)).exists():
            return cand
    raise ShelxError(f"{hkl}: no .ins or .res beside it; give one with --ins")


def run_predict(args: argparse.Namespace) -> int:
    """Run ``phases predict`` from parsed arguments; 2 on a bad input file."""
    from mlxas.phases.predict import predict_measured

    try:
        ins = args.ins or _ins_beside(args.hkl)
        predict_measured(
            args.hkl,
            ins,
            args.out,
            model_dir=args.model,
            method=args.method,
            seed=args.seed,
            trials=args.trials,
        )
    except (ShelxError, ValueError) as exc:
        print(f"mlxas: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(json.loads((args.out / "summary.json").read_text()), indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_predict(_parser().parse_args(argv))
