"""Hyperparameter search with Optuna over one configured model entry.

The search covers what the config's ``tune.space`` lists: number and width of hidden
layers, learning rate, L2 and dropout regularisation, batch size and the input
representation (feature and its settings, e.g. chi(k) with another k-weight, or |chi(R)|).
Each trial trains on the training split and is scored by the validation MSE of its best
epoch on standardised targets, averaged over targets and without the regularisation
penalty, so that representations, targets and regularisation strengths compare on one
scale; trials whose validation loss falls behind the median are pruned early.

Outputs (paths of the experiment's :class:`~mlxas.workflow.layout.Layout`): the best
value and parameters with the model entry to paste into ``models`` (JSON), that entry
alone (YAML) and every trial (CSV).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlxas.models.registry import ModelConfigError
from mlxas.models.spec import ModelSpec
from mlxas.workflow.layout import Layout

__all__ = ["DEFAULT_SPACE", "TuneSettings", "suggest_spec", "tune"]


@dataclass(frozen=True)
class TuneSettings:
    """The ``tune`` section: ``trials`` Optuna trials of at most ``epochs`` epochs, no new
    trial after ``timeout`` s (None: no limit), TPE ``seed``, the search ``space``
    (absent keys take :data:`DEFAULT_SPACE`); ``model``: the entry tuned (None: the first)."""

    enabled: bool = False
    model: str | None = None
    trials: int = 20
    epochs: int = 100
    timeout: float | None = None
    seed: int = 0
    space: dict[str, Any] = field(default_factory=dict)


#: Search space used for keys that ``tune.space`` does not give.
DEFAULT_SPACE: dict[str, Any] = {
    "n_layers": [2, 4],
    "units": [32, 512],
    "learning_rate": [1e-4, 3e-3],
    "l2": [1e-8, 1e-3],
    "dropout": [0.0, 0.3],
    "batch_size": [32],
    "inputs": [
        {"input": "chi_k", "features": {"kweight": 1}},
        {"input": "chi_k", "features": {"kweight": 2}},
        {"input": "chi_k", "features": {"kweight": 3}},
    ],
}


def _layers_key(kind: str) -> str:
    # CNN kinds size their Dense layers with ``dense``, MLP kinds with ``hidden``
    from mlxas.models.registry import kind_class

    return "dense" if "dense" in kind_class(kind).defaults["params"] else "hidden"


def suggest_spec(trial, base: ModelSpec, space: dict[str, Any]) -> ModelSpec:
    """The model entry of one trial: ``base`` with the sampled values put in."""
    spec = base.to_dict()
    params = spec["params"]
    key = _layers_key(spec["kind"])
    if space.get("n_layers") and space.get("units"):
        lo, hi = space["n_layers"]
        n = trial.suggest_int("n_layers", int(lo), int(hi))
        ulo, uhi = space["units"]
        params[key] = [
            trial.suggest_int(f"units_{i}", int(ulo), int(uhi), log=True) for i in range(n)
        ]
    if space.get("learning_rate"):
        spec["learning_rate"] = trial.suggest_float(
            "learning_rate", *space["learning_rate"], log=True
        )
    if space.get("l2"):
        params["l2"] = trial.suggest_float("l2", *space["l2"], log=True)
    if space.get("dropout"):
        params["dropout"] = trial.suggest_float("dropout", *space["dropout"])
    if space.get("batch_size"):
        spec["batch_size"] = int(trial.suggest_categorical("batch_size", list(space["batch_size"])))
    if space.get("inputs"):
        i = trial.suggest_categorical("input_choice", list(range(len(space["inputs"]))))
        choice = space["inputs"][i]
        spec["input"] = choice["input"]
        spec["features"] = copy.deepcopy(choice.get("features") or {})
        spec["input_range"] = choice.get("input_range", spec.get("input_range"))
        trial.set_user_attr("input", json.dumps(choice, sort_keys=True))
    return ModelSpec.from_config(spec)


def _pruning_callback(trial):
    import keras

    class _Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get("val_loss")
            if value is None or not np.isfinite(value):
                return
            trial.report(float(value), epoch)
            if trial.should_prune():
                self.model.stop_training = True
                self.pruned = True

    cb = _Report()
    cb.pruned = False
    return cb


def tune(
    dataset,
    settings: TuneSettings,
    base: ModelSpec,
    layout: Layout,
    threads: int = 1,
    verbose: int = 0,
) -> dict[str, Any]:
    """Run the study and write the best entry and the trials to ``layout``'s tune files."""

    from mlxas.models.data import opened

    with opened(dataset) as ds:
        return _tune(ds, settings, base, layout, threads, verbose)


