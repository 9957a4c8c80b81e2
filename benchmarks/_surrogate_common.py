"""Shared parts of the surrogate benchmarks: the data sets, their grouped splits, training
(or reloading) the surrogates, and the FEFF-vs-surrogate plots.

Data sets (workflow runs in today's layout, ``results/<experiment>/simulation/...``):

- ``cu``: Cu K, FEFF8L RPATH 6 NLEGS 6, cluster radius 7 Å, no DEBYE card: strained,
  thermal and defective bulk fcc cells (results/surrogate_cu_bulk, 280 sites; made with
  benchmarks/surrogate/cu_bulk.yaml by an earlier mlxas and brought into today's layout
  by benchmarks/_surrogate_legacy.py, which checks that every feff.inp is the one
  today's FEFF8L engine writes).
- ``au``: Au L3, FEFF8L RPATH 7 NLEGS 8 DEBYE 300 K/160 K: sampled sites of Au150
  Sutton–Chen MD frames (results/surrogate_au150_md, same conversion).

Splits are grouped by structure (an MD frame is a structure): 70 % train, 15 % validation,
15 % test, seed 0, made per experiment so that each is represented in every split.
Trained surrogates are bound model folders ``results/surrogate/models/<name>/<model id>/``
with the pointer ``results/surrogate/models/<name>.json``; a benchmark that finds one
there with the same training data, kind and settings reuses it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from mlxas.surrogate.data import SiteData, grouped_split, load_results  # noqa: E402
from mlxas.surrogate.grids import SpectrumGrid, exafs_grid  # noqa: E402

RESULTS = ROOT / "results"
#: The models of the surrogate benchmarks (Layout of the pseudo-experiment "surrogate").
MODELS = RESULTS / "surrogate"

SETS = {
    "cu": {"experiments": ["surrogate_cu_bulk"], "elements": ("Cu",), "cutoff": 6.0},
    "au": {"experiments": ["surrogate_au150_md"], "elements": ("Au",), "cutoff": 7.0},
}


def load_set(name: str, grid: SpectrumGrid | None = None) -> tuple[SiteData, np.ndarray]:
    """(examples, split code per example) of a data set; one FEFF setting is required
    (:meth:`SiteData.concat` refuses a mix)."""
    spec = SETS[name]
    grid = grid or exafs_grid()
    parts, splits = [], []
    for exp in spec["experiments"]:
        data = load_results(RESULTS / exp, grid, spec["cutoff"])
        parts.append(data)
        splits.append(grouped_split(data.sites["structure_id"].to_numpy(), seed=0))
    return SiteData.concat(parts), np.concatenate(splits)


def structures_of(name: str) -> dict:
    """structure id → ASE Atoms of every structure of a data set's experiments."""
    from mlxas.structures.index import read_structures

    out = {}
    for exp in SETS[name]["experiments"]:
        for path in sorted((RESULTS / exp / "structures").glob("*/structures.extxyz")):
            out.update({str(a.info["structure_id"]): a for a in read_structures(path)})
    return out


def train_or_load(name: str, kind, data: SiteData, split: np.ndarray, settings):
    """The surrogate ``name`` trained on split 0 (validation split 1), reused if saved."""
    from dataclasses import asdict

    from mlxas.models.card import ModelLoadError
    from mlxas.models.train import write_pointer
    from mlxas.provenance import hash_json
    from mlxas.surrogate.model import Surrogate, train
    from mlxas.workflow.layout import Layout

    layout = Layout(MODELS)
    data_hash = hash_json(sorted(data.sites["input_hash"][split == 0].astype(str)))
    pointer = layout.model_pointer(name)
    if pointer.is_file():
        try:
            sur = Surrogate.load(pointer)
        except ModelLoadError as err:
            print(f"not reused: {err}", flush=True)
        else:
            same = (
                sur.card["training"]["data_hash"] == data_hash
                and sur.card["surrogate"]["kind"] == kind.to_json()
                and sur.card["training"]["settings"] == asdict(settings)
            )
            if same:
                print(f"reusing {pointer} ({sur.model_id})", flush=True)
                return sur
    print(f"training {name}: {kind.name}, {int((split == 0).sum())} sites", flush=True)
    sur = train(
        kind,
        data.take(split == 0),
        data.take(split == 1),
        settings,
        provenance={"experiments": sorted(set(data.sites["source"]))},
        name=name,
    )
    sur.save(layout.model_store(name))
    write_pointer(pointer, sur.model_id, sur.card)
    return sur


def plot_examples(
    path: Path,
    grid: SpectrumGrid,
    feff_w: np.ndarray,
    sur_w: np.ndarray,
    scores: np.ndarray,
    labels: list[str],
    title: str,
) -> None:
    """Best, median and worst test sites by ``scores`` (lower is better): weighted spectra
    and, for EXAFS, |FT| (Hanning window 3–14 Å⁻¹), FEFF against the surrogate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = np.argsort(scores)
    picks = [("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])]
    ncol = 2 if grid.target == "exafs" else 1
    fig, axes = plt.subplots(3, ncol, figsize=(5.5 * ncol, 7.5), squeeze=False)
    x = grid.values
    for row, (what, i) in enumerate(picks):
        ax = axes[row, 0]
        ax.plot(x, feff_w[i], "k-", lw=1.2, label="FEFF")
        ax.plot(x, sur_w[i], "r--", lw=1.0, label="surrogate")
        ax.set_title(f"{what}: {labels[i]} (score {scores[i]:.3g})", fontsize=8)
        ax.set_xlabel("k (1/Å)" if grid.target == "exafs" else "E − E0 (eV)")
        ax.set_ylabel("k²·chi(k)" if grid.target == "exafs" else "normalised mu(E)")
        if row == 0:
            ax.legend(fontsize=8)
        if ncol == 2:
            r, ft_f = _ft(x, feff_w[i])
            _, ft_s = _ft(x, sur_w[i])
            axes[row, 1].plot(r, ft_f, "k-", lw=1.2)
            axes[row, 1].plot(r, ft_s, "r--", lw=1.0)
            axes[row, 1].set_xlim(0, 7)
            axes[row, 1].set_xlabel("R (Å)")
            axes[row, 1].set_ylabel("|chi(R)|")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ft(k: np.ndarray, kw_chi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|FT| of k^w·chi with larch's xftf (Hanning, 3–14 Å⁻¹, dk 1)."""
    from larch import Group
    from larch.xafs import xftf

    g = Group(k=k, chi=kw_chi)
    xftf(g, kmin=3, kmax=14, dk=1, kweight=0, window="hanning")
    return g.r, g.chir_mag
