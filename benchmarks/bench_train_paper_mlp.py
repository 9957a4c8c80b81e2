"""train_paper_mlp: wall time to train the published 400-200-20-1 MLP on 6000 spectra (CPU).

The network, optimiser and schedule are exactly ``kind: paper_mlp`` (ReLU, RMSprop, MSE,
400 epochs, batch 32; early-stopping patience 400, so all epochs run), trained through
``mlxas.models.train.fit`` as the ``train`` rule does, with validation after every epoch.
Inputs are 400-point chi(k)·k² spectra of the EXAFS equation (``_exafs_spectra.py``):
6000 for training and 1500 for validation.  The paper trains one network per target; the
headline value is the CN network; ``--both`` also times CN and R together (two networks
in one model).

    .venv/bin/python benchmarks/bench_train_paper_mlp.py [--threads 2] [--epochs 400] [--both]

Target: ≤ 180 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from _common import write_result
from _exafs_spectra import spectra


def _data(targets: list[str], n_train: int, n_val: int):
    from mlxas.models.training_data import TrainingData
    from mlxas.spectra.features import compute_features

    chi, labels, cfg, _ = spectra(n_train + n_val, seed=0)
    x = compute_features(chi, {**cfg, "ft": {**cfg["ft"], "enabled": False}})["chi_k"]
    splits = {
        "train": (x[:n_train], {t: labels[t][:n_train] for t in targets}),
        "val": (x[n_train:], {t: labels[t][n_train:] for t in targets}),
    }
    return TrainingData.from_arrays(splits, cfg, grid=None), x.shape[1]


def _time(targets: list[str], epochs: int, n_train: int, n_val: int) -> dict:
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import fit

    data, n_points = _data(targets, n_train, n_val)
    spec = ModelSpec.from_config(
        {"name": "paper_mlp", "kind": "paper_mlp", "targets": targets, "epochs": epochs}
    )
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    model, record = fit(data, spec, verbose=0)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    net = record["networks"][0]
    return {
        "targets": targets,
        "seconds": wall,
        "cpu_seconds": cpu,
        "fit_seconds": net["seconds"],
        "epochs_run": net["epochs_run"],
        "epochs_per_second": net["epochs_run"] / net["seconds"],
        "best_val_loss": net["best_val_loss"],
        "n_points": n_points,
        "params": int(model.count_params()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--val", type=int, default=1500)
    ap.add_argument("--both", action="store_true", help="also time CN and R together")
    a = ap.parse_args()

    from mlxas.models.train import set_threads

    set_threads(a.threads)
    load = os.getloadavg()[0]
    cn = _time(["cn"], a.epochs, a.train, a.val)
    extra = {"cn_and_r": _time(["cn", "r"], a.epochs, a.train, a.val)} if a.both else {}
    write_result(
        "train_paper_mlp",
        round(cn["seconds"], 1),
        "s",
        target="<= 180 s on 2 CPU cores",
        data=(
            f"{a.train} training + {a.val} validation spectra from the EXAFS equation "
            "(synthetic, FEFF-shaped: 400-point chi(k)*k^2 on k = 0.05..20 1/Angstrom)"
        ),
        model="paper_mlp: 400-200-20-1 ReLU, RMSprop lr 1e-3, MSE, batch 32, one target (CN)",
        epochs=cn["epochs_run"],
        epochs_per_second=round(cn["epochs_per_second"], 2),
        steps_per_second=round(cn["epochs_per_second"] * -(-a.train // 32), 1),
        cpu_seconds=round(cn["cpu_seconds"], 1),
        threads=a.threads,
        training="XLA-compiled steps (jit_compile auto), 32 steps per execution",
        load_average_at_start=round(load, 2),
        detail=cn,
        **extra,
    )


if __name__ == "__main__":
    main()
