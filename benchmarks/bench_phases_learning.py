"""Learning curve of the sign networks: test sign accuracy against training-set size.

    nice -n 10 .venv/bin/python benchmarks/bench_phases_learning.py --sizes 250 500 1000 2000

For each size the reference and the best network are trained on the first n training
crystals (seed 0; the last 10 % of them for early stopping) and scored on the held-out
test crystals (seed 1) at their best origin with
:func:`mlxas.phases.evaluate.sign_scores` (no maps, so the whole test set is cheap).
Random signs scored the same way give the chance level (above 0.5: the best of 8
origins is taken).  Writes ``benchmarks/results/phases_learning_curve.json`` (value: the
best network's weighted sign accuracy at the largest size) and
``docs/img/phases_learning_curve.png``.
"""

from __future__ import annotations

# isort: off
import _phases_data as data  # first: mlxas loads cctbx's runtime before scipy/pandas

# isort: on
import argparse
import json
import time

import numpy as np
from _common import RESULTS, ROOT, write_result

from mlxas.phases.evaluate import sign_scores
from mlxas.phases.labels import origin_flips
from mlxas.phases.models import predict_signs, train_signs

MODELS = {"reference": {"kind": "sign_mlp"}, "best": {"kind": "sign_mlp_oi"}}


def _plot(curve: dict, chance: dict, d_min: float, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curve.items():
        n = [p["n_train"] for p in points]
        ax.plot(
            n, [p["sign_accuracy_weighted"] for p in points], "o-", label=f"{name}, |E|²-weighted"
        )
        ax.plot(n, [p["sign_accuracy"] for p in points], "s--", label=f"{name}, unweighted")
    ax.axhline(
        chance["sign_accuracy_weighted"],
        color="grey",
        lw=0.8,
        ls="-",
        label="random signs, weighted",
    )
    ax.axhline(
        chance["sign_accuracy"], color="grey", lw=0.8, ls="--", label="random signs, unweighted"
    )
    ax.set_xscale("log")
    ax.set_xlabel("training crystals")
    ax.set_ylabel("test sign accuracy (best origin)")
    ax.set_title(f"P-1 sign networks, d_min {d_min} Å")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--d-min", type=float, default=1.0)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep the points of the existing result file (same d_min and test "
        "set) and train only the sizes it lacks: extends a curve step by step",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    test = data.arrays("test", args.d_min, args.n_test)
    flips = origin_flips("P-1", test["hkl"])
    # chance: random signs, scored the same way (best of the 8 origins)
    rng = np.random.default_rng(args.seed)
    chance = sign_scores(
        rng.random(test["sign"].shape),
        test["sign"],
        test["amplitude"],
        test["e_value"],
        test["mask"],
        flips,
    )
    chance = {k: float(np.mean(v)) for k, v in chance.items() if k != "origin"}
    curve: dict[str, list] = {name: [] for name in MODELS}
    old = RESULTS / "phases_learning_curve.json"
    if args.reuse and old.exists():
        prev = json.loads(old.read_text())
        if prev.get("d_min") == args.d_min and prev.get("n_test") == len(test["sign"]):
            curve = prev["curve"]
    for n in args.sizes:
        train = data.arrays("train", args.d_min, n)
        for name, spec in MODELS.items():
            if any(p["n_train"] == len(train["sign"]) for p in curve[name]):
                continue
            tr = train_signs(
                {**spec, "seed": args.seed},
                train["e_value"],
                train["mask"],
                train["sign"],
                train["hkl"],
                "P-1",
            )
            prob = predict_signs(tr.model, tr.spec, test["e_value"], test["mask"])
            s = sign_scores(
                prob, test["sign"], test["amplitude"], test["e_value"], test["mask"], flips
            )
            point = {
                "n_train": len(train["sign"]),
                **{k: float(np.mean(v)) for k, v in s.items() if k != "origin"},
                "train_seconds": tr.seconds,
                "epochs_run": tr.epochs_run,
            }
            curve[name].append(point)
            curve[name].sort(key=lambda p: p["n_train"])
            print(name, point, flush=True)
    png = ROOT / "docs" / "img" / "phases_learning_curve.png"
    _plot(curve, chance, args.d_min, png)
    write_result(
        "phases_learning_curve",
        curve["best"][-1]["sign_accuracy_weighted"],
        "fraction of signs right (weighted by E squared)",
        value_is=f"best network, {curve['best'][-1]['n_train']} training crystals",
        d_min=args.d_min,
        n_test=len(test["sign"]),
        random_signs=chance,
        curve=curve,
        plot=str(png.relative_to(ROOT)),
        seconds=time.perf_counter() - t0,
    )


if __name__ == "__main__":
    main()
