"""Cost and effect of FEFF's self-consistent potentials (SCF) on Au150 MD sites.

The Au150 experiment runs FEFF8L without an SCF card: on this machine one site takes
about a second that way and many minutes with the published ``SCF 6.8 0 30 0.1 1``.
This benchmark measures both on a few sites of the experiment's test split and what
leaving SCF out does to the spectra and to the models:

1. For each chosen site the experiment's own ``feff.inp`` is run twice by
   :func:`mlxas.feff.runner.run_site`: as it is (no SCF) and with the SCF card added,
   nothing else changed.  Runs are kept under ``--workdir`` and reused, so the script
   can be stopped and started again; ``--run-only`` runs FEFF without the analysis.
2. chi(k) with and without SCF on the experiment's k grid: relative L2 difference of
   k²·chi over the FT window, the shift and height ratio of the first peak of |chi(R)|
   (larch ``xftf`` through :func:`mlxas.spectra.features.fourier_transform`), and the
   change of FEFF's E0.
3. The experiment's trained models (on non-SCF spectra) predict CN and R from both
   versions of each site; the errors against the site's true labels are compared.

The value written is the median ratio of the SCF to the non-SCF wall time per site.

    nice -n 15 .venv/bin/python benchmarks/bench_scf.py --sites 4
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_result

#: The published self-consistency card (FEFF8: SCF rfms1 lfms1 nscmt ca nmix): full
#: multiple scattering within 6.8 Å, at most 30 iterations, convergence factor 0.1,
#: one plain mixing step before the Broyden updates.
SCF_CARD = [6.8, 0, 30, 0.1, 1]


def choose_sites(exp, n: int, seed: int) -> pd.DataFrame:
    """``n`` test-split sites spread over the CN range (lowest to highest CN).

    ``exp``: the :class:`~mlxas.workflow.experiment.Experiment`.  The split is read from
    the dataset when it exists; before ``gather`` has run it is computed from the site and
    label tables exactly as ``gather`` will (every site succeeding).
    """
    from mlxas.dataset import group_keys, split_groups
    from mlxas.sites import read_labels, read_sites

    L = exp.layout
    if L.dataset.exists():
        from mlxas.dataset import open as open_dataset

        with open_dataset(L.dataset) as ds:
            sites = ds.sites(["site_id", "structure_id", "site_index", "frame", "split", "cn", "r"])
            sites = sites.assign(source=ds.sites(["source"])["source"])
        test = sites[sites["split"] == "test"]
    else:
        tables = []
        for name in exp.sources:
            table, _ = read_sites(L.sites(name))
            labels, _ = read_labels(L.labels(name))
            tables.append(table.merge(labels[["site_id", "cn", "r"]], on="site_id"))
        sites = pd.concat(tables, ignore_index=True)
        split_s = exp.dataset.split
        split = split_groups(group_keys(sites, split_s.group_by), split_s.fractions, split_s.seed)
        test = sites[split == 2]
    test = test.sort_values(["cn", "site_id"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    # One site from each of n equal slices of the CN-sorted test sites.
    edges = np.linspace(0, len(test), n + 1).astype(int)
    rows = [int(rng.integers(a, b)) for a, b in itertools.pairwise(edges) if b > a]
    return test.iloc[rows].reset_index(drop=True)


def scf_engine(exp):
    """The experiment's FEFF engine with the published SCF card added."""
    from dataclasses import replace

    s = exp.engine.settings
    return type(exp.engine)(replace(s, cards={**s.cards, "SCF": SCF_CARD}))


def scf_input(exp, row: dict, table_text: str) -> str:
    """The site's feff.inp with the SCF card added, built the way the workflow builds it.

    The workflow's engine must give the workflow's own text back, so the two runs differ
    in the SCF card only.
    """
    from mlxas.structures import read_structures

    frames = read_structures(exp.layout.structures_frames(row["source"]))
    atoms = next(a for a in frames if a.info.get("structure_id") == row["structure_id"])
    if exp.engine.input_text(atoms, int(row["site_index"]), row["site_id"]) != table_text:
        raise RuntimeError(f"site {row['site_id']}: rebuilt feff.inp differs from the workflow's")
    return scf_engine(exp).input_text(atoms, int(row["site_index"]), row["site_id"])


