"""A simulated temperature series that no training set holds (issue 17): bulk Cu, Fe and
Ge at 10, 50, 100, 200, 300, 450 and 600 K, read by each material's model.

Each point is one FEFF run of the bulk absorber through the experiment's own engine and
cards (:func:`_crystal.feff_site`: the input text the workflow writes), the crystal at
the reference lattice constant with the DEBYE card at T and the element's calorimetric
θ (:data:`bench_sigma2_feff.MATERIALS`; training draws T and θ at random, and strains
the lattice).  The truth is the structure's shell labels (:func:`mlxas.sites.shells.
shell_table`: CN, R, sigma² computed as the spectrum is).  The chi(k) is featurized by
the engine as the gather stage does and read by
:meth:`mlxas.predict.predictor.Predictor.complete`, as ``mlxas predict`` reads.

Bounds per material and shell: CN spread across T ≤ 0.3; R bias (mean signed error over
T) ≤ 0.01 Å; sigma² within 0.001 Å² of the label at every T.

:func:`settings_check` reads the same bulk site at 300 K as FEFF8L computes it with
self-consistent potentials (``SCF`` card, radius 4 Å) and with E0 misplaced by −18 …
+18 eV (:func:`mlxas.spectra.augment.e0_shift`): how far the settings move a reading.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT
from _crystal import experiment, feff_site

from mlxas.predict.spec import Result
from mlxas.spectra.features import compute_features

TEMPERATURES = (10.0, 50.0, 100.0, 200.0, 300.0, 450.0, 600.0)
#: FEFF8L SCF card of the settings check: rfms1 4 Å (about 15 atoms), 30 iterations
SCF_CARD = [4.0, 0, 30, 0.1, 1]
E0_ERRORS = (-18.0, -14.0, -10.0, 0.0, 10.0, 14.0, 18.0)  # eV
EXPERIMENTS = ("foil_cu", "foil_fe", "ge_crystal")
CN_SPREAD, R_BIAS, SIGMA2_TOL = 0.3, 0.01, 0.001


def _shell_columns(values: dict, name: str) -> tuple[str, str, str] | None:
    """Model outputs for label shell ``name`` (``s1_Cu``): per-shell names, or the single
    ``cn``/``r`` of a first-shell model."""
    if f"cn_{name}" in values:
        return f"cn_{name}", f"r_{name}", f"sigma2_{name}"
    if name.startswith("s1_") and "cn" in values:
        return "cn", "r", f"sigma2_{name}"
    return None


def bulk_series(exp_name: str, temperatures) -> list:
    """(name, structure) of the material's reference crystal at each temperature, with
    the DEBYE card's θ of :data:`bench_sigma2_feff.MATERIALS`."""
    from bench_sigma2_feff import MATERIALS

    from mlxas.structures.crystal import crystal_structures

    parent, theta = MATERIALS[exp_name]
    spec = {
        "name": exp_name,
        "kind": "crystal",
        **parent,
        "temperature": {"values": list(temperatures), "debye_temperature": theta},
    }
    return list(crystal_structures(spec))


def _read(pred, exp, res, source: str) -> dict:
    """The model's values for one FEFF result, featurized as the gather stage does."""
    pre = pred.card["preprocessing"]
    x = exp.engine.featurize([res], pre["features"])[pre["input"]]
    (out,) = pred.complete([Result(source=source)], x)
    return out.values


def read_points(exp_name: str, pointer: Path, workdir: Path) -> list[dict]:
    """FEFF run, labels and model reading of the bulk absorber at every temperature."""
    from mlxas.predict.predictor import Predictor
    from mlxas.sites.shells import shell_table

    exp = experiment(ROOT / "config" / "experiments" / f"{exp_name}.yaml")
    shells = exp.labels.settings["shells"]
    points = []
    with Predictor(pointer, jobs=1, warn=lambda m: None) as pred:
        for _, atoms in bulk_series(exp_name, TEMPERATURES):
            index = int(np.nonzero(atoms.get_chemical_symbols() == np.array(exp.absorber))[0][0])
            temp = float(atoms.info["temperature"])
            name = f"{exp_name}_T{temp:g}"
            res = feff_site(exp, atoms, index, workdir / name, name)
            values = _read(pred, exp, res, name)
            labels = shell_table(atoms, [index], shells)
            point: dict = {"T": temp, "ood": values.get("ood"), "shells": {}}
            for shell in shells.shells:
                cols = _shell_columns(values, shell.name)
                truth = {q: float(labels[f"{q}_{shell.name}"][0]) for q in ("cn", "r", "sigma2")}
                read = dict.fromkeys(("cn", "r", "sigma2"))
                if cols:
                    read = {q: values.get(c) for q, c in zip(read, cols, strict=True)}
                point["shells"][shell.name] = {"truth": truth, "model": read}
            points.append(point)
    return points


