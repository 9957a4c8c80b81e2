"""cold_start: wall time of ``mlxas predict MODEL cu_metal_rt.xdi`` from a new process.

Each run is a fresh interpreter (the page cache stays warm, as it does at a beamline
after the first command).  ``python -c pass`` is timed in the same run, interleaved with
the predictions, and the ratio of the medians is reported: it says how much of the time
is mlxas rather than the machine.  The CPU time of each child (user + sys) is recorded
too, as it moves less than wall time when other programs share the machine.  One extra
run with ``-X importtime`` lists the slowest imports and checks that neither TensorFlow
nor larch is imported.

With ``--bundled``, the command is the issue's ``mlxas predict cu_metal_rt.xdi`` without
a model: the benchmark model is placed in a bundled models folder (``--models``), and
the command lists the bundled models, picks the Cu K one from the file's header, then
predicts.

    .venv/bin/python benchmarks/bench_cold_start.py [--runs 9] [--model PATH] [--bundled]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result
from _predict_model import CU_FOIL, add_model_arguments, model_from_args

TARGET_S = 1.5


def _env() -> dict[str, str]:
    # Measure this tree's code, whatever the virtualenv's editable install points at.
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _timed(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, child CPU s, process) of one run."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, proc


def _mlxas() -> list[str]:
    script = Path(sys.executable).parent / "mlxas"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlxas"]


def _imports(cmd: list[str]) -> tuple[list[dict], list[str]]:
    """Slowest top-level imports (cumulative ms) and heavy packages seen, from -X importtime."""
    env = {**_env(), "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = line.split("|")
        if cum.strip().isdigit():
            rows.append((int(cum), name.rstrip()))
    top = [
        {"module": name.strip(), "ms": round(us / 1000, 1)}
        for us, name in sorted(rows, reverse=True)
        if not name.startswith("   ")  # top-level imports only (no double counting)
    ][:15]
    heavy = sorted(
        {n.strip().split(".")[0] for _, n in rows}
        & {"tensorflow", "keras", "larch", "lmfit", "sklearn", "pandas", "matplotlib", "xraydb"}
    )
    return top, heavy


def _bundled_folder(pointer: Path, root: Path) -> Path:
    """A bundled models folder holding the model of ``pointer`` as ``bench_cu/<entry>``."""
    import json
    import shutil

    from mlxas.models.card import resolve_model_dir

    folder = resolve_model_dir(pointer)
    entry = json.loads(Path(pointer).read_text())["name"]
    exp = root / "bench_cu"
    if exp.exists():
        shutil.rmtree(exp)
    (exp / entry).mkdir(parents=True)
    shutil.copy(pointer, exp / f"{entry}.json")
    shutil.copytree(folder, exp / entry / folder.name)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument(
        "--bundled", action="store_true", help="time `mlxas predict FILE` with no model argument"
    )
    add_model_arguments(ap)
    a = ap.parse_args()
    model = model_from_args(a)
    if a.bundled:
        models = _bundled_folder(model, Path(a.workdir) / "bundled")
        predict = [*_mlxas(), "predict", str(CU_FOIL), "--models", str(models)]
    else:
        predict = [*_mlxas(), "predict", str(model), str(CU_FOIL)]
    bare = [sys.executable, "-c", "pass"]

    _timed(predict)  # first run: fills the page cache (a beamline computer has it warm)
    walls: dict[str, list[float]] = {"predict": [], "pass": []}
    cpus: dict[str, list[float]] = {"predict": [], "pass": []}
    output = ""
    for _ in range(a.runs):
        for key, cmd in (("pass", bare), ("predict", predict)):
            wall, cpu, proc = _timed(cmd)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
            walls[key].append(wall)
            cpus[key].append(cpu)
            if key == "predict":
                output = proc.stdout
    if CU_FOIL.name not in output or "refused" in output:
        raise SystemExit(f"unexpected output of {' '.join(predict)}:\n{output}")
    top, heavy = _imports(predict)
    med = {k: statistics.median(v) for k, v in walls.items()}
    write_result(
        "cold_start",
        round(med["predict"], 3),
        "s",
        target=f"<= {TARGET_S} s wall on an idle machine",
        met=med["predict"] <= TARGET_S,
        runs=a.runs,
        predict_wall_s=[round(x, 3) for x in walls["predict"]],
        python_pass_median_s=round(med["pass"], 4),
        ratio_to_python_pass=round(med["predict"] / med["pass"], 1),
        predict_cpu_median_s=round(statistics.median(cpus["predict"]), 3),
        python_pass_cpu_median_s=round(statistics.median(cpus["pass"]), 4),
        heavy_packages_imported=heavy,
        slowest_imports=top,
        command_measured=" ".join(["mlxas", *predict[len(_mlxas()) :]]),
        bundled=a.bundled,
        load_average_1min=[round(x, 2) for x in os.getloadavg()],
        output=output.strip().splitlines(),
        model=str(model),
    )


if __name__ == "__main__":
    main()
