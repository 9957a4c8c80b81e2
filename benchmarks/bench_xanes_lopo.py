"""Leave-one-prototype-out scores of the XANES geometry class (issue 19).

For each prototype of an experiment's ``dataset.h5`` (the part of the compound name after
the formula, e.g. ``MnO_rock_salt`` -> ``rock_salt``), a model entry of the experiment's
config is fitted by the real trainer (:func:`mlxas.models.train.fit`) on the sites of all
other prototypes (train, validation and test splits alike) and predicts the sites of the
held-out one; the predictions of all folds are pooled and scored with
:func:`mlxas.metrics.classification_metrics`.  A prototype never seen in training is the
hardest test of whether a model reads the geometry rather than recognises the compound.

Only numpy kinds (``random_forest``) are run: they use no validation split.  A Keras
kind would need a validation split for early stopping inside the training prototypes and
29 trainings; refused rather than run with the held-out prototype as validation.  Only
the ``geometry`` target is fitted.  Writes ``benchmarks/results/xanes_lopo.json`` (value:
pooled accuracy of the first model).

    .venv/bin/python benchmarks/bench_xanes_lopo.py --experiment xanes_geometry_small \\
        --models random_forest random_forest_aug
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result

TARGET = "geometry"


def _entry(experiment: str, name: str):
    from mlxas.models.spec import ModelSpec

    cfg = yaml.safe_load((ROOT / f"config/experiments/{experiment}.yaml").read_text())
    entries = {m["name"]: m for m in cfg["models"]}
    if name not in entries:
        raise SystemExit(f"{experiment}: no model entry {name!r} (have {sorted(entries)})")
    spec = ModelSpec.from_config(entries[name]).replace(targets=(TARGET,))
    if spec.model_kind().backend != "numpy":
        raise SystemExit(f"{name}: kind {spec.kind} needs a validation split; numpy kinds only")
    return spec


def _folds(ds, spec):
    """All sites' inputs, class codes and prototypes, in the dataset's row order."""
    from mlxas.models.data import label_classes, model_features_cfg, model_inputs

    x = model_inputs(ds, spec, None)
    codes = np.asarray(ds.labels(TARGET, None))
    sites = ds.sites(["name"])
    if len(sites) != len(x) or len(codes) != len(x):
        raise SystemExit(f"{ds.path}: sites, inputs and labels differ in length")
    proto = sites["name"].str.split("_", n=1).str[1].to_numpy()
    cfg = model_features_cfg(ds.settings["features"], spec)
    return x, codes, proto, cfg, label_classes(ds, TARGET)


def _lopo(ds, spec) -> dict:
    from mlxas.metrics import classification_metrics
    from mlxas.models.train import fit
    from mlxas.models.training_data import TrainingData

    x, codes, proto, cfg, classes = _folds(ds, spec)
    probs = np.zeros((len(x), len(classes)))
    per_proto, t0 = {}, time.perf_counter()
    for p in sorted(set(proto)):
        out = proto == p
        held = (x[out], {TARGET: codes[out]})
        data = TrainingData.from_arrays(
            {"train": (x[~out], {TARGET: codes[~out]}), "val": held, "test": held},
            cfg, classes={TARGET: classes},
        )  # fmt: skip
        model, _ = fit(data, spec, threads=1)
        a, b = data.layout.slices()[TARGET]
        probs[out] = np.asarray(model.predict_on_batch(x[out]))[:, a:b]
        hit = probs[out].argmax(axis=1) == codes[out]
        per_proto[p] = {
            "sites": int(out.sum()),
            "accuracy": float(hit.mean()),
            "classes": sorted({classes[int(c)] for c in codes[out]}),
        }
    metrics = classification_metrics(codes, probs, classes)
    return {"metrics": metrics, "per_prototype": per_proto, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="xanes_geometry_small")
    ap.add_argument("--models", nargs="+", default=["random_forest", "random_forest_aug"])
    args = ap.parse_args()
    import mlxas.dataset

    ds = mlxas.dataset.open(ROOT / "results" / args.experiment / "dataset.h5")
    out = {m: _lopo(ds, _entry(args.experiment, m)) for m in args.models}
    first = out[args.models[0]]["metrics"]
    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1")
    write_result(
        "xanes_lopo",
        float(first["accuracy"]),
        f"leave-one-prototype-out accuracy of the geometry class ({args.models[0]}, pooled)",
        experiment=args.experiment,
        prototypes=len(out[args.models[0]]["per_prototype"]),
        summary={m: {k: r["metrics"][k] for k in keys} for m, r in out.items()},
        models=out,
    )


if __name__ == "__main__":
    main()
