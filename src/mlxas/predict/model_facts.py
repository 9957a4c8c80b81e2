"""What a bundled model covers and how it reads the shared measured files.

A bundled model's card says what the model is (config, dataset hash, k-range read,
scores on its simulated test split).  Two more things a beamline user checks before
trusting an answer are kept beside the pointer, in ``<entry>.facts.json``:

- ``coverage``: the ranges of the training labels (CN, R, sigma² per target, over the
  train split of the dataset whose hash the card names), the k-range read and the
  temperatures of the experiment's structure sources (K);
- ``measured``: the model's readings of the shared measured files, per shell against
  the truth table, with the bounds met or not, copied from
  ``benchmarks/results/predict_measured.json`` (its date and command too) for the
  model id that was measured.

The facts are evaluations, not part of the model: they do not enter the model id, and a
model retrained from its config keeps its id.  They name the model id they describe;
``mlxas models show`` says when they belong to another id.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from mlxas.predict.bundled import REPO_ROOT, BundledModel

__all__ = ["FACTS_SUFFIX", "facts_path", "read_facts", "write_facts"]

FACTS_SUFFIX = ".facts.json"


def facts_path(model: BundledModel) -> Path:
    """``<experiment folder>/<entry>.facts.json``, beside the model's pointer."""
    return model.pointer.with_name(model.entry + FACTS_SUFFIX)


def read_facts(model: BundledModel) -> dict[str, Any] | None:
    """The model's facts, or None when it has none (or they cannot be read)."""
    try:
        return json.loads(facts_path(model).read_text())
    except (OSError, ValueError):
        return None


def training_coverage(model: BundledModel, dataset: str | Path) -> dict[str, Any]:
    """Label ranges over the train split of ``dataset``, which must be the dataset the
    model was trained on (same hash as its card), the k-range and the temperatures."""
    import mlxas.dataset as mds

    card = model.card
    want = (card.get("dataset") or {}).get("hash")
    with mds.open(dataset) as ds:
        if want and ds.hash != want:
            raise ValueError(
                f"{dataset}: dataset hash {ds.hash}, but {model.name} was trained on {want}"
            )
        frame = ds.frame("train")
    targets = (card.get("preprocessing") or {}).get("targets") or []
    names = (card.get("outputs") or {}).get("classes") or {}
    ranges = {
        t: [round(float(frame[t].min()), 6), round(float(frame[t].max()), 6)]
        for t in targets
        if t in frame and frame[t].dtype.kind == "f" and t not in names
    }
    # A class target's codes are indices into its class names: count each class instead.
    counts = {
        t: {c: int((frame[t] == i).sum()) for i, c in enumerate(names[t])}
        for t in targets
        if t in frame and t in names
    }
    k = model.k_required
    return {
        "dataset_hash": want,
        "train_spectra": len(frame),
        "targets": ranges,
        **({"classes": counts} if counts else {}),
        "k_read": list(k) if k else None,
        "temperature_K": _temperatures(model.experiment),
    }


def _temperatures(experiment: str) -> list[float] | None:
    """[lowest, highest] temperature (K) of the experiment's structure sources, from
    ``config/experiments/<experiment>.yaml``; None when it states none."""
    import yaml

    path = REPO_ROOT / "config" / "experiments" / f"{experiment}.yaml"
    if not path.is_file():
        return None
    found: list[float] = []
    for source in (yaml.safe_load(path.read_text()) or {}).get("structures") or []:
        values = ((source or {}).get("temperature") or {}).get("values")
        if isinstance(values, dict):
            found += [float(v) for v in values.get("range") or []]
        elif isinstance(values, list):
            found += [float(v) for v in values]
        elif isinstance(values, int | float):
            found.append(float(values))
    return [min(found), max(found)] if found else None


def measured_readings(model: BundledModel, measured_json: str | Path) -> dict[str, Any]:
    """The files of ``measured_json`` (``bench_predict_measured.py``'s output) read by
    this experiment's model, with their truth, readings and bounds met; refused when the
    benchmark measured another model id."""
    data = json.loads(Path(measured_json).read_text())
    if "models" in data and "files" not in data:  # bench_xanes_measured.py's output
        return _edge_readings(model, data, measured_json)
    files = []
    for entry in (data.get("files") or {}).values():
        if entry.get("experiment") != model.experiment:
            continue
        ids = {s.get("model_id") for s in entry.get("spectra", [])} | {
            s.get("model_id") for s in entry.get("samples", []) if isinstance(s, dict)
        }
        ids.discard(None)
        if ids and ids != {model.model_id}:
            raise ValueError(
                f"{measured_json}: {entry['file']} was read with model id "
                f"{', '.join(sorted(ids))}, not {model.model_id}: run the benchmark again"
            )
        files.append(_reading(entry))
    return {"date": data.get("date"), "command": data.get("command"), "files": files}