def run_pair(exp, row: dict, inputs: pd.DataFrame, workdir: Path, timeout: float):
    """Run (or reuse) the site without and with SCF; returns the two ItemResults."""
    from mlxas.engines import ItemInput
    from mlxas.simulation.inputs import input_hash
    from mlxas.simulation.runner import run_item
    from mlxas.workflow.layout import SimulationFolder

    base = inputs.loc[inputs["item_id"] == row["site_id"]].iloc[0].to_dict()
    scf_text = scf_input(exp, {**row, "source": base["source"]}, base["text"])
    out = {}
    for label, text, engine in (
        ("no_scf", base["text"], exp.engine),
        ("scf", scf_text, scf_engine(exp)),
    ):
        item = ItemInput(row["site_id"], row["structure_id"], 0, text, input_hash(engine, text))
        t0 = time.monotonic()
        res = run_item(item, engine, SimulationFolder(workdir / label), timeout)
        print(
            f"{row['site_id']} {label}: {res.status} {res.reason} "
            f"{res.seconds:.1f} s (call {time.monotonic() - t0:.1f} s)",
            flush=True,
        )
        out[label] = res
    return out


def first_peak(r: np.ndarray, mag: np.ndarray, lo: float = 1.8, hi: float = 3.4):
    """Position (Å, parabola through the top three points) and height of the largest
    |chi(R)| maximum between ``lo`` and ``hi`` Å: the first Au–Au shell."""
    sel = np.nonzero((r >= lo) & (r <= hi))[0]
    i = sel[np.argmax(mag[sel])]
    y0, y1, y2 = mag[i - 1], mag[i], mag[i + 1]
    denom = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
    return float(r[i] + shift * (r[1] - r[0])), float(y1)


def compare_spectra(results: list[dict], features_cfg: dict) -> list[dict]:
    """Per-site differences between the non-SCF and the SCF chi(k)."""
    from mlxas.spectra.features import fourier_transform
    from mlxas.spectra.grids import ft_r_grid, interp_on_grid, k_grid

    k = k_grid(features_cfg["k_grid"])
    ft = features_cfg["ft"]
    rgrid = ft_r_grid(features_cfg["k_grid"], ft)
    win = (k >= ft["kmin"]) & (k <= ft["kmax"])
    rows = []
    for item in results:
        a, b = item["no_scf"], item["scf"]
        chi = np.vstack([interp_on_grid(r.arrays["k"], r.arrays["chi"], k) for r in (a, b)])
        k2 = chi * k**2
        rel_l2 = np.linalg.norm((k2[1] - k2[0])[win]) / np.linalg.norm(k2[0][win])
        mag = np.abs(fourier_transform(chi, k, 2, features_cfg["k_grid"], ft))
        (r0, h0), (r1, h1) = first_peak(rgrid, mag[0]), first_peak(rgrid, mag[1])
        rows.append(
            {
                "site_id": item["site"]["site_id"],
                "cn": float(item["site"]["cn"]),
                "r": float(item["site"]["r"]),
                "seconds_no_scf": round(float(a.seconds), 2),
                "seconds_scf": round(float(b.seconds), 1),
                "k2chi_rel_l2": float(rel_l2),
                "ft_peak_r_no_scf": r0,
                "ft_peak_r_scf": r1,
                "ft_peak_shift": r1 - r0,
                "ft_peak_height_ratio": h1 / h0,
                "e0_no_scf": float(a.scalars["e0"]),
                "e0_scf": float(b.scalars["e0"]),
                "e0_shift": float(b.scalars["e0"] - a.scalars["e0"]),
            }
        )
        item["chi"] = chi
    return rows


