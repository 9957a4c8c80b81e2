"""Watch a directory and predict files as they land (live beamline use).

The directory is polled.  A file is taken once its size and modification time have
stayed the same for ``settle`` seconds, so a file still being written is not read half
way; if it changes again later it is predicted again.  Hidden files and the usual
temporary names (``*.tmp``, ``*.part``, ``*~``) are ignored.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlxas.predict.pipeline import Result

__all__ = ["Watcher"]

_TEMPORARY = ("*.tmp", "*.part", "*.partial", "*.swp", "*~", "*.crdownload")


@dataclass
class Watcher:
    """Finds files in ``directory`` that are new (or changed) and no longer growing."""

    directory: Path
    patterns: Sequence[str] = ("*",)
    settle: float = 1.0
    recursive: bool = False
    include_existing: bool = False
    _seen: dict[Path, tuple[int, int, float]] = field(default_factory=dict)
    _done: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory}: not a directory")
        if not self.include_existing:
            for p, sig in self._scan().items():
                self._done[p] = sig

    def _wanted(self, p: Path) -> bool:
        name = p.name
        if name.startswith(".") or any(fnmatch.fnmatch(name, t) for t in _TEMPORARY):
            return False
        return any(fnmatch.fnmatch(name, pat) for pat in self.patterns)

    def _scan(self) -> dict[Path, tuple[int, int]]:
        it = self.directory.rglob("*") if self.recursive else self.directory.iterdir()
        out = {}
        for p in it:
            try:
                if not self._wanted(p) or not p.is_file():
                    continue
                st = p.stat()
            except OSError:  # vanished between listing and stat
                continue
            out[p] = (st.st_size, st.st_mtime_ns)
        return out

    def ready(self, now: float | None = None) -> list[Path]:
        """Files whose size and mtime have been stable for ``settle`` seconds, not yet done."""
        now = time.monotonic() if now is None else now
        current = self._scan()
        out = []
        for p, sig in sorted(current.items()):
            if self._done.get(p) == sig:
                continue
            prev = self._seen.get(p)
            if prev is None or prev[:2] != sig:
                self._seen[p] = (*sig, now)
                continue
            if now - prev[2] >= self.settle:
                out.append(p)
        for p in list(self._seen):
            if p not in current:
                del self._seen[p]
        return out

    def mark_done(self, paths: Sequence[Path]) -> None:
        for p in paths:
            if p in self._seen:
                self._done[p] = self._seen.pop(p)[:2]


def watch(
    watcher: Watcher,
    predict: Callable[[list[Path]], list[Result]],
    emit: Callable[[list[Result]], None],
    interval: float = 0.5,
    stop: Callable[[], bool] | None = None,
    max_batch: int = 4096,
) -> int:
    """Poll until ``stop()`` is true (or Ctrl-C); returns the number of spectra predicted."""
    n = 0
    try:
        while not (stop and stop()):
            t0 = time.monotonic()
            ready = watcher.ready()
            for i in range(0, len(ready), max_batch):
                batch = ready[i : i + max_batch]
                results = predict(batch)
                watcher.mark_done(batch)
                emit(results)
                n += len(results)
            time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    except KeyboardInterrupt:
        pass
    return n
