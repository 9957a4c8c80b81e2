"""Shared helpers for benchmark scripts: machine description and the result file format.

Every benchmark writes ``benchmarks/results/<name>.json`` with at least
``{"name", "value", "unit", "command", "machine", "date"}``; ``benchmarks/report.py``
turns the folder into the table in ``docs/results.md``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent

#: 1-minute load average when the benchmark module was imported; the machine is shared,
#: so every result says how busy it was around the measurement.
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine() -> str:
    """CPU model, cores usable by this process, and memory, as one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {cores} cores{mem}, {system}, Python {platform.python_version()}"


def command() -> str:
    """The command line that ran this benchmark, relative to the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):  # a script outside the repository keeps its path
        script = script.relative_to(ROOT)
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", str(script), *sys.argv[1:]])


def write_result(name: str, value: float, unit: str, **extra: Any) -> Path:
    """Write ``benchmarks/results/<name>.json`` and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "value": value,
        "unit": unit,
        "command": extra.pop("command", command()),
        "machine": machine(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **extra,
    }
    if hasattr(os, "getloadavg"):
        record.setdefault("load_average_at_start", LOAD_AT_START)
        record.setdefault("load_average_at_end", os.getloadavg()[0])
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    print(json.dumps(record, indent=2))
    return path
