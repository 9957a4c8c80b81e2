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
from mlxas.models import load_model
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


def _raw_outputs(pointer, x) -> tuple[np.ndarray, list[str]]:
    """The saved network's own output on ``x`` (Keras' predict, no mlxas inference code)
    and the card's column names."""
    model, card = load_model(pointer)
    return np.asarray(model.predict(np.asarray(x, np.float32), verbose=0)), card["outputs"][
        "columns"
    ]


def test_metrics_json_holds_every_model_and_matches_the_predictions(evaluated):
    """Every number recomputed here by hand from the network's raw output: the members'
    mean and sample spread, MSE, MAE, R², the per-class counts and the 1σ coverage."""
    ds, pointers, out, _ = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["primary"] == "ens" and metrics["n_test"] == len(ds.labels("cn", "test"))
    assert metrics["dataset_hash"] == ds.hash
    assert set(metrics["models"]) == {"mt", "ens"}
    x, cn = ds.features("chi_k", "test"), ds.labels("cn", "test")
    # The ensemble: raw output [N, members, columns].
    raw, columns = _raw_outputs(pointers[1], x)
    assert raw.shape == (len(cn), 2, 2) and columns == ["cn", "r"]
    members = raw[:, :, columns.index("cn")]
    p, spread = members.mean(axis=1), members.std(axis=1, ddof=1)
    m = metrics["models"]["ens"]["targets"]["cn"]
    err = p - cn
    assert m["n"] == len(cn)
    assert m["mse"] == pytest.approx(np.mean(err**2), rel=1e-5)
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-5)
    assert m["r2"] == pytest.approx(1 - np.sum(err**2) / np.sum((cn - cn.mean()) ** 2), rel=1e-5)
    assert m["mean_std"] == pytest.approx(spread.mean(), rel=1e-5)
    covered = np.count_nonzero(np.abs(err) <= spread)
    assert m["coverage_1sigma"] == pytest.approx(covered / len(cn), abs=1e-12)
    assert 0 < covered < len(cn)  # two members of a 4-epoch network: some miss, some hit
    # Per CN class: the rows of each rounded CN.
    for c, row in m["per_cn_class"].items():
        sel = np.rint(cn) == int(c)
        assert row["n"] == sel.sum() > 0
        assert row["mae"] == pytest.approx(np.mean(np.abs(err[sel])), rel=1e-5)
    assert sum(v["n"] for v in m["per_cn_class"].values()) == len(cn)
    # The multi-task MLP: the RDF's 12 bins, metrics over all of them, no relative error.
    raw, columns = _raw_outputs(pointers[0], x)
    first = columns.index("rdf[0]")
    rdf_pred = raw[:, first : first + 12]
    rdf = ds.labels("rdf", "test")
    m = metrics["models"]["mt"]["targets"]["rdf"]
    assert m["n"] == 12 * len(cn) and m["mean_relative_error"] is None
    assert m["mse"] == pytest.approx(np.mean((rdf_pred - rdf) ** 2), rel=1e-5)
    r = metrics["models"]["mt"]["targets"]["r"]
    r_pred = raw[:, columns.index("r")]
    r_true = ds.labels("r", "test")
    assert r["rmse"] == pytest.approx(np.sqrt(np.mean((r_pred - r_true) ** 2)), rel=1e-5)
    assert r["mean_relative_error"] == pytest.approx(
        np.mean(np.abs(r_pred - r_true) / r_true), rel=1e-5
    )


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
