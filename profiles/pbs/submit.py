#!/usr/bin/env python3
"""Submit one Snakemake job script to PBS Pro / OpenPBS with `qsub`.

Called by snakemake-executor-plugin-cluster-generic as ``submit.py JOBSCRIPT``; prints
the PBS job id, which the plugin hands to ``status.py`` and ``qdel``.

The job's resources come from the properties Snakemake writes into the job script:
threads -> ``ncpus``, ``mem_mb`` -> ``mem`` (both in one ``select`` chunk), ``runtime``
(minutes) -> ``walltime``; ``pbs_queue`` -> ``-q``, ``pbs_account`` -> ``-A`` and
``pbs_extra`` (more qsub options) when set. The submitted script runs the Snakemake
job in a subshell and then records its exit code under ``.snakemake/pbs/exit/``, so
``status.py`` can tell success from failure even on servers that keep no job history.

Only the standard library is used: the login node's ``python3`` can run this.
``--dry-run`` prints the qsub command instead of running it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

#: Relative to the Snakemake working directory (where this script is called).
STATE_DIR = Path(".snakemake") / "pbs"
_PROPERTIES = re.compile(r"^# properties = (.*)$")
#: PBS Pro job names: at most 236 characters, starting with a letter.
_NAME_MAX = 236


class SubmitError(RuntimeError):
    """A job script that cannot be turned into a qsub call."""


def job_properties(jobscript: str | Path) -> dict:
    """The JSON properties Snakemake writes as ``# properties = {...}`` into a job script."""
    with open(jobscript) as fh:
        for line in fh:
            m = _PROPERTIES.match(line.rstrip("\n"))
            if m:
                return json.loads(m.group(1))
    raise SubmitError(f"{jobscript}: no '# properties = ...' line; not a Snakemake job script")


def job_name(props: dict) -> str:
    """A PBS job name: ``smk.<rule>.<wildcard values>`` or ``smk.group.<group>.<id>``."""
    if props.get("type") == "group":
        # the group's job id (a UUID) tells two groups of the same name apart
        name = f"smk.group.{props.get('groupid', 'group')}.{str(props.get('jobid', ''))[:8]}"
    else:
        values = "_".join(str(v) for v in (props.get("wildcards") or {}).values())
        name = f"smk.{props['rule']}" + (f".{values}" if values else "")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return name[:_NAME_MAX]


def walltime(minutes: float) -> str:
    """PBS walltime ``HH:MM:SS`` from Snakemake's ``runtime`` in minutes."""
    seconds = max(60, round(float(minutes) * 60))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def qsub_args(props: dict, script: str | Path, log: str | Path) -> list:
    """The qsub command line for one job (job properties as in the job script)."""
    resources = props.get("resources") or {}
    threads = max(1, int(props.get("threads") or 1))
    chunk = f"1:ncpus={threads}"
    mem_mb = resources.get("mem_mb")
    if isinstance(mem_mb, (int, float)) and mem_mb > 0:
        chunk += f":mem={int(mem_mb)}mb"
    args = ["qsub", "-N", job_name(props), "-l", f"select={chunk}"]
    runtime = resources.get("runtime")
    if isinstance(runtime, (int, float)) and runtime > 0:
        args += ["-l", f"walltime={walltime(runtime)}"]
    if resources.get("pbs_queue"):
        args += ["-q", str(resources["pbs_queue"])]
    if resources.get("pbs_account"):
        args += ["-A", str(resources["pbs_account"])]
    # -V: the job sees the submitting environment (PATH with the venv, MLXAS_*, ...).
    args += ["-V", "-j", "oe", "-o", str(log)]
    extra = resources.get("pbs_extra")
    if extra:
        args += shlex.split(str(extra))
    args.append(str(script))
    return args


def wrapper_script(jobscript_text: str, exit_dir: str | Path) -> str:
    """The script given to qsub: the Snakemake job, then its exit code written atomically.

    The job script ends in ``exit``; a subshell keeps that from ending the wrapper.
    """
    exit_dir = shlex.quote(str(Path(exit_dir).resolve()))
    return (
        "#!/bin/sh\n"
        "# Snakemake job submitted by mlxas profiles/pbs/submit.py\n"
        "(\n"
        f"{jobscript_text.rstrip()}\n"
        ")\n"
        "rc=$?\n"
        f"mkdir -p {exit_dir}\n"
        f'echo "$rc" > {exit_dir}/"$PBS_JOBID.exit.tmp" && '
        f'mv {exit_dir}/"$PBS_JOBID.exit.tmp" {exit_dir}/"$PBS_JOBID.exit"\n'
        'exit "$rc"\n'
    )


def prepare(jobscript: str | Path, state_dir: str | Path = STATE_DIR) -> tuple[list, Path]:
    """Write the wrapper script and return (qsub command, wrapper path)."""
    props = job_properties(jobscript)
    state = Path(state_dir).resolve()
    name = job_name(props)
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
    group = props.get("rule") or f"group_{props.get('groupid', 'group')}"
    scripts, logs = state / "scripts", state / "logs" / group
    scripts.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    script = scripts / f"{name}.{stamp}.sh"
    script.write_text(wrapper_script(Path(jobscript).read_text(), state / "exit"))
    script.chmod(0o755)
    return qsub_args(props, script, logs / f"{name}.{stamp}.log"), script


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("jobscript", help="job script written by Snakemake")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the qsub command, submit nothing"
    )
    args = parser.parse_args(argv)
    try:
        cmd, _ = prepare(args.jobscript)
    except (OSError, ValueError, KeyError, SubmitError) as err:
        print(f"submit.py: error: {args.jobscript}: {err}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        print(
            f"submit.py: error: qsub failed ({proc.returncode}): {proc.stderr.strip()}\n"
            f"  command: {shlex.join(cmd)}",
            file=sys.stderr,
        )
        return proc.returncode or 1
    # qsub prints the job id, e.g. "4242.pbs01"
    print(proc.stdout.strip().splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
