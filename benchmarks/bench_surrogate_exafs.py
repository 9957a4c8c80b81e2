"""EXAFS accuracy of the surrogates on held-out sites (structure-grouped test split).

For every test site: the normalised residual Σ(Δ(k²chi))²/Σ(k²chi_FEFF)² on the dataset's
k grid (0.05–20 Å⁻¹; also over 3–14 Å⁻¹), and the first-shell R of the same larch feffit
first-shell fit (``mlxas.baseline.fit_chi``: FEFF8L path of the reference crystal,
k 3–14 Å⁻¹, k², R window around the shell) run on the surrogate's and on FEFF's chi(k).

Targets: median residual ≤ 0.02; |R_surrogate − R_FEFF| ≤ 0.005 Å.

    .venv/bin/python benchmarks/bench_surrogate_exafs.py --set cu
    .venv/bin/python benchmarks/bench_surrogate_exafs.py --set au

Writes benchmarks/results/surrogate_exafs_<set>.json and docs/img/surrogate_exafs_<set>_<kind>.png.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_result
from _surrogate_common import ROOT, SETS, load_set, plot_examples, train_or_load

EDGES = {"cu": ("Cu", "K"), "au": ("Au", "L3")}


def evaluate(sur, data, split, element, edge) -> dict:
    """Metrics of one surrogate on the test split; returns them with the arrays to plot."""
    from mlxas.baseline import first_shell_path
    from mlxas.surrogate.metrics import first_shell_r, normalised_residual

    test = data.take(split == 2)
    t0 = time.perf_counter()
    pred = sur.predict(test.env)
    seconds = time.perf_counter() - t0
    grid = sur.grid
    k = grid.values
    feff_w = grid.weight(test.spectra)
    res = normalised_residual(pred.weighted, feff_w)
    band = (k >= 3.0) & (k <= 14.0)
    res_band = normalised_residual(pred.weighted[:, band], feff_w[:, band])
    path = first_shell_path(element, edge)
    r_feff = first_shell_r(k, test.spectra, path)
    r_sur = first_shell_r(k, pred.spectra, path)
    dr = np.abs(r_sur - r_feff)
    out = {
        "n_test": len(test),
        "residual_median": float(np.median(res)),
        "residual_p90": float(np.percentile(res, 90)),
        "residual_max": float(res.max()),
        "residual_3_14_median": float(np.median(res_band)),
        "fraction_residual_le_0.02": float(np.mean(res <= 0.02)),
        "first_shell_dr_median_A": float(np.nanmedian(dr)),
        "first_shell_dr_max_A": float(np.nanmax(dr)),
        "fraction_dr_le_0.005": float(np.mean(dr <= 0.005)),
        "n_fits_refused": int(np.isnan(dr).sum()),
        "first_shell_r_feff_range_A": [float(np.nanmin(r_feff)), float(np.nanmax(r_feff))],
        "predict_seconds": seconds,
        "model_id": sur.model_id,
        "members": sur.members,
        "training_seconds": sur.card["training"]["seconds"],
        "n_train": sur.card["training"]["n_train"],
        "per_source_residual_median": {
            s: float(np.median(res[test.sites["source"].to_numpy() == s]))
            for s in sorted(set(test.sites["source"]))
        },
    }
    if pred.spread is not None:
        from mlxas.surrogate.routing import relative_spread

        spread = relative_spread(pred.weighted, pred.spread)
        out["spread_median"] = float(np.median(spread))
        out["spread_residual_spearman"] = _spearman(spread**2, res)
    labels = [
        f"{s} #{i}" for s, i in zip(test.sites["name"], test.sites["site_index"], strict=True)
    ]
    return out, (feff_w, pred.weighted, res, labels)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv: list[str] | None = None) -> None:
    from mlxas.surrogate.kinds import kind_class
    from mlxas.surrogate.model import TrainSettings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(SETS), default="cu")
    ap.add_argument("--kinds", default="graph,descriptor_mlp")
    ap.add_argument("--members", type=int, default=3, help="ensemble size of the graph model")
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patience", type=int, default=40, help="early-stopping patience (epochs)")
    a = ap.parse_args(argv)
    data, split = load_set(a.set)
    spec = SETS[a.set]
    element, edge = EDGES[a.set]
    results = {}
    for kind_name in a.kinds.split(","):
        kind = kind_class(kind_name)(data.grid, spec["elements"], spec["cutoff"])
        members = a.members if kind_name == "graph" else 1
        settings = TrainSettings(
            epochs=a.epochs, members=members, threads=a.threads, patience=a.patience, batch_size=16
        )
        sur = train_or_load(f"{a.set}_{kind_name}", kind, data, split, settings)
        metrics, (feff_w, sur_w, res, labels) = evaluate(sur, data, split, element, edge)
        results[kind_name] = metrics
        plot_examples(
            ROOT / "docs" / "img" / f"surrogate_exafs_{a.set}_{kind_name}.png",
            data.grid,
            feff_w,
            sur_w,
            res,
            labels,
            f"{a.set}: {kind_name} surrogate vs FEFF8L, held-out sites "
            f"(score: normalised residual)",
        )
        print(kind_name, metrics, flush=True)
    best = min(results, key=lambda k: results[k]["residual_median"])
    write_result(
        f"surrogate_exafs_{a.set}",
        results[best]["residual_median"],
        "normalised residual (median over test sites)",
        target="median ≤ 0.02; first-shell |ΔR| ≤ 0.005 Å",
        best_kind=best,
        n_sites={
            "train": int((split == 0).sum()),
            "val": int((split == 1).sum()),
            "test": int((split == 2).sum()),
        },
        experiments=spec["experiments"],
        feff_settings_hash=str(data.feff.get("settings_hash", "")),
        feff_engine=str(data.feff.get("engine", "")),
        kinds=results,
    )


if __name__ == "__main__":
    main()
