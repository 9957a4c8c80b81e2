"""Model kinds by name: one class per kind, with its defaults, its network and its hooks.

A kind is a subclass of :class:`ModelKind` registered with :func:`register_kind`; a
model entry's ``kind`` selects it.  The class holds the kind's training defaults and
builder parameters (:attr:`ModelKind.defaults`), the target kinds it can predict
(``value``: regression; ``class``: categorical, a softmax head) and how it is trained:

- Keras kinds (``backend = "keras"``) implement :meth:`ModelKind.build`: a network from
  the standardised input of shape ``input_shape`` to one output per head, in the order
  of ``heads`` (:class:`Head`: width and, for a class target, the class names).
  Cropping, standardisation and the return to physical units are added around it by
  :mod:`mlxas.models.network`; the trainer (:mod:`mlxas.models.train`) compiles it with
  the kind's :meth:`~ModelKind.loss` per head.
- numpy kinds (``backend = "numpy"``, e.g. ``random_forest``) implement
  :meth:`ModelKind.fit_numpy` and save plain arrays (``MODEL_NPZ_FILE``).

Hooks a kind may override (all have defaults; see docs/models.md, "Kinds that bring their
own loss"): :meth:`~ModelKind.loss` (a head's loss, given the training data),
:meth:`~ModelKind.arrays` (dataset arrays loaded beside the input, e.g. for weights),
:meth:`~ModelKind.sample_weight` (per-example or per-element weights of a head),
:meth:`~ModelKind.join_inputs` (several input features into one array) and
:meth:`~ModelKind.batch_map` (a per-batch augmentation of the training batches).

The built-in kinds live in :mod:`mlxas.models.kinds` (Keras) and
:mod:`mlxas.models.forest` (random forests); both are imported on the first look-up.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mlxas.errors import ConfigError

if TYPE_CHECKING:
    from mlxas.models.spec import ModelSpec
    from mlxas.models.training_data import SplitData, TrainingData

__all__ = [
    "BUILTIN_MODULES",
    "TRAINING_KEYS",
    "Head",
    "ModelConfigError",
    "ModelKind",
    "build",
    "kind_class",
    "kind_defaults",
    "kind_names",
    "register_kind",
]

#: Modules that register the built-in kinds (imported on the first look-up).
BUILTIN_MODULES: list[str] = ["mlxas.models.kinds", "mlxas.models.forest"]

#: Training settings an entry may leave null (then the kind's default applies).
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "patience")
#: Every default a kind must give, besides ``params``.
DEFAULT_KEYS = (*TRAINING_KEYS, "optimizer", "standardize", "lr_schedule")

_REGISTRY: dict[str, type[ModelKind]] = {}


class ModelConfigError(ConfigError):
    """A model entry that cannot be trained as configured; the message names the entry."""


@dataclass(frozen=True)
class Head:
    """One output head: ``width`` columns; ``classes`` names the classes of a categorical
    target (its width is their number) and is None for a value target."""

    width: int
    classes: tuple[str, ...] | None = None

    @property
    def is_class(self) -> bool:
        return self.classes is not None

    @property
    def target_kind(self) -> str:
        return "class" if self.is_class else "value"


def as_heads(heads: Mapping[str, Head | int]) -> dict[str, Head]:
    """Heads from ``{target: Head}`` or ``{target: width}`` (value targets)."""
    return {t: h if isinstance(h, Head) else Head(int(h)) for t, h in heads.items()}


class ModelKind:
    """One model kind.  Subclasses set the class attributes and implement :meth:`build`
    (Keras) or :meth:`fit_numpy` (numpy backend); the hooks have working defaults."""

    #: registry name, the entry's ``kind``
    name: ClassVar[str]
    #: training defaults (:data:`DEFAULT_KEYS`) and builder parameters (``params``)
    defaults: ClassVar[dict[str, Any]]
    #: target kinds the kind can predict: ``value`` (regression), ``class`` (softmax)
    target_kinds: ClassVar[frozenset[str]] = frozenset({"value", "class"})
    #: ``keras`` (saved as model.keras) or ``numpy`` (saved as model.npz)
    backend: ClassVar[str] = "keras"
    #: train one network per target, each early-stopped on its own validation loss, and
    #: join them side by side (the published ``paper_mlp``)
    one_network_per_target: ClassVar[bool] = False

    # --- Keras kinds --------------------------------------------------------------------

    def build(self, input_shape: tuple[int, ...], heads: dict[str, Head], params: dict[str, Any]):
        """Uncompiled Keras model from the standardised input to one output per head."""
        raise ModelConfigError(f"model kind {self.name!r} has no Keras network")

    def loss(self, target: str, head: Head, spec: ModelSpec, data: TrainingData) -> Any:
        """Loss of one head: MSE on (standardised) values, sparse categorical
        cross-entropy on the softmax probabilities of a class head."""
        if head.is_class:
            import keras

            return keras.losses.SparseCategoricalCrossentropy()
        return "mse"

    def scales_target(self, target: str, head: Head) -> bool:
        """Whether a head's targets are standardised for training (and the output
        returned to physical units): value heads yes, class heads never (codes and
        probabilities).  A kind with bounded outputs (sigmoid signs) returns False."""
        return not head.is_class

    def arrays(self, spec: ModelSpec) -> tuple[str, ...]:
        """Dataset features or labels read per split beside the input and the targets
        (``SplitData.extra``): the extra inputs and a ``sample_weight`` array."""
        names = list(spec.extra_inputs)
        if spec.sample_weight not in (None, "balanced"):
            names.append(spec.sample_weight)
        return tuple(dict.fromkeys(names))

    def sample_weight(
        self, split: SplitData, spec: ModelSpec, heads: dict[str, Head]
    ) -> dict[str, np.ndarray] | None:
        """Weights per head for the training and validation splits, or None.

        ``sample_weight: balanced`` weighs each class head's examples by
        n / (n_classes_present · count of their class) (value heads 1); a feature or
        label name uses that array (``[n]`` per example, or per output element when its
        shape is the head's) for every head.
        """
        how = spec.sample_weight
        if how is None:
            return None
        n = len(split)
        if how == "balanced":
            out = {}
            for t, h in heads.items():
                if not h.is_class:
                    out[t] = np.ones(n, np.float32)
                    continue
                y = split.y[t].ravel().astype(np.int64)
                counts = np.bincount(y, minlength=h.width).astype(float)
                w = n / (np.count_nonzero(counts) * np.maximum(counts, 1))
                out[t] = w[y].astype(np.float32)
            return out
        w = np.asarray(split.extra[how], np.float32)
        if w.ndim > 1 and w.shape[1:] != (1,):
            return {t: w.reshape(n, -1) if w[0].size == h.width else w for t, h in heads.items()}
        return {t: w.reshape(n) for t in heads}

    def join_inputs(self, arrays: list[np.ndarray], spec: ModelSpec) -> np.ndarray:
        """One model input from the main input and ``extra_inputs`` (same shapes): stacked
        on a new last axis, as channels (a CNN sees ``[n, points, features]``; an MLP
        flattens it)."""
        if len(arrays) == 1:
            return arrays[0]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ModelConfigError(
                f"models.{spec.name}: input and extra_inputs differ in shape {sorted(shapes)}"
            )
        return np.stack(arrays, axis=-1).astype(np.float32)

    def batch_map(self, spec: ModelSpec, data: TrainingData) -> Callable | None:
        """A function applied to every training batch inside ``tf.data`` (TensorFlow ops):
        ``(x, y)`` or, with sample weights, ``(x, y, w)`` in, the same structure out.
        ``y`` and ``w`` are dicts per head.  None: no per-batch augmentation."""
        return None

    # --- numpy kinds --------------------------------------------------------------------

    def fit_numpy(
        self,
        data: TrainingData,
        spec: ModelSpec,
        heads: dict[str, Head],
        crop: slice,
        threads: int = 1,
    ):
        """Fit a numpy-backend model on the training split; returns (model, list of
        records, one per fitted estimator).  The model has ``predict_on_batch(x)`` ->
        ``[N, columns]`` and ``save(path)`` (the folder's ``MODEL_NPZ_FILE``)."""
        raise ModelConfigError(f"model kind {self.name!r} is trained with Keras")


def register_kind(cls: type[ModelKind]) -> type[ModelKind]:
    """Class decorator: make ``cls`` selectable as ``kind: <cls.name>``."""
    missing = [k for k in DEFAULT_KEYS if k not in cls.defaults]
    if missing or "params" not in cls.defaults:
        raise ConfigError(f"model kind {cls.name!r}: defaults lack {missing or ['params']}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"model kind {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def kind_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def kind_class(name: str, where: str = "models") -> type[ModelKind]:
    """The class of kind ``name``; :class:`ModelConfigError` naming ``where`` otherwise."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelConfigError(
            f"{where}: unknown model kind {name!r} (have: {sorted(_REGISTRY)})"
        ) from None


def kind_defaults(name: str) -> dict[str, Any]:
    """A copy of the defaults of kind ``name``."""
    return copy.deepcopy(kind_class(name).defaults)


def build(
    kind: str,
    input_shape: tuple[int, ...],
    heads: Mapping[str, Head | int],
    params: dict[str, Any],
):
    """Uncompiled Keras model of ``kind`` from standardised input to one output per head
    (``heads``: target -> :class:`Head`, or its width for a value target)."""
    return kind_class(kind)().build(tuple(input_shape), as_heads(heads), params)


def __getattr__(name: str) -> Any:
    # KIND_DEFAULTS / BUILDERS as before the kinds were classes: read-only snapshots.
    if name == "KIND_DEFAULTS":
        return {k: kind_defaults(k) for k in kind_names()}
    if name == "BUILDERS":
        return {k: c for k in kind_names() if (c := kind_class(k)).backend == "keras"}
    raise AttributeError(name)
