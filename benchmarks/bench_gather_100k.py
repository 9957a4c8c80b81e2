"""gather_100k: gather 100k spectra, each with chi(k)·k² and a 64×64 Morlet map, into HDF5.

Target: ≤ 120 s and ≤ 4 GB peak memory (main process and workers together).

Input: synthetic chunk files in the real chunk format, made from a few real FEFF8L
spectra with structural perturbations (see ``_synthetic_chunks.py``); they are made once
in the work folder and reused.  Measured: a cold gather (empty feature cache), then a
gather of the same chunks plus one new chunk, which computes only the new spectra.
Peak memory is the largest sum of the resident set sizes of the gathering process and
its workers, sampled every 0.1 s.  CPU time (main process and workers) and the load
average are recorded too: on a shared machine the wall time says more about the load
than about the code.

    .venv/bin/python benchmarks/bench_gather_100k.py [--n 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _synthetic_chunks import make_chunks


class PeakRSS:
    """Largest total RSS of this process and its children while active."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the workers)."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="spectra to gather")
    ap.add_argument("--chunk-size", type=int, default=500, help="sites per chunk file")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--work", default="/tmp/mlxas-bench-gather", help="work folder")
    a = ap.parse_args()

    from _dataset_support import settings
    from mlxas.dataset import gather
    from mlxas.dataset import open as open_dataset

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    chunks, sites, labels, info = make_chunks(work, a.n, a.chunk_size)
    extra, extra_sites, extra_labels, _ = make_chunks(work, a.chunk_size, a.chunk_size, first=a.n)
    print(f"inputs ready in {time.perf_counter() - t:.0f} s: {len(chunks)} chunk files")
    st = settings(features={"wavelet": {"morlet": True}})
    out = work / "dataset.h5"
    cache = work / "dataset.cache"
    shutil.rmtree(cache, ignore_errors=True)
    out.unlink(missing_ok=True)

    load_before = os.getloadavg()
    cpu0 = cpu_seconds()
    with PeakRSS() as mem:
        cold = gather(
            chunks, [sites], [labels], out, st, cache_dir=cache, workers=a.workers, log=print
        )
    cpu_cold = cpu_seconds() - cpu0
    load_after = os.getloadavg()
    print(cold)
    with PeakRSS() as mem_append:
        append = gather(
            chunks + extra,
            [sites, extra_sites],
            [labels, extra_labels],
            out,
            st,
            cache_dir=cache,
            workers=a.workers,
        )
    print(append)
    with open_dataset(out) as ds:
        shapes = {n: list(ds.h5[f"examples/features/{n}"].shape) for n in ds.feature_names()}
    cache_bytes = sum(p.stat().st_size for p in cache.glob("*.h5"))
    write_result(
        "gather_100k",
        round(cold.seconds, 2),
        "s",
        target="<= 120 s and <= 4 GB peak memory",
        n_spectra=cold.n_sites,
        peak_rss_gb=round(mem.peak / 1e9, 3),
        cpu_s=round(cpu_cold, 1),
        load_average_1min=[round(load_before[0], 2), round(load_after[0], 2)],
        workers=a.workers,
        chunk_files=len(chunks),
        chunk_size=a.chunk_size,
        features=shapes,
        dataset_gb=round(out.stat().st_size / 1e9, 3),
        cache_gb=round(cache_bytes / 1e9, 3),
        append_one_chunk_s=round(append.seconds, 2),
        append_computed=append.n_computed,
        append_cached=append.n_cached,
        append_peak_rss_gb=round(mem_append.peak / 1e9, 3),
        input=(
            "synthetic chunk files in the real chunk format: real FEFF8L Cu spectra "
            f"({', '.join(info['seed_spectra'])}, {info['engine']}) with random amplitude, "
            "Debye-Waller and phase-stretch perturbations and noise"
        ),
    )


if __name__ == "__main__":
    main()
