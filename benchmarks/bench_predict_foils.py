"""predict_foils: measured Cu, Ni and Pt foils read by models trained only on FEFF spectra,
beside the conventional first-shell feffit.

For each foil in ``tests/data/experimental/`` (truth from the README there: fcc, CN 12,
first-shell R), the element's model (``results/foil_<el>/models/ensemble.json``, made by
``snakemake --configfile config/experiments/foil_<el>.yaml``, or with ``--bundled`` the
model that ships in ``models/foil_<el>/``) predicts CN and R through
:class:`mlxas.predict.predictor.Predictor` — the code behind ``mlxas predict`` — and
:func:`mlxas.baseline.fit_files` fits the same file.  ``value`` is the model's worst |R
error| over the foils (Å); ``targets_met`` says whether every foil has |CN − 12| ≤ 1.0
and |R error| ≤ 0.03 Å.

``--md DATASET`` adds simulated disordered spectra: the test split of an MD dataset
(e.g. ``results/au150_md/dataset.h5``), fitted by the baseline and, with ``--md-model``,
predicted by that experiment's model — where each approach wins.

    .venv/bin/python benchmarks/bench_predict_foils.py [--results results | --bundled] [--md DATASET
        --md-model POINTER --md-max 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result
from _measured import EXPERIMENTAL, baseline_file, predict_file, truth_table

FOILS = {"cu": "Cu", "ni": "Ni", "pt": "Pt"}
CN_TOL, R_TOL = 1.0, 0.03  # targets: CN within ±1.0 of 12, R within ±0.03 Å


def predict_foil(pointer: Path, xdi: Path, repeats: int) -> dict:
    """The model's reading of one foil (:func:`_measured.predict_file`) as this
    benchmark's record: CN, R, sigma² of the first shell with their sd."""
    (rec,) = predict_file(pointer, xdi, repeats)
    if rec["status"] != "ok":
        return rec
    v = rec.pop("values")
    return {
        **rec,
        "cn": v["cn"],
        "cn_std": v.get("cn_std"),
        "r": v["r"],
        "r_std": v.get("r_std"),
        "sigma2": {name: x for name, x in v.items() if name.startswith("sigma2_")},
        "ood": v.get("ood"),
        "ood_score": v.get("ood_score"),
    }


