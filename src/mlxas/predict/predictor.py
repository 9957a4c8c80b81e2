"""The model side of ``mlxas predict``: load once, process files (in worker processes for
batches), run the model, attach the ensemble spread and the out-of-distribution score."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.predict.pipeline import process_spectra
from mlxas.predict.spec import (
    POWDER_PATTERN,
    InputSpec,
    ProcessSpec,
    Result,
    input_spec_from_card,
)
from mlxas.spectra.measured import Spectrum
from mlxas.threads import THREAD_VARS

__all__ = ["Predictor", "available_cores"]

#: Class targets with more than TOP_K_FROM classes also get their TOP_K most probable
#: classes with their probabilities (``<target>_top5``: space groups out of 230).
TOP_K, TOP_K_FROM = 5, 10
#: Inputs up to this many files are processed in the calling process (no pool start-up).
IN_PROCESS_MAX = 8
#: Files per task sent to a worker: large enough for the batched background removal,
#: small enough to keep all workers busy.
CHUNK_MIN, CHUNK_MAX = 16, 256


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: The worker process's own predictor (model loaded once per worker, see _worker_init).
_WORKER: Predictor | None = None


def _worker_init(model_dir: str) -> None:
    # Ctrl-C goes to the whole process group: the parent handles it and shuts the pool
    # down; workers finish their chunk instead of dying half-way.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each worker runs the model on its own chunks: the model and the OOD flags then run
    # on every core instead of after all chunks in the parent.  The folder is verified
    # against its card again here.
    global _WORKER
    _WORKER = Predictor(model_dir, jobs=1, warn=lambda msg: None)


def _predict_chunk(paths: list[str], spec: InputSpec) -> list[Result]:
    """Results of one chunk, model run included, in a worker (``spec``: the parent's
    processing options, which may change between batches)."""
    assert _WORKER is not None, "worker started without its model"
    return _WORKER.complete(*spec.process_paths(paths))


def _warm_up() -> int:
    """Import the processing libraries in a worker (larch is not needed for clean files)."""
    import scipy.interpolate  # noqa: F401

    import mlxas.predict.pipeline
    import mlxas.spectra.background
    import mlxas.spectra.features  # noqa: F401

    return os.getpid()


class Predictor:
    """Predict CN, R (and the model's other targets) for measured files.

    ``model``: anything :func:`mlxas.models.card.load_model` accepts; the model folder
    is verified against its card before anything is loaded.  ``options`` go to the
    model's :class:`~mlxas.predict.spec.InputSpec`: a
    :class:`~mlxas.predict.spec.ProcessSpec` for spectra (``allow_short_k``, ``repair``,
    ``mu_label``, ``energy_label``, ``e0``, ``background``, ``min_batch``, ``fast_read``),
    a :class:`~mlxas.predict.patterns.PatternSpec` for powder patterns (``wavelength``).
    ``jobs``: worker processes for batches (default: all cores).  Use as a context manager
    or call :meth:`close`.
    """

    def __init__(
        self,
        model: str | Path,
        jobs: int | None = None,
        warn: Callable[[str], None] | None = None,
        **options: Any,
    ):
        # numpy inference: a prediction never imports TensorFlow (mlxas.models.numpy_net).
        from mlxas.models.numpy_net import load_model

        self.jobs = max(1, jobs or available_cores())
        self.warn = warn or (lambda msg: print(f"mlxas: warning: {msg}", file=sys.stderr))
        self._pool: ProcessPoolExecutor | None = None
        self._warm: list[Future] = []
        try:
            self.model, self.card = load_model(model)
            #: The model's input side: what its files hold and how they become inputs.
            self.spec: InputSpec = input_spec_from_card(self.card, **options)
        except BaseException:
            self.close()
            raise
        self.model_dir = Path(self.card["model_dir"])
        self.targets = list(self.card["preprocessing"]["targets"])
        #: class names of each class target (one probability per class in the output)
        self.classes: dict[str, list[str]] = dict(self.card["outputs"].get("classes") or {})
        # From the model folder, checked against the card's SHA-256 when it was loaded:
        # predict needs nothing from the training data besides what the folder holds.
        from mlxas.error_flag import prepare

        self.ood: dict[str, Any] = prepare(self.card["ood"])
        self.training_band: dict[str, Any] = self.card["training_band"]
        from mlxas.error_flag_edge import unflagged_note

        #: the note every reading of a XANES model carries (its CN and R are not flagged)
        self.unflagged_note: str | None = unflagged_note(self.card)

    @property
    def reads_patterns(self) -> bool:
        """Whether the model reads powder patterns rather than spectra (from its spec;
        callers that need more ask :attr:`spec` itself)."""
        return self.spec.input_kind == POWDER_PATTERN

    # --- pool ---------------------------------------------------------------------------

    def _start_pool(self) -> None:
        import multiprocessing

        # Each worker is one core: keep BLAS single-threaded in the children (spawned
        # children inherit the environment at start).
        saved = {v: os.environ.get(v) for v in THREAD_VARS}
        os.environ.update({v: "1" for v in THREAD_VARS})
        try:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(str(self.model_dir),),
            )
            self._warm = [self._pool.submit(_warm_up) for _ in range(self.jobs)]
        finally:
            for v, val in saved.items():
                if val is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = val

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- OOD ----------------------------------------------------------------------------

    def _ood(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(distance scores, flags) of the inputs ``x``: :func:`mlxas.ood.ood_scores`."""
        from mlxas.ood import model_input_scores

        if len(x) == 0:
            return None
        return model_input_scores(x, self.ood, self.card)

    def flags(
        self,
        x: np.ndarray,
        mean: dict[str, np.ndarray],
        std: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray] | None:
        """The OOD flag of the readings of inputs ``x`` (predictions ``mean``, ensemble
        spread ``std``): :func:`mlxas.error_flag.combined_flags`."""
        from mlxas.error_flag import combined_flags, flag_spread

        dist = self._ood(x)
        if dist is None:
            return None
        std = flag_spread(self.model, self.card, self.ood, x, std)
        return combined_flags(self.card, self.ood, mean, std, dist[0])

    # --- model --------------------------------------------------------------------------

    def _run_model(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        from mlxas.models.inference import predict_array, split_targets

        card = self.card
        mean, std = predict_array(self.model, card, x)
        return split_targets(card, mean), (split_targets(card, std) if std is not None else {})

    # --- prediction ---------------------------------------------------------------------

    def process(self, paths: Sequence[str | Path]) -> tuple[list[Result], np.ndarray]:
        """Read, check and turn files into model inputs (no model call), in this process."""
        return self.spec.process_paths([str(p) for p in paths])

    def predict(self, paths: Sequence[str | Path]) -> list[Result]:
        """One :class:`Result` per spectrum (Athena projects give one per group).  Batches
        of more than :data:`IN_PROCESS_MAX` files go to the worker processes in chunks,
        each worker reading, processing and predicting its chunks."""
        paths = [str(p) for p in paths]
        if self.jobs == 1 or len(paths) <= IN_PROCESS_MAX:
            return self.complete(*self.spec.process_paths(paths))
        if self._pool is None:
            self._start_pool()  # on the first batch: a few files never pay for workers
        n = len(paths)
        size = max(CHUNK_MIN, min(CHUNK_MAX, math.ceil(n / (self.jobs * 4))))
        futures = [
            self._pool.submit(_predict_chunk, paths[i : i + size], self.spec)
            for i in range(0, n, size)
        ]
        results: list[Result] = []
        with _progress(n) as bar:
            for i, fut in enumerate(futures):
                results.extend(fut.result())
                bar.update(min(size, n - i * size))
        return results

    def predict_spectra(self, spectra: Sequence[Spectrum]) -> list[Result]:
        """One :class:`Result` per spectrum given as arrays (checked with
        :func:`mlxas.spectra.measured.check_arrays`), in this process."""
        if not isinstance(self.spec, ProcessSpec):
            raise TypeError(
                f"model {self.card.get('model_id')} reads {self.spec.input_kind}s, not spectra"
            )
        return self.complete(*process_spectra(list(spectra), self.spec))

    def complete(self, results: list[Result], x: np.ndarray) -> list[Result]:
        """Run the model on the inputs ``x`` of the accepted ``results`` and attach the
        predictions, the ensemble spread and the OOD score to them."""
        ok = [r for r in results if r.status == "ok"]
        if not ok:
            return results
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean, std = self._run_model(x)
        ood = self.flags(x, mean, std)
        from mlxas.models.inference import class_predictions

        classes = class_predictions(self.card, mean)
        for n, r in enumerate(ok):
            if self.unflagged_note:
                r.notes.append(self.unflagged_note)
            for t, v in mean.items():
                r.values[t] = _value(v[n])
                if t in std:
                    r.values[f"{t}_std"] = _value(std[t][n])
                if t in classes:
                    # a class target: the most probable class, and every class's probability
                    names = self.card["outputs"]["classes"][t]
                    r.values[t] = classes[t][0][n]
                    r.values[f"{t}_probabilities"] = dict(zip(names, _value(v[n]), strict=True))
                    if len(names) > TOP_K_FROM:
                        top = np.argsort(-v[n], kind="stable")[:TOP_K]
                        r.values[f"{t}_top{TOP_K}"] = [[names[i], float(v[n][i])] for i in top]
            if ood is not None:
                for key in ("ood_score", "distance_score", "error_score"):
                    r.values[key] = float(ood[key][n])
                r.values["ood"] = bool(ood["ood"][n])
        return results


#: A batch shows a progress bar once it has run this long (s), on a terminal only.
PROGRESS_AFTER_S = 3.0


def _progress(total: int):
    """tqdm bar over ``total`` files on stderr; silent unless stderr is a terminal and
    the batch takes longer than :data:`PROGRESS_AFTER_S`."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="file",
        desc="mlxas predict",
        delay=PROGRESS_AFTER_S,
        disable=not sys.stderr.isatty(),
        leave=False,
        file=sys.stderr,
    )


def _value(v: Any) -> float | list[float]:
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a.tolist()
