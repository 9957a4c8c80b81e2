"""The PBS profile without a PBS server: submission and status against recorded outputs.

No PBS server is packaged for Debian or PyPI. ``profiles/pbs/submit.py`` is checked on job
scripts written by the real Snakemake (recorded ones and one written during the test),
``profiles/pbs/status.py`` on recorded ``qstat -f`` answers (tests/data/pbs/README.md),
replayed by a small ``qstat`` executable that prints a recorded file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, ROOT, TINY_CONFIG, snakemake, write_config

PBS = ROOT / "profiles" / "pbs"
RECORDED = DATA / "pbs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"pbs_{name}", PBS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


submit = _load("submit")
status = _load("status")


def _opts(args: list[str]) -> dict[str, list[str]]:
    """qsub options -> values (``-l`` may repeat); the last argument is the script."""
    out: dict[str, list[str]] = {}
    it = iter(args[1:-1])
    for a in it:
        out.setdefault(a, []).append("" if a in ("-V",) else next(it))
    return out


# --- submission ------------------------------------------------------------------------


def test_run_feff_job_maps_threads_memory_runtime():
    props = submit.job_properties(RECORDED / "jobscript_run_feff.sh")
    # what rules/feff.smk asks for: 2 threads, 1000 + 500/thread MB, 10 + 2 x 16 min
    assert (props["threads"], props["resources"]["mem_mb"], props["resources"]["runtime"]) == (
        2,
        2000,
        42,
    )
    args = submit.qsub_args(props, "/s/job.sh", "/s/job.log")
    assert args[0] == "qsub" and args[-1] == "/s/job.sh"
    opts = _opts(args)
    assert opts["-N"] == ["smk.run_feff.octa_00001"]
    assert opts["-l"] == ["select=1:ncpus=2:mem=2000mb", "walltime=00:42:00"]
    assert opts["-j"] == ["oe"] and opts["-o"] == ["/s/job.log"] and "-V" in opts
    assert "-q" not in opts and "-A" not in opts


def test_queue_account_and_extra_options_from_resources():
    props = submit.job_properties(RECORDED / "jobscript_run_feff.sh")
    props["resources"].update(pbs_queue="workq", pbs_account="proj42", pbs_extra="-m abe -r n")
    opts = _opts(submit.qsub_args(props, "s.sh", "s.log"))
    assert opts["-q"] == ["workq"] and opts["-A"] == ["proj42"]
    assert opts["-m"] == ["abe"] and opts["-r"] == ["n"]


def test_group_job_name_and_summed_runtime():
    props = submit.job_properties(RECORDED / "jobscript_group_prep.sh")
    opts = _opts(submit.qsub_args(props, "s.sh", "s.log"))
    assert opts["-N"] == ["smk.group.prep.610bc511"]
    # structures 60 + sites 30 + feff_inputs 30 minutes, the largest memory (feff_inputs)
    assert opts["-l"] == ["select=1:ncpus=1:mem=4000mb", "walltime=02:00:00"]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(1, "00:01:00"), (42, "00:42:00"), (90, "01:30:00"), (0.2, "00:01:00"), (6000, "100:00:00")],
)
def test_walltime(minutes, expected):
    assert submit.walltime(minutes) == expected


def test_not_a_jobscript_is_a_clear_error(tmp_path):
    bad = tmp_path / "job.sh"
    bad.write_text("#!/bin/sh\necho hi\n")
    proc = subprocess.run(
        [sys.executable, str(PBS / "submit.py"), "--dry-run", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert str(bad) in proc.stderr and "properties" in proc.stderr


@pytest.mark.parametrize(("body", "rc"), [("true", 0), ("false", 1)])
def test_wrapper_runs_the_job_and_records_its_exit_code(tmp_path, body, rc):
    # The last line has the shape the cluster-generic plugin gives every job script.
    jobscript = f"#!/bin/sh\n# properties = {{}}\n{body} && exit 0 || exit 1\n"
    script = tmp_path / "wrapper.sh"
    script.write_text(submit.wrapper_script(jobscript, tmp_path / "exit"))
    env = {**os.environ, "PBS_JOBID": "4242.pbs01"}
    assert subprocess.run(["sh", str(script)], env=env).returncode == rc
    assert (tmp_path / "exit" / "4242.pbs01.exit").read_text().strip() == str(rc)
    assert not list((tmp_path / "exit").glob("*.tmp"))
    assert status.recorded_exit("4242.pbs01", tmp_path) == rc


def test_dry_run_cli_writes_the_wrapper(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(PBS / "submit.py"),
            "--dry-run",
            str(RECORDED / "jobscript_run_feff.sh"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    args = shlex.split(proc.stdout)
    script = Path(args[-1])
    assert script.parent == (tmp_path / ".snakemake" / "pbs" / "scripts").resolve()
    text = script.read_text()
    assert "--target-jobs 'run_feff:source=octa,chunk=00001'" in text
    assert os.access(script, os.X_OK)
    log = Path(_opts(args)["-o"][0])
    assert log.parent == (tmp_path / ".snakemake" / "pbs" / "logs" / "run_feff").resolve()


@pytest.mark.workflow
def test_snakemake_job_scripts_through_the_profile(tmp_path):
    """The real Snakemake, with profiles/pbs, hands its job scripts to submit.py.

    submit.py --dry-run prints the qsub command where qsub would print a job id, so the
    command shows up as the job's external id; the job is then reported failed.
    """
    cfg = write_config(tmp_path, TINY_CONFIG)
    proc = snakemake(
        tmp_path,
        "--profile",
        str(PBS),
        "--configfile",
        str(cfg),
        "--cluster-generic-submit-cmd",
        f"{shlex.quote(sys.executable)} {shlex.quote(str(PBS / 'submit.py'))} --dry-run",
        "--cluster-generic-status-cmd",
        "sh -c 'echo failed'",
        "--retries",
        "0",
        "--seconds-between-status-checks",
        "1",
        check=False,
        env={"MLXAS_PBS_QUEUE": "workq", "MLXAS_PBS_ACCOUNT": ""},
        timeout=300,
    )
    commands = re.findall(r"with external jobid '(qsub .*)'", proc.stdout + proc.stderr)
    # one per source: structures, sites, labels and inputs run as one group job
    assert len(commands) == len(TINY_CONFIG["structures"]), proc.stderr[-3000:]
    for cmd in commands:
        opts = _opts(shlex.split(cmd))
        assert opts["-N"][0].startswith("smk.group.prep.")
        assert opts["-q"] == ["workq"] and "-A" not in opts
        # labels and inputs both follow sites and run side by side in the group job:
        # runtime 60 + 30 + max(30, 30) min, their cores (1 + 1) and memory (2000 + 4000 MB)
        assert opts["-l"] == ["select=1:ncpus=2:mem=6000mb", "walltime=02:00:00"]


def test_profile_files():
    cfg = (PBS / "config.yaml").read_text()
    assert "cluster-generic-submit-cmd: submit.py" in cfg
    assert "cluster-generic-status-cmd: status.py" in cfg
    assert "cluster-generic-cancel-cmd: qdel" in cfg
    for name in ("submit.py", "status.py"):
        path = PBS / name
        assert path.stat().st_mode & stat.S_IXUSR
        assert path.read_text().startswith("#!/usr/bin/env python3\n")


# --- status ----------------------------------------------------------------------------


def _replay_qstat(
    tmp_path: Path,
    json_out: str = "",
    json_rc: int = 0,
    text_out: str = "",
    text_rc: int = 0,
    json_err: str = "",
    text_err: str = "",
) -> Path:
    """A ``qstat`` that prints recorded files and logs the arguments it was called with."""
    files = {}
    for key, content in {
        "json_out": json_out,
        "json_err": json_err,
        "text_out": text_out,
        "text_err": text_err,
    }.items():
        files[key] = tmp_path / f"replay_{key}"
        src = RECORDED / content if content and (RECORDED / content).is_file() else None
        files[key].write_text(src.read_text() if src else content)
    exe = tmp_path / "qstat"
    exe.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {shlex.quote(str(tmp_path / "qstat.calls"))}\n'
        'case "$*" in\n'
        f'  *"-F json"*) cat {files["json_out"]}; cat {files["json_err"]} >&2; exit {json_rc} ;;\n'
        f"  *) cat {files['text_out']}; cat {files['text_err']} >&2; exit {text_rc} ;;\n"
        "esac\n"
    )
    exe.chmod(0o755)
    return exe


def _status_cli(tmp_path: Path, qstat: Path, jobid: str) -> subprocess.CompletedProcess:
    """status.py as the cluster-generic plugin runs it: one job id, one word back."""
    return subprocess.run(
        [sys.executable, str(PBS / "status.py"), jobid],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MLXAS_QSTAT": str(qstat)},
        check=True,
    )


@pytest.mark.parametrize(
    ("recorded", "jobid", "expected"),
    [
        ("qstat_json_queued.json", "4301.pbs01", "running"),
        ("qstat_json_held.json", "4302.pbs01", "running"),
        ("qstat_json_running.json", "4303.pbs01", "running"),
        ("qstat_json_exiting.json", "4304.pbs01", "running"),
        ("qstat_json_finished_ok.json", "4305.pbs01", "success"),
        ("qstat_json_finished_failed.json", "4306.pbs01", "failed"),
        ("qstat_json_walltime_exceeded.json", "4307.pbs01", "failed"),
        ("qstat_json_deleted_while_queued.json", "4308.pbs01", "failed"),
        # a bare sequence number names the same job
        ("qstat_json_finished_ok.json", "4305", "success"),
    ],
)
def test_status_from_qstat_json(tmp_path, recorded, jobid, expected):
    qstat = _replay_qstat(tmp_path, json_out=recorded)
    proc = _status_cli(tmp_path, qstat, jobid)
    assert proc.stdout == f"{expected}\n"
    assert (tmp_path / "qstat.calls").read_text() == f"-f -x -F json {jobid}\n"


def test_invalid_json_falls_back_to_text(tmp_path):
    qstat = _replay_qstat(
        tmp_path,
        json_out="qstat_json_invalid_escape.json",
        text_out="qstat_text_invalid_escape.txt",
    )
    assert _status_cli(tmp_path, qstat, "4310.pbs01").stdout == "success\n"
    calls = (tmp_path / "qstat.calls").read_text().splitlines()
    assert calls == ["-f -x -F json 4310.pbs01", "-f -x 4310.pbs01"]


@pytest.mark.parametrize(
    ("recorded", "jobid", "expected"),
    [
        ("qstat_text_running.txt", "4303.pbs01", "running"),
        ("qstat_text_finished_failed.txt", "4306.pbs01", "failed"),
        ("torque_qstat_completed.txt", "88123.torque01.cluster.example.org", "success"),
    ],
)
def test_qstat_without_json_output(tmp_path, recorded, jobid, expected):
    qstat = _replay_qstat(
        tmp_path,
        json_rc=2,
        json_err="qstat: invalid option -- 'F'\nusage: qstat ...\n",
        text_out=recorded,
    )
    assert _status_cli(tmp_path, qstat, jobid).stdout == f"{expected}\n"


@pytest.mark.parametrize(
    ("record", "expected"), [("0", "success"), ("1", "failed"), (None, "failed")]
)
def test_job_unknown_to_qstat_is_judged_by_its_exit_record(tmp_path, record, expected):
    if record is not None:
        exit_dir = tmp_path / ".snakemake" / "pbs" / "exit"
        exit_dir.mkdir(parents=True)
        (exit_dir / "4399.pbs01.exit").write_text(record + "\n")
    qstat = _replay_qstat(tmp_path, json_rc=153, json_err="qstat_unknown_job.stderr")
    assert _status_cli(tmp_path, qstat, "4399.pbs01").stdout == f"{expected}\n"


def test_qstat_outage_is_retried_then_reported_running(tmp_path, monkeypatch, capsys):
    qstat = _replay_qstat(
        tmp_path, json_rc=1, json_err="Connection refused\nqstat: cannot connect to server pbs01\n"
    )
    monkeypatch.setattr(status, "RETRY_WAIT", 0.0)
    assert status.status("4303.pbs01", str(qstat), tmp_path) == "running"
    assert len((tmp_path / "qstat.calls").read_text().splitlines()) == status.RETRIES
    assert "cannot connect to server" in capsys.readouterr().err


def test_text_and_json_forms_agree():
    for name, jobid in (("running", "4303.pbs01"), ("finished_failed", "4306.pbs01")):
        from_json = status.parse_json((RECORDED / f"qstat_json_{name}.json").read_text(), jobid)
        from_text = status.parse_text((RECORDED / f"qstat_text_{name}.txt").read_text())
        assert from_text["Job_Id"] == jobid
        for key in ("job_state", "Job_Name", "Error_Path", "Submit_arguments"):
            assert from_text[key] == str(from_json[key])
        assert from_text["Resource_List"]["select"] == from_json["Resource_List"]["select"]
        # Variable_List is broken over several lines in the text form
        assert (
            "PBS_O_PATH=/home/alice/mlxas/.venv/bin:/opt/pbs/bin:/usr/local/bin:"
            in (from_text["Variable_List"])
        )
    assert json.loads((RECORDED / "qstat_json_running.json").read_text())["pbs_version"]
