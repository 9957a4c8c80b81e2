"""Absorbing sites and their labels.

A *site* is one absorbing atom of one structure (or MD frame).  For ordered structures
only symmetry-unique sites are computed and each carries its multiplicity: spglib
(through pymatgen) for periodic crystals, the point group (pymatgen's
``PointGroupAnalyzer``) for clusters.

Labels per site:

``cn``
    first-shell coordination number: neighbours within the first shell, found by the
    configured rule (``cutoff``, ``rdf_minimum`` or ``nn:<pymatgen class>``);
``r``
    mean distance (Å) from the absorber to those neighbours;
``cn_<El>``
    partial first-shell CN by neighbour element;
``rdf``
    radial distribution around the absorber, ``n(r) = sum_j G(r - r_j; sigma)`` in
    atoms per Å on ``labels.rdf`` grid; its integral over the first shell is the CN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

__all__ = [
    "SITE_COLUMNS",
    "enumerate_sites",
    "equivalent_sites",
    "neighbour_distances",
    "rdf_grid",
    "site_labels",
    "write_sites",
]

SITE_COLUMNS = [
    "site_id",
    "structure_id",
    "source",
    "name",
    "frame",
    "site_index",
    "element",
    "multiplicity",
    "cn",
    "r",
]


def site_id(structure_id: str, index: int) -> str:
    return f"{structure_id}-{index:05d}"


def equivalent_sites(atoms: Atoms, symprec: float = 0.1) -> list[list[int]]:
    """Groups of symmetry-equivalent atom indices, each group sorted, groups by first index."""
    if np.any(atoms.pbc):
        from pymatgen.io.ase import AseAtomsAdaptor
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        structure = AseAtomsAdaptor.get_structure(atoms)
        sym = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetrized_structure()
        groups = [sorted(g) for g in sym.equivalent_indices]
    else:
        from pymatgen.core import Molecule
        from pymatgen.symmetry.analyzer import PointGroupAnalyzer

        mol = Molecule(atoms.get_chemical_symbols(), atoms.positions)
        eq = PointGroupAnalyzer(mol, tolerance=symprec).get_equivalent_atoms()
        groups = [sorted(int(i) for i in g) for g in eq["eq_sets"].values()]
    return sorted(groups, key=lambda g: g[0])


def neighbour_distances(atoms: Atoms, index: int, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances (Å) and atom indices of all neighbours of ``index`` within ``r_max``."""
    if np.any(atoms.pbc):
        from ase.neighborlist import neighbor_list

        i, j, d = neighbor_list("ijd", atoms, r_max)
        mask = i == index
        return d[mask], j[mask]
    d = np.linalg.norm(atoms.positions - atoms.positions[index], axis=1)
    mask = (d <= r_max) & (np.arange(len(atoms)) != index)
    return d[mask], np.nonzero(mask)[0]


def rdf_grid(rdf_cfg: dict) -> np.ndarray:
    """Radial grid (Å) of the RDF label, from ``dr`` to ``r_max``."""
    return np.arange(rdf_cfg["dr"], rdf_cfg["r_max"] + rdf_cfg["dr"] / 2, rdf_cfg["dr"])


