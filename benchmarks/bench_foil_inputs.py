"""foil_inputs: which model input reads measured foils best, chosen on simulated data.

The foil models (``config/experiments/foil_<el>.yaml``) can read chi(k)·k² or |chi(R)|.
This study trains small ensembles (``--members``, default 2) of each variant on the
element's FEFF8L dataset and scores them two ways:

- **selection score**, simulated only: CN and R mean absolute error on the validation
  split perturbed once with the config's own augmentation ranges (fixed seed, every
  spectrum perturbed).  This is the number a variant is chosen by.
- **foil**, measured: CN and R of ``tests/data/experimental/<el>_metal_rt.xdi`` through
  :class:`mlxas.predict.predictor.Predictor`, reported for every variant so that the
  choice can be checked, never used to make it.

Variants (overrides of the config's model entry):

- ``chi_k``: chi(k)·k² on k 3–14 Å⁻¹;
- ``chi_k_noise03``: the same with noise up to 0.3 (rms in chi·k²);
- ``chi_k_wide``: the same with S0² factor 0.7–1.1 and E0 shifts of ±15 eV;
- ``ft_mag_6``: |chi(R)| on 1.0–6.0 Å;
- ``ft_mag_rpath``: |chi(R)| on 1.0 Å to RPATH − 0.4 Å, where the simulated shells end.

Simulated validation can choose the representation (chi(k) or |chi(R)|) but not where
the R window ends: the simulated validation spectra stop at RPATH like the training
ones, so the shells beyond it that a measured spectrum holds are absent from both.  The
window end follows from the FEFF cards instead (``ft_mag_rpath``).  ``value`` is the
number of elements whose best-scoring variant (lowest selection CN MAE) reads |chi(R)|.

    .venv/bin/python benchmarks/bench_foil_inputs.py [--elements cu ni pt] [--members 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result

FT_PEAK_SHIFT = 0.4  # Å: FT peaks of metal-metal shells sit this much below the path length
SEED = 12345


def variants(rpath: float) -> dict[str, dict[str, Any]]:
    chi_k = {"input": "chi_k", "input_range": [3.0, 14.0]}
    return {
        "chi_k": chi_k,
        "chi_k_noise03": {**chi_k, "augment": {"noise": [0.0, 0.3]}},
        "chi_k_wide": {**chi_k, "augment": {"s02": [0.7, 1.1], "e0_shift": [-15.0, 15.0]}},
        "ft_mag_6": {"input": "ft_mag", "input_range": [1.0, 6.0]},
        "ft_mag_rpath": {"input": "ft_mag", "input_range": [1.0, round(rpath - FT_PEAK_SHIFT, 2)]},
    }


def study_element(el: str, results: Path, members: int, workdir: Path) -> dict[str, Any]:
    import yaml

    from mlxas.dataset import open as open_dataset
    from mlxas.models.card import load_model
    from mlxas.models.data import compute_input, model_features_cfg
    from mlxas.models.inference import predict_array, split_targets
    from mlxas.models.train import train
    from mlxas.predict.predictor import Predictor
    from mlxas.settings import deep_merge
    from mlxas.spectra.augment import augment_chi
    from mlxas.workflow.checks import check_config

    cfg_path = ROOT / "config" / "experiments" / f"foil_{el}.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    dataset = results / f"foil_{el}" / "dataset.h5"
    if not dataset.exists():
        raise SystemExit(f"{dataset}: missing; run the workflow with {cfg_path} first")
    base = cfg["models"][0]
    rpath = float(cfg["feff"]["cards"]["RPATH"])
    foil = ROOT / "tests" / "data" / "experimental" / f"{el}_metal_rt.xdi"

    with open_dataset(dataset) as ds:
        k = np.asarray(ds.grid("chi_k"))
        chi = np.asarray(ds.chi("val"), dtype=float)
        truth = {t: np.asarray(ds.labels(t, "val")) for t in ("cn", "r")}
        ds_features = ds.settings["features"]
    # One perturbed copy of the validation split, the same for every variant.
    perturb = {**base["augment"], "probability": 1.0}
    chi_aug = augment_chi(chi, k, perturb, np.random.default_rng(SEED))

    out: dict[str, Any] = {"rpath": rpath, "dataset": str(dataset), "variants": {}}
    for name, over in variants(rpath).items():
        spec = deep_merge(base, over)
        spec["params"]["members"] = members
        spec = check_config({**cfg, "models": [spec]}).models[spec["name"]]
        t0 = time.perf_counter()
        _, _, model_dir = train(dataset, spec, workdir / f"{el}_{name}", threads=2, verbose=0)
        seconds = time.perf_counter() - t0
        model, card = load_model(model_dir)
        fcfg = model_features_cfg(ds_features, spec)

        def mae(c: np.ndarray, model=model, card=card, fcfg=fcfg, spec=spec) -> dict[str, float]:
            x = compute_input(c, fcfg, spec.input).astype(np.float32)
            pred = split_targets(card, predict_array(model, card, x)[0])
            return {t: float(np.mean(np.abs(pred[t] - truth[t]))) for t in ("cn", "r")}

        clean, perturbed = mae(chi), mae(chi_aug)
        with Predictor(model_dir, jobs=1) as p:
            (res,) = p.predict([foil])
        v = res.values
        out["variants"][name] = {
            "override": over,
            "train_seconds": round(seconds, 1),
            "val_cn_mae": clean["cn"],
            "val_r_mae": clean["r"],
            "val_perturbed_cn_mae": perturbed["cn"],
            "val_perturbed_r_mae": perturbed["r"],
            "foil": {key: v.get(key) for key in ("cn", "cn_std", "r", "r_std", "ood", "ood_score")},
        }
        print(
            f"{el} {name:14s} val-perturbed CN MAE {perturbed['cn']:.3f}  "
            f"foil CN {v.get('cn', float('nan')):.2f} R {v.get('r', float('nan')):.4f}",
            flush=True,
        )
    best = min(out["variants"], key=lambda n: out["variants"][n]["val_perturbed_cn_mae"])
    out["selected_by_simulation"] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--elements", nargs="+", default=["cu", "ni", "pt"], choices=["cu", "ni", "pt"])
    ap.add_argument("--members", type=int, default=2, help="networks per variant (default 2)")
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore")
    per_element = {}
    with tempfile.TemporaryDirectory(prefix="mlxas-foil-inputs-") as tmp:
        for el in a.elements:
            per_element[el] = study_element(el, a.results, a.members, Path(tmp))
    wins = sum(
        r["variants"][r["selected_by_simulation"]]["override"]["input"] == "ft_mag"
        for r in per_element.values()
    )
    write_result(
        "foil_inputs",
        wins,
        "elements",
        members=a.members,
        seed=SEED,
        selection="lowest CN MAE on the perturbed simulated validation split",
        elements=per_element,
    )


if __name__ == "__main__":
    main()
