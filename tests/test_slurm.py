"""The tiny workflow on a real SLURM cluster, submitted through ``profiles/slurm``.

Needs the one-node cluster that ``.ci/slurm-up`` starts (it runs as root in ``.ci/run``).
Without a cluster the tests skip, except under ``MLXAS_REQUIRE_SLURM=1`` (``.ci/run``
exports it): then they fail, so CI cannot pass without having run them.
That cluster has no accounting: job states come from ``squeue`` and no account is given.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess

import h5py
import pandas as pd
import pytest

from conftest import ROOT, TINY_CONFIG, snakemake, write_config


def _slurm_unavailable() -> str | None:
    """Why the SLURM test cannot run here, or None when a node is idle."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM client commands not found (start the test cluster with .ci/slurm-up)"
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format", "%N %T %c"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 15 s (is slurmctld running?)"
    if proc.returncode != 0:
        return f"sinfo failed: {proc.stderr.strip()} (start the cluster with .ci/slurm-up)"
    nodes = [line.split() for line in proc.stdout.splitlines() if line.strip()]
    usable = [n for n in nodes if n[1].rstrip("*") in ("idle", "mixed")]
    if not usable:
        return f"no idle SLURM node: {proc.stdout.strip() or 'sinfo lists no nodes'}"
    return None


def _cluster_cpus() -> int:
    out = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format", "%c"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return max(int(x) for x in out.split())


#: The tiny experiment, with one FEFF run per job so two chunk jobs share a 2-CPU node.
SLURM_CONFIG = copy.deepcopy(TINY_CONFIG)
SLURM_CONFIG["experiment"] = "tiny_slurm"
SLURM_CONFIG["simulation"].update(chunk_size=8, threads=1)


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    reason = _slurm_unavailable()
    if reason and os.environ.get("MLXAS_REQUIRE_SLURM") == "1":
        pytest.fail(f"MLXAS_REQUIRE_SLURM=1 (set by .ci/run) but no SLURM cluster: {reason}")
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("slurm_run")
    cfg = write_config(workdir, SLURM_CONFIG)
    env = {
        "MLXAS_SLURM_PARTITION": subprocess.run(
            ["sinfo", "--noheader", "--format", "%R"], capture_output=True, text=True
        ).stdout.split()[0],
        "MLXAS_SLURM_ACCOUNT": "",
    }
    proc = snakemake(
        workdir,
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--configfile",
        str(cfg),
        # No accounting on the test cluster: squeue is the only source of job states.
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--slurm-keep-successful-logs",
        "--latency-wait",
        "5",
        "--max-threads",
        str(_cluster_cpus()),
        # Model stages as one job as well, to keep the number of queue round trips small.
        "--groups",
        "structures=prep",
        "sites=prep",
        "labels=prep",
        "inputs=prep",
        "gather=model",
        "train=model",
        "latest=model",
        "evaluate=model",
        "--verbose",
        env=env,
        timeout=600,
    )
    return workdir, proc.stdout + proc.stderr, env


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.slow
def test_all_jobs_ran_as_slurm_jobs(slurm_run):
    workdir, log, _ = slurm_run
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    # one prep job per source, one job per FEFF chunk, one model job
    chunks = sorted((workdir / "results" / "tiny_slurm" / "simulation").glob("*/chunks/*.h5"))
    assert len(job_ids) == 2 + len(chunks) + 1, log[-3000:]
    states = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i %T", "--jobs", ",".join(job_ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seen = dict(line.split() for line in states.splitlines())
    assert {seen.get(j) for j in job_ids} == {"COMPLETED"}, states
    # The job logs that SLURM wrote hold the rules each job ran.
    logs = {p.stem: p for p in (workdir / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(job_ids) <= set(logs)
    run_feff_logs = [logs[j] for j in job_ids if "rule_simulate" in str(logs[j])]
    assert len(run_feff_logs) == len(chunks)
    assert all("rule simulate" in p.read_text() for p in run_feff_logs)


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.slow
def test_status_from_squeue_and_no_account(slurm_run):
    _, log, env = slurm_run
    assert "command=squeue" in log
    assert "command=sacct" not in log
    calls = re.findall(r"sbatch call: (.*)", log)
    assert calls
    for call in calls:
        assert " -A " not in call and "--account" not in call
        assert f"-p {env['MLXAS_SLURM_PARTITION']}" in call
        assert re.search(r" -t \d+", call) and re.search(r"--mem \d+", call)


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.slow
def test_outputs_are_complete(slurm_run):
    workdir, _, _ = slurm_run
    res = workdir / "results" / "tiny_slurm"
    expected = set()
    for table in (res / "simulation").glob("*/inputs.parquet"):
        expected |= set(pd.read_parquet(table, columns=["item_id"])["item_id"])
    with h5py.File(res / "dataset.h5", "r") as f:
        ids = list(f["sites/site_id"].asstr()[()])
        assert len(f["failures/site_id"]) == 0
    assert len(ids) == len(set(ids)) and set(ids) == expected and len(ids) > 10
    assert (res / "evaluation" / "metrics.json").is_file()
    assert (res / "evaluation" / "parity_cn.png").stat().st_size > 1000
    # Nothing left to do: the outputs written on the node are complete for Snakemake too.
    proc = snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_profile_reads_partition_and_account_from_environment(tmp_path):
    """The profile turns MLXAS_SLURM_* into default resources (dry run, no cluster needed)."""
    cfg = write_config(tmp_path, TINY_CONFIG)
    env = {"MLXAS_SLURM_PARTITION": "compute", "MLXAS_SLURM_ACCOUNT": "proj-42"}
    out = snakemake(
        tmp_path,
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--configfile",
        str(cfg),
        "-n",
        env=env,
    ).stdout
    assert "slurm_partition=compute" in out and "slurm_account=proj-42" in out
    out = snakemake(
        tmp_path,
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--configfile",
        str(cfg),
        "-n",
        env={k: "" for k in env},
    ).stdout
    assert "slurm_partition" not in out and "slurm_account" not in out
    assert "runtime=" in out and "mem_mb=" in out
