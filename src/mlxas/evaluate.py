"""Metrics, parity plots, error histograms per CN class and a model comparison table.

Every model of an experiment is evaluated on the dataset's test split.  Outputs (paths
of the experiment's :class:`~mlxas.workflow.layout.Layout`):

- metrics per model and target: MSE, RMSE, MAE, R², mean relative error, the same per
  CN class; for ensembles the mean predicted spread and its 1σ coverage (JSON);
- a parity plot per target of the primary model, and of every model;
- histograms of the relative error per CN class for every model and target;
- a comparison table (Markdown and CSV), one row per model and target.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np

from mlxas.metrics import regression_metrics
from mlxas.models.registry import ModelConfigError
from mlxas.workflow.layout import Layout

__all__ = [
    "comparison_table",
    "evaluate",
    "per_class_errors",
    "regression_metrics",
]

TITLES = {
    "cn": "coordination number",
    "r": "mean first-shell distance R (Å)",
    "rdf": "RDF value (bins)",
}


def cn_classes(cn_true: np.ndarray) -> np.ndarray:
    """CN class of each example: the true CN rounded to an integer."""
    return np.rint(np.asarray(cn_true, dtype=float)).astype(int)


def per_class_errors(
    cn_true: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, dict]:
    """Errors grouped by the (rounded) true CN class."""
    classes = cn_classes(cn_true)
    return {
        str(c): regression_metrics(y_true[classes == c], y_pred[classes == c])
        for c in np.unique(classes)
    }


# --- plots --------------------------------------------------------------------------------


def _parity(ax, y_true, y_pred, y_std, target: str, title: str) -> None:
    lo = float(min(y_true.min(), y_pred.min()))
    hi = float(max(y_true.max(), y_pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1)
    if y_std is not None:
        ax.errorbar(y_true, y_pred, yerr=y_std, fmt="none", ecolor="0.6", lw=0.6, alpha=0.6)
    ax.scatter(y_true, y_pred, s=8, alpha=0.6)
    ax.set_xlabel(f"true {TITLES.get(target, target)}")
    ax.set_ylabel(f"predicted {TITLES.get(target, target)}")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")


def _error_histograms(plt, classes: np.ndarray, err: np.ndarray, xlabel: str, title: str):
    """One histogram of ``err`` per CN class, on a shared x axis (paper figs. 7–10 style)."""
    uniq = np.unique(classes)
    ncol = min(4, len(uniq))
    nrow = -(-len(uniq) // ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(3.0 * ncol, 2.4 * nrow), squeeze=False, sharex=True
    )
    finite = err[np.isfinite(err)]
    lim = float(np.percentile(np.abs(finite), 99)) if len(finite) else 1.0
    bins = np.linspace(-lim, lim, 31) if lim > 0 else 31
    for ax, c in zip(axes.flat, uniq, strict=False):
        e = err[classes == c]
        ax.hist(e[np.isfinite(e)], bins=bins, color="C0", alpha=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"CN {c}: n={len(e)}, mean |e|={np.nanmean(np.abs(e)):.3g}", fontsize=8)
    for ax in axes.flat[len(uniq) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title, fontsize=9)
    # Fixed margins: tight_layout costs about a second per many-panel figure.
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16 / nrow, top=1 - 0.12 / nrow,
                        wspace=0.25, hspace=0.45)  # fmt: skip
    return fig


# --- evaluation -----------------------------------------------------------------------------


def _model_inputs(ds, card: dict[str, Any]) -> np.ndarray:
    """Test-split inputs of a model, computed as the model's card describes them."""
    from mlxas.models.data import compute_input, model_inputs
    from mlxas.models.spec import ModelSpec

    spec = ModelSpec.from_dict(card["config"])
    if card["dataset"].get("hash") == ds.hash:
        return model_inputs(ds, spec, "test")
    # Another dataset: compute the model's own features from this dataset's chi(k).
    fc = card["preprocessing"]["features"]
    if fc["k_grid"] != ds.settings["features"]["k_grid"]:
        raise ModelConfigError(
            f"model {card['model_id']} uses the k grid {fc['k_grid']}, "
            f"{getattr(ds, 'path', 'the dataset')} has {ds.settings['features']['k_grid']}"
        )
    return compute_input(ds.chi("test"), fc, spec.input)


