"""``mlxas models list``, ``mlxas models show NAME``: the bundled models and their cards;
``mlxas models calibrate MODEL DATASET``: fit a model's error flag again;
``mlxas models facts NAME DATASET --measured JSON``: its coverage and measured readings."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_arguments", "card_summary", "cmd_calibrate", "cmd_facts", "cmd_list", "cmd_show"]


def add_arguments(models: argparse.ArgumentParser) -> None:
    """``list`` and ``show`` under the ``models`` parser created by :mod:`mlxas.cli`."""
    from mlxas.predict.bundled import add_models_option

    sub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)
    ls = sub.add_parser("list", help="the bundled models: absorber, edge, k-range, size")
    ls.add_argument("--json", action="store_true", help="print the list as JSON")
    ls.add_argument(
        "--verify",
        action="store_true",
        help="check every file against its card's SHA-256 (without it, status says 'unverified')",
    )
    ls.set_defaults(func=cmd_list)
    sh = sub.add_parser("show", help="one bundled model's card")
    sh.add_argument(
        "name", metavar="NAME", help="<experiment>/<entry>, an experiment or a model id"
    )
    sh.add_argument("--json", action="store_true", help="print the whole card as JSON")
    sh.set_defaults(func=cmd_show)
    for p in (ls, sh):
        add_models_option(p)
    cal = sub.add_parser(
        "calibrate",
        help="fit a model's error flag on its simulated dataset (new model id)",
        description="Fit the error flag (mlxas.error_flag) of a trained model on perturbed "
        "spectra of the train and validation splits of its simulated dataset, store it "
        "with the OOD statistics and bind it by a new card and model id (the id that "
        "training gives).  Never give measured spectra here.",
    )
    cal.add_argument("model", metavar="MODEL", help="model folder or models/<name>.json pointer")
    cal.add_argument("dataset", metavar="DATASET", help="its simulated training dataset (HDF5)")
    cal.set_defaults(func=cmd_calibrate)
    fa = sub.add_parser(
        "facts",
        help="write a bundled model's coverage and measured readings (<entry>.facts.json)",
        description="Write <entry>.facts.json beside a bundled model's pointer: the ranges "
        "of its training labels (train split of DATASET, which must be the dataset its card "
        "names), its k-range and temperatures, and its readings of the shared measured "
        "files from the predict_measured benchmark.  Not part of the model id.",
    )
    fa.add_argument("name", metavar="NAME", help="<experiment>/<entry>, an experiment or an id")
    fa.add_argument("dataset", metavar="DATASET", help="its simulated training dataset (HDF5)")
    fa.add_argument(
        "--measured",
        metavar="JSON",
        help="benchmarks/results/predict_measured.json (bench_predict_measured.py's output)",
    )
    fa.set_defaults(func=cmd_facts)
    add_models_option(fa)


def _krange(k: tuple[float, float] | None) -> str:
    return "-" if k is None else f"{k[0]:g}-{k[1]:g}"


def _size(n: int) -> str:
    return f"{n / 1024:.0f} kB" if n < 2**20 else f"{n / 2**20:.1f} MB"


def cmd_list(a: argparse.Namespace) -> int:
    from mlxas.models.card import ModelLoadError, verify_model_dir
    from mlxas.predict.bundled import bundled_dir, list_models, missing_folder

    if (missing := missing_folder(a.models)) is not None:
        print(f"mlxas: error: {missing}", file=sys.stderr)
        return 2
    models = list_models(a.models)
    root = bundled_dir(a.models)
    rows = []
    for m in models:
        # Without --verify only the pointer and card are read: the files are not checked
        # against the card's SHA-256, so the model is not called "ok" (predict and serve
        # check them when they load it).
        status = "refused: " + m.error if m.error else "unverified"
        if a.verify and not m.error:
            try:
                verify_model_dir(m.folder)
                status = "verified"
            except ModelLoadError as err:
                status = f"refused: {err}"
        pre = m.card.get("preprocessing", {})
        rows.append(
            {
                "name": m.name,
                "default": m.default,
                "edge": f"{','.join(m.covered) or m.absorber} {m.edge}".strip(),
                "input": pre.get("input", ""),
                "k_range": m.k_required,
                "targets": pre.get("targets", []),
                "model_id": m.model_id,
                "size_bytes": m.size_bytes(),
                "status": status,
            }
        )
    if a.json:
        print(json.dumps({"folder": str(root), "models": rows}, indent=1))
        return 0
    if not rows:
        print(f"no bundled models in {root}", file=sys.stderr)
        return 1
    head = ("name", "edge", "input", "k (1/Å)", "targets", "model id", "size", "status")
    table = [
        (
            r["name"] + (" *" if r["default"] else ""),
            r["edge"],
            r["input"],
            _krange(r["k_range"]),
            ",".join(r["targets"]),
            r["model_id"],
            _size(r["size_bytes"]),
            r["status"],
        )
        for r in rows
    ]
    w = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(len(head) - 1)]
    fmt = "  ".join(f"{{:<{n}}}" for n in w) + "  {}"
    print(fmt.format(*head))
    for t in table:
        print(fmt.format(*t))
    total = sum(r["size_bytes"] for r in rows)
    print(f"\n{len(rows)} models in {root}, {_size(total)}; * = the experiment's default")
    if any(r["status"] == "unverified" for r in rows):
        print(
            "unverified: files not checked against their card's SHA-256 "
            "(--verify checks them; predict and serve check them on loading)"
        )
    return 0


def _num(v: Any, fmt: str) -> str:
    """A metric as text; '-' where it is undefined (null in the card: R² of one sample)."""
    return "-" if v is None else format(v, fmt)


def _edge_energies(pre: dict[str, Any]) -> str:
    """The tabulated edge energy, or the range of them for a multi-absorber model."""
    many = [e for e in (pre.get("edge_energies") or {}).values() if e is not None]
    if len(many) > 1:
        return f"{min(many):.0f} to {max(many):.0f}"
    return str(pre.get("edge_energy") if pre.get("edge_energy") is not None else (many or ["?"])[0])


def _input_lines(card: dict[str, Any]) -> list[tuple[str, str]]:
    """What the model reads: chi(k) (k-weight, k-range) or mu(E) near the edge (E − E0)."""
    from mlxas.predict.spec import required_k_range
    from mlxas.spectra.input_names import reads_edge

    pre = card.get("preprocessing", {})
    shape = f"{pre.get('input')} {pre.get('input_shape')}"
    if reads_edge(card):
        x = (pre.get("features") or {}).get("xanes") or {}
        span = f"{_num(x.get('emin'), 'g')} to {_num(x.get('emax'), 'g')} eV"
        return [("input", f"{shape}, normalised mu(E)"), ("E - E0 read", span)]
    return [
        ("input", f"{shape}, k-weight {pre.get('kweight')}"),
        ("k-range read", _krange(required_k_range(card)) + " 1/Å"),
    ]


def _training(card: dict[str, Any]) -> str:
    """Epochs (networks) or trees (forests), time and augmentation of the training."""
    train = card.get("training", {})
    if card.get("kind") == "random_forest":
        trees = ((card.get("config") or {}).get("params") or {}).get("n_estimators", "?")
        size = f"forest of {trees} trees"
    else:
        size = f"{train.get('epochs_run')} epochs"
    return f"{size}, {train.get('seconds', 0):.0f} s, augment {train.get('augment') or 'none'}"


def card_summary(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines of the facts a user checks before trusting a model."""
    pre = card.get("preprocessing", {})
    ds = card.get("dataset", {})
    from mlxas.predict.spec import card_absorbers

    lines = [
        ("model id", str(card.get("model_id"))),
        ("entry", f"{card.get('name')} ({card.get('kind')})"),
        ("absorber, edge", f"{', '.join(card_absorbers(card)) or '?'} {pre.get('edge')}"),
        ("edge energy", _edge_energies(pre) + " eV (xraydb)"),
        *_input_lines(card),
        ("targets", ", ".join(pre.get("targets", []))),
        ("dataset", f"hash {ds.get('hash')}, split sizes {ds.get('split', {}).get('sizes')}"),
        ("training", _training(card)),
        ("versions", f"mlxas {card.get('mlxas_version')}, keras {card.get('keras_version')}"),
        ("created", str(card.get("created"))),
    ]
    for split, per_target in (card.get("metrics") or {}).items():
        for target, m in per_target.items():
            if isinstance(m, dict) and "mae" in m:
                lines.append((f"{split} {target}", f"MAE {_num(m['mae'], '.4g')}, "
                              f"R² {_num(m.get('r2'), '.3f')}"))  # fmt: skip
            elif isinstance(m, dict) and "accuracy" in m:  # a class target
                lines.append((f"{split} {target}", f"accuracy {_num(m['accuracy'], '.3f')}, "
                              f"balanced {_num(m.get('balanced_accuracy'), '.3f')}, "
                              f"n {m.get('n')}"))  # fmt: skip
    known = {"model_id", "name", "kind", "preprocessing", "dataset", "training", "metrics",
             "mlxas_version", "keras_version", "tensorflow_version", "created", "config",
             "outputs", "files", "card_version"}  # fmt: skip
    for key in sorted(set(card) - known):  # coverage, scores on measured files, ...
        lines.append((key, json.dumps(card[key], default=str)[:400]))
    return lines


