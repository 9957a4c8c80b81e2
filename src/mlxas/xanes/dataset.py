"""The XANES geometry dataset: prototype structures → labelled sites → FEFF10 → features.

Stages, each written to ``<out>/`` in the workflow's own layout so that the workflow can
take the files over (its FEFF stage reuses finished runs by input hash):

1. :func:`plan` — for every compound of the catalogue, the ideal crystal and
   ``snapshots[class]`` thermal snapshots (strained, rattled supercells, one seed each;
   ``class`` is the rarest class among the compound's absorbing roles, so that rare
   geometries get more spectra); the absorbing sites (one per absorbing role in the
   ideal crystal, ``sites_per_role`` drawn per role in a snapshot) and their labels
   (:func:`mlxas.xanes.labels.sites_labels`, oxidation states from the compound's
   bond valences).  Writes ``structures/prototypes/structures.extxyz`` and
   ``sites/prototypes.parquet``; sites whose labels fail go to ``rejected.csv``.
2. :func:`run_feff` — ``mlxas.feff.inputs.build_inputs`` writes the input table and chunk
   plan, ``mlxas.feff.runner.run_chunk`` runs each chunk (``threads`` FEFF runs at once)
   and writes its chunk file.
3. :func:`gather` — features (:mod:`mlxas.xanes.features`) of every successful site and
   its labels into ``xanes_dataset.h5``.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlxas.xanes.labels import GEOMETRY_CLASSES, GeometrySettings, LabelError, sites_labels
from mlxas.xanes.prototypes import Compound, build_structure, catalogue, role_valences
from mlxas.xanes.simulate import XanesFeffSettings, cluster_radius
from mlxas.xanes.variants import VariantSettings, snapshot

__all__ = ["DatasetSettings", "gather", "plan", "run_feff"]

SOURCE = "prototypes"
#: Thermal snapshots per compound, by the rarest geometry class among its absorbing roles:
#: octahedral compounds are 79 of the 183, so their ideal crystals suffice.
DEFAULT_SNAPSHOTS = {
    "octahedral": 0,
    "tetrahedral": 2,
    "square_planar": 4,
    "square_pyramidal": 4,
    "trigonal_bipyramidal": 4,
    "linear": 4,
    "other": 4,
}


@dataclass(frozen=True)
class DatasetSettings:
    """What the dataset holds; ``seed`` fixes every snapshot."""

    snapshots: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SNAPSHOTS))
    sites_per_role: int = 1
    seed: int = 0
    prototypes: tuple[str, ...] | None = None
    variants: VariantSettings = field(default_factory=VariantSettings)
    labels: GeometrySettings = field(default_factory=GeometrySettings)
    feff: XanesFeffSettings = field(default_factory=XanesFeffSettings)
    chunk_size: int = 50


def _seed(*parts: Any) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def _atoms(structure, info: dict[str, Any]):
    from ase import Atoms

    atoms = Atoms(
        [site.specie.symbol for site in structure],
        positions=structure.cart_coords,
        cell=structure.lattice.matrix,
        pbc=True,
    )
    atoms.info.update(info)
    return atoms


def _rarest_class(compound: Compound) -> str:
    from mlxas.xanes.prototypes import prototype

    geometry = prototype(compound.prototype)["geometry"]
    classes = [geometry[r] for r in compound.absorbers()]
    return max(classes, key=lambda c: (c != "octahedral", c != "tetrahedral", c))


def _compound_sites(compound: Compound, settings: DatasetSettings):
    """Yield ``(atoms, rows, rejected)`` per structure drawn from ``compound``."""
    from mlxas.provenance import structure_hash

    base = build_structure(compound)
    valence = role_valences(compound)
    absorbers = compound.absorbers()
    n_snap = settings.snapshots.get(_rarest_class(compound), 0)
    seeds = [None] + [_seed(compound.name, k, settings.seed) for k in range(n_snap)]
    for seed in seeds:
        snap = snapshot(base, settings.variants, seed)
        s = snap.structure
        roles = s.site_properties["role"]
        rng = np.random.default_rng(None if seed is None else seed + 1)
        chosen = []
        for role in absorbers:
            idx = [i for i, r in enumerate(roles) if r == role]
            k = 1 if seed is None else min(settings.sites_per_role, len(idx))
            chosen += [idx[0]] if seed is None else sorted(rng.choice(idx, k, replace=False))
        info = {
            "name": f"{compound.name}_{snap.kind}{'' if seed is None else seed}",
            "compound": compound.name,
            "prototype": compound.prototype,
            "origin": compound.origin,
            "hypothetical": compound.hypothetical,
            "snapshot": snap.kind,
            "seed": snap.seed,
            "sigma": snap.sigma,
            "strain": json.dumps([round(v, 6) for v in snap.strain]),
        }
        atoms = _atoms(s, info)
        sid = structure_hash(atoms.get_chemical_symbols(), atoms.positions, atoms.cell, atoms.pbc)
        atoms.info["structure_id"] = sid
        decorated = s.copy()
        decorated.add_oxidation_state_by_site([valence[r] for r in roles])
        rows, rejected = [], []
        try:
            labels = sites_labels(decorated, chosen, settings.labels)
        except LabelError as err:
            rejected.append({"structure_id": sid, "name": info["name"], **asdict_err(err)})
            labels = []
        for i, lab in zip(chosen, labels, strict=False):
            rows.append(
                {
                    "site_id": f"{sid}-{int(i):05d}",
                    "structure_id": sid,
                    "site_index": int(i),
                    "element": s[int(i)].specie.symbol,
                    "role": roles[int(i)],
                    **{k: info[k] for k in ("name", "compound", "prototype", "origin", "snapshot")},
                    **lab,
                }
            )
        yield atoms, rows, rejected


def asdict_err(err: LabelError) -> dict[str, str]:
    return {"reason": err.reason, "detail": err.detail}


def plan(settings: DatasetSettings, out: str | Path, progress: bool = True) -> pd.DataFrame:
    """Structures, absorbing sites and labels; returns the site table (also written)."""
    from ase.io import write

    out = Path(out)
    cat = catalogue(settings.prototypes)
    structures, rows, rejected = [], [], []
    it = cat.compounds
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="structures and labels", unit="compound")
    t0 = time.process_time()
    for compound in it:
        for atoms, r, rej in _compound_sites(compound, settings):
            structures.append(atoms)
            rows += r
            rejected += rej
    label_cpu = time.process_time() - t0
    sdir = out / "structures" / SOURCE
    sdir.mkdir(parents=True, exist_ok=True)
    write(sdir / "structures.extxyz", structures, format="extxyz")
    pd.DataFrame(rejected, columns=["structure_id", "name", "reason", "detail"]).to_csv(
        sdir / "rejected.csv", index=False
    )
    sites = pd.DataFrame(rows)
    (out / "sites").mkdir(parents=True, exist_ok=True)
    sites.to_parquet(out / "sites" / f"{SOURCE}.parquet", index=False)
    meta = {
        "n_compounds": len(cat.compounds),
        "skipped_substitutions": cat.skipped,
        "n_structures": len(structures),
        "n_sites": len(sites),
        "label_cpu_s": round(label_cpu, 1),
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
    }
    (out / "sites" / f"{SOURCE}.json").write_text(json.dumps(meta, indent=1))
    return sites


def _feff_cfg(settings: DatasetSettings) -> dict[str, Any]:
    f = settings.feff
    return {
        "engine": "feff10",
        "spectroscopy": "xanes",
        "cards": {"FMS": f.fms_radius, "SCF": f.scf_radius, "XANES": f.xanes_kmax},
        "cluster_radius": cluster_radius(f),
        "chunk_size": settings.chunk_size,
    }


def run_feff(
    settings: DatasetSettings, out: str | Path, threads: int = 2, limit: int | None = None
) -> dict[str, Any]:
    """Write the FEFF inputs and run every chunk.

    Each call is one *session* in ``<out>/feff_run.json`` (threads, chunks completed, CPU
    time of the FEFF processes, wall time, runs finished), saved after every chunk and
    when the job is stopped; returns that record.

    ``limit`` runs only the first ``limit`` chunks: a random sample of the planned sites.
    """
    from ase.io import read

    from mlxas.feff.inputs import build_inputs
    from mlxas.feff.runner import run_chunk

    out = Path(out)
    # Chunks hold sites in a seeded random order, so the first chunks are a sample of the
    # whole dataset (all prototypes and classes) and ``limit`` gives a smaller dataset.
    sites = (
        pd.read_parquet(out / "sites" / f"{SOURCE}.parquet")
        .sample(frac=1.0, random_state=settings.seed)
        .reset_index(drop=True)
    )
    fdir = out / "feff" / SOURCE
    fdir.mkdir(parents=True, exist_ok=True)
    table = _existing_inputs(fdir, sites, settings)
    if table is None:
        images = {
            a.info["structure_id"]: a
            for a in read(out / "structures" / SOURCE / "structures.extxyz", index=":")
        }
        table = build_inputs(
            sites, images, _feff_cfg(settings), settings.feff.edge,
            fdir / "inputs.parquet", fdir / "chunks.json",
        )  # fmt: skip
    n_chunks = int(table["chunk"].max()) + 1
    chunks = range(n_chunks if limit is None else min(limit, n_chunks))
    record_path = out / "feff_run.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {"sessions": []}
    session = {"threads": threads, "chunks": [], "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    record["sessions"].append(session)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished0 = _count_finished(fdir)
    t0 = time.monotonic()

    def save() -> None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        session["feff_cpu_s"] = round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1
        )
        session["wall_s"] = round(time.monotonic() - t0, 1)
        session["runs_finished"] = _count_finished(fdir) - finished0
        record_path.write_text(json.dumps(record, indent=1))

    # SIGTERM (a stopped job) ends the loop through SystemExit, so the record is written.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for chunk in chunks:
            run_chunk(
                fdir / "inputs.parquet", chunk, fdir / "runs", fdir / "chunks" / f"{chunk:05d}.h5",
                "feff10", settings.feff.timeout, threads=threads,
            )  # fmt: skip
            session["chunks"].append(chunk)
            save()
    finally:
        save()
    return record


def _existing_inputs(fdir: Path, sites: pd.DataFrame, settings: DatasetSettings):
    """The input table already written for these sites and settings, else None.

    Writing it again gives the same table (cutting 600 clusters takes minutes); a table
    for other sites, cards or cluster radius is rewritten.
    """
    from mlxas.feff.cards import merged_cards
    from mlxas.feff.inputs import read_chunks_json
    from mlxas.provenance import hash_json

    if not (fdir / "inputs.parquet").exists() or not (fdir / "chunks.json").exists():
        return None
    cfg = _feff_cfg(settings)
    cards = merged_cards("feff10", settings.feff.edge, cfg["cards"], "xanes")
    card_hash = hash_json({"engine": "feff10", "cards": cards, "radius": cfg["cluster_radius"]})
    plan = read_chunks_json(fdir / "chunks.json")
    table = pd.read_parquet(fdir / "inputs.parquet", columns=["site_id", "chunk"])
    same = (
        plan["card_hash"] == card_hash
        and plan["chunk_size"] == settings.chunk_size
        and list(table["site_id"]) == list(sites["site_id"])
    )
    return table if same else None


def _count_finished(fdir: Path) -> int:
    """Runs that finished (done marker) or failed for good (failure record)."""
    from mlxas.feff.layout import DONE_MARKER, FAILURE_FILE

    done = sum(1 for _ in (fdir / "runs").glob(f"*/{DONE_MARKER}"))
    return done + sum(1 for _ in (fdir / "quarantine").glob(f"*/{FAILURE_FILE}"))


def _finished_runs(fdir: Path) -> list:
    """Successful runs found in the run folders (done marker with the input's hash):
    sites of chunks that are still running, before their chunk file exists."""
    import pyarrow.parquet as pq

    from mlxas.feff.checks import RunFailure, read_xmu_dat
    from mlxas.feff.chunk import SiteResult
    from mlxas.feff.layout import DONE_MARKER

    rows = pq.read_table(fdir / "inputs.parquet", columns=["site_id", "input_hash"]).to_pylist()
    out = []
    for row in rows:
        run = fdir / "runs" / row["site_id"]
        try:
            done = json.loads((run / DONE_MARKER).read_text())
            if done.get("input_hash") != row["input_hash"]:
                continue
            energy, mu, mu0, e0 = read_xmu_dat(run / "xmu.dat")
        except (OSError, ValueError, RunFailure):
            continue
        out.append(
            SiteResult(row["site_id"], "ok", input_hash=row["input_hash"],
                       seconds=float(done.get("seconds", 0.0)), e0=e0,
                       energy=energy, mu=mu, mu0=mu0)
        )  # fmt: skip
    return out


def gather(settings_features, out: str | Path, from_runs: bool = False) -> Path:
    """Features and labels of every successful site into ``<out>/xanes_dataset.h5``.

    Reads the chunk files, or with ``from_runs`` every finished run folder (the chunk
    files of a FEFF stage still running are not written yet).
    """
    import h5py

    from mlxas.feff.chunk import read_chunk
    from mlxas.xanes.features import xanes_features

    out = Path(out)
    fdir = out / "feff" / SOURCE
    sites = pd.read_parquet(out / "sites" / f"{SOURCE}.parquet").set_index("site_id")
    if from_runs:
        results = _finished_runs(fdir)
    else:
        results = []
        for path in sorted((fdir / "chunks").glob("[0-9]*.h5")):
            results += [r for r in read_chunk(path) if r.ok]
    feats = xanes_features([(r.energy, r.mu) for r in results], settings_features, True)
    ids = [r.site_id for r in results]
    table = sites.loc[ids]
    path = out / "xanes_dataset.h5"
    with h5py.File(path, "w") as h5:
        h5["grid"] = settings_features.grid
        h5["norm"] = feats.norm
        h5["e0"] = feats.e0
        h5["edge_step"] = feats.step
        h5["feff_seconds"] = np.array([r.seconds for r in results])
        for col in ("geometry_index", "cn", "r", "oxidation_state", "csm", "site_index"):
            h5[f"labels/{col}"] = table[col].to_numpy()
        for col in (
            "geometry",
            "ce_symbol",
            "element",
            "compound",
            "prototype",
            "origin",
            "snapshot",
            "role",
        ):
            h5[f"meta/{col}"] = table[col].astype(str).to_numpy().astype("S")
        h5["meta/site_id"] = np.array(ids, dtype="S")
        h5.attrs["classes"] = json.dumps(list(GEOMETRY_CLASSES))
        h5.attrs["features"] = json.dumps(asdict(settings_features))
    return path