def _edge_readings(model: BundledModel, data: dict[str, Any], where: str | Path) -> dict[str, Any]:
    """The XANES model's readings of the measured edges (``bench_xanes_measured.py``):
    geometry class with its probability and oxidation state against the truth; refused
    when the benchmark read another model id or another experiment."""
    entry = (data.get("models") or {}).get(model.entry)
    if data.get("experiment") != model.experiment or entry is None:
        read = ", ".join(data.get("models") or {})
        raise ValueError(
            f"{where}: no readings of {model.name} (experiment {data.get('experiment')}, "
            f"models {read})"
        )
    if entry.get("model_id") != model.model_id:
        raise ValueError(
            f"{where}: {model.name} was read with model id {entry.get('model_id')}, not "
            f"{model.model_id}: run the benchmark again"
        )
    files = []
    for name, sp in (entry.get("spectra") or {}).items():
        probs = sp.get("probabilities") or {}
        files.append({
            "file": name, "truth": sp.get("truth"), "geometry": sp.get("geometry"),
            "p": probs.get(sp.get("geometry")), "oxidation_state": sp.get("oxidation_state"),
            "ood": sp.get("ood"), "ood_score": sp.get("ood_score"),
            "class_correct": sp.get("class_correct"),
            "oxidation_within_1": sp.get("oxidation_within_1"),
        })  # fmt: skip
    return {"date": data.get("date"), "command": data.get("command"), "files": files}


def _reading(entry: dict[str, Any]) -> dict[str, Any]:
    out = {"file": entry["file"], "truth": entry.get("truth"), "not_met": entry.get("not_met")}
    spectra = entry.get("spectra") or []
    if spectra:
        s = spectra[0]
        out["ood"], out["ood_score"] = s.get("ood"), s.get("ood_score")
        out["shells"] = [
            {
                "shell": sh["shell"],
                "truth": sh["truth"],
                "bound": sh.get("bound"),
                "read": {k: sh["model"].get(k) for k in ("cn", "cn_std", "r", "r_std", "sigma2")},
                "cn_met": sh.get("cn_met"),
                "r_met": sh.get("r_met"),
            }
            for sh in s.get("shells", [])
        ]
    return out


def write_facts(model: BundledModel, dataset: str | Path, measured_json: str | Path | None) -> Path:
    """Write the model's ``<entry>.facts.json`` (see the module text); its path."""
    facts = {
        "model": model.name,
        "model_id": model.model_id,
        "written": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "coverage": training_coverage(model, dataset),
    }
    if measured_json is not None:
        facts["measured"] = measured_readings(model, measured_json)
    path = facts_path(model)
    path.write_text(json.dumps(facts, indent=1, allow_nan=False) + "\n")
    return path


def facts_summary(model: BundledModel) -> list[tuple[str, str]]:
    """(label, text) lines of ``mlxas models show`` for the model's facts."""
    facts = read_facts(model)
    if facts is None:
        return [("facts", f"none ({facts_path(model).name} absent)")]
    lines = []
    if facts.get("model_id") != model.model_id:
        lines.append(("facts", f"for model id {facts.get('model_id')}, not this one: stale"))
    cov = facts.get("coverage") or {}
    t = cov.get("temperature_K")
    lines.append(("trained on", f"{cov.get('train_spectra')} spectra" +
                  (f", {t[0]:g}-{t[1]:g} K" if t else "")))  # fmt: skip
    for target, (lo, hi) in (cov.get("targets") or {}).items():
        lines.append((f"range {target}", f"{lo:.4g} to {hi:.4g}"))
    for target, counts in (cov.get("classes") or {}).items():
        lines.append((f"classes {target}", ", ".join(f"{c} {n}" for c, n in counts.items())))
    measured = facts.get("measured") or {}
    for f in measured.get("files", []):
        if "geometry" in f:  # a XANES model's reading
            tr, ok = f.get("truth") or {}, {True: "right", False: "WRONG", None: "?"}
            within = "within" if f.get("oxidation_within_1") else "NOT within"
            flagged = "yes" if f.get("ood") else "no"
            lines.append(
                (
                    f["file"],
                    f"{f['geometry']} (p {f.get('p') or 0:.2f}; truth {tr.get('geometry')}, "
                    f"{ok[f.get('class_correct')]}), oxidation state "
                    f"{f.get('oxidation_state') or float('nan'):.1f} (truth "
                    f"{tr.get('oxidation_state')}, {within} ±1), flagged {flagged}",
                )
            )
        for sh in f.get("shells") or []:
            tr, rd = sh["truth"], sh["read"]
            cn = "-" if rd.get("cn") is None else f"{rd['cn']:.2f}"
            r = "-" if rd.get("r") is None else f"{rd['r']:.3f}"
            met = {True: "met", False: "NOT met", None: "no bound"}
            lines.append(
                (
                    f"{f['file']} shell {sh['shell']}",
                    f"CN {cn} (truth {tr['cn']:g}, {met[sh.get('cn_met')]}), R {r} Å (truth "
                    f"{tr['r']:.3f}, {met[sh.get('r_met')]}), OOD {f.get('ood')}",
                )
            )
    if measured:
        lines.append(("measured by", f"{measured.get('command')} ({measured.get('date')})"))
    return lines
