"""``mlxas dataset inspect`` on a dataset gathered from real FEFF8L chunks."""

from __future__ import annotations

import contextlib
import io

import matplotlib.image
import pytest

from _dataset_support import feff_results, settings
from mlxas.cli import main as mlxas
from mlxas.dataset import gather


@pytest.fixture(scope="session")
def feff(tmp_path_factory):
    return feff_results(tmp_path_factory.getbasetemp() / "dataset_feff")


def test_inspect_prints_counts_labels_failures_and_writes_plots(feff, tmp_path):
    path = tmp_path / "dataset.h5"
    st = settings(features={"wavelet": {"morlet": True}}, split={"group_by": "site"})
    report = gather(
        feff.chunks + feff.failed_chunks,
        feff.sites,
        feff.labels,
        path,
        st,
        inputs_files=feff.inputs,
        absorber="Cu",
        edge="K",
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert mlxas(["dataset", "inspect", str(path), "--plots", str(tmp_path / "plots")]) == 0
    text = out.getvalue()
    assert f"{report.n_sites} sites, {report.n_examples} examples" in text
    assert "absorber Cu K" in text and f"hash {report.dataset_hash}" in text
    assert "wavelet_morlet  (64, 64)" in text and "chi_k           (400,)" in text
    # Labels of the four octahedron sites: vertex, edge, face, centre.
    assert "cn              min 4  mean 8  max 12" in text
    assert "CN 12:" in text and "CN  4:" in text
    assert f"failures: {report.n_failures}" in text
    assert "simulation/timeout:" in text and "inputs/cluster_too_large: 1" in text
    for name in ("cn_histogram.png", "r_histogram.png", "example_spectra.png"):
        png = tmp_path / "plots" / name
        assert f"wrote {png}" in text
        height, width, _ = matplotlib.image.imread(png).shape
        assert width > 300 and height > 200
