"""``mlxas serve``: a prediction service that keeps models loaded and answers HTTP.

FastAPI application (:mod:`mlxas.serve.app`) run by uvicorn on localhost.  The command's
arguments and entry point are :func:`add_arguments` and :func:`main`, as for
``mlxas predict``.  Importing this package imports neither FastAPI nor the models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from mlxas.threads import THREAD_VARS

__all__ = ["add_arguments", "bundled_models", "main", "one_blas_thread"]


def one_blas_thread() -> None:
    """One BLAS thread in every server process (unless the user set the variables):
    batches are small, and an idle OpenBLAS thread spins on the cores that the other
    worker and the HTTP parsing need.  Measured: 0.8 ms of CPU per request spent by a
    spinning BLAS thread, half of the whole.  Effective for processes that import numpy
    afterwards (uvicorn's workers; ``python -m mlxas.serve`` sets it before its imports);
    :func:`mlxas.serve.app.app_from_env` also limits an already running BLAS."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")


EPILOG = """\
examples:
  mlxas serve                                  (every bundled model: mlxas models list)
  mlxas serve --models /data/mlxas-models --port 8765
  mlxas serve results/cu/models/mlp.json
  mlxas serve results/cu/models/mlp.json results/ni/models/mlp.json --port 8765 --workers 2

  curl -s localhost:8000/health
  curl -s -X POST localhost:8000/predict -H 'content-type: application/json' \\
       -d '{"name": "scan_001", "energy": [...], "mu": [...]}'
  curl -s -F file=@scan_001.xdi localhost:8000/predict/file

With several models loaded, a request names one in `model` (a bundled name such as
foil_cu/ensemble, a card's name or a model id), or the model is picked by the spectrum's
absorber and edge (`element`/`edge`, a file's header) or else its E0, as `mlxas predict`
does without MODEL.

Answers carry the fields of `mlxas predict --out x.json`; a refused spectrum is answered
with status 422 and the reason.  API documentation: http://HOST:PORT/docs.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``mlxas serve`` (the subparser is created by :mod:`mlxas.cli`)."""
    from mlxas.predict.bundled import add_models_option

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument(
        "model_paths",
        metavar="MODEL",
        nargs="*",
        help="model folders, their model files, models/<name>.json pointers or latest "
        "(default: every bundled model of --models)",
    )
    add_models_option(p, " served when no MODEL is given")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: localhost)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with the models loaded (default: %(default)s)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=256,
        help="most single-spectrum requests predicted together in one batch (default: "
        "%(default)s; a larger batch costs less CPU per spectrum)",
    )
    p.add_argument(
        "--allow-short-k",
        action="store_true",
        help="predict spectra that end before the model's k-range (chi = 0 beyond), noted",
    )
    p.add_argument(
        "--repair", action="store_true", help="sort/de-duplicate energies instead of refusing"
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: %(default)s; info logs every request)",
    )


def bundled_models(root: str | None) -> tuple[list[str], list[str]]:
    """Pointers and names of the usable bundled models of ``root``; each one that cannot
    be used is named on stderr with the reason (it is not served)."""
    from mlxas.predict.bundled import bundled_dir, list_models, missing_folder

    if (missing := missing_folder(root)) is not None:
        raise FileNotFoundError(f"no MODEL given and {missing}")
    models = list_models(root)
    for m in models:
        if m.error:
            print(f"mlxas serve: warning: not serving {m.name}: {m.error}", file=sys.stderr)
    usable = [m for m in models if not m.error]
    if not usable:
        raise FileNotFoundError(f"no MODEL given and no bundled models in {bundled_dir(root)}")
    return [str(m.pointer) for m in usable], [m.name for m in usable]


def main(a: argparse.Namespace) -> int:
    one_blas_thread()
    if a.max_batch < 1:
        raise SystemExit(f"mlxas serve: error: --max-batch must be at least 1, not {a.max_batch}")
    import uvicorn

    # uvicorn's C HTTP parser and event loop (pinned dependencies): the pure-Python h11
    # parser and asyncio's loop cost more CPU per request than the prediction does.
    fast = {"http": "httptools", "loop": "uvloop"}

    from mlxas.serve.app import SETTINGS_ENV, app_from_env

    if a.model_paths:
        paths, names = list(a.model_paths), []
    else:
        paths, names = bundled_models(a.models)
    os.environ[SETTINGS_ENV] = json.dumps(
        {
            "models": paths,
            "names": names,
            "allow_short_k": a.allow_short_k,
            "repair": a.repair,
            "max_batch": a.max_batch,
        }
    )
    # Load once here: a model that cannot be loaded stops the command with its reason
    # before the server starts listening.
    app = app_from_env()
    if a.workers > 1:
        del app
        uvicorn.run(
            "mlxas.serve.app:app_from_env",
            factory=True,
            host=a.host,
            port=a.port,
            workers=a.workers,
            log_level=a.log_level,
            **fast,
        )
    else:
        uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level, **fast)
    return 0