def model_errors(models_dir: Path, results: list[dict], spectra_rows: list[dict]) -> dict:
    """Predictions of each trained model from the non-SCF and the SCF spectra."""
    from mlxas.models.card import load_model
    from mlxas.models.data import compute_input
    from mlxas.models.inference import predict_array, split_targets

    chi = {
        lab: np.vstack([it["chi"][i] for it in results]) for i, lab in enumerate(("no_scf", "scf"))
    }
    truth = {t: np.array([row[t] for row in spectra_rows]) for t in ("cn", "r")}
    out = {}
    for pointer in sorted(models_dir.glob("*.json")):
        model, card = load_model(pointer)
        fc = card["preprocessing"]["features"]
        entry: dict = {"model_id": card["model_id"], "kind": card["kind"]}
        preds = {}
        for lab, rows in chi.items():
            x = compute_input(rows, fc, card["config"]["input"])
            mean, _ = predict_array(model, card, x)
            preds[lab] = split_targets(card, mean)
        for t in card["preprocessing"]["targets"]:
            if t not in truth:
                continue
            p0, p1 = np.asarray(preds["no_scf"][t], float), np.asarray(preds["scf"][t], float)
            entry[t] = {
                "pred_no_scf": p0.round(4).tolist(),
                "pred_scf": p1.round(4).tolist(),
                "mse_no_scf": float(np.mean((p0 - truth[t]) ** 2)),
                "mse_scf": float(np.mean((p1 - truth[t]) ** 2)),
                "mean_shift_scf_minus_no_scf": float(np.mean(p1 - p0)),
                "rms_shift_scf_minus_no_scf": float(np.sqrt(np.mean((p1 - p0) ** 2))),
            }
        out[card["name"]] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="config/experiments/au150_md.yaml")
    ap.add_argument("--sites", type=int, default=4, help="test-split sites to run with SCF")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="run folders (default: <results>/scf_study)")
    ap.add_argument("--timeout", type=float, default=6 * 3600, help="s per SCF run")
    ap.add_argument("--run-only", action="store_true", help="run FEFF, skip the analysis")
    ap.add_argument("--name", default="scf_au150")
    ap.add_argument(
        "--experiment-dir",
        type=Path,
        help="the experiment's results folder (default: results/<experiment>); the sites, "
        "FEFF inputs and structures of the study come from here",
    )
    ap.add_argument(
        "--models-dir",
        type=Path,
        help="models/<name>.json pointers to evaluate (default: <experiment-dir>/models)",
    )
    args = ap.parse_args()

    from dataclasses import replace

    from mlxas.workflow.checks import load_experiment
    from mlxas.workflow.layout import Layout

    os.chdir(ROOT)
    exp = load_experiment([args.config])
    if args.experiment_dir:
        exp = replace(exp, layout=Layout(args.experiment_dir))
    L = exp.layout
    models_dir = args.models_dir or L.models_dir
    workdir = Path(args.workdir) if args.workdir else L.root / "scf_study"
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = choose_sites(exp, args.sites, args.seed)
    (workdir / "sites.json").write_text(json.dumps(chosen["site_id"].tolist()))
    inputs = pd.concat(
        [
            pd.read_parquet(L.simulation(name).inputs_table).assign(source=name)
            for name in exp.sources
        ],
        ignore_index=True,
    )
    results = []
    for row in chosen.to_dict("records"):
        pair = run_pair(exp, row, inputs, workdir, args.timeout)
        if all(r.status == "ok" for r in pair.values()):
            results.append({"site": row, **pair})
    if args.run_only:
        return
    if not results:
        sys.exit("no site finished both runs")

    spectra_rows = compare_spectra(results, exp.config["features"])
    models = model_errors(models_dir, results, spectra_rows) if models_dir.is_dir() else {}
    ratio = [r["seconds_scf"] / r["seconds_no_scf"] for r in spectra_rows]
    write_result(
        args.name,
        round(float(np.median(ratio)), 1),
        "x",
        description="FEFF8L wall time with / without SCF 6.8 0 30 0.1 1, Au150 sites (median)",
        experiment=exp.name,
        experiment_dir=str(exp),
        models_dir=str(models_dir),
        scf_card="SCF " + " ".join(str(v) for v in SCF_CARD),
        n_sites=len(spectra_rows),
        load_average=os.getloadavg()[0],
        median_seconds_no_scf=float(np.median([r["seconds_no_scf"] for r in spectra_rows])),
        median_seconds_scf=float(np.median([r["seconds_scf"] for r in spectra_rows])),
        median_k2chi_rel_l2=float(np.median([r["k2chi_rel_l2"] for r in spectra_rows])),
        mean_ft_peak_shift_A=float(np.mean([r["ft_peak_shift"] for r in spectra_rows])),
        mean_e0_shift_eV=float(np.mean([r["e0_shift"] for r in spectra_rows])),
        sites=spectra_rows,
        models=models,
    )


if __name__ == "__main__":
    main()