def cmd_show(a: argparse.Namespace) -> int:
    from mlxas.predict.bundled import find_model

    m = find_model(a.name, a.models)
    if m.error:
        print(f"mlxas: {m.name}: {m.error}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(m.card, indent=1))
        return 0
    lines = [("name", m.name + (" (the experiment's default)" if m.default else "")),
             ("folder", str(m.folder)), ("size", _size(m.size_bytes()))]  # fmt: skip
    lines += card_summary(m.card)
    from mlxas.predict.model_facts import facts_summary

    lines += facts_summary(m)
    w = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{w}}  {v}")
    return 0


def cmd_calibrate(a: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from mlxas.error_flag import fit_error_flag
    from mlxas.models.card import load_model, point_latest, write_json
    from mlxas.models.data import opened
    from mlxas.models.folder import rebind_ood

    model, card = load_model(a.model)
    with opened(Path(a.dataset)) as ds:
        if ds.hash != card["dataset"]["hash"]:
            print(
                f"mlxas: error: {a.dataset}: dataset hash {ds.hash} is not the model's "
                f"{card['dataset']['hash']}; calibrate on the dataset it was trained on",
                file=sys.stderr,
            )
            return 2
        error = fit_error_flag(model, card, card["ood"], ds)
    ood = {**card["ood"], "error": error}
    old = Path(card["model_dir"]).resolve()
    mid, folder, _ = rebind_ood(old, ood)
    latest = old.parent.parent / "latest"  # the experiment's link to its last model
    if latest.is_symlink() and (latest.parent / os.readlink(latest)).resolve() == old:
        point_latest(latest, folder)
    pointer = Path(a.model)
    if pointer.suffix == ".json" and pointer.is_file():
        write_json(pointer, {**json.loads(pointer.read_text()), "model_id": mid})
    cal = error.get("calibration") or {"status": error.get("reason")}
    print(f"{folder}: error flag {error['status']}; {json.dumps(cal)}")
    return 0


def cmd_facts(a: argparse.Namespace) -> int:
    from mlxas.predict.bundled import find_model
    from mlxas.predict.model_facts import write_facts

    m = find_model(a.name, a.models)
    if m.error:
        print(f"mlxas: {m.name}: {m.error}", file=sys.stderr)
        return 2
    try:
        path = write_facts(m, a.dataset, a.measured)
    except (OSError, ValueError, KeyError) as err:
        print(f"mlxas: error: {err}", file=sys.stderr)
        return 2
    print(f"{path}: coverage{' and measured readings' if a.measured else ''} of {m.name}")
    return 0
