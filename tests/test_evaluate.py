"""Evaluation: metric formulas, per-CN-class errors, plots, metrics.json and comparison table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlxas.evaluate import (
    comparison_table,
    evaluate,
    per_class_errors,
    regression_metrics,
)
from mlxas.models import load_model, predict_array, split_targets
from mlxas.models.registry import ModelConfigError
from mlxas.workflow.layout import Layout


def output_names(models: dict[str, list[str]], primary: str) -> dict[str, list[str]]:
    """File names of the evaluation plots of ``{model: targets}``, from the layout."""
    L = Layout("r")
    return {
        "parity": [L.parity(t).name for t in models[primary]],
        "parity_models": [L.model_plot("parity", m, t).name for m, ts in models.items()
                          for t in ts],
        "errors": [L.model_plot("errors", m, t).name for m, ts in models.items() for t in ts],
    }  # fmt: skip


def test_regression_metrics_on_known_numbers():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert m["n"] == 3
    assert m["mse"] == pytest.approx(1 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(1 / 3))
    assert m["mae"] == pytest.approx(1 / 3)
    assert m["r2"] == pytest.approx(1 - (1 / 3) / (2 / 3))  # variance of [1, 2, 3] is 2/3
    assert m["mean_relative_error"] == pytest.approx((1 / 3) / 3)
    # A constant target has no R²; zeros are left out of the relative error.
    c = regression_metrics(np.array([2.0, 2.0]), np.array([2.1, 1.9]))
    assert np.isnan(c["r2"]) and c["mae"] == pytest.approx(0.1)
    z = regression_metrics(np.array([0.0, 2.0]), np.array([1.0, 3.0]))
    assert z["mean_relative_error"] == pytest.approx(0.5)


def test_errors_are_grouped_by_rounded_cn():
    cn = np.array([12.0, 12.0, 6.0, 5.67, 9.0])
    y = np.array([12.0, 12.0, 6.0, 5.67, 9.0])
    p = np.array([11.0, 12.0, 6.5, 5.67, 9.0])
    groups = per_class_errors(cn, y, p)
    assert set(groups) == {"6", "9", "12"}
    assert groups["12"]["n"] == 2 and groups["12"]["mae"] == pytest.approx(0.5)
    assert groups["6"]["n"] == 2 and groups["6"]["mae"] == pytest.approx(0.25)
    assert groups["9"]["mse"] == 0


def test_output_names_follow_models_and_targets():
    names = output_names({"a": ["cn", "r"], "b": ["cn"]}, primary="b")
    assert names["parity"] == ["parity_cn.png"]
    assert names["parity_models"] == ["parity_a_cn.png", "parity_a_r.png", "parity_b_cn.png"]
    assert names["errors"] == ["errors_a_cn.png", "errors_a_r.png", "errors_b_cn.png"]


@pytest.fixture(scope="module")
def evaluated(synthetic_models, tmp_path_factory):
    ds = synthetic_models["ds"]
    pointers = [synthetic_models["pointers"][n] for n in ("mt", "ens")]
    layout = Layout(tmp_path_factory.mktemp("evaluation"))
    res = evaluate(ds, pointers, layout, primary="ens")
    return ds, pointers, layout.evaluation_dir, res


def test_metrics_json_holds_every_model_and_matches_the_predictions(evaluated):
    ds, pointers, out, _ = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["primary"] == "ens" and metrics["n_test"] == len(ds.labels("cn", "test"))
    assert metrics["dataset_hash"] == ds.hash
    assert set(metrics["models"]) == {"mt", "ens"}
    # Recompute the primary metrics from the saved model: the file holds the same numbers.
    model, card = load_model(pointers[1])
    mean, std = predict_array(model, card, ds.features("chi_k", "test"))
    pred = split_targets(card, mean)
    cn = ds.labels("cn", "test")
    m = metrics["models"]["ens"]["targets"]["cn"]
    assert m["mse"] == pytest.approx(np.mean((pred["cn"] - cn) ** 2), rel=1e-5)
    classes = {str(c) for c in np.unique(np.rint(cn).astype(int))}
    assert set(m["per_cn_class"]) == classes
    assert sum(v["n"] for v in m["per_cn_class"].values()) == len(cn)
    # Ensemble: spread and its coverage; RDF: metrics over bins, no relative error.
    assert m["mean_std"] == pytest.approx(std[:, 0].mean(), rel=1e-5)
    assert 0 <= m["coverage_1sigma"] <= 1
    rdf = metrics["models"]["mt"]["targets"]["rdf"]
    assert rdf["n"] == 12 * len(cn) and rdf["mean_relative_error"] is None
    for key in ("mse", "rmse", "mae", "r2", "mean_relative_error"):
        assert key in metrics["models"]["mt"]["targets"]["r"]


def test_plots_and_tables_are_written(evaluated):
    _, _, out, res = evaluated
    names = output_names({"mt": ["cn", "r", "rdf"], "ens": ["cn", "r"]}, primary="ens")
    for name in names["parity"] + names["parity_models"] + names["errors"]:
        assert (out / name).stat().st_size > 5000, name
    assert (out / "parity_cn.png").read_bytes() == (out / "parity_ens_cn.png").read_bytes()
    csv = (out / "comparison.csv").read_text().splitlines()
    assert csv[0].startswith("model,kind,target,n,MSE")
    assert len(csv) == 1 + 5  # mt: cn, r, rdf; ens: cn, r
    md, _ = comparison_table(res)
    assert (out / "comparison.md").read_text() == md
    assert md.count("\n") == 2 + 5


def test_an_unknown_primary_model_is_a_config_error(evaluated, tmp_path):
    ds, pointers, _, _ = evaluated
    with pytest.raises(ModelConfigError, match=r"evaluation\.primary"):
        evaluate(ds, pointers[:1], Layout(tmp_path), primary="nope")
