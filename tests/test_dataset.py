"""dataset.h5 from real FEFF8L chunks: layout, provenance, failures, refusals, reader API."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

from _dataset_support import feff_results, k_grid, settings
from mlxas.dataset import SCHEMA_VERSION, DatasetError, gather
from mlxas.dataset import open as open_dataset
from mlxas.settings import to_dict
from mlxas.simulation.chunk import chunk_engine, read_chunk, write_chunk


@pytest.fixture(scope="session")
def feff(tmp_path_factory):
    return feff_results(tmp_path_factory.getbasetemp() / "dataset_feff")


@pytest.fixture(scope="session")
def real_dataset(feff, tmp_path_factory):
    """All real chunks (4 good sites and the failures) with the chi features but Cauchy."""
    out = tmp_path_factory.mktemp("real_ds") / "dataset.h5"
    st = settings(features={"wavelet": {"morlet": True}}, split={"group_by": "site", "seed": 3})
    report = gather(
        feff.chunks + feff.failed_chunks,
        feff.sites,
        feff.labels,
        out,
        st,
        inputs_files=feff.inputs,
        absorber="Cu",
        edge="K",
    )
    return out, report, st


def test_every_good_site_is_gathered_with_its_provenance(feff, real_dataset):
    path, report, st = real_dataset
    good = [r for c in feff.chunks for r in read_chunk(c)]
    assert report.n_sites == len(good) == 4 and report.n_computed == 4
    with open_dataset(path) as ds:
        sites = ds.sites().set_index("site_id")
        inputs = pd.concat(pd.read_parquet(p) for p in feff.inputs).set_index("item_id")
        table = pd.read_parquet(feff.sites[0]).set_index("site_id")
        labels = pd.read_parquet(feff.labels[0]).set_index("site_id")
        settings_hash = chunk_engine(feff.chunks[0])[1]
        k = k_grid()
        chi = ds.read("sites/chi")
        for r in good:
            row = sites.loc[r.item_id]
            assert row["input_hash"] == inputs.at[r.item_id, "input_hash"] == r.input_hash
            assert row["settings_hash"] == settings_hash
            assert (row["engine"], row["engine_version"]) == (r.engine, r.engine_version)
            assert row["engine_version"].startswith("8.5")
            assert row["structure_id"] == table.at[r.item_id, "structure_id"]
            assert row["multiplicity"] == table.at[r.item_id, "multiplicity"]
            assert row["cn"] == labels.at[r.item_id, "cn"] and row["frame"] == -1
            assert row["e0"] == r.scalars["e0"]
            # FEFF's grid is the default k grid: the stored chi is FEFF's, point for point.
            on_grid = np.isin(np.round(r.arrays["k"], 6), np.round(k, 6))
            i = list(sites.index).index(r.item_id)
            np.testing.assert_allclose(
                chi[i], r.arrays["chi"][on_grid].astype(np.float32), rtol=1e-6
            )
        assert ds.settings == to_dict(st) and ds.schema_version == SCHEMA_VERSION
        assert ds.attrs["absorber"] == "Cu" and ds.hash == report.dataset_hash


def test_features_of_real_feff_spectra(real_dataset):
    path, _, _ = real_dataset
    with open_dataset(path) as ds:
        k = ds.grid("chi_k")
        chi = ds.chi()
        # chi is stored as float32, chi_k was computed from FEFF's float64 values
        np.testing.assert_allclose(ds.features("chi_k"), chi * k**2, rtol=1e-6, atol=1e-9)
        assert ds.unit("chi_k") == "Angstrom^-2" and ds.unit("k") == "1/Angstrom"
        # |chi(R)| of fcc Cu peaks at the first shell, 2.55 Å less the phase shift (~0.3 Å).
        r = ds.grid("ft_mag")
        peaks = r[np.argmax(ds.features("ft_mag"), axis=1)]
        assert np.all((peaks > 2.0) & (peaks < 2.45)), peaks
        wl = ds.features("wavelet_morlet")
        grid = ds.grid("wavelet_morlet")
        assert wl.shape[1:] == (64, 64) and grid.shape == (64, 64, 2)
        ridge_r = grid[0, np.argmax(wl.max(axis=1), axis=1), 1]
        assert np.all(np.abs(ridge_r - peaks) < 0.3)
        cn = ds.labels("cn")
        np.testing.assert_array_equal(np.sort(cn), [4.0, 7.0, 9.0, 12.0])


def test_every_array_is_chunked_compressed_and_checksummed(real_dataset):
    path, _, _ = real_dataset
    seen = []

    def check(name, obj):
        if isinstance(obj, h5py.Dataset) and not name.startswith("grids/"):
            plist = obj.id.get_create_plist()
            ids = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
            assert obj.chunks and h5py.h5z.FILTER_FLETCHER32 in ids, name
            # gzip for spectra and tables, Blosc (HDF5 filter 32001) for the 2-D maps
            assert (32001 if obj.ndim == 3 else h5py.h5z.FILTER_DEFLATE) in ids, name
            seen.append(name)

    with h5py.File(path, "r") as f:
        f.visititems(check)
        assert {"sites/chi", "examples/features/wavelet_morlet", "failures/reason"} <= set(seen)
        assert f["grids/k"].attrs["unit"] == "1/Angstrom"
        assert f["split"].attrs["group_by"] == "site" and f["split"].attrs["seed"] == 3


def test_failures_name_stage_and_reason(feff, real_dataset):
    path, report, _ = real_dataset
    with open_dataset(path) as ds:
        fail = ds.failures().set_index("site_id")
        ids = set(ds.sites()["site_id"])
    bad = [r for c in feff.failed_chunks for r in read_chunk(c)]
    assert len(bad) >= 2 and report.n_failures == len(bad)
    for r in bad:
        assert r.item_id not in ids
        row = fail.loc[r.item_id]
        if r.reason == "cluster_too_large":
            assert row["stage"] == "inputs"
        else:
            assert (row["stage"], row["reason"]) == ("simulation", "timeout")
        assert row["detail"] and row["source"] == "cubo"


def test_rejected_structures_and_missing_chunks_are_failures(feff, tmp_path):
    from mlxas.sites import SitesSettings, read_sites, write_sites

    # The structures stage's refusals reach the dataset through the site table.
    rejected = pd.DataFrame(
        [{"origin": "bad.xyz", "frame": 3, "reason": "atoms_too_close",
          "detail": "0.4 Å apart", "source": "octa"}]
    )  # fmt: skip
    table, _ = read_sites(feff.sites[0])
    sites = tmp_path / "octa.parquet"
    write_sites(table, sites, SitesSettings(), rejected)
    out = tmp_path / "ds.h5"
    gather(feff.chunks[:1], [sites, feff.sites[1]], feff.labels, out, settings(),
           inputs_files=feff.inputs[:1])  # fmt: skip
    with open_dataset(out) as ds:
        fail = ds.failures()
    rej = fail[fail["stage"] == "structures"].iloc[0]
    assert rej["reason"] == "atoms_too_close" and "bad.xyz frame 3" in rej["detail"]
    assert rej["source"] == "octa"
    missing = [r.item_id for r in read_chunk(feff.chunks[1])]
    pending = fail[fail["reason"] == "no_result"]
    assert sorted(pending["site_id"]) == sorted(missing)


def test_one_structure_from_two_sources_is_refused_naming_both(feff, tmp_path):
    """The same structure from two sources (here: one source's tables given twice) stops
    gather with the structure id, both sources and what to do."""
    with pytest.raises(DatasetError) as err:
        gather(feff.chunks[:1], [feff.sites[0], feff.sites[0]], [feff.labels[0]] * 2,
               tmp_path / "ds.h5", settings(), inputs_files=feff.inputs[:1])  # fmt: skip
    msg = str(err.value)
    table = pd.read_parquet(feff.sites[0])
    first = table.iloc[0]
    assert f"item {first['site_id']} appears in two site tables" in msg
    assert f"(id {first['structure_id']})" in msg and msg.count("octa (") == 2
    assert "make them one source" in msg and not (tmp_path / "ds.h5").exists()


def test_bad_chunks_are_refused_with_the_file_named(feff, tmp_path):
    st = settings()
    good = read_chunk(feff.chunks[0])
    engine, _ = chunk_engine(feff.chunks[0])
    stranger = tmp_path / "stranger.h5"
    good[0].item_id = "0000000000000000-00001"
    write_chunk(stranger, good[:1], tmp_path / "stranger.json", engine.name,
                engine.settings_dict())  # fmt: skip
    with pytest.raises(DatasetError, match=r"stranger\.h5.*no row in the site tables"):
        gather([stranger], feff.sites, feff.labels, tmp_path / "a.h5", st)
    twice = tmp_path / "twice.h5"
    shutil.copy(feff.chunks[0], twice)
    with pytest.raises(DatasetError, match="more than one chunk file"):
        gather([feff.chunks[0], twice], feff.sites, feff.labels, tmp_path / "b.h5", st)
    newer = tmp_path / "newer.h5"
    shutil.copy(feff.chunks[0], newer)
    with h5py.File(newer, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(DatasetError, match=r"newer\.h5.*chunk schema 99"):
        gather([newer], feff.sites, feff.labels, tmp_path / "c.h5", st)
    with pytest.raises(DatasetError, match="no successful simulation"):
        gather(feff.failed_chunks, feff.sites, feff.labels, tmp_path / "d.h5", st)
    with pytest.raises(DatasetError, match="no successful simulation"):
        gather([], feff.sites, feff.labels, tmp_path / "d.h5", st)
    assert not list(tmp_path.glob("*.tmp-*")) and not (tmp_path / "d.h5").exists()


def _cli_error(path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "mlxas", "dataset", "inspect", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxas: error: "), proc.stderr
    return lines[0]


def test_newer_schema_and_foreign_files_are_refused(real_dataset, tmp_path):
    path, _, _ = real_dataset
    newer = tmp_path / "newer.h5"
    shutil.copy(path, newer)
    with h5py.File(newer, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(DatasetError, match=f"schema {SCHEMA_VERSION + 1}, newer"):
        open_dataset(newer)
    assert "newer than this mlxas" in _cli_error(newer)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(DatasetError, match="not an mlxas dataset"):
        open_dataset(foreign)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        open_dataset(text)
    with pytest.raises(DatasetError, match="no such dataset file"):
        open_dataset(tmp_path / "absent.h5")


def test_checksum_damage_is_refused(real_dataset, tmp_path):
    path, _, _ = real_dataset
    damaged = tmp_path / "damaged.h5"
    shutil.copy(path, damaged)
    with h5py.File(damaged, "r") as f:
        info = f["sites/chi"].id.get_chunk_info(0)
    with open(damaged, "r+b") as fh:  # flip bytes in the middle of a stored chunk
        fh.seek(info.byte_offset + info.size // 2)
        block = bytearray(fh.read(8))
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0xFF for b in block))
    with open_dataset(damaged) as ds:
        assert len(ds.labels("cn")) == 4  # undamaged arrays still read
        with pytest.raises(DatasetError, match=r"damaged\.h5.*'sites/chi' is damaged"):
            ds.chi()
        with pytest.raises(DatasetError, match="checksum"):
            ds.verify()
    assert "is damaged" in _cli_error(damaged)


def test_reader_selections_and_batches(real_dataset):
    path, _, _ = real_dataset
    with open_dataset(path) as ds:
        sizes = ds.sizes
        assert sum(sizes.values()) == len(ds) == 4 and sizes["train"] >= 2
        frame = ds.frame()
        assert list(frame["split"]) == sorted(frame["split"], key=["train", "val", "test"].index)
        for split, n in sizes.items():
            x = ds.features("chi_k", split)
            assert len(x) == n == len(ds.frame(split)) == len(ds.labels("rdf", split))
            sel = ds.select(["chi_k", "cn", "chi"], split)
            np.testing.assert_array_equal(sel["chi_k"], x)
        train = ds.select(["chi_k", "r"], "train")
        batches = list(ds.iter_batches(["chi_k", "r"], "train", batch_size=2))
        np.testing.assert_array_equal(np.concatenate([b["chi_k"] for b in batches]), train["chi_k"])
        shuffled = list(ds.iter_batches(["chi_k", "r"], None, batch_size=3, shuffle=True, seed=1))
        rows = np.concatenate([b["chi_k"] for b in shuffled])
        np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(ds.features("chi_k"), axis=0))
        with pytest.raises(DatasetError, match="no feature 'xanes'"):
            ds.features("xanes")
        with pytest.raises(ValueError, match="split must be one of"):
            ds.features("chi_k", "validation")


def test_class_labels_keep_their_names_through_gather(feff, tmp_path):
    """A categorical label (codes + class names in the label file's metadata) lands in
    dataset.h5 with its names; the reader returns them, value labels have none."""
    from mlxas.sites import read_labels, write_labels

    labels, meta = read_labels(feff.labels[0])
    codes = np.arange(len(labels)) % 2
    labels["geometry"] = codes
    names = ["tetrahedral", "octahedral"]
    meta["columns"]["geometry"] = {"set": "coordination", "unit": "", "target": True,
                                   "grid": None, "classes": names}  # fmt: skip
    label_file = tmp_path / "labels.parquet"
    write_labels(labels, meta, label_file)
    out = tmp_path / "dataset.h5"
    gather(feff.chunks, [feff.sites[0]], [label_file], out, settings(),
           inputs_files=[feff.inputs[0]], absorber="Cu", edge="K")  # fmt: skip
    with open_dataset(out) as ds:
        assert ds.classes("geometry") == ("tetrahedral", "octahedral")
        assert ds.classes("cn") is None
        by_site = dict(zip(labels["site_id"], codes, strict=True))
        frame = ds.frame()
        assert len(frame) == 4
        np.testing.assert_array_equal(
            frame["geometry"].to_numpy(), [by_site[s] for s in frame["site_ids"]]
        )