def checks(exp_name: str, points: list[dict]) -> tuple[dict, list[str]]:
    """The three bounds per shell over the series, and the ones not met."""
    out, not_met = {}, []
    for name in points[0]["shells"]:
        rows = [p["shells"][name] for p in points]
        if any(r["model"].get("cn") is None for r in rows):
            out[name] = {"status": "not predicted by the model"}
            continue
        cn = np.array([r["model"]["cn"] for r in rows])
        dr = np.array([r["model"]["r"] - r["truth"]["r"] for r in rows])
        ds2 = [
            r["model"]["sigma2"] - r["truth"]["sigma2"]
            for r in rows
            if r["model"].get("sigma2") is not None
        ]
        c = {
            "cn_spread": float(cn.max() - cn.min()),
            "cn_truth": rows[0]["truth"]["cn"],
            "r_bias": float(dr.mean()),
            "r_abs_error_max": float(np.abs(dr).max()),
            "sigma2_abs_error_max": float(np.max(np.abs(ds2))) if ds2 else None,
        }
        c["cn_spread_met"] = c["cn_spread"] <= CN_SPREAD
        c["r_bias_met"] = abs(c["r_bias"]) <= R_BIAS
        c["sigma2_met"] = ds2 != [] and c["sigma2_abs_error_max"] <= SIGMA2_TOL
        not_met += [
            f"simulated {exp_name} {name} {k[:-4]}" for k in c if k.endswith("_met") and not c[k]
        ]
        out[name] = c
    return out, not_met


def simulated_series(results: list[Path], settings: bool = False) -> dict:
    """The series for every material whose model exists (bundled or in ``results``)."""
    from bench_predict_measured import find_pointer

    out: dict = {"temperatures_K": list(TEMPERATURES), "materials": {}, "not_met": []}
    with tempfile.TemporaryDirectory(prefix="mlxas-bench-tseries-") as tmp:
        for exp_name in EXPERIMENTS:
            pointer, where = find_pointer(exp_name, results)
            if pointer is None:
                out["materials"][exp_name] = {"status": "refused", "reason": where}
                out["not_met"].append(f"simulated {exp_name}: {where}")
                continue
            print(f"simulated series: {exp_name}", flush=True)
            points = read_points(exp_name, pointer, Path(tmp))
            shells, nm = checks(exp_name, points)
            out["materials"][exp_name] = {"model_from": where, "points": points, "checks": shells}
            if settings:
                out["materials"][exp_name]["settings_300K"] = settings_check(
                    exp_name, pointer, Path(tmp)
                )
            out["not_met"] += nm
    return out


def settings_check(exp_name: str, pointer: Path, workdir: Path) -> dict:
    """Readings of the bulk site at 300 K: FEFF8L without and with SCF, and the non-SCF
    spectrum with E0 misplaced by each of :data:`E0_ERRORS` (negative: E0 too low)."""
    from mlxas.predict.predictor import Predictor
    from mlxas.spectra.augment import e0_shift
    from mlxas.spectra.grids import interp_on_grid, k_grid

    path = ROOT / "config" / "experiments" / f"{exp_name}.yaml"
    ((_, atoms),) = bulk_series(exp_name, [300.0])
    exp = experiment(path)
    index = int(np.nonzero(atoms.get_chemical_symbols() == np.array(exp.absorber))[0][0])
    out: dict = {"scf_card": SCF_CARD, "e0_error_eV": {}}
    with Predictor(pointer, jobs=1, warn=lambda m: None) as pred:
        for label, over in (("no_scf", None), ("scf", {"feff": {"cards": {"SCF": SCF_CARD}}})):
            exp = experiment(path, over)
            t = time.perf_counter()
            res = feff_site(exp, atoms, index, workdir / f"{exp_name}_{label}", label)
            out[f"{label}_seconds"] = time.perf_counter() - t
            out[label] = _plain(_read(pred, exp, res, label))
            if label == "no_scf":
                plain = (exp, res)
        exp, res = plain
        pre = pred.card["preprocessing"]
        k = k_grid(pre["features"]["k_grid"])
        chi = interp_on_grid(res.arrays["k"], res.arrays["chi"], k)
        for de in E0_ERRORS:
            shifted = e0_shift(chi[None], k, de).astype(np.float32)
            x = compute_features(shifted, pre["features"])[pre["input"]]
            (r,) = pred.complete([Result(source=f"E0 {de:+g} eV")], x)
            out["e0_error_eV"][f"{de:+g}"] = _plain(r.values)
    return out


def _plain(values: dict) -> dict:
    return {k: v for k, v in values.items() if not k.endswith("_std")}
