"""Gathering again computes only new spectra; a kill mid-write leaves the old file intact."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from _dataset_support import derived_copies, feff_results, settings
from mlxas.dataset import gather
from mlxas.dataset import open as open_dataset

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def feff(tmp_path_factory):
    return feff_results(tmp_path_factory.getbasetemp() / "dataset_feff")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_gathering_again_computes_only_the_new_chunks(feff, tmp_path):
    old, sites_old, labels_old = derived_copies(feff, tmp_path / "batch1", 6, chunk_size=4)
    new, sites_new, labels_new = derived_copies(feff, tmp_path / "batch2", 2, chunk_size=4, first=6)
    st = settings(features={"wavelet": {"morlet": True}})
    out = tmp_path / "ds.h5"
    sites, labels = [feff.sites[0], sites_old], [feff.labels[0], labels_old]
    first = gather(feff.chunks + old, sites, labels, out, st)
    assert (first.n_computed, first.n_cached) == (4 + 24, 0)
    cache = sorted((tmp_path / "ds.cache").glob("*.h5"))
    assert len(cache) == len(feff.chunks) + len(old)
    stamps = {p: p.stat().st_mtime_ns for p in cache}
    with open_dataset(out) as ds:
        before = ds.frame().set_index("site_id")
        wl_before = dict(zip(ds.frame()["site_id"], ds.features("wavelet_morlet"), strict=True))

    # A new FEFF batch: only its 8 spectra are processed, the 28 others come from the cache.
    sites, labels = [*sites, sites_new], [*labels, labels_new]
    second = gather(feff.chunks + old + new, sites, labels, out, st)
    assert (second.n_computed, second.n_cached) == (8, 28)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    with open_dataset(out) as ds:
        after = ds.frame().set_index("site_id")
        assert len(after) == 36 and set(before.index) < set(after.index)
        for sid, wl in zip(ds.frame()["site_id"], ds.features("wavelet_morlet"), strict=True):
            if sid in wl_before:
                np.testing.assert_array_equal(wl, wl_before[sid])

    # Other feature settings are other cache entries: everything is computed again, and
    # entries no gather uses any more are removed.
    third = gather(feff.chunks + old + new, sites, labels, out, settings(features={"kweight": 3}))
    assert (third.n_computed, third.n_cached) == (36, 0)
    assert not any(p.exists() for p in stamps)


KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from mlxas.dataset import DatasetSettings, gather
    from mlxas.settings import from_mapping
    args = json.loads(sys.argv[1])
    settings = from_mapping(DatasetSettings, args["settings"])
    gather(args["chunks"], args["sites"], args["labels"], args["out"], settings, workers=1)
    """
)


def test_kill_during_the_write_leaves_the_previous_file_intact(feff, tmp_path):
    import json

    from mlxas.settings import to_dict

    chunks, sites, labels = derived_copies(feff, tmp_path / "copies", 30, chunk_size=8)
    out = tmp_path / "ds.h5"
    gather(feff.chunks, feff.sites[:1], feff.labels[:1], out, settings())
    before = sha(out)
    with open_dataset(out) as ds:
        old_hash = ds.hash
    # Averaged examples are computed while the temporary file is open: a long write.
    st = settings(averaging={"k": 2, "n_examples": 4000}, features={"wavelet": {"morlet": True}})
    args = {"chunks": [str(c) for c in chunks], "sites": [str(sites)], "labels": [str(labels)],
            "out": str(out), "settings": to_dict(st)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(args)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    tmp = out.with_name(f".{out.name}.tmp-{proc.pid}")
    while not tmp.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the gather never started writing"
        time.sleep(0.02)
    time.sleep(0.5)  # well inside the write: averaging ~3800 examples takes seconds
    assert proc.poll() is None, "the gather finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert tmp.exists()  # killed mid-write: the partial file is there ...
    assert sha(out) == before  # ... and the previous dataset is untouched and readable
    with open_dataset(out) as ds:
        ds.verify()
        assert ds.hash == old_hash and len(ds) == 4
    # The next gather removes the dead process's partial file and succeeds.
    report = gather(chunks, [sites], [labels], out, settings())
    assert not tmp.exists() and report.n_sites == 120
