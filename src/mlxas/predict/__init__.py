"""``mlxas predict``: CN and R from measured spectra (XDI, Athena projects, column files).

Pipeline per spectrum: read through larch (:mod:`mlxas.spectra.measured`), check, find E0,
check the edge and k-range against the model, remove the background (batched AUTOBK for
series on one energy grid, larch's ``autobk`` otherwise; :mod:`mlxas.spectra.background`),
put chi(k) on the model's k grid, compute the model's input with
:func:`mlxas.spectra.features.compute_features`, run the model and score the input's
distance from the training set (:mod:`mlxas.ood`).

Modules: ``spec`` (``InputSpec``, what every caller asks of a model's input side;
``ProcessSpec`` for spectra), ``pipeline`` (spectrum files → model inputs, runs in worker
processes), ``e0`` (E0 of each spectrum), ``patterns`` (powder patterns of XRD models),
``predictor`` (model, pool, OOD), ``output`` (table, CSV, JSON), ``watch`` (live
directory), ``plots``, ``live`` and ``band`` (``--plot``), ``bundled`` and ``auto`` (the
bundled models, picked per file), ``models_command`` (``mlxas models``), ``command`` (the
CLI) and ``argument_checks`` (its arguments checked before any file is read).
Importing this package imports neither larch nor TensorFlow.
"""

from mlxas.predict.command import add_arguments, main
from mlxas.spectra.measured import SpectrumError

__all__ = ["Predictor", "SpectrumError", "add_arguments", "main"]


def __getattr__(name: str):
    if name == "Predictor":
        from mlxas.predict.predictor import Predictor

        return Predictor
    raise AttributeError(name)
