"""Stage commands of ``mlxas``, one per workflow rule; usable by hand.

Each command reads its settings from ``--spec`` (the rule parameter: canonical JSON of
exactly what the stage uses, written by :meth:`mlxas.workflow.experiment.Experiment.spec`)
and its files from the options; paths come from the rule, which takes them from the
results layout.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_stage_commands"]


def _spec(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError as err:
        raise SystemExit(f"mlxas: error: --spec is not valid JSON: {err}") from None


def cmd_structures(a: argparse.Namespace) -> int:
    from mlxas.structures import build_source, source_from_config
    from mlxas.structures.index import format_rejected

    spec = _spec(a.spec)
    source = source_from_config(spec["source"])
    index, rejected = build_source(
        source, spec["absorber"], a.frames, a.index, a.rejected, work_dir=a.work
    )
    print(f"{source.name}: {len(index)} structures, {len(rejected)} rejected")
    if len(rejected):
        print(f"rejected inputs (also in {a.rejected}):")
        print(format_rejected(rejected))
    return 0


def cmd_sites(a: argparse.Namespace) -> int:
    from mlxas.settings import from_mapping
    from mlxas.sites import SitesSettings, site_table, write_sites
    from mlxas.structures import read_structures
    from mlxas.structures.index import read_rejected

    spec = _spec(a.spec)
    settings = from_mapping(SitesSettings, spec["sites"], "sites")
    images = read_structures(a.structures)
    df = site_table(images, spec["absorber"], settings)
    rejected = read_rejected(a.rejected).assign(source=spec["source"])
    write_sites(df, a.out, settings, rejected)
    print(
        f"{len(df)} items from {len(images)} structures (mode {settings.mode}); "
        f"{len(rejected)} refused structures carried on"
    )
    return 0


def cmd_labels(a: argparse.Namespace) -> int:
    from mlxas.sites import LabelSettings, compute_labels, read_sites, write_labels
    from mlxas.structures import read_structures

    spec = _spec(a.spec)
    settings = LabelSettings.from_dict(spec["labels"])
    images = read_structures(a.structures)
    items, _ = read_sites(a.sites)
    table, meta = compute_labels(images, items, spec["absorber"], settings)
    write_labels(table, meta, a.out)
    cols = [c for c in table.columns if c != "site_id"]
    info = "; ".join(f"{k}: {json.dumps(v)}" for k, v in meta["info"].items() if v)
    print(f"{len(table)} items labelled: {', '.join(cols)}" + (f" ({info})" if info else ""))
    return 0


def cmd_inputs(a: argparse.Namespace) -> int:
    import pandas as pd

    from mlxas.engines import get_engine
    from mlxas.simulation.inputs import build_inputs
    from mlxas.structures import read_structures
    from mlxas.workflow.layout import SimulationFolder

    spec = _spec(a.spec)
    engine = get_engine(spec["engine"], spec["settings"])
    if engine.version != spec["engine_version"]:
        raise SystemExit(
            f"mlxas: error: {engine.name} is version {engine.version}, the workflow planned "
            f"{spec['engine_version']}"
        )
    images = {at.info["structure_id"]: at for at in read_structures(a.structures)}
    sites = pd.read_parquet(a.sites)
    table = build_inputs(sites, images, engine, spec["chunk_size"], SimulationFolder(a.folder))
    bad = table[table["reason"] != ""]
    print(f"{len(table)} {engine.name} inputs in {table['chunk'].nunique()} chunks; "
          f"{len(bad)} refused")  # fmt: skip
    for row in bad.itertuples(index=False):
        print(f"  refused {row.item_id}: {row.reason}: {row.detail}")
    return 0


def cmd_simulate(a: argparse.Namespace) -> int:
    from mlxas.simulation.runner import run_chunk
    from mlxas.workflow.layout import SimulationFolder

    spec = _spec(a.spec)
    results = run_chunk(
        SimulationFolder(a.folder), a.chunk, spec["timeout"], a.threads, progress=not a.quiet
    )
    failed = [r for r in results if not r.ok]
    print(f"chunk {a.chunk}: {len(results) - len(failed)} ok, {len(failed)} failed")
    for r in failed:
        print(f"  failed {r.item_id}: {r.reason}: {r.detail}")
    return 0


def cmd_gather(a: argparse.Namespace) -> int:
    from mlxas.dataset import DatasetSettings, gather
    from mlxas.settings import from_mapping
    from mlxas.simulation.inputs import read_plan
    from mlxas.workflow.layout import SimulationFolder

    spec = _spec(a.spec)
    settings = from_mapping(DatasetSettings, spec["settings"], "gather")
    chunks, tables = [], []
    for plan in a.plans:
        folder = SimulationFolder.of_plan(plan)
        chunks += [folder.chunk(i) for i in range(read_plan(plan)["n_chunks"])]
        tables.append(folder.inputs_table)
    report = gather(
        chunks, a.sites, a.labels, a.out, settings,
        inputs_files=tables, absorber=spec["absorber"], edge=spec["edge"],
        cache_dir=a.cache, workers=a.threads, log=lambda msg: print(msg, flush=True),
    )  # fmt: skip
    print(report)
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import train, write_pointer

    spec = ModelSpec.from_dict(_spec(a.spec))
    mid, card, folder = train(a.dataset, spec, a.store, threads=a.threads, verbose=2)
    write_pointer(a.pointer, mid, card)
    test = json.dumps(card["metrics"].get("test", {}))
    print(f"model {spec.name}: id {mid} in {folder}, test metrics {test}")
    return 0


def cmd_latest(a: argparse.Namespace) -> int:
    from mlxas.models.card import point_latest, resolve_model_dir, verify_model_dir

    newest = None
    for pointer in a.pointers:
        folder = resolve_model_dir(pointer)
        created = verify_model_dir(folder)["created"]
        if newest is None or created >= newest[0]:
            newest = (created, folder)
    point_latest(Path(a.out), newest[1])
    print(f"{a.out} -> {newest[1]}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from mlxas.evaluate import evaluate
    from mlxas.workflow.layout import Layout

    spec = _spec(a.spec)
    res = evaluate(a.dataset, a.models, Layout(Path(a.results)), primary=spec["primary"])
    for name, entry in res["models"].items():
        for t, m in entry["targets"].items():
            if "accuracy" in m:  # a class target
                print(f"{name:>12s} {t}: accuracy {m['accuracy']:.3f}  "
                      f"macro F1 {m.get('macro_f1', float('nan')):.3f}")  # fmt: skip
            else:
                print(f"{name:>12s} {t:>4s}: MSE {m['mse']:.4g}  MAE {m['mae']:.4g}  "
                      f"R2 {m['r2']:.3f}")  # fmt: skip
    return 0


def cmd_tune(a: argparse.Namespace) -> int:
    from mlxas.models.spec import ModelSpec
    from mlxas.models.tune import TuneSettings, tune
    from mlxas.settings import from_mapping
    from mlxas.workflow.layout import Layout

    spec = _spec(a.spec)
    settings = from_mapping(TuneSettings, spec["tune"], "tune")
    base = ModelSpec.from_dict(spec["model"])
    res = tune(a.dataset, settings, base, Layout(Path(a.results)), threads=a.threads, verbose=1)
    print(
        f"tune {res['model']}: best validation loss {res['best_value']:.4g} "
        f"(trial {res['best_trial']}, {res['n_complete']} complete, {res['n_pruned']} pruned): "
        f"{json.dumps(res['best_params'])}"
    )
    return 0


# --- arguments ----------------------------------------------------------------------------


def _structures_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {source, absorber}")
    p.add_argument("--frames", required=True, help="output: all structures (extended XYZ)")
    p.add_argument("--index", required=True, help="output: one CSV row per structure")
    p.add_argument("--rejected", required=True, help="output: refused inputs (CSV)")
    p.add_argument("--work", default=None, help="restartable state (default: beside --frames)")


def _sites_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {sites, absorber, source}")
    p.add_argument("--structures", required=True, help="the source's structures")
    p.add_argument("--rejected", required=True, help="the source's refused inputs")
    p.add_argument("--out", required=True, help="site table (Parquet)")


def _labels_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {labels, absorber}")
    p.add_argument("--structures", required=True)
    p.add_argument("--sites", required=True, help="the source's site table")
    p.add_argument("--out", required=True, help="label table (Parquet)")


def _inputs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {engine, engine_version, settings, "
                   "chunk_size}")  # fmt: skip
    p.add_argument("--structures", required=True)
    p.add_argument("--sites", required=True)
    p.add_argument("--folder", required=True, help="the source's simulation folder")


def _simulate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help='JSON: {"timeout": s per item}')
    p.add_argument("--folder", required=True, help="the source's simulation folder")
    p.add_argument("--chunk", required=True, type=int)
    p.add_argument("--threads", type=int, default=1, help="items run in parallel")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


def _gather_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {settings, absorber, edge}")
    p.add_argument("--plans", nargs="+", required=True, help="chunk plans of the sources")
    p.add_argument("--sites", nargs="+", required=True, help="site tables, in source order")
    p.add_argument("--labels", nargs="+", required=True, help="label tables, in source order")
    p.add_argument("--out", required=True)
    p.add_argument("--cache", default=None, help="per-chunk cache (default: <out stem>.cache)")
    p.add_argument("--threads", type=int, default=1, help="worker processes")


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: one resolved entry of `models`")
    p.add_argument("--dataset", required=True)
    p.add_argument("--store", required=True, help="models/<name>: holds <model id>/")
    p.add_argument("--pointer", required=True, help="output: models/<name>.json")
    p.add_argument("--threads", type=int, default=1)


def _latest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pointers", nargs="+", required=True, help="models/<name>.json pointers")
    p.add_argument("--out", required=True, help="the link to write (models/latest)")


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {primary}")
    p.add_argument("--dataset", required=True)
    p.add_argument("--models", nargs="+", required=True, help="model pointers or folders")
    p.add_argument("--results", required=True, help="results/<experiment> (outputs inside)")


def _tune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", required=True, help="JSON: {tune, model}")
    p.add_argument("--dataset", required=True)
    p.add_argument("--results", required=True, help="results/<experiment> (outputs inside)")
    p.add_argument("--threads", type=int, default=1)


STAGE_COMMANDS: list[tuple[str, Callable, Callable, str]] = [
    ("structures", cmd_structures, _structures_args, "build or read the structures of a source"),
    ("sites", cmd_sites, _sites_args, "the items (absorbing sites or structures) of a source"),
    ("labels", cmd_labels, _labels_args, "the labels of a source's items"),
    ("inputs", cmd_inputs, _inputs_args, "engine inputs and chunk plan of a source"),
    ("simulate", cmd_simulate, _simulate_args, "run the engine on the items of one chunk"),
    ("gather", cmd_gather, _gather_args, "gather chunks and labels into the dataset"),
    ("train", cmd_train, _train_args, "train one model"),
    ("latest", cmd_latest, _latest_args, "point models/latest at the newest model"),
    ("evaluate", cmd_evaluate, _evaluate_args, "metrics and parity plots on the test split"),
    ("tune", cmd_tune, _tune_args, "hyperparameter search (Optuna) over one model entry"),
]


def add_stage_commands(add: Callable[[str, Callable, str], argparse.ArgumentParser]) -> None:
    """Register every stage command with ``add(name, function, help)``."""
    for name, func, args, help_ in STAGE_COMMANDS:
        args(add(name, func, f"stage: {help_}"))
