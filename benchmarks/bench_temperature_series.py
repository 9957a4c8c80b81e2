"""The simulated temperature series (issue 17) read by one model: a candidate before it
is bundled, or any trained model of a material's experiment.

``bench_predict_measured.py --simulated`` reads the series with the bundled models; this
reads it with ``--model`` (a pointer such as ``results/ge_crystal_t16/models/
ensemble.json``), for the material whose experiment config gives the FEFF cards and the
shells (``--material``: foil_cu, foil_fe or ge_crystal).  Bulk crystal at 10 … 600 K, one
FEFF run per point through the experiment's engine (``_temperature_series``); bounds per
shell: CN spread ≤ 0.3, R bias ≤ 0.01 Å, sigma² within 0.001 Å².  Only simulated spectra:
nothing measured is read.

    .venv/bin/python benchmarks/bench_temperature_series.py --material ge_crystal \\
        --model results/ge_crystal_t16/models/ensemble.json --name ge_crystal_t16

Writes ``benchmarks/results/temperature_series_<name>.json`` (value: the largest CN
spread over the shells).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import write_result
from _temperature_series import EXPERIMENTS, TEMPERATURES, checks, read_points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--material", required=True, choices=EXPERIMENTS)
    ap.add_argument("--model", required=True, type=Path, help="model pointer or folder")
    ap.add_argument("--name", required=True, help="suffix of the result file")
    a = ap.parse_args(argv)
    if not a.model.exists():
        ap.error(f"--model {a.model}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="mlxas-bench-tseries-") as tmp:
        points = read_points(a.material, a.model, Path(tmp))
    shells, not_met = checks(a.material, points)
    spreads = [c["cn_spread"] for c in shells.values() if "cn_spread" in c]
    model_id = None
    if a.model.suffix == ".json":
        model_id = json.loads(a.model.read_text()).get("model_id")
    write_result(
        f"temperature_series_{a.name}",
        max(spreads) if spreads else float("nan"),
        "largest CN spread over the shells across 10-600 K (bound 0.3 each)",
        material=a.material,
        model=str(a.model),
        model_id=model_id,
        temperatures_K=list(TEMPERATURES),
        checks=shells,
        not_met=not_met,
        points=points,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
