"""The HTTP application of ``mlxas serve`` (FastAPI; run by uvicorn).

Models stay loaded (numpy inference, :mod:`mlxas.models.numpy_net`), so an answer costs
the processing of the spectrum only.  Endpoints (JSON in and out):

``GET /health``
    ``{"status": "ok", "models": [...], "requests": n, "uptime_s": t}``.
``POST /predict``
    One spectrum: ``{"energy": [eV...], "mu": [...], "name": "scan_001", "element": "Cu",
    "edge": "K", "model": NAME}`` (``name``, ``element``, ``edge`` and ``model`` optional;
    ``element``/``edge`` are checked against the model like a file's header).  Answer:
    ``{"model": {...}, "result": {...}}``, the result holding the fields of
    ``mlxas predict --out x.json`` (``cn``, ``cn_std``, ``r``, ``r_std``, ``ood``,
    ``ood_score``, ``e0``, ``edge_step``, ``k_max``, ``notes``, ...).
``POST /predict/batch``
    ``{"spectra": [spectrum, ...], "model": NAME}`` → ``{"model": {...}, "results": [...]}``;
    a refused spectrum is a result with ``status: refused`` and its ``reason``.
``POST /predict/file``
    A file upload (multipart field ``file``: XDI, Athena project, column file), optional
    form field ``model`` → ``{"model": {...}, "results": [...]}``.

Bad requests get a 4xx answer whose ``detail`` says why: 422 for a body that is not a
spectrum or a spectrum that ``mlxas predict`` refuses (with the same reason), 404 for an
unknown model, 413 for more than :data:`MAX_POINTS` points or :data:`MAX_BATCH` spectra.
Processing in one server process is serialised (one lock per model); single spectra that
arrive while the model is busy are processed together as the next batch
(:mod:`mlxas.serve.batching`), each with its own E0, so every answer is the one the
spectrum gets alone.  ``--workers`` runs several processes.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from mlxas import __version__
from mlxas.serve.asgi import PredictFastPath
from mlxas.serve.request_bodies import (
    SPECTRUM_BODY,
    BadSpectrum,
    BatchIn,
    SpectrumIn,
    parse_spectrum,
)

__all__ = ["MAX_BATCH", "MAX_POINTS", "ServeSettings", "app_from_env", "create_app"]

MAX_POINTS = 100_000
MAX_BATCH = 10_000
MAX_FILE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ServeSettings:
    """Models to load and the processing options of ``mlxas predict`` they run with."""

    models: tuple[str, ...]
    #: Bundled names of the models (``foil_cu/ensemble``), in the order of ``models``; empty
    #: for models given by path (their card's name is used).
    names: tuple[str, ...] = ()
    allow_short_k: bool = False
    repair: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    #: Most single spectra predicted together (:class:`mlxas.serve.batching.MicroBatcher`).
    max_batch: int = 256


class _Loaded:
    """One loaded model: its predictor, metadata and a lock (the processing caches are
    per process and not thread-safe)."""

    def __init__(self, path: str, settings: ServeSettings, name: str | None = None):
        from mlxas.predict.predictor import Predictor

        self.predictor = Predictor(
            path,
            jobs=1,
            warn=lambda msg: None,
            allow_short_k=settings.allow_short_k,
            repair=settings.repair,
            **settings.options,
        )
        card = self.predictor.card
        spec = self.predictor.spec
        refusal = spec.serve_refusal()
        if refusal is not None:
            from mlxas.models.card import ModelLoadError

            self.predictor.close()
            raise ModelLoadError(f"{path}: model {card.get('model_id')} {refusal}")
        self.meta = {
            "name": name or card.get("name"),
            "model_id": card.get("model_id"),
            "absorber": spec.absorber,
            "edge": spec.edge,
            "targets": self.predictor.targets,
            "k_required": spec.k_required,
            "ood_available": self.predictor.ood is not None,
        }
        self.lock = threading.Lock()
        from dataclasses import replace

        from mlxas.serve.batching import MicroBatcher

        # Requests batched together are not a series: each keeps its own E0.
        self.alone_spec = replace(spec, e0="file") if spec.e0 == "auto" else spec
        self.batcher = MicroBatcher(self._run_alone, settings.max_batch, self.lock.locked)

    def _run_alone(self, spectra: list) -> list:
        from mlxas.predict.pipeline import process_spectra

        with self.lock:
            return self.predictor.complete(*process_spectra(spectra, self.alone_spec))


def _spectrum(item: SpectrumIn, repair: bool):
    import numpy as np

    from mlxas.spectra.measured import Spectrum, check_arrays

    if len(item.energy) > MAX_POINTS or len(item.mu) > MAX_POINTS:
        raise HTTPException(413, f"{item.name}: more than {MAX_POINTS} points")
    s = Spectrum(
        item.name,
        np.asarray(item.energy, dtype=float),
        np.asarray(item.mu, dtype=float),
        "mu (JSON)",
        item.element,
        item.edge,
    )
    return check_arrays(s, repair)


def _by_edge(loaded: list[_Loaded], spectrum) -> list[_Loaded]:
    """The loaded models for the spectrum's absorber and edge (header, else E0), as
    ``mlxas predict`` picks a bundled model: the first, then those level with it (see
    :attr:`mlxas.predict.bundled.Pick.alternatives`); 422 with the reason when none
    covers it."""
    from mlxas.predict.bundled import BundledModel, pick_model

    models = [
        BundledModel(str(m.meta["name"]), "", "", Path(), None, m.predictor.card) for m in loaded
    ]
    chosen = pick_model(spectrum, models)
    if chosen.model is None:
        raise HTTPException(422, f"{chosen.source}: {chosen.reason}")
    names = [chosen.model.name, *(m.name for m in chosen.alternatives)]
    return [next(m for m in loaded if m.meta["name"] == n) for n in names]


def _first_spectrum(path: Path, name: str):
    """The first spectrum of an uploaded file (to pick its model), None when unreadable
    (the prediction then refuses it with the reason)."""
    from mlxas.spectra.measured import SpectrumError, read_spectra

    try:
        spectra = read_spectra(path)
    except SpectrumError as err:
        raise HTTPException(422, f"{name}: {err.reason}") from None
    spectra[0].source = name  # refusals name the upload, not the temporary file
    return spectra[0]


def _records(results) -> list[dict]:
    from mlxas.predict.output import record

    return [record(r) for r in results]


def create_app(settings: ServeSettings) -> PredictFastPath:
    """The application with the models of ``settings`` loaded."""
    from mlxas.spectra.measured import SpectrumError

    names = settings.names or (None,) * len(settings.models)
    loaded = [_Loaded(m, settings, n) for m, n in zip(settings.models, names, strict=True)]
    by_name: dict[str, _Loaded] = {}
    for m in loaded:
        by_name.setdefault(str(m.meta["name"]), m)
        by_name[str(m.meta["model_id"])] = m
    state = {"started": time.time(), "requests": 0}
    app_models = loaded  # also on app.state.models (tests, introspection)
    # No OpenTelemetry is set up by mlxas serve; FastAPI's native telemetry would still
    # look for providers on every request.
    app = FastAPI(
        title="mlxas serve",
        version=__version__,
        summary="CN and R from spectra",
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.models = app_models

    def candidates(name: str | None, spectrum=None) -> list[_Loaded]:
        """The model named, else the models for the spectrum's edge (best first)."""
        if name is None:
            if len(loaded) == 1:
                return loaded[:1]
            if spectrum is not None:
                return _by_edge(loaded, spectrum)
            names = ", ".join(str(m.meta["name"]) for m in loaded)
            raise HTTPException(422, f"several models are loaded ({names}): name one in 'model'")
        if name not in by_name:
            raise HTTPException(404, f"no model '{name}' (loaded: {', '.join(sorted(by_name))})")
        return [by_name[name]]

    def run(model: _Loaded, spectra: list) -> list:
        state["requests"] += 1
        with model.lock:
            return model.predictor.predict_spectra(spectra)

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "models": [m.meta for m in loaded],
            "requests": state["requests"],
            "uptime_s": round(time.time() - state["started"], 1),
        }

    async def answer_one(body: bytes) -> tuple[int, bytes]:
        """Status and JSON answer of POST /predict; raises what FastAPI answers 4xx."""
        import orjson

        item = parse_spectrum(body)
        try:
            spectrum = _spectrum(item, settings.repair)
        except SpectrumError as err:
            raise HTTPException(422, str(err)) from None
        models = candidates(item.model, spectrum)
        state["requests"] += 1
        if len(models) == 1:
            model, result = models[0], await models[0].batcher.submit(spectrum)
        else:  # several models for this edge: the one with the lowest OOD score
            import asyncio

            results = await asyncio.gather(*(m.batcher.submit(spectrum) for m in models))
            (result,) = closest(models, [[r] for r in results])
            model = models[results.index(result)]
        rec = _records([result])[0]
        if result.status != "ok":
            detail = f"{result.source}: {result.reason}"
            return 422, orjson.dumps({"detail": detail, "result": rec})
        return 200, orjson.dumps({"model": model.meta, "result": rec})

    @app.post("/predict", openapi_extra=SPECTRUM_BODY)
    async def predict(request: Request):
        status, content = await answer_one(await request.body())
        return Response(content, status_code=status, media_type="application/json")

    @app.post("/predict/batch")
    def predict_batch(batch: BatchIn):
        from mlxas.predict.pipeline import Result

        if not batch.spectra:
            raise HTTPException(422, "the batch holds no spectra")
        if len(batch.spectra) > MAX_BATCH:
            raise HTTPException(413, f"{len(batch.spectra)} spectra: at most {MAX_BATCH}")
        items: list = []
        for item in batch.spectra:
            if isinstance(item, BadSpectrum):
                items.append(Result(item.name).refuse(item.reason))
                continue
            try:
                items.append(_spectrum(item, settings.repair))
            except SpectrumError as err:  # refused like a damaged file in a batch
                items.append(Result(err.source).refuse(err.reason))
        # A batch is one series: its first readable spectrum picks the model(s).
        first = next((s for s in items if not isinstance(s, Result)), None)
        models = candidates(batch.model, first)
        results = closest(models, [run(m, items) for m in models])
        return {"model": _meta_of(models, results), "results": _records(results)}

    @app.post("/predict/file")
    def predict_file(
        file: Annotated[UploadFile, File(description="XDI, Athena project or column file")],
        model: Annotated[str | None, Form()] = None,
    ):
        name = Path(file.filename or "upload").name or "upload"
        data = file.file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise HTTPException(413, f"{name}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        with tempfile.TemporaryDirectory(prefix="mlxas-serve-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            models = candidates(model, _first_spectrum(path, name) if model is None else None)
            state["requests"] += 1
            runs = []
            for m in models:
                with m.lock:
                    runs.append(m.predictor.predict([path]))
            results = closest(models, runs)
        for r in results:  # report the upload's name, not the temporary path
            r.source = name + r.source[len(str(path)) :] if r.source.startswith(str(path)) else name
        recs = _records(results)
        if all(r.status != "ok" for r in results):
            reasons = "; ".join(f"{r.source}: {r.reason}" for r in results)
            return JSONResponse({"detail": reasons, "results": recs}, status_code=422)
        return {"model": _meta_of(models, results), "results": recs}

    return PredictFastPath(app, answer_one)


def closest(models: list[_Loaded], runs: list[list]) -> list:
    """Per spectrum, the result of the model with the lowest OOD score (as ``mlxas
    predict`` chooses among bundled models for one edge), naming its model; with one
    model, its results."""
    if len(models) == 1:
        return runs[0]
    from mlxas.predict.auto import closest_result

    names = tuple(str(m.meta["name"]) for m in models)
    for name, results in zip(names, runs, strict=True):
        for r in results:
            r.values["model"] = name
    return closest_result(names, runs)


def _meta_of(models: list[_Loaded], results: list) -> dict:
    """The answer's ``model``: the one model, else the model of the first accepted result."""
    chosen = next((r.values.get("model") for r in results if r.status == "ok"), None)
    return next((m.meta for m in models if m.meta["name"] == chosen), models[0].meta)


#: Environment variable through which ``mlxas serve --workers N`` hands the settings to
#: each uvicorn worker process.
SETTINGS_ENV = "MLXAS_SERVE_SETTINGS"


def app_from_env() -> PredictFastPath:
    """Application factory for uvicorn workers: settings from :data:`SETTINGS_ENV`."""
    import json
    import os

    from threadpoolctl import threadpool_limits

    # One BLAS thread per server process (see mlxas.serve.one_blas_thread), also where
    # numpy was imported before the environment said so.
    threadpool_limits(1)
    raw = json.loads(os.environ[SETTINGS_ENV])
    app = create_app(ServeSettings(**{**raw, "models": tuple(raw["models"])}))
    # The libraries and models loaded so far live as long as the server: keep them out of
    # the garbage collector's full passes, which otherwise walk them all while requests
    # wait.
    import gc

    gc.collect()
    gc.freeze()
    return app
