"""Metrics, parity plots, error histograms per CN class and a model comparison table.

Every model of an experiment is evaluated on the dataset's test split.  Outputs (paths
of the experiment's :class:`~mlxas.workflow.layout.Layout`):

- metrics per model and target: MSE, RMSE, MAE, R², mean relative error, the same per
  CN class; for ensembles the mean predicted spread and its 1σ coverage (JSON);
- a parity plot per target of the primary model, and of every model;
- histograms of the relative error per CN class for every model and target;
- a comparison table (Markdown and CSV), one row per model and target.

A class target (softmax head, :func:`mlxas.metrics.classification_metrics`) gets
accuracy, balanced accuracy, macro F1, per-class precision/recall/F1 and the confusion
matrix; its "parity" plot is the confusion matrix (true × predicted, the counterpart of
a parity plot) and its "errors" plot the per-class precision, recall and F1.  Per-CN
results need a ``cn`` label; a dataset without one (XANES classes, XRD, phases) gets
them over all examples.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np

from mlxas.metrics import classification_metrics, regression_metrics
from mlxas.models.registry import ModelConfigError
from mlxas.workflow.layout import Layout

__all__ = [
    "comparison_table",
    "confusion_figure",
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


def confusion_figure(plt, confusion: list[list[int]], classes: list[str], title: str):
    """The confusion matrix (rows: true class, columns: predicted) as counts, each row
    shaded by its share of the row (the recall on the diagonal)."""
    cm = np.asarray(confusion, dtype=float)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(classes)
    size = min(12.0, 2.5 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    color = "white" if share[i, j] > 0.6 else "black"
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                            color=color)  # fmt: skip
        ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), classes, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _per_class_bars(plt, m: dict[str, Any], title: str):
    """Precision, recall and F1 of every class (bars), with its support in the label."""
    names = list(m["per_class"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(min(14.0, 3 + 0.4 * len(names)), 3.2))
    for i, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [m["per_class"][c][key] for c in names], 0.27, label=key)
    labels = [f"{c} ({m['per_class'][c]['support']})" for c in names]
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


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


def evaluate_model(ds, model, card: dict[str, Any], cn_test: np.ndarray | None) -> dict[str, Any]:
    """Metrics of one loaded model on the test split, and its predictions per target
    (``cn_test``: the true CN for the per-CN-class results, None without a cn label)."""
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
    if cn_test is None:
        cn_test = np.zeros(len(x))  # one group: every example
    classes = cn_classes(cn_test)
    class_names = card["outputs"].get("classes", {})
    for t in card["preprocessing"]["targets"]:
        if t in class_names:
            codes = np.asarray(ds.labels(t, "test"))
            entry["targets"][t] = classification_metrics(codes, pred[t], class_names[t])
            preds[t] = None
            continue
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
            if "accuracy" in m:
                continue  # class targets: their own table below
            rows.append(
                [name, entry["kind"], t, m["n"], m["mse"], m["rmse"], m["mae"], m["r2"],
                 m["mean_relative_error"]]
            )  # fmt: skip

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    csv = [",".join(head)] + [",".join(fmt(v) for v in r) for r in rows]
    class_head = ["model", "kind", "target", "n", "accuracy", "balanced_accuracy", "macro_f1",
                  "top5_accuracy", "log_loss"]  # fmt: skip
    class_rows = [
        [name, entry["kind"], t, *(m.get(k) for k in class_head[3:])]
        for name, entry in results["models"].items()
        for t, m in entry["targets"].items()
        if "accuracy" in m
    ]
    if class_rows:
        # A second table under the first (CSV: after one empty line): classification.
        md += ["", "| " + " | ".join(class_head) + " |", "|" + "---|" * len(class_head)]
        md += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in class_rows]
        csv += ["", ",".join(class_head)] + [",".join(fmt(v) for v in r) for r in class_rows]
    return "\n".join(md) + "\n", "\n".join(csv) + "\n"


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


def _class_plots(plt, m: dict[str, Any], name: str, t: str, out: Layout, primary: str) -> None:
    """Confusion matrix (the class target's parity plot) and per-class scores (its errors
    plot) of one model."""
    title = f"{name}: {t}, accuracy {m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}"
    fig = confusion_figure(plt, m["confusion"], m["classes"], title)
    fig.savefig(out.model_plot("parity", name, t), dpi=100)
    plt.close(fig)
    if name == primary:
        shutil.copyfile(out.model_plot("parity", name, t), out.parity(t))
    fig = _per_class_bars(plt, m, f"{name}: {t}, precision / recall / F1 per class")
    fig.savefig(out.model_plot("errors", name, t), dpi=100)
    plt.close(fig)


def _evaluate(ds, pointer_files: list[str], out: Layout, primary: str | None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlxas.models.card import json_safe, load_model

    out.evaluation_dir.mkdir(parents=True, exist_ok=True)
    cn_test = None
    if "cn" in ds.label_names():
        cn_test = np.asarray(ds.labels("cn", "test"), dtype=float)
    n_test = len(ds.labels(ds.label_names()[0], "test"))
    if n_test == 0:
        raise ModelConfigError(
            f"{getattr(ds, 'path', 'dataset')}: the test split is empty; nothing to evaluate"
        )
    results: dict[str, Any] = {
        "dataset_hash": ds.hash,
        "split": "test",
        "n_test": n_test,
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

    classes = cn_classes(cn_test if cn_test is not None else np.zeros(n_test))
    for name, per_target in preds.items():
        for t, pred in per_target.items():
            m = results["models"][name]["targets"][t]
            if pred is None:
                _class_plots(plt, m, name, t, out, primary)
                continue
            y, p, s, rel = pred
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
