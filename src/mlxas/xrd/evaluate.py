"""Evaluation of powder-pattern classifiers: accuracy, top-5 accuracy, macro F1 and a
confusion matrix (PNG) per head, on the test split with its drawn effects and on the same
test structures' effect-free patterns (the robustness drop is the difference).

Subsets: ``random`` (held-out random crystals: crystal system and space group targets),
``prototype`` (held-out prototype compositions: per-type accuracy and F1 of the
structure type).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "evaluate_models", "plot_confusion", "predict_proba"]


def predict_proba(model, x: np.ndarray, batch: int = 4096) -> dict[str, np.ndarray]:
    """Softmax probabilities per head (the model's output names)."""
    out = model.predict(x, batch_size=batch, verbose=0)
    names = list(model.output_names)
    if not isinstance(out, (list, tuple)):
        out = [out]
    return {n: np.asarray(p) for n, p in zip(names, out, strict=True)}


def classification_metrics(y: np.ndarray, proba: np.ndarray, k: int = 5) -> dict[str, Any]:
    """``n``, ``accuracy``, ``top<k>_accuracy`` and ``macro_f1`` (over the classes
    present in ``y``) of class indices ``y`` against probabilities ``proba`` [n, classes]."""
    from sklearn.metrics import f1_score

    y = np.asarray(y)
    if len(y) == 0:
        return {"n": 0}
    pred = proba.argmax(axis=1)
    topk = np.argsort(-proba, axis=1)[:, :k]
    present = np.unique(y)
    return {
        "n": len(y),
        "accuracy": float(np.mean(pred == y)),
        f"top{k}_accuracy": float(np.mean((topk == y[:, None]).any(axis=1))),
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
    }


def per_class(y: np.ndarray, proba: np.ndarray, names: list) -> dict[str, dict[str, float]]:
    """Per true class: ``n``, ``accuracy`` (recall) and ``f1``."""
    from sklearn.metrics import f1_score

    pred = proba.argmax(axis=1)
    present = np.unique(y)
    f1 = f1_score(y, pred, labels=present, average=None, zero_division=0)
    return {
        str(names[c]): {
            "n": int(np.sum(y == c)),
            "accuracy": float(np.mean(pred[y == c] == c)),
            "f1": float(f),
        }
        for c, f in zip(present, f1, strict=True)
    }


def plot_confusion(y: np.ndarray, proba: np.ndarray, names: list, title: str, path: Path) -> None:
    """Row-normalised confusion matrix (true class per row); class names on the axes
    for up to 30 classes, a logarithmic colour scale for more."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from sklearn.metrics import confusion_matrix

    n = len(names)
    cm = confusion_matrix(y, proba.argmax(axis=1), labels=np.arange(n)).astype(float)
    rows = cm.sum(axis=1, keepdims=True)
    cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    size = 5 if n <= 10 else 9
    fig, ax = plt.subplots(figsize=(size + 1, size))
    if n <= 30:
        im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), [str(s) for s in names], rotation=90, fontsize=7)
        ax.set_yticks(range(n), [str(s) for s in names], fontsize=7)
        if n <= 10:
            for i in range(n):
                for j in range(n):
                    if cm[i, j] >= 0.005:
                        ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if cm[i, j] > 0.5 else "black")  # fmt: skip
    else:
        im = ax.imshow(np.where(cm > 0, cm, np.nan), cmap="viridis", norm=LogNorm(1e-3, 1))
        ticks = np.arange(0, n, 20)
        ax.set_xticks(ticks, [str(names[t]) for t in ticks])
        ax.set_yticks(ticks, [str(names[t]) for t in ticks])
        if n == 230:  # space groups: crystal-system boundaries guide the eye
            for end in (2, 15, 74, 142, 167, 194):
                ax.axhline(end - 0.5, color="0.8", lw=0.5)
                ax.axvline(end - 0.5, color="0.8", lw=0.5)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _subset_metrics(y: dict, proba: dict, mask: np.ndarray, heads) -> dict[str, Any]:
    return {h: classification_metrics(y[h][mask], proba[h][mask]) for h in heads}


def evaluate_model(model_dir, data, clean, out: Path) -> dict[str, Any]:
    """Metrics of one model on the test split (and the clean test patterns)."""
    from mlxas.xrd.train import HEADS, load_classifier

    model, card = load_classifier(model_dir)
    name = card["kind"]
    test = data.split == 2
    proba = predict_proba(model, data.x[test])
    y_test = {h: data.y[h][test] for h in HEADS}
    rnd, proto = data.source[test] == "random", data.source[test] == "prototype"
    res: dict[str, Any] = {
        "model_id": card["model_id"],
        "kind": name,
        "training_cpu_seconds": card["training"]["cpu_seconds"],
        "epochs_run": card["training"]["epochs_run"],
        "all": _subset_metrics(y_test, proba, np.ones(len(rnd), bool), HEADS),
        "random": _subset_metrics(y_test, proba, rnd, ("crystal_system", "space_group")),
        "prototype": _subset_metrics(y_test, proba, proto, ("structure_type",)),
        "structure_type_per_type": per_class(
            y_test["structure_type"][proto],
            proba["structure_type"][proto],
            card["heads"]["structure_type"],
        ),
    }
    for h in HEADS:
        plot_confusion(y_test[h], proba[h], card["heads"][h], f"{name}: {h} (test, with effects)",
                       out / f"confusion_{name}_{h}.png")  # fmt: skip
    if clean is not None:
        cp = predict_proba(model, clean.x)
        crnd = clean.source == "random"
        res["clean_random"] = _subset_metrics(clean.y, cp, crnd, ("crystal_system", "space_group"))
        res["clean_prototype"] = _subset_metrics(clean.y, cp, ~crnd, ("structure_type",))
        # Robustness: the same test structures, clean vs with all effects drawn.
        pairs = [("random", "clean_random", h) for h in ("crystal_system", "space_group")]
        pairs.append(("prototype", "clean_prototype", "structure_type"))
        res["robustness_drop_points"] = {
            h: 100 * (res[c][h]["accuracy"] - res[a][h]["accuracy"])
            for a, c, h in pairs
            if res[a][h]["n"] and res[c][h]["n"]
        }
    return res


def evaluate_models(models: list[str], dataset: str, out: str, clean: str | None = None) -> dict:
    """Evaluate every model directory; writes ``metrics.json``, ``comparison.md`` and the
    confusion matrices to ``out``."""
    from mlxas.xrd.train import load_xrd_data

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_xrd_data(dataset)
    cdata = load_xrd_data(clean) if clean else None
    report = {"dataset": dataset, "dataset_hash": data.hash, "models": {}}
    for m in models:
        r = evaluate_model(m, data, cdata, out_dir)
        report["models"][r["kind"]] = r
    report["summary"] = _summary(report["models"])
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "comparison.md").write_text(_table(report["summary"]))
    return report


def _summary(models: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for kind, r in models.items():
        rows[kind] = {
            "crystal_system_acc": r["random"]["crystal_system"].get("accuracy"),
            "space_group_top1": r["random"]["space_group"].get("accuracy"),
            "space_group_top5": r["random"]["space_group"].get("top5_accuracy"),
            "space_group_macro_f1": r["random"]["space_group"].get("macro_f1"),
            "structure_type_acc": r["prototype"]["structure_type"].get("accuracy"),
            "structure_type_macro_f1": r["prototype"]["structure_type"].get("macro_f1"),
            "drop_cs_points": r.get("robustness_drop_points", {}).get("crystal_system"),
            "drop_sg_points": r.get("robustness_drop_points", {}).get("space_group"),
            "drop_st_points": r.get("robustness_drop_points", {}).get("structure_type"),
        }
    return rows


def _table(summary: dict[str, Any]) -> str:
    cols = list(next(iter(summary.values())).keys()) if summary else []
    lines = ["| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for kind, row in summary.items():
        vals = ["" if row[c] is None else f"{row[c]:.3f}" for c in cols]
        lines.append(f"| {kind} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
