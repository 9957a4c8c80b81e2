"""Baseline results as a terminal table and as files; the ``mlxas baseline`` command."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlxas.baseline.fit import BaselineResult, FitSettings, fit_files
from mlxas.baseline.reference import BaselineError

__all__ = ["COLUMNS", "format_table", "output_format", "run_command", "write_results"]

COLUMNS = (
    "source", "status", "reason", "cn", "cn_err", "r", "r_err", "sigma2", "sigma2_err",
    "delta_e0", "delta_e0_err", "r_factor", "chi2_reduced", "n_independent", "s02", "kmin",
    "kmax", "rmin", "rmax", "e0", "edge_step", "seconds", "seconds_total", "notes",
)  # fmt: skip


def format_table(results: Sequence[BaselineResult]) -> str:
    """A terminal table: CN ± err, R ± err (Å), σ² (Å²), ΔE0 (eV), R-factor, fit time."""
    width = max([len("file")] + [len(r.source) for r in results])
    head = (
        f"{'file':<{width}}  {'CN':>11}  {'R (Å)':>15}  {'σ² (Å²)':>8}  {'ΔE0 (eV)':>8}  "
        f"{'R-factor':>8}  {'fit (s)':>7}"
    )
    lines = [head]
    for r in results:
        if r.status != "ok":
            lines.append(f"{r.source:<{width}}  refused: {r.reason}")
            continue
        lines.append(
            f"{r.source:<{width}}  {r.cn:5.2f} ± {r.cn_err:4.2f}  {r.r:6.4f} ± {r.r_err:6.4f}  "
            f"{r.sigma2:8.5f}  {r.delta_e0:8.2f}  {r.r_factor:8.4f}  {r.seconds:7.3f}"
        )
    return "\n".join(lines)


def output_format(out: str | Path) -> str:
    """csv, json or jsonl from the file name, as ``mlxas predict`` reads it; else an error."""
    from mlxas.predict.output import FORMATS, guess_format

    try:
        return guess_format(Path(out))
    except ValueError:
        known = ", ".join(f".{f}" for f in FORMATS)
        raise BaselineError(f"{out}: unknown output format; name it {known}") from None


def write_results(results: Sequence[BaselineResult], out: str | Path, fmt: str | None = None):
    """Write CSV, JSON (``{"results": [...]}``) or JSON Lines, by ``fmt`` or the suffix."""
    import csv

    out = Path(out)
    fmt = fmt or output_format(out)
    rows = [r.as_dict() for r in results]
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_text(json.dumps({"results": rows}, indent=1) + "\n")
    elif fmt == "jsonl":
        out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})


def run_command(a: Any) -> int:
    """``mlxas baseline``: fit every spectrum, print a table, write ``--out``.

    Exit status 0 when every spectrum was fitted, 1 when some were refused, 2 when none.
    """
    import sys

    settings = FitSettings(
        kmin=a.kmin, kmax=a.kmax, kweight=a.kweight, dk=a.dk, rmin=a.rmin, rmax=a.rmax,
        s02=a.s02,
    )  # fmt: skip
    # Refuse an output name without a known format before spending time on the fits.
    fmt = output_format(a.out) if a.out else None
    start = time.perf_counter()
    results = fit_files(
        a.files, element=a.element, edge=a.edge, settings=settings, cache_dir=a.cache,
        path_file=a.path, mu_label=a.mu, energy_label=a.energy, repair=a.repair,
    )  # fmt: skip
    refused = [r for r in results if r.status != "ok"]
    if a.out:
        write_results(results, a.out, fmt)
    if len(results) == 1 and refused:
        raise BaselineError(f"{refused[0].source}: {refused[0].reason}")
    if not a.quiet:
        print(format_table(results))
    for r in refused:
        print(f"mlxas: refused {r.source}: {r.reason}", file=sys.stderr)
    print(
        f"mlxas: {len(results) - len(refused)} fitted, {len(refused)} refused in "
        f"{time.perf_counter() - start:.2f} s",
        file=sys.stderr,
    )
    if not refused:
        return 0
    return 2 if len(refused) == len(results) else 1
