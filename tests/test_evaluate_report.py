"""The HTML report of the tiny workflow holds the evaluation plots and the comparison."""

from __future__ import annotations

import pytest

from conftest import TINY_CONFIG, snakemake

pytestmark = pytest.mark.workflow


def test_report_holds_parity_plots_error_histograms_and_table(tiny_experiment, tmp_path):
    report = tmp_path / "report.html"
    snakemake(
        tiny_experiment,
        "--configfile",
        str(tiny_experiment / "config.yaml"),
        "--report",
        str(report),
    )
    html = report.read_text(errors="replace")
    model = TINY_CONFIG["models"][0]["name"]
    for target in ("cn", "r"):
        for name in (f"parity_{target}.png", f"parity_{model}_{target}.png",
                     f"errors_{model}_{target}.png"):  # fmt: skip
            assert name in html, name
    assert "comparison.csv" in html
    assert "one histogram per coordination-number class" in html  # caption from docs/report
