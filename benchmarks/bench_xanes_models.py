"""Geometry models on the XANES dataset: compound-grouped test, leave-one-prototype-out,
and the two measured Mn K-edge spectra.

1. Split ``xanes_dataset.h5`` by compound (scikit-learn ``StratifiedGroupKFold``, 5 folds:
   test fold 0, validation fold 1); train ``random_forest``, ``cnn1d_class`` and
   ``multitask`` with augmentation; accuracy, balanced accuracy, per-class F1, confusion
   matrices (``docs/img/xanes_confusion_<model>.png``) on the test split.
2. Leave one prototype out for the kinds in ``--lopo`` (test: all sites of the prototype).
3. Predict ``tests/data/experimental/kmno4_rt.xdi`` (tetrahedral Mn(VII)) and
   ``mno_rt.xdi`` (octahedral Mn(II)) with every model, also with models trained
   without the simulated MnO and KMnO4 compounds.  The measured spectra are never used
   to train, tune or select anything.

Writes ``benchmarks/results/xanes_models.json`` and ``benchmarks/results/xanes_measured.json``;
models are saved under ``<dataset folder>/models/<name>/``.

    nice -n 10 .venv/bin/python benchmarks/bench_xanes_models.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result

KINDS = ("random_forest", "cnn1d_class", "multitask")
MEASURED = {
    "kmno4_rt.xdi": {"geometry": "tetrahedral", "cn": 4, "r": 1.61, "oxidation_state": 7},
    "mno_rt.xdi": {"geometry": "octahedral", "cn": 6, "r": 2.222, "oxidation_state": 2},
}
EXCLUDED = ("MnO_rock_salt", "KMnO4_scheelite")


def _load(path: Path):
    import h5py

    with h5py.File(path) as h5:
        norm = h5["norm"][:].astype(float)
        grid = h5["grid"][:]
        labels = {k: h5[f"labels/{k}"][:] for k in ("geometry_index", "cn", "r", "oxidation_state")}
        labels["geometry_index"] = labels["geometry_index"].astype(int)
        meta = {k: h5[f"meta/{k}"][:].astype(str) for k in ("compound", "prototype", "element")}
    return norm, grid, labels, meta


def _take(labels, idx):
    return {k: v[idx] for k, v in labels.items()}


def _inputs(norm, grid):
    return np.stack([norm, np.gradient(norm, grid[1] - grid[0], axis=1)], axis=-1)


OVERRIDES: dict = {}


def _train_eval(kind, norm, grid, labels, split, aug, seed=0):
    from mlxas.xanes.evaluate import classification_metrics, regression_metrics
    from mlxas.xanes.models import fit

    t0 = time.time()
    model = fit(
        {"kind": kind, "seed": seed, **OVERRIDES},
        (norm[split["train"]], _take(labels, split["train"])),
        (norm[split["val"]], _take(labels, split["val"])),
        grid,
        aug,
    )
    seconds = time.time() - t0
    pred = model.predict(_inputs(norm[split["test"]], grid))
    truth = _take(labels, split["test"])
    m = classification_metrics(truth["geometry_index"], pred["probabilities"])
    m.update(regression_metrics(truth, pred))
    m["train_seconds"] = round(seconds, 1)
    return model, m


def _measured(models: dict, grid) -> dict:
    from mlxas.spectra.measured import read_spectra
    from mlxas.xanes.features import XanesFeatureSettings, xanes_features
    from mlxas.xanes.labels import GEOMETRY_CLASSES

    st = XanesFeatureSettings()
    assert np.allclose(st.grid, grid)
    out = {}
    for name, truth in MEASURED.items():
        spec = read_spectra(ROOT / "tests/data/experimental" / name)[0]
        feats = xanes_features([(spec.energy, spec.mu)], st, calculated=False)
        x = feats.stacked()
        rec = {"truth": truth, "e0_eV": float(feats.e0[0]), "models": {}}
        for mname, model in models.items():
            p = model.predict(x)
            score, flag = model.ood(x)
            prob = p["probabilities"][0]
            r = {
                "probabilities": {
                    c: round(float(v), 4) for c, v in zip(GEOMETRY_CLASSES, prob, strict=True)
                },
                "predicted": GEOMETRY_CLASSES[int(np.argmax(prob))],
                "correct": GEOMETRY_CLASSES[int(np.argmax(prob))] == truth["geometry"],
                "ood_score": float(score[0]),
                "ood": bool(flag[0]),
            }
            for t in ("cn", "r", "oxidation_state"):
                if t in p:
                    r[t] = round(float(p[t][0]), 3)
            if "oxidation_state" in p:
                r["oxidation_state_within_1"] = (
                    abs(r["oxidation_state"] - truth["oxidation_state"]) <= 1
                )
            rec["models"][mname] = r
        out[name] = rec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "results/xanes_geometry/xanes_dataset.h5")
    ap.add_argument("--lopo", default="random_forest", help="kinds for leave-one-prototype-out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override the networks' epochs")
    ap.add_argument("--copies", type=int, default=None, help="override augmented copies")
    ap.add_argument("--no-write", action="store_true", help="smoke test: write no results")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from mlxas.xanes.augment import AugmentSettings
    from mlxas.xanes.evaluate import grouped_split, leave_one_group_out, plot_confusion

    if args.epochs:
        OVERRIDES["epochs"] = args.epochs
    if args.copies is not None:
        OVERRIDES["copies"] = args.copies
    norm, grid, labels, meta = _load(args.data)
    aug = AugmentSettings()
    split = grouped_split(labels["geometry_index"], meta["compound"], seed=args.seed)
    results, models = {}, {}
    for kind in KINDS:
        model, m = _train_eval(kind, norm, grid, labels, split, aug, args.seed)
        if not args.no_write:
            model.save(args.data.parent / "models" / kind)
        img = Path("/tmp") if args.no_write else ROOT / "docs/img"
        plot_confusion(m["confusion"], f"{kind}: compound-grouped test split",
                       img / f"xanes_confusion_{kind}.png")  # fmt: skip
        results[kind] = m
        models[kind] = model
        print(kind, {k: m[k] for k in ("accuracy", "balanced_accuracy")}, flush=True)
    # Models that never saw the simulated MnO and KMnO4 compounds.
    keep = ~np.isin(meta["compound"], EXCLUDED)
    sub = {k: np.intersect1d(v, np.nonzero(keep)[0]) for k, v in split.items()}
    for kind in ("random_forest", "multitask"):
        model, _ = _train_eval(
            kind, norm, grid, labels, {**sub, "test": sub["test"]}, aug, args.seed
        )
        models[f"{kind}_without_MnO_KMnO4"] = model
    lopo = {}
    for kind in [k for k in args.lopo.split(",") if k]:
        folds = leave_one_group_out(
            labels["geometry_index"], meta["compound"], meta["prototype"], args.seed
        )
        per = {}
        for proto, s in folds.items():
            _, m = _train_eval(kind, norm, grid, labels, s, aug, args.seed)
            per[proto] = {k: m[k] for k in ("n", "accuracy", "support")}
        n = sum(v["n"] for v in per.values())
        lopo[kind] = {
            "pooled_accuracy": sum(v["accuracy"] * v["n"] for v in per.values()) / n,
            "per_prototype": per,
        }
        print("lopo", kind, lopo[kind]["pooled_accuracy"], flush=True)
    measured = _measured(models, grid)
    if args.no_write:
        print(json.dumps({"test": results, "lopo": lopo, "measured": measured}, default=str)[:3000])
        return
    sizes = {k: len(v) for k, v in split.items()}
    write_result(
        "xanes_models",
        results["cnn1d_class"]["accuracy"],
        "accuracy of cnn1d_class on the compound-grouped test split",
        split={"sizes": sizes, "n_test_compounds": len(set(meta["compound"][split["test"]]))},
        targets={"accuracy": 0.90, "balanced_accuracy": 0.85},
        test=results,
        leave_one_prototype_out=lopo,
        augment=aug.__dict__,
    )
    write_result(
        "xanes_measured",
        float(
            np.mean(
                [
                    r["correct"]
                    for v in measured.values()
                    for k, r in v["models"].items()
                    if k in KINDS
                ]
            )
        ),
        "share of (spectrum, model) pairs classified correctly (the three main models)",
        spectra=measured,
        never_trained_on=True,
    )


if __name__ == "__main__":
    main()
