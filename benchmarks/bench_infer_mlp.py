"""infer_mlp: spectra per second through a saved MLP on 2 CPU cores, batch mode.

Times ``mlxas.models.predict_array`` — the call behind ``mlxas predict`` and the
evaluation — on model inputs that are already computed (chi(k)·k² on the default
400-point grid), for the default ``mlp`` (multi-task CN + R, standardisation layers
inside) and for ``paper_mlp`` (two 400-200-20-1 networks).  Each model is trained for one
epoch (the weights do not change the speed), saved, and loaded back as a user would load
it.  The value is the median of several passes over ``--n`` spectra.

    .venv/bin/python benchmarks/bench_infer_mlp.py [--n 50000] [--repeats 7] [--threads 2]

Target: ≥ 10,000 spectra/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from _common import write_result
from _exafs_spectra import spectra


class _ArrayDataset:
    """The reader interface of ``mlxas.dataset.Dataset`` over in-memory arrays."""

    def __init__(self, chi: np.ndarray, labels: dict, cfg: dict):
        from mlxas.provenance import hash_json
        from mlxas.spectra.features import compute_features

        n = len(chi)
        self.path = "synthetic"
        self.attrs = {"absorber": "Au", "edge": "L3"}
        self.settings = {"features": cfg, "split": {"fractions": [0.8, 0.2, 0.0], "seed": 0}}
        self.hash = hash_json({"bench_infer_mlp": n})
        self._split = np.where(np.arange(n) < 0.8 * n, 0, 1)
        self._x = compute_features(chi, {**cfg, "ft": {**cfg["ft"], "enabled": False}})
        self._labels = labels
        self._chi = chi

    def _rows(self, split):
        splits = ("train", "val", "test")
        return slice(None) if split is None else self._split == splits.index(split)

    def features(self, name, split=None):
        return self._x[name][self._rows(split)]

    def labels(self, name, split=None):
        return self._labels[name][self._rows(split)]

    def chi(self, split=None):
        return self._chi[self._rows(split)]

    def grid(self, name):
        from mlxas.spectra.grids import k_grid

        return k_grid(self.settings["features"]["k_grid"])

    def feature_names(self):
        return sorted(self._x)

    def label_names(self):
        return sorted(self._labels)


def _throughput(model_dir: Path, x: np.ndarray, repeats: int) -> dict:
    from mlxas.models import load_model, predict_array

    model, card = load_model(model_dir)
    predict_array(model, card, x[:4096])  # trace once, as a long-running service would
    predict_array(model, card, x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mean, _std = predict_array(model, card, x)
        times.append(time.perf_counter() - t0)
    assert mean.shape == (len(x), 2) and np.all(np.isfinite(mean))
    med = float(np.median(times))
    t0 = time.perf_counter()
    predict_array(model, card, x[:1])
    single = time.perf_counter() - t0
    return {
        "spectra_per_second": len(x) / med,
        "median_seconds": med,
        "times": [round(t, 4) for t in times],
        "single_spectrum_ms": single * 1000,
        "params": int(model.count_params()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50000, help="spectra per pass")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    a = ap.parse_args()

    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import set_threads, train

    set_threads(a.threads)
    load = os.getloadavg()[0]
    chi, labels, cfg, _ = spectra(2000, seed=1)
    ds = _ArrayDataset(chi, labels, cfg)
    x = np.asarray(_ArrayDataset(*spectra(a.n, seed=2)[:3]).features("chi_k"), dtype=np.float32)
    out = {}
    with tempfile.TemporaryDirectory(prefix="mlxas-bench-infer-") as tmp:
        for kind in ("mlp", "paper_mlp"):
            spec = ModelSpec.from_config({"name": kind, "kind": kind, "epochs": 1})
            _mid, _card, folder = train(ds, spec, Path(tmp) / kind, verbose=0)
            out[kind] = _throughput(folder, x, a.repeats)
    write_result(
        "infer_mlp",
        round(out["mlp"]["spectra_per_second"]),
        "spectra/s",
        target=">= 10,000 spectra/s on 2 CPU cores",
        model="default mlp (256-256-128 ReLU trunk, CN and R heads, standardisation inside)",
        inputs=f"{a.n} precomputed chi(k)*k^2 spectra, 400 points (synthetic, FEFF-shaped)",
        threads=a.threads,
        load_average_at_start=round(load, 2),
        mlp=out["mlp"],
        paper_mlp=out["paper_mlp"],
    )


if __name__ == "__main__":
    main()
