"""Geometry models of a XANES experiment on perturbed simulated test spectra.

Measured XANES differ from FEFF10 ones by broadening, edge-position errors, normalisation
errors and noise.  Without looking at measured data, this benchmark asks how much each
trained model of an experiment (``results/<experiment>/models/<name>.json``) loses when
its compound-grouped test spectra are perturbed that way: the stored test inputs are
perturbed ``--draws`` times with :func:`mlxas.models.edge_augment.augment_input` (the
ranges of ``augment.xanes`` with its defaults, scaled by ``--scale``; seeded), and the
pooled predictions are scored with :func:`mlxas.metrics.classification_metrics` beside
the clean ones.  Models trained with the same augmentation have seen this perturbation
family; the comparison says whether that helps on it, not on beamline data.

Writes ``benchmarks/results/xanes_robustness.json`` (value: perturbed test accuracy of
``--primary``).

    .venv/bin/python benchmarks/bench_xanes_robustness.py --experiment xanes_geometry_small
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result

TARGET = "geometry"


def _perturbation(scale: float):
    from mlxas.xanes.augment import AugmentSettings

    d = AugmentSettings()
    return AugmentSettings(**{
        k: (getattr(d, k)[0] * scale, getattr(d, k)[1] * scale)
        for k in ("shift", "gauss_fwhm", "lorentz_fwhm", "scale", "slope", "noise")
    })  # fmt: skip


def _scores(pointer: Path, dataset: Path, settings, draws: int, seed: int) -> dict:
    from mlxas.metrics import classification_metrics
    from mlxas.models import load_model
    from mlxas.models.data import load_training_data, opened
    from mlxas.models.edge_augment import augment_input, edge_grid
    from mlxas.models.inference import predict_array, split_targets
    from mlxas.models.spec import ModelSpec

    model, card = load_model(pointer)
    spec = ModelSpec.from_dict(card["config"])
    with opened(dataset) as ds:
        data = load_training_data(ds, spec, splits=("test",))
    test = data.splits["test"]
    codes = test.y[TARGET].ravel()
    classes = card["outputs"]["classes"][TARGET]

    def probs(x):
        mean, _ = predict_array(model, card, x)
        return np.asarray(split_targets(card, mean)[TARGET])

    rng = np.random.default_rng(seed)
    grid = edge_grid(data)
    noisy = [augment_input(test.x, grid, settings, rng) for _ in range(draws)]
    clean = classification_metrics(codes, probs(test.x), classes)
    pert = classification_metrics(
        np.tile(codes, draws), np.concatenate([probs(x) for x in noisy]), classes
    )
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1")
    return {"clean": {k: clean[k] for k in keys}, "perturbed": {k: pert[k] for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="xanes_geometry_small")
    ap.add_argument("--primary", default="random_forest")
    ap.add_argument("--draws", type=int, default=20, help="perturbed copies of the test split")
    ap.add_argument("--scale", type=float, default=1.0, help="factor on the default ranges")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    settings = _perturbation(args.scale)
    root = ROOT / "results" / args.experiment
    out = {
        p.stem: _scores(p, root / "dataset.h5", settings, args.draws, args.seed)
        for p in sorted((root / "models").glob("*.json"))
    }
    write_result(
        "xanes_robustness",
        float(out[args.primary]["perturbed"]["accuracy"]),
        f"test accuracy of the geometry class on perturbed test spectra ({args.primary})",
        experiment=args.experiment,
        perturbation={k: list(v) for k, v in vars(settings).items()},
        draws=args.draws,
        note="simulated test spectra only; no measured spectrum is used",
        models=out,
    )


if __name__ == "__main__":
    main()
