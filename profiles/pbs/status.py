#!/usr/bin/env python3
"""Job status for snakemake-executor-plugin-cluster-generic from PBS Pro / OpenPBS `qstat`.

Called as ``status.py JOBID``; prints exactly one of ``running``, ``success``, ``failed``.

Asks ``qstat -f -x -F json JOBID`` (``-x`` includes finished jobs); servers whose qstat
has no JSON output are asked ``qstat -f -x JOBID`` and the text is parsed.

- ``job_state`` F (finished; C on Torque) or X (finished sub-job): ``Exit_status`` 0 is
  success, anything else (a non-zero exit, a negative PBS start failure, 256+signal for
  a job killed at its walltime) is failure.
- Any other state (Q, H, W, T, S, U, M, B, R, E) is still running.
- A job qstat no longer knows (job history disabled or expired) is judged from the exit
  code the submitted script recorded in ``.snakemake/pbs/exit/JOBID.exit``; without
  that record the job died before its script finished and counts as failed.
- When qstat itself fails (server busy, network), it is retried; if it keeps failing
  the job is reported as running and a warning goes to stderr, so a short outage does
  not fail the workflow.

Only the standard library is used. ``MLXAS_QSTAT`` names another qstat executable.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

STATE_DIR = Path(".snakemake") / "pbs"
FINISHED = {"F", "X", "C"}
RUNNING = {"Q", "H", "W", "T", "S", "U", "M", "B", "R", "E"}
_UNKNOWN = re.compile(r"Unknown Job Id|Job has finished|does not exist", re.IGNORECASE)
_NO_JSON = re.compile(r"invalid option|illegal option|unknown option|usage:", re.IGNORECASE)
RETRIES = 3
RETRY_WAIT = 5.0


class UnknownJob(LookupError):
    """qstat does not know the job (finished and out of the history, or never existed)."""


def parse_json(text: str, jobid: str) -> dict:
    """Attributes of ``jobid`` from ``qstat -f -F json`` output."""
    jobs = json.loads(text).get("Jobs") or {}
    if jobid in jobs:
        return jobs[jobid]
    # "4242" asks for "4242.server"; match on the sequence number
    for key, attrs in jobs.items():
        if key.split(".")[0] == jobid.split(".")[0]:
            return attrs
    raise UnknownJob(jobid)


def parse_text(text: str) -> dict:
    """Attributes from ``qstat -f`` text: ``name = value`` lines, continued by tab-led lines.

    Dotted names (``Resource_List.walltime``) become nested dictionaries, as in the
    JSON output.
    """
    attrs: dict = {}
    key = None
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            attrs["Job_Id"] = line.split(":", 1)[1].strip()
            key = None
        elif line.startswith("\t") and key is not None:
            _set(attrs, key, _get(attrs, key) + line.strip())
        elif " = " in line and line.startswith("    "):
            key, value = (s.strip() for s in line.split(" = ", 1))
            _set(attrs, key, value)
    if "Job_Id" not in attrs:
        raise ValueError("no 'Job Id:' line in qstat output")
    return attrs


def _set(attrs: dict, dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        attrs = attrs.setdefault(p, {})
    attrs[last] = value


def _get(attrs: dict, dotted: str) -> str:
    for p in dotted.split("."):
        attrs = attrs[p]
    return attrs


def verdict(attrs: dict) -> str:
    """``success``, ``failed`` or ``running`` from a job's attributes."""
    state = str(attrs.get("job_state", "")).strip().upper()
    if state in FINISHED:
        status = attrs.get("Exit_status", attrs.get("exit_status"))
        try:
            return "success" if int(status) == 0 else "failed"
        except (TypeError, ValueError):
            return "failed"  # deleted before it ran: no exit status
    if state in RUNNING:
        return "running"
    raise ValueError(f"unexpected job_state {state!r}")


def recorded_exit(jobid: str, state_dir: str | Path = STATE_DIR) -> int | None:
    """Exit code the submitted script wrote for ``jobid``, or None."""
    exit_dir = Path(state_dir) / "exit"
    for path in (
        exit_dir / f"{jobid}.exit",
        *sorted(exit_dir.glob(f"{jobid.split('.')[0]}.*.exit")),
    ):
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def _run(cmd: list) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def query(jobid: str, qstat: str = "qstat") -> dict:
    """The job's attributes from qstat (JSON, else text). Raises UnknownJob."""
    proc = _run([qstat, "-f", "-x", "-F", "json", jobid])
    if proc.returncode == 0:
        try:
            return parse_json(proc.stdout, jobid)
        except ValueError:
            pass  # some servers write invalid JSON (unescaped values); read the text form
    elif _UNKNOWN.search(proc.stderr):
        raise UnknownJob(jobid)
    elif not _NO_JSON.search(proc.stderr):
        raise RuntimeError(f"qstat failed ({proc.returncode}): {proc.stderr.strip()}")
    proc = _run([qstat, "-f", "-x", jobid])
    if proc.returncode != 0:
        if _UNKNOWN.search(proc.stderr):
            raise UnknownJob(jobid)
        raise RuntimeError(f"qstat failed ({proc.returncode}): {proc.stderr.strip()}")
    return parse_text(proc.stdout)


def status(jobid: str, qstat: str | None = None, state_dir: str | Path = STATE_DIR) -> str:
    qstat = qstat or os.environ.get("MLXAS_QSTAT", "qstat")
    last_error = None
    for attempt in range(RETRIES):
        try:
            return verdict(query(jobid, qstat))
        except UnknownJob:
            rc = recorded_exit(jobid, state_dir)
            return "failed" if rc is None or rc != 0 else "success"
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as err:
            last_error = err
            if attempt + 1 < RETRIES:
                time.sleep(RETRY_WAIT)
    print(f"status.py: warning: job {jobid}: {last_error}; assuming it still runs", file=sys.stderr)
    return "running"


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: status.py JOBID", file=sys.stderr)
        return 2
    print(status(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
