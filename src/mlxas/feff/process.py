"""Child processes of the FEFF engines: their environment, waiting, killing, their log.

:mod:`mlxas.feff.engines` starts each FEFF program in a session of its own, with
:func:`program_env`; waits for it with :class:`ExitWaiter` while reading its new log
lines with :func:`read_from`; and kills its whole process group with :func:`kill_group`.
:data:`GUARD` kills the groups still running if this process dies, whatever ends it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

__all__ = [
    "ALLOCATOR_ENV",
    "GUARD",
    "ExitWaiter",
    "GroupGuard",
    "kill_group",
    "program_env",
    "read_from",
]

#: glibc malloc settings for the engine programs.  By default glibc hands a freed block
#: above its mmap threshold straight back to the kernel; FEFF10 allocates and frees large
#: arrays in its inner loops, so each is faulted in again page by page.  Measured on one
#: 117-atom XANES site: 95 s wall, 54 s of it system time in 19 million page faults, and
#: 40 s with these settings, identical output (``benchmarks/bench_feff10_allocator.py``).
#: A value already in the environment wins.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def program_env() -> dict[str, str]:
    """A FEFF program's environment: this one over :data:`ALLOCATOR_ENV`, output unbuffered."""
    # FEFF's Fortran runtime (and Python) buffer output written to a file: without these a
    # warning printed early in a long SCF loop reaches the log only when the program ends,
    # and the last lines before a timeout kill are lost.
    return {
        **ALLOCATOR_ENV,
        **os.environ,
        "GFORTRAN_UNBUFFERED_PRECONNECTED": "y",
        "PYTHONUNBUFFERED": "1",
    }


class ExitWaiter:
    """Wait for a child process with a timeout, waking the moment it exits.

    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, which adds up over the six
    FEFF8L programs of every site; a pidfd (Linux ≥ 5.3) becomes readable at exit.
    """

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.fd: int | None = None

    def __enter__(self) -> ExitWaiter:
        with contextlib.suppress(AttributeError, OSError):
            self.fd = os.pidfd_open(self.proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)

    def wait(self, timeout: float) -> bool:
        """True once the process has exited; False after ``timeout`` s."""
        timeout = max(0.0, timeout)
        if self.fd is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return bool(ready) or self.proc.poll() is not None


#: The guard process: reads "+PGID" / "-PGID" lines on stdin; at end of file (the process
#: that runs FEFF is gone, whatever ended it) it SIGKILLs the groups still listed.
_GUARD_CODE = """
import os, signal, sys
live = set()
for line in sys.stdin:
    pgid = int(line[1:])
    (live.add if line[0] == "+" else live.discard)(pgid)
for pgid in live:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class GroupGuard:
    """Kills the FEFF programs of this process when it dies, whatever signal ends it.

    Each program runs in a session of its own, so that a timeout can kill its whole
    group (FEFF10's workers included); that also takes it out of the job's process group,
    so a job killed with SIGKILL (``kill -9``, the OOM killer, a batch system at the wall
    time) would leave it running.  A small guard process, in a session of its own too,
    holds the read end of a pipe and the list of running groups; the kernel closes the
    write end when this process dies, and the guard then kills those groups.  One guard
    per process, started with the first program (one interpreter start, ~20 ms); unlike
    a ``PR_SET_PDEATHSIG`` ``preexec_fn``, it adds nothing to each program's start.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._live: set[int] = set()

    @contextlib.contextmanager
    def watching(self, proc: subprocess.Popen):
        """Guard ``proc``'s group while the block runs; released once it has exited."""
        self._send(f"+{proc.pid}", add=proc.pid)
        try:
            yield
        finally:
            if proc.poll() is not None:  # still running (an exception): stays guarded
                self._send(f"-{proc.pid}", remove=proc.pid)

    def _send(self, line: str, add: int | None = None, remove: int | None = None) -> None:
        with self._lock:
            if add is not None:
                self._live.add(add)
            if remove is not None:
                self._live.discard(remove)
            if self._proc is None or self._proc.poll() is not None:
                self._start()  # first use, or the guard was killed: a new one, told all
                line = "\n".join(f"+{pgid}" for pgid in self._live)
            if line:
                try:
                    self._proc.stdin.write(line + "\n")
                    self._proc.stdin.flush()
                except OSError:  # the guard died just now; the next call starts another
                    pass

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _GUARD_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        atexit.register(self._release, self._proc)

    @staticmethod
    def _release(proc: subprocess.Popen) -> None:
        """At a normal exit: end of file for the guard (which then kills whatever is still
        listed, normally nothing), and reap it."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.stdin.close()
            proc.wait(timeout=5)


#: This process's guard.
GUARD = GroupGuard()


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group may have ended by itself
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def read_from(path: Path, offset: int) -> str:
    with open(path, errors="replace") as fh:
        fh.seek(offset)
        return fh.read()
