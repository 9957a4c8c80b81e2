"""accuracy_au150, accuracy_cu: test-split accuracy of the two published experiments.

Reads what the workflow wrote for each experiment — ``results/<experiment>/evaluation/
metrics.json`` and the model cards under ``results/<experiment>/models/`` — and writes
one result per experiment with CN MSE, CN MAE, R MSE, the model id and the split sizes
for the experiment's primary model (``evaluation.primary``, our best) and for
``paper_mlp`` (the published network) on the same test split.

Headline values: CN MSE for Au150 (target ≤ 0.14, the paper reports 0.2753), CN MAE for
the Cu nanoparticles (target ≤ 0.1).  Nothing is trained or evaluated here; run the
workflow first:

    .venv/bin/snakemake --profile profiles/local \
        --configfile config/experiments/au150_md.yaml     # and cu_nanoparticles.yaml
    .venv/bin/python benchmarks/bench_accuracy.py [--experiment au150_md] [--copy-plots]

``--copy-plots`` also copies the parity plots and per-CN-class error histograms of both
models into ``docs/img/`` for docs/results.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result

#: experiment -> (result name, headline metric, its target, unit, the paper's figures)
EXPERIMENTS = {
    "au150_md": (
        "accuracy_au150",
        "cn_mse",
        {"cn_mse": 0.14, "r_mse": 0.0005},
        "",
        {"cn_mse": 0.2753, "r_mse": 0.0011, "cn_mean_relative_error": 0.047},
    ),
    "cu_nanoparticles": ("accuracy_cu", "cn_mae", {"cn_mae": 0.1}, "", {}),
}
BASELINE = "paper_mlp"


def model_summary(exp_dir: Path, metrics: dict, name: str) -> dict:
    """Test metrics, id and split sizes of one model of the experiment."""
    entry = metrics["models"][name]
    card = json.loads((exp_dir / "models" / entry["model_id"] / "card.json").read_text())
    targets = entry["targets"]
    cn = targets.get("cn", {})
    r = targets.get("r", {})
    return {
        "name": name,
        "kind": entry["kind"],
        "model_id": entry["model_id"],
        "input": entry.get("input"),
        "cn_mse": cn.get("mse"),
        "cn_mae": cn.get("mae"),
        "cn_r2": cn.get("r2"),
        "cn_mean_relative_error": cn.get("mean_relative_error"),
        "r_mse": r.get("mse"),
        "r_mae": r.get("mae"),
        "r_r2": r.get("r2"),
        "split_sizes": card["dataset"]["split"].get("sizes"),
        "training_seconds": card.get("training", {}).get("seconds"),
    }


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_DONE = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def stage_times(logs: list[str]) -> dict[str, dict]:
    """Wall time per rule from Snakemake logs (its .snakemake/log file or captured output).

    For each rule: the number of jobs, the summed job time and the span from its first
    job's start to its last job's end (s), summed over the logs (a run continued by a
    second command).  Jobs of different rules interleave when a config has several
    sources, so a span may include other rules' jobs; ``_total`` is the whole run.
    """
    out: dict[str, dict] = {}
    for log in logs:
        jobs: dict[int, dict] = {}
        stamp = None
        pending = None
        for line in Path(log).read_text(errors="replace").splitlines():
            if m := _STAMP.match(line):
                stamp = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            elif (m := _START.match(line)) and stamp is not None:
                pending = {"rule": m.group(1), "start": stamp}
            elif (m := _JOBID.match(line)) and pending is not None:
                jobs[int(m.group(1))] = pending
                pending = None
            elif (m := _DONE.match(line)) and int(m.group(1)) in jobs:
                jobs[int(m.group(1))]["end"] = stamp
        done = [j for j in jobs.values() if "end" in j and j["rule"] != "all"]
        for rule in [*sorted({j["rule"] for j in done}), "_total"]:
            mine = [j for j in done if rule in (j["rule"], "_total")]
            r = out.setdefault(rule, {"jobs": 0, "job_seconds": 0.0, "span_seconds": 0.0})
            r["jobs"] += len(mine)
            r["job_seconds"] += sum((j["end"] - j["start"]).total_seconds() for j in mine)
            span = max(j["end"] for j in mine) - min(j["start"] for j in mine)
            r["span_seconds"] += span.total_seconds()
    return out


def copy_plots(exp: str, exp_dir: Path, names: list[str], targets: list[str]) -> list[str]:
    """Copy parity and error-histogram images of ``names`` into docs/img/<exp>_*.png."""
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        for t in targets:
            for kind in ("parity", "errors"):
                src = exp_dir / "evaluation" / f"{kind}_{name}_{t}.png"
                if src.is_file():
                    dst = img / f"{exp}_{kind}_{name}_{t}.png"
                    shutil.copyfile(src, dst)
                    copied.append(str(dst.relative_to(ROOT)))
    return copied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", choices=sorted(EXPERIMENTS), action="append")
    ap.add_argument("--copy-plots", action="store_true", help="copy the plots into docs/img/")
    ap.add_argument(
        "--snakemake-log",
        action="append",
        default=[],
        metavar="EXPERIMENT=LOG",
        help="Snakemake log of the experiment's run: adds the wall time per stage",
    )
    args = ap.parse_args()
    logs: dict[str, list[str]] = {}
    for item in args.snakemake_log:
        exp, _, path = item.partition("=")
        logs.setdefault(exp, []).append(path)

    for exp in args.experiment or sorted(EXPERIMENTS):
        result, headline, targets, unit, paper = EXPERIMENTS[exp]
        exp_dir = ROOT / "results" / exp
        path = exp_dir / "evaluation" / "metrics.json"
        if not path.is_file():
            print(f"{exp}: no {path.relative_to(ROOT)}; run the workflow first", file=sys.stderr)
            continue
        metrics = json.loads(path.read_text())
        primary = metrics["primary"]
        best = model_summary(exp_dir, metrics, primary)
        base = model_summary(exp_dir, metrics, BASELINE) if BASELINE in metrics["models"] else None
        met = {
            key: (best[key] is not None and best[key] <= limit) for key, limit in targets.items()
        }
        extra = {}
        if exp in logs:
            extra["stages"] = stage_times(logs[exp])
            extra["snakemake_logs"] = logs[exp]
        if args.copy_plots:
            model_targets = list(metrics["models"][primary]["targets"])
            extra["plots"] = copy_plots(exp, exp_dir, [primary, BASELINE], model_targets)
        write_result(
            result,
            best[headline],
            unit,
            description=f"{exp}: test-split {headline.replace('_', ' ').upper()} "
            f"of the primary model {primary!r}",
            experiment=exp,
            metric=headline,
            targets={k: f"<= {v}" for k, v in targets.items()},
            targets_met=met,
            n_test=metrics["n_test"],
            dataset_hash=metrics["dataset_hash"],
            best=best,
            paper_mlp=base,
            paper=paper or None,
            units={"cn_mse": "", "cn_mae": "", "r_mse": "Å²", "r_mae": "Å"},
            **extra,
        )


if __name__ == "__main__":
    main()
