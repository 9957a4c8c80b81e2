"""Models: Keras 3 networks and random forests, one class per kind in a registry;
regression and class targets; training with early stopping; model cards.

A saved model maps raw dataset features to labels in physical units: cropping to the
model's input range, input standardisation and the inverse target standardisation are
built-in Keras layers inside it (no ``Lambda`` layers, so it loads with ``safe_mode``
on).  The same statistics are written to ``card.json`` as plain JSON.

Modules: :mod:`~mlxas.models.registry` (``ModelKind``, ``Head``, ``register_kind``),
:mod:`~mlxas.models.kinds` (the Keras kinds), :mod:`~mlxas.models.forest` (random
forests in numpy), :mod:`~mlxas.models.network` (whole models around a kind's network),
:mod:`~mlxas.models.data` (inputs and targets per split, read from a dataset),
:mod:`~mlxas.models.training_data` (them in memory), :mod:`~mlxas.models.batches`
(training batches, augmentation), :mod:`~mlxas.models.train`,
:mod:`~mlxas.models.card` (card.json, safe loading), :mod:`~mlxas.models.inference`
(:func:`predict_array`), :mod:`~mlxas.models.tune` (Optuna search).

Importing this package does not import TensorFlow.
"""

from mlxas.models.card import ModelLoadError, load_model, read_card
from mlxas.models.inference import output_columns, predict_array, split_targets

__all__ = [
    "ModelLoadError",
    "load_model",
    "output_columns",
    "predict_array",
    "read_card",
    "split_targets",
]