def _radial_density(d: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        hist, _ = np.histogram(
            d, bins=np.append(grid - (grid[1] - grid[0]) / 2, grid[-1] + (grid[1] - grid[0]) / 2)
        )
        return hist / (grid[1] - grid[0])
    z = (grid[None, :] - d[:, None]) / sigma
    return np.exp(-0.5 * z * z).sum(axis=0) / (sigma * np.sqrt(2 * np.pi))


def _first_minimum(d: np.ndarray, grid: np.ndarray, sigma: float) -> float:
    """Radius of the first minimum of the broadened radial density after its first peak."""
    n = _radial_density(d, grid, max(sigma, 0.05))
    peak = int(np.argmax(n > 0.5 * n.max())) if n.max() > 0 else 0
    while peak + 1 < len(n) and n[peak + 1] >= n[peak]:
        peak += 1
    i = peak
    while i + 1 < len(n) and n[i + 1] <= n[i]:
        i += 1
    return float(grid[i])


def site_labels(atoms: Atoms, index: int, labels_cfg: dict) -> dict:
    """CN, mean first-shell distance, partial CNs and RDF of one site."""
    rdf_cfg = labels_cfg["rdf"]
    grid = rdf_grid(rdf_cfg)
    r_search = max(rdf_cfg["r_max"], labels_cfg["cutoff"]) + 3 * rdf_cfg["sigma"]
    d, j = neighbour_distances(atoms, index, r_search)
    rule = labels_cfg["cn_rule"]
    if rule == "cutoff":
        shell = d <= labels_cfg["cutoff"]
    elif rule == "rdf_minimum":
        shell = d <= _first_minimum(d, grid, rdf_cfg["sigma"])
    elif rule.startswith("nn:"):
        shell = _pymatgen_shell(atoms, index, rule[3:], d, j)
    else:
        raise ValueError(f"labels.cn_rule: unknown rule {rule!r}")
    symbols = np.asarray(atoms.get_chemical_symbols())
    out = {
        "cn": float(shell.sum()),
        "r": float(d[shell].mean()) if shell.any() else float("nan"),
        "rdf": _radial_density(d, grid, rdf_cfg["sigma"]).astype(np.float32),
    }
    for el in sorted(set(symbols)):
        out[f"cn_{el}"] = float((symbols[j[shell]] == el).sum())
    return out


def _pymatgen_shell(
    atoms: Atoms, index: int, cls_name: str, d: np.ndarray, j: np.ndarray
) -> np.ndarray:
    import pymatgen.analysis.local_env as local_env

    cls = getattr(local_env, cls_name, None)
    if cls is None:
        raise ValueError(f"labels.cn_rule: pymatgen.analysis.local_env has no class {cls_name!r}")
    from pymatgen.io.ase import AseAtomsAdaptor

    if np.any(atoms.pbc):
        struct = AseAtomsAdaptor.get_structure(atoms)
    else:
        # Near-neighbour classes need a lattice: box the cluster with generous vacuum.
        boxed = atoms.copy()
        boxed.center(vacuum=15.0)
        struct = AseAtomsAdaptor.get_structure(boxed)
    neighbours = {n["site_index"] for n in cls().get_nn_info(struct, index)}
    return np.isin(j, list(neighbours))


def enumerate_sites(
    images: list[Atoms], absorber: str, sites_cfg: dict, labels_cfg: dict
) -> pd.DataFrame:
    """One row per absorbing site to compute, with multiplicity and labels."""
    rng = np.random.default_rng(sites_cfg["seed"])
    rows = []
    for atoms in images:
        info = atoms.info
        symbols = np.asarray(atoms.get_chemical_symbols())
        absorbers = np.nonzero(symbols == absorber)[0]
        mode = sites_cfg["mode"]
        if mode == "unique":
            chosen = [
                (g[0], len(g))
                for g in equivalent_sites(atoms, sites_cfg["symprec"])
                if symbols[g[0]] == absorber
            ]
        elif mode == "all":
            chosen = [(int(i), 1) for i in absorbers]
        elif mode == "sample":
            n = sites_cfg["per_frame"] or len(absorbers)
            picked = rng.choice(absorbers, size=min(n, len(absorbers)), replace=False)
            chosen = [(int(i), 1) for i in np.sort(picked)]
        else:
            raise ValueError(f"sites.mode: unknown mode {mode!r}")
        for idx, mult in chosen:
            labels = site_labels(atoms, idx, labels_cfg)
            frame = info.get("frame", -1)
            rows.append(
                {
                    "site_id": site_id(info["structure_id"], idx),
                    "structure_id": info["structure_id"],
                    "source": info.get("source", ""),
                    "name": info.get("name", ""),
                    "frame": None if frame is None or frame < 0 else int(frame),
                    "site_index": int(idx),
                    "element": absorber,
                    "multiplicity": int(mult),
                    **labels,
                }
            )
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=[*SITE_COLUMNS, "rdf"])
    df["frame"] = df["frame"].astype("Int64")
    part = sorted(c for c in df.columns if c.startswith("cn_"))
    df[part] = df[part].fillna(0.0)
    return df[[*SITE_COLUMNS, *part, "rdf"]]


def write_sites(df: pd.DataFrame, path: str | Path, labels_cfg: dict) -> None:
    """Write the site table as Parquet, with the RDF grid in the file metadata."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"mlxas.labels"] = json.dumps(labels_cfg, sort_keys=True).encode()
    meta[b"mlxas.rdf_grid"] = json.dumps(rdf_grid(labels_cfg["rdf"]).tolist()).encode()
    table = table.replace_schema_metadata(meta)
    tmp = Path(f"{path}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
