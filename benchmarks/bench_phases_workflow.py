"""The reference sign network as the workflow trains it, scored like the library's.

Reads a finished run of ``config/experiments/phases_p1.yaml`` (or a copy of it): the
test split of its ``dataset.h5`` and its ``models/latest``, predicts the signs of every
test crystal with :func:`mlxas.phases.predict.sign_predictor` (the path of ``mlxas phases
predict``) and scores them with :func:`mlxas.phases.evaluate.sign_scores` at each
crystal's best origin, beside random signs scored the same way, as
``bench_phases_learning.py`` does.  Writes ``benchmarks/results/phases_workflow.json``.

    .venv/bin/python benchmarks/bench_phases_workflow.py results/phases_p1_small
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import write_result

import mlxas  # noqa: F401  (first: loads cctbx's C++ runtime before scipy/pandas)
from mlxas.dataset import open as open_dataset
from mlxas.phases.evaluate import sign_scores
from mlxas.phases.labels import origin_flips
from mlxas.phases.predict import sign_predictor
from mlxas.phases.reflection_list import reflection_list
from mlxas.workflow.layout import Layout, ModelFiles


def _mean(scores: dict) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in scores.items() if k != "origin"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="results/<experiment> of a finished phases run")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random-sign level")
    args = ap.parse_args()
    layout = Layout(args.run)
    predict, settings, _ = sign_predictor(layout.latest)
    with open_dataset(layout.dataset) as ds:
        arrays = {n: ds.features(n, "test") for n in ("amplitude", "e_value", "mask")}
        sign = ds.labels("sign", "test")
        sizes = ds.sizes
    hkl = reflection_list(settings.space_group, settings.index_max)
    flips = origin_flips(settings.space_group, hkl)
    prob = predict(arrays["e_value"], arrays["mask"])
    args_ = (sign, arrays["amplitude"], arrays["e_value"], arrays["mask"], flips)
    model = _mean(sign_scores(prob, *args_))
    rng = np.random.default_rng(args.seed)
    chance = _mean(sign_scores(rng.random(sign.shape), *args_))
    card = json.loads(ModelFiles(layout.latest).card.read_text())
    write_result(
        "phases_workflow",
        model["sign_accuracy_weighted"],
        "fraction of signs right (weighted by E squared), best origin",
        value_is=f"model {card['name']} ({card['kind']}) trained by the workflow, test split",
        run=str(args.run),
        d_min=settings.d_min,
        index_max=settings.index_max,
        n_reflections=len(hkl),
        split_sizes=sizes,
        model=model,
        random_signs=chance,
        training={k: card["training"][k] for k in ("seconds", "epochs_run", "best_epoch")},
    )


if __name__ == "__main__":
    main()
