"""The contract's sections of ``reliability.json``: tampered model folders and bad configs.

Both sections run the test suite's own corpora (imported, not copied), as users meet them:

- ``tampering``: every case of ``tests/test_bound_models.py``'s ``TAMPERING`` applied to a
  fresh copy of a trained model folder.  Counted: refused by ``load_model`` with the
  case's reason, naming the folder, before Keras was asked to deserialise anything; and
  refused by ``mlxas predict`` (a fresh process) with exit status 2 and one line holding
  the same reason.  An untouched copy must load and predict (a checker that refused
  everything would count as failing).
- ``bad_config``: every bad config of ``tests/test_config_contract.py``'s ``BAD``, checked
  by ``mlxas config check`` and by ``snakemake -n`` (fresh processes, the commands users
  type).  Counted: both refuse, with the same one-line message naming the file and
  holding the case's text, before any job (the dry run lists no job, no ``results/``
  folder appears).  Every shipped config (``config/**/*.yaml``) must pass both.

Used by ``benchmarks/bench_reliability.py`` (``--sections tampering,bad_config``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock


def _deserialise_guard():
    """Patch Keras' loader to record calls instead of loading (refusals come first)."""
    import keras

    calls: list[tuple] = []

    def record(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("keras.saving.load_model called")

    return mock.patch.object(keras.saving, "load_model", record), calls


def _predict(folder: Path, spectrum: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mlxas", "predict", str(folder), str(spectrum)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _tampered_case(case: str, target: Path, expected: str, spectrum: Path) -> dict:
    from mlxas.models.card import ModelLoadError, load_model

    guard, calls = _deserialise_guard()
    reason = ""
    with guard:
        try:
            load_model(target)
            loaded = True
        except ModelLoadError as err:
            loaded, reason = False, str(err)
        except RuntimeError as err:  # the guard: the refusal came too late
            loaded, reason = True, str(err)
    names_folder = str(target) in reason or target.name in reason
    refused = not loaded and expected in reason and names_folder and not calls
    proc = _predict(target, spectrum)
    lines = proc.stderr.strip().splitlines()
    cli_refused = (
        proc.returncode == 2
        and len(lines) == 1
        and lines[0].startswith("mlxas: error: ")
        and expected in lines[0]
    )
    return {
        "case": case,
        "refused_by_load_model": bool(refused),
        "deserialised_before_refusal": bool(calls),
        "refused_by_mlxas_predict": bool(cli_refused),
        "reason": reason,
        "predict_exit_code": proc.returncode,
    }


def tampering_section(root: Path) -> dict:
    from conftest import EXPERIMENTAL
    from mlxas.models.card import load_model
    from synthetic_exafs import train_session_models
    from test_bound_models import TAMPERING, _copy

    models = train_session_models(root / "trained")
    other = models["folders"]["ens"]
    spectrum = EXPERIMENTAL / "cu_metal_rt.xdi"
    cases = []
    for i, (case, tamper) in enumerate(TAMPERING.items()):
        folder = _copy(models, "mt", root / f"case{i:02d}")
        target, expected = tamper(folder, other)
        cases.append(_tampered_case(case, target, expected, spectrum))
        shutil.rmtree(root / f"case{i:02d}")
    # Control: an untouched copy loads and predicts.
    untouched = _copy(models, "mt", root / "untouched")
    load_model(untouched)
    control = _predict(untouched, spectrum).returncode == 0
    refused = sum(c["refused_by_load_model"] and c["refused_by_mlxas_predict"] for c in cases)
    for c in cases:
        print(json.dumps(c), flush=True)
    return {
        "cases_tried": len(cases),
        "refused_by_both": refused,
        "deserialised_before_refusal": sum(c["deserialised_before_refusal"] for c in cases),
        "untouched_copy_loads_and_predicts": control,
        "failures": (len(cases) - refused) + (not control),
        "summary": {"tried": len(cases) + 1, "refused": refused},
        "cases": cases,
    }


def _bad_config_case(case: str, config: dict, expected: str, work: Path) -> dict:
    import yaml

    from conftest import snakemake
    from test_workflow import _scheduled

    work.mkdir(parents=True)
    path = work / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cli = subprocess.run(
        [sys.executable, "-m", "mlxas", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = cli.stderr.strip().splitlines()
    message = lines[0].removeprefix("mlxas: error: ") if len(lines) == 1 else ""
    cli_refused = (
        cli.returncode == 2
        and len(lines) == 1
        and lines[0].startswith("mlxas: error: ")
        and message.startswith(f"{path}: ")
        and expected in message
    )
    dry = snakemake(work, "--configfile", str(path), "-n", check=False, timeout=600)
    out = dry.stdout + dry.stderr
    jobs = _scheduled(dry)
    dry_refused = dry.returncode != 0 and bool(message) and f"invalid config: {message}" in out
    no_job = not jobs and not (work / "results").exists()
    return {
        "case": case,
        "refused_by_config_check": bool(cli_refused),
        "refused_by_snakemake_dry_run": bool(dry_refused),
        "same_message": bool(dry_refused),
        "jobs_listed_or_written": 0 if no_job else max(1, sum(map(len, jobs.values()))),
        "message": message or cli.stderr.strip()[-300:],
    }


def _shipped_config_passes(path: Path, work: Path) -> bool:
    from conftest import snakemake

    work.mkdir(parents=True)
    cli = subprocess.run(
        [sys.executable, "-m", "mlxas", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    dry = snakemake(work, "--configfile", str(path), "-n", check=False, timeout=600)
    return cli.returncode == 0 and dry.returncode == 0


def bad_config_section(root: Path) -> dict:
    from conftest import ROOT
    from test_config_contract import BAD, CONFIGS

    cases = [
        _bad_config_case(case, config, expected, root / f"bad{i:02d}")
        for i, (case, config, expected) in enumerate(BAD)
    ]
    shipped = {name: _shipped_config_passes(ROOT / name, root / f"ok{i:02d}")
               for i, name in enumerate(CONFIGS)}  # fmt: skip
    refused = sum(
        c["refused_by_config_check"]
        and c["refused_by_snakemake_dry_run"]
        and c["jobs_listed_or_written"] == 0
        for c in cases
    )
    for c in cases:
        print(json.dumps(c), flush=True)
    passed = sum(shipped.values())
    return {
        "configs_tried": len(cases),
        "refused_by_both_before_any_job": refused,
        "shipped_configs_tried": len(shipped),
        "shipped_configs_passing_both": passed,
        "failures": (len(cases) - refused) + (len(shipped) - passed),
        "summary": {"tried": len(cases) + len(shipped), "refused": refused},
        "cases": cases,
        "shipped_configs": shipped,
    }
