"""Phases for measured data: HKLF 4 + .ins in, phases (CSV) and a CCP4 map out.

Steps: read the reflections (:func:`mlxas.phases.shelx.read_hklf4`) and the cell and
space group (:func:`mlxas.phases.shelx.read_ins_symmetry`); merge symmetry equivalents
and Friedel mates with cctbx and convert F² to F with cctbx's ``f_sq_as_f`` (negative F²
become F = 0; their number is reported); keep the reflections to the model's d_min
(the others are counted, not used); quasi-normalise to |E| exactly as in training; run
the sign model (or charge flipping) and write

- ``phases.csv``: ``h, k, l, d (Å), F, sigma_F, phase (degrees), p_sign`` (the model's
  probability of the sign it chose; empty for charge flipping);
- ``map.ccp4``: the density from F and the phases over the whole unit cell (cctbx
  ``as_ccp4_map``; e/Å³ without F000), for Coot, Olex2, PyMOL, ...;
- ``summary.json``: counts, settings, the model and the timings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlxas.phases.charge_flip import DEFAULT_TRIALS
from mlxas.phases.reflection_list import box_lookup, list_restrictions, reflection_list
from mlxas.phases.reflections import PhaseFeatures, ReflectionSettings, quasi_normalise
from mlxas.phases.shelx import HklData, ShelxError, read_hklf4, read_ins_symmetry
from mlxas.workflow.layout import ModelFiles

__all__ = [
    "MeasuredPhases",
    "load_sign_model",
    "predict_measured",
    "save_sign_model",
    "sign_predictor",
]


@dataclass
class MeasuredPhases:
    hkl: np.ndarray
    d_spacing: np.ndarray
    amplitude: np.ndarray
    sigma: np.ndarray
    phase: np.ndarray  #: radians
    p_sign: np.ndarray  #: probability of the chosen sign (NaN for charge flipping)
    counts: dict


def save_sign_model(directory: str | Path, result, settings: ReflectionSettings,
                    features: PhaseFeatures) -> Path:  # fmt: skip
    """Write the model (weights and architecture, no optimiser) and its card into
    ``directory``, named as in a workflow model folder (:class:`ModelFiles`)."""
    import keras

    directory = Path(directory)
    files = ModelFiles(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from mlxas.phases.models import build

    # a fresh build holds no compile state (the training loss is a closure)
    spec = result.spec
    n = len(reflection_list(settings.space_group, settings.index_max))
    model = build(spec["kind"], n, spec["input"], spec["params"])
    model.set_weights(result.model.get_weights())
    model.save(files.model)
    card = {
        "kind": result.spec["kind"],
        "spec": result.spec,
        "reflections": asdict(settings),
        "features": asdict(features),
        "n_reflections": len(reflection_list(settings.space_group, settings.index_max)),
        "training": {
            "seconds": result.seconds,
            "epochs_run": result.epochs_run,
            "best_val_loss": result.best_val_loss,
        },
        "keras_version": keras.__version__,
    }
    files.card.write_text(json.dumps(card, indent=1))
    return directory


def load_sign_model(directory: str | Path):
    """``(model, card, settings, features)`` of a saved sign model (safe mode on)."""
    import keras

    files = ModelFiles(directory)
    try:
        card = json.loads(files.card.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{files.card}: not a readable model card: {exc}") from exc
    model = keras.models.load_model(files.model, compile=False, safe_mode=True)
    r = card["reflections"]
    settings = ReflectionSettings(**{**r, "b_iso": tuple(r["b_iso"])})
    return model, card, settings, PhaseFeatures(**card["features"])


def sign_predictor(path: str | Path) -> tuple[Callable, ReflectionSettings, PhaseFeatures]:
    """``(predict, settings, features)`` of the sign model at ``path``: ``predict(e_value,
    mask)`` gives sign probabilities ``[n, n_reflections]`` from |E| and the mask on the
    model's reflection list.  ``path``: a folder written by :func:`save_sign_model`, or a
    model of the workflow (a model folder, ``models/<name>.json`` or ``models/latest``;
    its files are verified against its card before loading)."""
    files = ModelFiles(path)
    if files.card.is_file() and "spec" in json.loads(files.card.read_text() or "{}"):
        from mlxas.phases.models import predict_signs

        model, card, settings, features = load_sign_model(path)
        return (lambda e, m: predict_signs(model, card["spec"], e, m)), settings, features
    return _workflow_predictor(path)


def _workflow_predictor(path: str | Path) -> tuple[Callable, ReflectionSettings, PhaseFeatures]:
    from mlxas.models import load_model, predict_array, split_targets
    from mlxas.phases.reflections import phase_features
    from mlxas.settings import from_mapping

    model, card = load_model(path)
    pre = card["preprocessing"]
    engine = pre.get("engine") or {}
    if engine.get("name") != "reflections" or list(pre["targets"]) != ["sign"]:
        raise ValueError(
            f"{path}: not a sign model of the reflections engine (engine "
            f"{engine.get('name') or 'not recorded'}, targets {pre['targets']})"
        )
    # the model inputs the reflections engine writes, from |E| on the reflection list
    inputs = {"e_value": lambda e: e, "intensity": lambda e: e**2}
    if pre["input"] not in inputs:
        raise ValueError(f"{path}: input {pre['input']!r} is not one of {sorted(inputs)}")
    settings = from_mapping(ReflectionSettings, engine["settings"], "reflections")

    def predict(e_value: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = inputs[pre["input"]](np.asarray(e_value, np.float32))
        mean, _ = predict_array(model, card, x)
        return np.asarray(split_targets(card, mean)["sign"], float).reshape(x.shape)

    return predict, settings, phase_features(pre["features"])


def merged_amplitudes(data: HklData, symmetry):
    """cctbx amplitude array (F, σF): equivalents and Friedel mates merged, F from F²."""
    from cctbx import miller
    from cctbx.array_family import flex

    ms = miller.set(symmetry, flex.miller_index(data.hkl.tolist()), anomalous_flag=False)
    i_obs = miller.array(ms, flex.double(data.intensity), flex.double(data.sigma))
    i_obs = i_obs.set_observation_type_xray_intensity()
    absent = i_obs.sys_absent_flags().data()
    merged = i_obs.select(~absent).map_to_asu().merge_equivalents().array()
    return merged.f_sq_as_f(), int(absent.count(True))


def predict_measured(
    hkl_path: str | Path,
    ins_path: str | Path,
    out_dir: str | Path,
    model_dir: str | Path | None = None,
    method: str = "model",
    seed: int = 0,
    trials: int = DEFAULT_TRIALS,
) -> MeasuredPhases:
    """Phases of one measured data set; writes the files listed in the module docstring."""
    from cctbx import sgtbx

    t0 = time.perf_counter()
    data = read_hklf4(hkl_path)
    symmetry = read_ins_symmetry(ins_path)
    if method == "model":
        if model_dir is None:
            raise ValueError("method 'model' needs a model directory")
        predict, settings, features = sign_predictor(model_dir)
    elif method == "charge_flipping":
        settings, features = ReflectionSettings(d_min=0.0), PhaseFeatures()
    else:
        raise ValueError(f"unknown method {method!r} (model, charge_flipping)")
    sg = symmetry.space_group_info()
    if method == "model" and sg.group() != sgtbx.space_group_info(settings.space_group).group():
        raise ShelxError(
            f"{ins_path}: space group {sg} but the model was trained for {settings.space_group}"
        )
    f_obs, n_absent = merged_amplitudes(data, symmetry)
    hkl = np.array(f_obs.indices(), dtype=int).reshape(-1, 3)
    d = f_obs.d_spacings().data().as_numpy_array()
    keep = d >= settings.d_min
    hkl, d = hkl[keep], d[keep]
    amp = f_obs.data().as_numpy_array()[keep]
    sig = f_obs.sigmas().as_numpy_array()[keep]
    counts = {
        "measured": len(data.hkl),
        "systematic_absences_dropped": n_absent,
        "unique": int(f_obs.size()),
        "negative_intensities": int((data.intensity < 0).sum()),
        "beyond_d_min": int((~keep).sum()),
        "used": int(keep.sum()),
        "d_min_data": float(d.min()),
    }
    cell = symmetry.unit_cell().parameters()
    if method == "model":
        phase, p = _model_phases(predict, settings, features, cell, hkl, amp, str(ins_path))
    else:
        from mlxas.phases.charge_flip import charge_flip

        flip = charge_flip(cell, str(sg), hkl, amp, seed=seed, trials=trials)
        phase, p = flip.phase, np.full(len(hkl), np.nan)
        counts["charge_flipping_symmetrised"] = flip.symmetrised
        counts["charge_flipping_trials"] = flip.trials
        counts["charge_flipping_r1"] = flip.r1
    result = MeasuredPhases(hkl, d, amp, sig, phase, p, counts)
    _write(Path(out_dir), result, cell, str(sg), method, model_dir, time.perf_counter() - t0)
    return result


def _model_phases(predict: Callable, settings, features, cell, hkl, amp, where):
    from mlxas.phases.labels import signs_to_phases

    idx = box_lookup(settings.space_group, settings.index_max, hkl, where)
    n = len(reflection_list(settings.space_group, settings.index_max))
    e = np.zeros((1, n), np.float32)
    mask = np.zeros((1, n), np.float32)
    e[0, idx] = quasi_normalise(cell, settings.space_group, hkl, amp, features.reflections_per_bin)
    mask[0, idx] = 1.0
    prob = predict(e, mask)[0, idx]
    ht = list_restrictions(settings.space_group, settings.index_max)[idx]
    return signs_to_phases(prob, ht), np.maximum(prob, 1.0 - prob)


def _write(out: Path, r: MeasuredPhases, cell, sg: str, method, model_dir, seconds) -> None:
    from mlxas.phases.evaluate import density_map

    out.mkdir(parents=True, exist_ok=True)
    rows = ["h,k,l,d,F,sigma_F,phase,p_sign"]
    for h, d, f, s, ph, p in zip(r.hkl, r.d_spacing, r.amplitude, r.sigma, r.phase, r.p_sign,
                                 strict=True):  # fmt: skip
        pp = "" if np.isnan(p) else f"{p:.4f}"
        rows.append(f"{h[0]},{h[1]},{h[2]},{d:.4f},{f:.4f},{s:.4f},{np.degrees(ph):.2f},{pp}")
    (out / "phases.csv").write_text("\n".join(rows) + "\n")
    fft = density_map(cell, sg, r.hkl, r.amplitude, r.phase)
    fft.as_ccp4_map(file_name=str(out / "map.ccp4"))
    summary = {
        "method": method,
        "model": None if model_dir is None else str(model_dir),
        "cell": list(cell),
        "space_group": sg,
        "counts": r.counts,
        "seconds": seconds,
        "map_grid": list(fft.n_real()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