def evaluate_model(ds, model, card: dict[str, Any], cn_test: np.ndarray) -> dict[str, Any]:
    """Metrics of one loaded model on the test split, and its predictions per target."""
    from mlxas.models.inference import predict_array, split_targets

    x = _model_inputs(ds, card)
    mean, std = predict_array(model, card, x)
    pred = split_targets(card, mean)
    spread = split_targets(card, std) if std is not None else None
    entry: dict[str, Any] = {
        "model_id": card["model_id"],
        "kind": card["kind"],
        "input": card["preprocessing"]["input"],
        "dataset_hash": card["dataset"].get("hash"),
        "training_seconds": card.get("training", {}).get("seconds"),
        "targets": {},
    }
    preds = {}
    classes = cn_classes(cn_test)
    for t in card["preprocessing"]["targets"]:
        y = np.asarray(ds.labels(t, "test"), dtype=float)
        p = np.asarray(pred[t], dtype=float)
        s = None if spread is None else np.asarray(spread[t], dtype=float)
        if y.ndim == 1:
            m = regression_metrics(y, p)
            m["per_cn_class"] = per_class_errors(cn_test, y, p)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(y != 0, (p - y) / np.abs(y), np.nan)
        else:
            # Vector target (RDF): metrics over all bins; per class over the rows' bins.  A
            # relative error per bin means nothing where the RDF is ~0, so it is left out.
            m = regression_metrics(y.ravel(), p.ravel())
            m["mean_relative_error"] = float("nan")
            m["per_cn_class"] = {
                str(c): regression_metrics(y[classes == c].ravel(), p[classes == c].ravel())
                for c in np.unique(classes)
            }
            rel = np.sqrt(np.mean((p - y) ** 2, axis=1))
        if s is not None:
            m["mean_std"] = float(np.mean(s))
            m["coverage_1sigma"] = float(np.mean(np.abs(p - y) <= s))
        entry["targets"][t] = m
        preds[t] = (y, p, s, rel)
    return {"entry": entry, "preds": preds}


def comparison_table(results: dict[str, Any]) -> tuple[str, str]:
    """(markdown, csv) with one row per model and target, sorted as the config lists them."""
    head = ["model", "kind", "target", "n", "MSE", "RMSE", "MAE", "R2", "mean_rel_error"]
    rows = []
    for name, entry in results["models"].items():
        for t, m in entry["targets"].items():
            rows.append(
                [name, entry["kind"], t, m["n"], m["mse"], m["rmse"], m["mae"], m["r2"],
                 m["mean_relative_error"]]
            )  # fmt: skip

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    csv = [",".join(head)] + [",".join(fmt(v) for v in r) for r in rows]
    return "\n".join(md) + "\n", "\n".join(csv) + "\n"


def _test_cn(ds) -> np.ndarray:
    """True CN of the test examples, for errors per CN class; a dataset without a ``cn``
    label (e.g. the reflections' phase signs) is one class, 0."""
    names = ds.label_names()
    if "cn" in names or not names:
        return np.asarray(ds.labels("cn", "test"), dtype=float)
    return np.zeros(len(ds.labels(names[0], "test")))


def evaluate(
    dataset,
    pointer_files: list[str],
    layout: Layout,
    primary: str | None = None,
) -> dict[str, Any]:
    """Evaluate every model on the test split; write metrics, plots and tables to the
    evaluation paths of ``layout``.

    ``dataset`` is a dataset path or an opened dataset; ``pointer_files`` are
    ``models/<name>.json`` pointers or model folders; ``primary`` names the model whose
    parity plots are also written as the experiment's parity plots (default: the first).
    """
    from mlxas.models.data import opened

    with opened(dataset) as ds:
        return _evaluate(ds, pointer_files, layout, primary)


def _evaluate(ds, pointer_files: list[str], out: Layout, primary: str | None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlxas.models.card import json_safe, load_model

    out.evaluation_dir.mkdir(parents=True, exist_ok=True)
    cn_test = _test_cn(ds)
    if len(cn_test) == 0:
        raise ModelConfigError(
            f"{getattr(ds, 'path', 'dataset')}: the test split is empty; nothing to evaluate"
        )
    results: dict[str, Any] = {
        "dataset_hash": ds.hash,
        "split": "test",
        "n_test": len(cn_test),
        "models": {},
    }
    preds = {}
    for pointer in pointer_files:
        model, card = load_model(pointer)
        res = evaluate_model(ds, model, card, cn_test)
        results["models"][card["name"]] = res["entry"]
        preds[card["name"]] = res["preds"]
    names = list(results["models"])
    primary = primary or names[0]
    if primary not in results["models"]:
        raise ModelConfigError(f"evaluation.primary: no model named {primary!r} (have {names})")
    results["primary"] = primary

    classes = cn_classes(cn_test)
    for name, per_target in preds.items():
        for t, (y, p, s, rel) in per_target.items():
            m = results["models"][name]["targets"][t]
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            if y.ndim == 1:
                _parity(ax, y, p, s, t, f"{name}: MSE {m['mse']:.4g}, MAE {m['mae']:.4g}")
            else:
                _parity(ax, y.ravel(), p.ravel(), None, t, f"{name}: all bins, MSE {m['mse']:.4g}")
            fig.subplots_adjust(left=0.17, right=0.96, bottom=0.12, top=0.93)
            fig.savefig(out.model_plot("parity", name, t), dpi=100)
            if name == primary:
                shutil.copyfile(out.model_plot("parity", name, t), out.parity(t))
            plt.close(fig)
            xlabel = (
                "relative error (pred − true)/true"
                if y.ndim == 1
                else "RMSE of the RDF per example"
            )
            fig = _error_histograms(plt, classes, rel, xlabel, f"{name}: {t} errors per CN class")
            fig.savefig(out.model_plot("errors", name, t), dpi=100)
            plt.close(fig)

    out.metrics.write_text(json.dumps(json_safe(results), indent=2, allow_nan=False))
    md, csv = comparison_table(results)
    out.comparison_md.write_text(md)
    out.comparison_csv.write_text(csv)
    return results
