"""Grouped splitting and k-site averaging, on copies of real FEFF8L spectra."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from _dataset_support import derived_copies, feff_results, settings
from mlxas.dataset import gather, split_groups
from mlxas.dataset import open as open_dataset
from mlxas.dataset.splitting import example_members


@pytest.fixture(scope="session")
def feff(tmp_path_factory):
    return feff_results(tmp_path_factory.getbasetemp() / "dataset_feff")


@pytest.fixture(scope="module")
def frames(feff, tmp_path_factory):
    """40 MD-like frames of 4 sites each (160 spectra), chunks of 6 sites across frames."""
    return derived_copies(feff, tmp_path_factory.mktemp("frames"), 40, chunk_size=6, frames=True)


def test_split_groups_keeps_groups_whole_and_shares_close_to_fractions():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 300, size=3000).astype(str)
    split = split_groups(groups, [0.7, 0.2, 0.1], seed=5)
    for g in np.unique(groups):
        assert len(set(split[groups == g])) == 1
    shares = np.bincount(split, minlength=3) / len(split)
    np.testing.assert_allclose(shares, [0.7, 0.2, 0.1], atol=0.02)
    assert np.array_equal(split, split_groups(groups, [0.7, 0.2, 0.1], seed=5))
    assert not np.array_equal(split, split_groups(groups, [0.7, 0.2, 0.1], seed=6))


def test_no_frame_falls_into_two_splits(frames, tmp_path):
    chunks, sites, labels = frames
    out = tmp_path / "ds.h5"
    st = settings(split={"group_by": "frame", "seed": 11})
    gather(chunks, [sites], [labels], out, st)
    with open_dataset(out) as ds:
        table = ds.sites()
        per_frame = table.groupby("frame")["split"].nunique()
        assert len(per_frame) == 40 and per_frame.max() == 1
        sizes = ds.sizes
        assert sizes == {"train": 112, "val": 32, "test": 16}  # 28, 8 and 4 frames of 4 sites
        # The split is stored: attributes, per site and per example, consistent.
        f = ds.h5
        assert f["split"].attrs["seed"] == 11 and f["split"].attrs["group_by"] == "frame"
        np.testing.assert_array_equal(f["split"].attrs["sizes"], [112, 32, 16])
        np.testing.assert_array_equal(ds.read("examples/split"), ds.read("sites/split"))
        frame_of = dict(zip(table["site_id"], table["frame"], strict=True))
        for split in ("train", "val", "test"):
            ids = ds.frame(split)["site_id"]
            assert {frame_of[i] for i in ids}.isdisjoint(
                {frame_of[i] for i in ds.frame(_other(split))["site_id"]}
            )
    again = tmp_path / "again.h5"
    gather(chunks, [sites], [labels], again, st)
    with open_dataset(out) as a, open_dataset(again) as b:
        assert a.hash == b.hash
        assert list(a.frame()["site_id"]) == list(b.frame()["site_id"])


def _other(split: str) -> str:
    return {"train": "val", "val": "test", "test": "train"}[split]


def test_averaged_examples_stay_inside_one_split(frames, tmp_path):
    chunks, sites, labels = frames
    out = tmp_path / "avg.h5"
    st = settings(
        averaging={"k": 3, "n_examples": 300, "seed": 4},
        split={"group_by": "frame", "seed": 2},
        features={"ft": {"enabled": True}},
    )
    report = gather(chunks, [sites], [labels], out, st, workers=2)
    with open_dataset(out) as ds:
        members = ds.read("examples/members")
        weights = ds.read("examples/weights")
        site_split = ds.read("sites/split")
        ex_split = ds.read("examples/split")
        assert members.shape[1] == 3 and report.n_examples == len(members) == 900
        assert np.all(site_split[members] == ex_split[:, None])  # no leak across splits
        assert len({tuple(m) for m in members}) == len(members)  # distinct triples
        # The example spectrum is the mean of its members; its features are computed from it.
        chi_sites = ds.read("sites/chi").astype(np.float64)
        chi = ds.chi()
        np.testing.assert_allclose(chi, chi_sites[members].mean(axis=1), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(weights, 1 / 3)
        # Features of the mean spectrum, computed here without mlxas: chi·k^w by hand,
        # |chi(R)| by larch's xftf with the dataset's transform settings.
        from larch import Group
        from larch.xafs import xftf

        f, ft = st.features, st.features["ft"]
        k = ds.grid("chi_k")
        rows = np.arange(0, len(chi), 97)
        mean_chi = chi_sites[members[rows]].mean(axis=1)
        chi_k = mean_chi * k ** f["kweight"]
        np.testing.assert_allclose(
            ds.features("chi_k")[rows], chi_k, rtol=1e-4, atol=1e-5 * np.abs(chi_k).max()
        )
        mags = []
        for row in mean_chi:
            g = Group()
            xftf(k, row, group=g, kmin=ft["kmin"], kmax=ft["kmax"], dk=ft["dk"],
                 window=ft["window"], kweight=f["kweight"], rmax_out=ft["rmax"],
                 nfft=2048, kstep=f["k_grid"]["dk"])  # fmt: skip
            mags.append(g.chir_mag)
        mags = np.array(mags)
        np.testing.assert_allclose(
            ds.features("ft_mag")[rows], mags, rtol=1e-4, atol=1e-5 * mags.max()
        )
        # Labels: mean CN; R averaged over all first-shell bonds of the members.
        cn_s, r_s = ds.read("sites/labels/cn"), ds.read("sites/labels/r")
        np.testing.assert_allclose(ds.labels("cn"), cn_s[members].mean(axis=1))
        bonds = cn_s[members]
        np.testing.assert_allclose(
            ds.labels("r"), (bonds * r_s[members]).sum(axis=1) / bonds.sum(axis=1)
        )
        rdf_s = ds.read("sites/labels/rdf")
        np.testing.assert_allclose(ds.labels("rdf"), rdf_s[members].mean(axis=1), rtol=1e-6)
        frame = ds.frame()
        assert frame["site_ids"].str.count(",").eq(2).all()
        assert set(frame["avg_group"]) <= {"train", "val", "test"}
    # Same seed, same examples.
    again = tmp_path / "again.h5"
    gather(chunks, [sites], [labels], again, st)
    with open_dataset(again) as ds:
        np.testing.assert_array_equal(ds.read("examples/members"), members)


def test_every_combination_and_averaging_within_groups():
    split = np.array([0] * 10 + [1] * 5 + [2] * 2)
    members = example_members(split, split.astype(str), k=3, n_examples=None, seed=0)
    assert len(members) == comb(10, 3) + comb(5, 3)  # test has 2 sites: no triple
    assert np.all(split[members] == split[members][:, :1])
    # Paper setting: all C(84, 3) = 95,284 triples of 84 sites.
    members = example_members(np.zeros(84, int), np.zeros(84), k=3)
    assert len(members) == 95_284 == len({tuple(m) for m in members})
    # Within groups: members share the group; n_examples per group, seeded.
    groups = np.repeat(np.arange(6), 5).astype(str)
    split = np.repeat([0, 0, 0, 0, 1, 2], 5)
    cfg = {"k": 2, "n_examples": 4, "seed": 9}
    members = example_members(split, groups, **cfg)
    assert len(members) == 6 * 4 and np.all(groups[members] == groups[members][:, :1])
    np.testing.assert_array_equal(members, example_members(split, groups, **cfg))
    with pytest.raises(ValueError, match=r"set averaging\.n_examples"):
        example_members(np.zeros(2000, int), np.zeros(2000), k=4)
