"""Measured spectra read by a model and by the conventional fit, for the ``predict_*``
benchmarks on ``tests/data/experimental`` (a copy of ``../shared/data/experimental``).

- :func:`truth_table`: every row of the README's table: absorber, edge and the shells
  it states ("first shell N = 12 at 2.556 Å", "8 Fe at 2.482 Å, then 6 Fe at 2.866 Å").
- :func:`predict_file`: one record per spectrum of a file (Athena projects hold several)
  through :class:`mlxas.predict.predictor.Predictor`, the code behind ``mlxas predict``.
- :func:`baseline_file`: the same file through :func:`mlxas.baseline.fit_files`, the code
  behind ``mlxas baseline`` (first-shell feffit with a FEFF path of the element's
  reference crystal).

Units: Å for R, Å² for sigma², eV for E0.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from _common import ROOT

EXPERIMENTAL = ROOT / "tests" / "data" / "experimental"
README = EXPERIMENTAL / "README.md"
#: Fields of a baseline result kept in a benchmark record.
BASELINE_KEYS = (
    "status",
    "reason",
    "cn",
    "cn_err",
    "r",
    "r_err",
    "sigma2",
    "delta_e0",
    "r_factor",
    "s02",
    "seconds",
    "seconds_total",
)

_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([A-Z][a-z]?)\s+([KLM][0-9]?)\b[^|]*\|[^|]*\|(.*)\|")
_FIRST = re.compile(r"first shell N = (\d+) at ([0-9.]+) Å")
_SHELL = re.compile(r"(\d+) ([A-Z][a-z]?) at (about )?([0-9.]+) Å")


def truth_table(readme: Path = README) -> dict[str, dict]:
    """file name -> ``{"element", "edge", "truth" (the README's words), "shells": [{"cn",
    "element", "r", "approximate"}...]}``.  An fcc row ("first shell N = 12 at ...") has one
    shell of the absorber; a row without numbers (the Pt nanoparticle series) has none."""
    out = {}
    for line in readme.read_text().splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        name, element, edge, words = m.group(1), m.group(2), m.group(3), m.group(4).strip()
        first = _FIRST.search(words)
        if first:
            shells = [
                {
                    "cn": float(first.group(1)),
                    "element": element,
                    "r": float(first.group(2)),
                    "approximate": False,
                }
            ]
        else:
            shells = [
                {
                    "cn": float(s.group(1)),
                    "element": s.group(2),
                    "r": float(s.group(4)),
                    "approximate": bool(s.group(3)),
                }
                for s in _SHELL.finditer(words)
            ]
        out[name] = {"element": element, "edge": edge, "truth": words, "shells": shells}
    if not out:
        raise SystemExit(f"{readme}: no truth table rows found")
    return out


def predict_file(pointer: Path, path: Path, repeats: int = 0) -> list[dict]:
    """The model's reading of every spectrum of ``path``: the values ``mlxas predict``
    gives (targets, their ensemble sd ``<t>_std``, ``ood``, ``ood_score``), E0, k_max
    and the median of ``repeats`` timed predictions of the whole file (s)."""
    from mlxas.predict.predictor import Predictor

    with Predictor(pointer, jobs=1, warn=lambda m: None) as pred:
        results = pred.predict([path])
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            pred.predict([path])
            times.append(time.perf_counter() - t)
        card = pred.card
    out = []
    for res in results:
        rec: dict = {"source": str(res.source), "status": res.status}
        if res.status != "ok":
            rec["reason"] = res.reason
        else:
            rec.update(
                model_id=card["model_id"],
                values=dict(res.values),
                e0=res.e0,
                k_max=res.k_max,
                seconds=statistics.median(times) if times else None,
                notes="; ".join(res.notes),
            )
        out.append(rec)
    return out


def baseline_file(
    path: Path, cache: Path, element: str | None = None, edge: str | None = None
) -> list[dict]:
    """``mlxas baseline [--element E --edge K]`` on every spectrum of ``path``: first-shell
    CN, R (Å), sigma² (Å²), their fit errors, or the refusal with its reason (also when
    the baseline cannot run at all, e.g. no reference crystal for the element)."""
    from mlxas.baseline import BaselineError, fit_files

    try:
        fits = fit_files([path], element=element, edge=edge, cache_dir=cache)
    except BaselineError as err:
        return [{"status": "refused", "reason": str(err), "source": str(path)}]
    out = []
    for fit in fits:
        b = fit.as_dict()
        rec = {key: b.get(key) for key in BASELINE_KEYS}
        rec["source"] = str(b.get("source") or path)
        out.append(rec)
    return out