def _trial_base(base: ModelSpec, settings: TuneSettings) -> ModelSpec:
    """The entry trials start from; an ensemble is tuned through one member."""
    if base.model_kind().backend != "keras":
        raise ModelConfigError(
            f"tune.model: {base.name} is a {base.member_kind} model; the search space "
            "(layers, units, learning rate) is for Keras network kinds"
        )
    entry = base.to_dict()
    if base.kind == "ensemble":
        entry["kind"] = base.params["member"]
        entry["params"] = {k: v for k, v in base.params.items() if k not in ("member", "members")}
    entry["epochs"] = int(settings.epochs)
    entry["patience"] = min(int(base.patience), max(5, int(settings.epochs) // 4))
    return ModelSpec.from_config(entry)


def _tune(
    ds,
    settings: TuneSettings,
    base: ModelSpec,
    layout: Layout,
    threads: int,
    verbose: int,
) -> dict[str, Any]:
    import optuna
    import yaml

    from mlxas.models.data import load_training_data
    from mlxas.models.train import fit, set_threads, validation_mse

    set_threads(threads)
    # An ensemble is tuned through one member; the best member settings go back into it.
    trial_base = _trial_base(base, settings)
    space = {**DEFAULT_SPACE, **settings.space}
    cache: dict[str, Any] = {}

    def objective(trial) -> float:
        spec = suggest_spec(trial, trial_base, space)
        key = json.dumps([spec.input, spec.features], sort_keys=True)
        if key not in cache:
            cache[key] = load_training_data(ds, spec, splits=("train", "val"))
        cb = _pruning_callback(trial)
        model, record = fit(cache[key], spec, verbose=0, callbacks=[cb])
        net = record["networks"][0]
        trial.set_user_attr("epochs_run", net["epochs_run"])
        trial.set_user_attr("seconds", net["seconds"])
        if cb.pruned:
            raise optuna.TrialPruned()
        value = validation_mse(model, cache[key])
        if not np.isfinite(value):
            raise optuna.TrialPruned()  # diverged: no finite validation error
        return value

    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=int(settings.seed)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
        study_name=f"tune-{base.name}",
    )
    t0 = time.perf_counter()
    study.optimize(
        objective,
        n_trials=int(settings.trials),
        timeout=settings.timeout,
        gc_after_trial=True,
    )
    seconds = time.perf_counter() - t0
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"tune: none of {len(study.trials)} trials completed")

    best = study.best_trial
    best_spec = suggest_spec(optuna.trial.FixedTrial(best.params), trial_base, space)
    entry = _model_entry(base, best_spec)
    layout.tune_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "model": base.name,
        "dataset_hash": ds.hash,
        "objective": "validation MSE on standardised targets, mean over targets",
        "best_value": float(best.value),
        "best_trial": best.number,
        "best_params": best.params,
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "seconds": seconds,
        "space": space,
        "model_entry": entry,
    }
    layout.tune_best.write_text(json.dumps(result, indent=2, default=float))
    layout.tune_entry.write_text(
        "# Best model entry found by `mlxas tune`; paste it into `models` of the config.\n"
        + yaml.safe_dump([entry], sort_keys=False)
    )
    df = study.trials_dataframe(
        attrs=("number", "state", "value", "duration", "params", "user_attrs")
    )
    df.to_csv(layout.tune_trials, index=False)
    return result


def _model_entry(base: ModelSpec, best: ModelSpec) -> dict[str, Any]:
    """A config entry: the tuned entry with the tuned values, under ``<name>_tuned``."""
    entry = base.to_dict()
    entry["name"] = f"{base.name}_tuned"
    params = dict(entry["params"])
    key = _layers_key(best.kind)
    for p in (key, "l2", "dropout"):
        if p in best.params:
            params[p] = best.params[p]
    entry["params"] = params
    entry.update(learning_rate=best.learning_rate, batch_size=best.batch_size, input=best.input)
    if best.features:
        entry["features"] = copy.deepcopy(best.features)
    if best.input_range is not None:
        entry["input_range"] = list(best.input_range)
    return json.loads(json.dumps(entry, default=float))
