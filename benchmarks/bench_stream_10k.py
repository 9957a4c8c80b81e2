"""stream_10k: read one 10k-spectrum training batch (chi(k)·k² and labels) from dataset.h5.

Target: ≤ 1 s per batch.  ``Dataset.iter_batches`` reads whole compressed chunks of the
training split (shuffled windows) and returns numpy arrays ready for ``model.fit``.
Reported: the median over 7 batches of ``chi_k`` + ``cn`` + ``r`` (value), the same for
the 64×64 Morlet maps, and the first batch including opening the file.  The dataset is
the one ``bench_gather_100k.py`` wrote if it is there, otherwise one of 20k synthetic
spectra gathered here (see ``_synthetic_chunks.py``).

    .venv/bin/python benchmarks/bench_stream_10k.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from _synthetic_chunks import make_chunks

BATCH = 10_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/mlxas-bench-gather", help="work folder")
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()

    from _dataset_support import settings
    from mlxas.dataset import gather
    from mlxas.dataset import open as open_dataset

    work = Path(a.work)
    path = work / "dataset.h5"
    source = "the gather_100k dataset"
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        chunks, sites, labels, _ = make_chunks(work, 20_000, 500)
        st = settings(features={"wavelet": {"morlet": True}})
        gather(chunks, [sites], [labels], path, st, workers=2)
        source = "20k synthetic spectra gathered by this script"

    t0 = time.perf_counter()
    with open_dataset(path) as ds:
        first = next(ds.iter_batches(["chi_k", "cn", "r"], "train", BATCH, shuffle=True))
        first_s = time.perf_counter() - t0
        n_train = ds.sizes["train"]
        if n_train < BATCH:
            raise SystemExit(f"{path}: only {n_train} training examples")

        def timed(names: list[str], seed: int) -> float:
            t = time.perf_counter()
            batch = next(ds.iter_batches(names, "train", BATCH, shuffle=True, seed=seed))
            dt = time.perf_counter() - t
            assert len(batch[names[0]]) == BATCH
            return dt

        chi_times = [timed(["chi_k", "cn", "r"], s) for s in range(a.repeats)]
        map_times = [timed(["wavelet_morlet", "cn", "r"], s) for s in range(a.repeats)]
    value = statistics.median(chi_times)
    write_result(
        "stream_10k",
        round(value, 4),
        "s",
        target="<= 1 s per 10k-spectrum batch",
        batch=BATCH,
        batch_mb=round(sum(v.nbytes for v in first.values()) / 1e6, 1),
        chi_k_batch_s=[round(t, 4) for t in chi_times],
        wavelet_batch_median_s=round(statistics.median(map_times), 4),
        wavelet_batch_s=[round(t, 4) for t in map_times],
        first_batch_with_open_s=round(first_s, 4),
        train_examples=n_train,
        dataset=source,
        note="file in the page cache (it was just written); shuffled windows of whole chunks",
    )


if __name__ == "__main__":
    main()
