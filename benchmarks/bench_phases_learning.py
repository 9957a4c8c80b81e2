"""Learning curve of the sign networks: test sign accuracy against training-set size.

    nice -n 10 .venv/bin/python benchmarks/bench_phases_learning.py --sizes 250 500 1000 2000

For each size the reference and the best network are trained on the first n training
crystals (seed 0; the last 10 % of them for early stopping) and scored on the held-out
test crystals (seed 1) at their best origin with
:func:`mlxas.phases.evaluate.sign_scores` (no maps, so the whole test set is cheap).
Random signs scored the same way give the chance level (above 0.5: the best of 8
origins is taken).  ``--max-epochs`` caps the epochs of a network (default: its kind's
own limit, early stopping decides); each point records the cap it ran under, the epoch
of its best validation loss (whose weights it keeps) and whether the cap stopped it.
``--models`` trains only some of the networks, so that with ``--reuse`` a curve can be
extended network by network (the result file is merged again just before it is written,
so two such runs may go side by side).  Writes
``benchmarks/results/phases_learning_curve.json`` (value: the best network's weighted
sign accuracy at the largest size; ``commands``: every run that added points) and
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
from _common import RESULTS, ROOT, command, write_result

from mlxas.phases.evaluate import sign_scores
from mlxas.phases.labels import origin_flips
from mlxas.phases.models import predict_signs, train_signs

MODELS = {"reference": {"kind": "sign_mlp"}, "best": {"kind": "sign_mlp_oi"}}


def _plot(curve: dict, chance: dict, d_min: float, n_test: int, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"reference": "tab:blue", "best": "tab:green"}
    for name, points in curve.items():
        n = [p["n_train"] for p in points]
        c = colors.get(name)
        ax.plot(
            n,
            [p["sign_accuracy_weighted"] for p in points],
            "o-",
            color=c,
            label=f"{name}, |E|²-weighted",
        )
        ax.plot(
            n,
            [p["sign_accuracy"] for p in points],
            "s--",
            color=c,
            mfc="none",
            label=f"{name}, unweighted",
        )
        capped = [p for p in points if p.get("stopped_by_cap")]
        if capped:
            caps = sorted({p["max_epochs"] for p in capped})
            ax.plot(
                [p["n_train"] for p in capped],
                [p["sign_accuracy_weighted"] for p in capped],
                "o",
                ms=11,
                mfc="none",
                mec="black",
                label=f"{name}: stopped by the epoch cap ({', '.join(map(str, caps))})",
            )
    ax.axhline(
        chance["sign_accuracy_weighted"],
        color="grey",
        lw=1,
        ls="-",
        label="random signs (chance), weighted",
    )
    ax.axhline(
        chance["sign_accuracy"],
        color="grey",
        lw=1,
        ls="--",
        label="random signs (chance), unweighted",
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.xaxis.set_minor_formatter(
        FuncFormatter(lambda x, _: f"{x:,.0f}" if str(round(x))[0] in "25" else "")
    )
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("training crystals (log scale)")
    ax.set_ylabel("test sign accuracy (best origin)")
    ax.set_title(f"P-1 sign networks, d_min {d_min} Å, {n_test} test crystals")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def _means(scores: dict) -> dict[str, float]:
    """Mean of each per-crystal score over the test crystals, with its standard error
    (``<key>_sem``: standard deviation over the crystals / sqrt(number of crystals))."""
    out: dict[str, float] = {}
    for k, v in scores.items():
        if k == "origin":
            continue
        v = np.asarray(v, float)
        out[k] = float(np.mean(v))
        out[f"{k}_sem"] = float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--d-min", type=float, default=1.0)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="cap on the training epochs of every network trained in this run (default: "
        "none beyond the kind's own epochs; early stopping with patience still applies)",
    )
    ap.add_argument(
        "--models",
        nargs="+",
        choices=sorted(MODELS),
        default=list(MODELS),
        help="networks to train in this run (default: all)",
    )
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
    chance = _means(chance)
    curve: dict[str, list] = {name: [] for name in MODELS}
    old = RESULTS / "phases_learning_curve.json"
    commands: list[str] = []

    def merge_previous() -> None:
        """Add the points of the existing result file that ``curve`` lacks."""
        nonlocal commands
        if not (args.reuse and old.exists()):
            return
        prev = json.loads(old.read_text())
        if prev.get("d_min") != args.d_min or prev.get("n_test") != len(test["sign"]):
            return
        commands = prev.get("commands", [prev["command"]])
        for name, points in prev["curve"].items():
            have = {p["n_train"] for p in curve.setdefault(name, [])}
            curve[name].extend(p for p in points if p["n_train"] not in have)
            curve[name].sort(key=lambda p: p["n_train"])

    merge_previous()
    for n in args.sizes:
        train = data.arrays("train", args.d_min, n)
        for name in args.models:
            spec = MODELS[name]
            if any(p["n_train"] == len(train["sign"]) for p in curve[name]):
                continue
            cap = {} if args.max_epochs is None else {"epochs": args.max_epochs}
            tr = train_signs(
                {**spec, **cap, "seed": args.seed},
                train["e_value"],
                train["mask"],
                train["sign"],
                train["hkl"],
                "P-1",
                verbose=2,  # one line per epoch: the log shows how far a long run is
            )
            prob = predict_signs(tr.model, tr.spec, test["e_value"], test["mask"])
            s = sign_scores(
                prob, test["sign"], test["amplitude"], test["e_value"], test["mask"], flips
            )
            point = {
                "n_train": len(train["sign"]),
                **_means(s),
                "train_seconds": tr.seconds,
                "epochs_run": tr.epochs_run,
                "max_epochs": int(tr.spec["epochs"]),
                "best_epoch": int(np.argmin(tr.history["val_loss"])) + 1,
                "stopped_by_cap": tr.epochs_run >= int(tr.spec["epochs"]),
                "date": time.strftime("%Y-%m-%d"),
            }
            curve[name].append(point)
            curve[name].sort(key=lambda p: p["n_train"])
            print(name, point, flush=True)
    merge_previous()  # points another run wrote meanwhile
    png = ROOT / "docs" / "img" / "phases_learning_curve.png"
    _plot(curve, chance, args.d_min, len(test["sign"]), png)
    head = "best" if curve["best"] else "reference"
    write_result(
        "phases_learning_curve",
        curve[head][-1]["sign_accuracy_weighted"],
        "fraction of signs right (weighted by E squared)",
        value_is=f"{head} network, {curve[head][-1]['n_train']} training crystals",
        d_min=args.d_min,
        n_test=len(test["sign"]),
        random_signs=chance,
        curve=curve,
        commands=[*commands, command()],
        plot=str(png.relative_to(ROOT)),
        seconds=time.perf_counter() - t0,
    )


if __name__ == "__main__":
    main()
