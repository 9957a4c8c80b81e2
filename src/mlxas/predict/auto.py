"""``mlxas predict FILE...`` without a model: each file gets the bundled model for its
absorber and edge (:func:`mlxas.predict.bundled.pick_model`).

:class:`AutoPredictor` has the interface the command uses of
:class:`~mlxas.predict.predictor.Predictor` (``predict``, ``targets``, ``close``): it
reads each file once to pick its model, loads (and verifies) each model the first time a
file needs it, predicts the files of one model together and returns the results in the
order of the files, each naming its model in ``values["model"]``.  A file that no model
covers is a refused result naming the file and the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlxas.predict.bundled import BundledModel, Pick, list_models, pick_model
from mlxas.predict.spec import Result

__all__ = ["AutoPredictor", "closest_result", "model_meta"]


def model_meta(pred, name: str | None = None) -> dict[str, Any]:
    """What the output says about the model of a :class:`Predictor`: its id and name,
    its input as its spec describes it (:meth:`~mlxas.predict.spec.InputSpec.model_meta`),
    whether it has OOD statistics and, for a bundled model, its bundled name."""
    card = pred.card
    meta = {
        "model_id": card.get("model_id"),
        "name": card.get("name"),
        **pred.spec.model_meta(),
        "ood_available": pred.ood is not None,
    }
    if name is not None:
        meta["bundled"] = name
    return meta


class AutoPredictor:
    """Predict files with the bundled models of ``root`` picked per file.

    ``jobs``, ``warn`` and ``options`` go to each :class:`Predictor`; ``on_model`` is
    called with (name, predictor) when a model is first loaded (for plots, messages).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        jobs: int | None = None,
        warn: Callable[[str], None] | None = None,
        on_model: Callable[[str, Any], None] | None = None,
        **options: Any,
    ):
        from mlxas.spectra.measured import SeriesReader

        self.models = list_models(root)
        self.jobs, self.warn, self.on_model, self.options = jobs, warn, on_model, options
        self.reader = SeriesReader(
            options.get("mu_label"), options.get("energy_label"), options.get("repair", False)
        )
        self.predictors: dict[str, Any] = {}
        self.failed: dict[str, str] = {}  # bundled model name -> why it cannot be loaded
        #: Metadata of every model used so far, by bundled name (the JSON output's header).
        self.meta: dict[str, Any] = {"models": {}}
        self.targets: list[str] = []
        self.classes: dict[str, list[str]] = {}  # class names of each class target
        for m in self.models:
            for t in m.card.get("preprocessing", {}).get("targets") or []:
                if t not in self.targets:
                    self.targets.append(t)
            for t, names in ((m.card.get("outputs") or {}).get("classes") or {}).items():
                self.classes.setdefault(t, list(names))

    def pick(self, path: str) -> Pick:
        """The model for the file ``path`` (its first spectrum decides)."""
        from mlxas.spectra.measured import SpectrumError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spectra = self.reader.read(path)
        except SpectrumError as err:
            return Pick(err.source, None, reason=err.reason)
        except Exception as err:  # one unreadable file must not stop a batch
            return Pick(path, None, reason=f"cannot read ({type(err).__name__}: {err})")
        return pick_model(spectra[0], self.models)

    def _predictor(self, model: BundledModel):
        from mlxas.models.card import ModelLoadError
        from mlxas.predict.predictor import Predictor

        if model.name not in self.predictors and model.name not in self.failed:
            try:
                pred = Predictor(model.pointer, jobs=self.jobs, warn=self.warn, **self.options)
            except ModelLoadError as err:
                self.failed[model.name] = f"bundled model {model.name} refused: {err}"
                return None
            self.predictors[model.name] = pred
            self.meta["models"][model.name] = model_meta(pred, model.name)
            if self.on_model is not None:
                self.on_model(model.name, pred)
        return self.predictors.get(model.name)

    def predict(self, paths: Sequence[str | Path]) -> list[Result]:
        """One result per spectrum, in the order of ``paths``."""
        picks = [self.pick(str(p)) for p in paths]
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, pk in enumerate(picks):
            if pk.model is not None:
                names = (pk.model.name, *(m.name for m in pk.alternatives))
                groups.setdefault((*names, pk.how), []).append(i)
        per_file: dict[int, list[Result]] = {}
        for key, idx in groups.items():
            names, first = key[:-1], picks[idx[0]]
            models = [first.model, *first.alternatives]
            unique = list(dict.fromkeys(str(paths[i]) for i in idx))  # a file given twice
            runs = [self._run(m, unique) for m in models]
            chosen = {p: closest_result(names, [run[p] for run in runs]) for p in unique}
            if first.how == "E0":
                for r in (r for rs in chosen.values() for r in rs):
                    r.notes.append(f"model {r.values.get('model')} chosen from E0 "
                                   "(no element in the header)")  # fmt: skip
            per_file.update({i: chosen[str(paths[i])] for i in idx})
        out: list[Result] = []
        for i, pk in enumerate(picks):
            out.extend(per_file.get(i) or [Result(pk.source).refuse(pk.reason)])
        return out

    def _run(self, model: BundledModel, paths: list[str]) -> dict[str, list[Result]]:
        """The results of ``model`` for each of ``paths`` (refusals if it cannot load)."""
        pred = self._predictor(model)
        if pred is None:
            return {p: [Result(p).refuse(self.failed[model.name])] for p in paths}
        by_file: dict[str, list[Result]] = {p: [] for p in paths}
        for r in pred.predict(paths):
            by_file.setdefault(r.source.partition("#")[0], []).append(r)
            r.values["model"] = model.name
        return by_file

    def close(self) -> None:
        for pred in self.predictors.values():
            pred.close()

    def __enter__(self) -> AutoPredictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closest_result(names: tuple[str, ...], runs: list[list[Result]]) -> list[Result]:
    """Per spectrum of one file, the result of the model it lies closest to: the lowest
    OOD score (both scores are in units of the model's own flag threshold) among the
    models that accepted it; with one model, its results."""
    if len(runs) == 1 or len({len(run) for run in runs}) > 1:
        return runs[0]  # one model, or a file the models read differently: the first's
    out = []
    for rows in zip(*runs, strict=True):

        def score(r: Result) -> float:
            s = r.values.get("ood_score")
            return float(s) if r.status == "ok" and s is not None else float("inf")

        best = min(rows, key=score)
        scores = ", ".join(f"{n} {score(r):.2f}" for n, r in zip(names, rows, strict=True))
        best.notes.append(f"lowest OOD score of the models for this edge ({scores})")
        out.append(best)
    return out