def md_comparison(dataset: Path, pointer: Path | None, n_max: int, cache: Path) -> dict:
    """Baseline (and model) on the test split of an MD dataset: MSE of CN and R."""
    import mlxas.dataset
    from mlxas.baseline import FitSettings, first_shell_path, fit_chi

    with mlxas.dataset.open(dataset) as ds:
        k = np.asarray(ds.grid("k"))
        chi = np.asarray(ds.chi("test"))
        cn = np.asarray(ds.labels("cn", "test"))
        r = np.asarray(ds.labels("r", "test"))
        absorber, edge = str(ds.attrs["absorber"]), str(ds.attrs["edge"])
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(chi), size=min(n_max, len(chi)), replace=False))
    path = first_shell_path(absorber, edge, cache_dir=cache)
    fits = [fit_chi(k, chi[i], path, FitSettings()) for i in idx]
    ok = np.array([f.status == "ok" for f in fits])
    f_cn = np.array([f.cn for f in fits])
    f_r = np.array([f.r for f in fits])
    out = {
        "dataset": str(dataset),
        "n_test": len(chi),
        "n_fitted": int(ok.sum()),
        "baseline": {
            "cn_mse": float(np.mean((f_cn[ok] - cn[idx][ok]) ** 2)),
            "r_mse": float(np.mean((f_r[ok] - r[idx][ok]) ** 2)),
            "seconds_median": statistics.median(f.seconds for f in fits),
        },
        "predict_mean": {
            "cn_mse": float(np.var(cn[idx])),
            "r_mse": float(np.var(r[idx])),
        },
    }
    if pointer is not None:
        from mlxas.models import load_model, predict_array, split_targets
        from mlxas.spectra import compute_features

        model, card = load_model(pointer)
        x = compute_features(chi[idx], card["preprocessing"]["features"])[
            card["preprocessing"]["input"]
        ]
        mean, _ = predict_array(model, card, x)
        cols = split_targets(card, mean)
        out["model"] = {"pointer": str(pointer), "model_id": card["model_id"]}
        for t, truth in (("cn", cn[idx]), ("r", r[idx])):
            if t in cols:
                out["model"][f"{t}_mse"] = float(np.mean((cols[t] - truth) ** 2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(ROOT / "results"), help="folder of experiments")
    ap.add_argument(
        "--bundled",
        action="store_true",
        help="read the models that ship with mlxas (models/foil_<el>/) instead of --results",
    )
    ap.add_argument("--model-name", default="ensemble", help="models/<name>.json per experiment")
    ap.add_argument("--repeats", type=int, default=5, help="timed predictions per foil")
    ap.add_argument("--md", help="an MD dataset.h5 for the disordered comparison")
    ap.add_argument("--md-model", help="model pointer trained on that dataset")
    ap.add_argument("--md-max", type=int, default=300, help="test spectra to fit at most")
    a = ap.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cache = Path(tempfile.mkdtemp(prefix="mlxas-bench-foils-"))
    truth = {low: truth_table()[f"{low}_metal_rt.xdi"]["shells"][0] for low in FOILS}
    foils: dict[str, dict] = {}
    load = os.getloadavg()[0]
    for low, el in FOILS.items():
        xdi = EXPERIMENTAL / f"{low}_metal_rt.xdi"
        t = truth[low]
        entry: dict = {"file": str(xdi.relative_to(ROOT)), "truth": t}
        folder = (
            ROOT / "models" / f"foil_{low}"
            if a.bundled
            else Path(a.results) / f"foil_{low}" / "models"
        )
        pointer = folder / f"{a.model_name}.json"
        if pointer.is_file():
            m = predict_foil(pointer, xdi, a.repeats)
            m["pointer"] = str(pointer)
            if m["status"] == "ok":
                m["cn_error"] = m["cn"] - t["cn"]
                m["r_error"] = m["r"] - t["r"]
            entry["model"] = m
        else:
            entry["model"] = {"status": "missing", "reason": f"no model {pointer}"}
        (b,) = baseline_file(xdi, cache)
        if b["status"] == "ok":
            b["cn_error"] = b["cn"] - t["cn"]
            b["r_error"] = b["r"] - t["r"]
        entry["feffit"] = b
        foils[el] = entry

    models = [f["model"] for f in foils.values()]
    done = all(m["status"] == "ok" for m in models)
    worst_r = max(abs(m["r_error"]) for m in models) if done else float("nan")
    worst_cn = max(abs(m["cn_error"]) for m in models) if done else float("nan")
    met = done and worst_r <= R_TOL and worst_cn <= CN_TOL
    fe = [f["feffit"] for f in foils.values() if f["feffit"]["status"] == "ok"]
    extra: dict = {
        "targets": {"cn_abs_error_max": CN_TOL, "r_abs_error_max": R_TOL},
        "targets_met": bool(met),
        "worst_cn_abs_error": worst_cn,
        "feffit_worst_r_abs_error": max(abs(f["r_error"]) for f in fe) if fe else None,
        "feffit_worst_cn_abs_error": max(abs(f["cn_error"]) for f in fe) if fe else None,
        "foils": foils,
        "load_average": load,
        "models": "bundled (models/foil_<el>/)" if a.bundled else os.path.relpath(a.results, ROOT),
    }
    if a.md:
        extra["md"] = md_comparison(
            Path(a.md), Path(a.md_model) if a.md_model else None, a.md_max, cache
        )
    write_result("predict_foils", worst_r, "Å", **extra)


if __name__ == "__main__":
    main()
