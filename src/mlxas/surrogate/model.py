"""A trained surrogate: Keras model + card, training, prediction, saving and safe loading.

A surrogate is saved like every mlxas model (:func:`mlxas.models.folder.save_model_folder`):
a folder ``<store>/<model id>/`` with ``model.keras``, ``ood.json`` (the OOD statistics
of the training environments), ``training_band.json`` (percentiles of the training
spectra on the surrogate's grid) and ``card.json``, which binds the other three by
SHA-256; the model id is the hash of the card.  Loading
(:func:`mlxas.models.card.load_model`) verifies every file first, refuses HDF5 files and
``Lambda`` layers and keeps Keras' ``safe_mode`` on; the surrogate's own layers are
registered serialisable classes.

The card has ``kind: "surrogate"`` (so that it is never taken for a spectrum -> label
model) and a ``surrogate`` section: the kind and its parameters, the grid and the
ensemble size.  ``feff`` records the FEFF engine and settings the training spectra came
from (what routed sites are run with), ``training`` the training sites' input-hash
digest, ``metrics`` what the caller measured before saving.

An ensemble of ``members`` networks (seeds ``seed``, ``seed + 1``, ...) is saved as one
model whose output is ``[batch, members, n_grid]``; its spread is the uncertainty the
routing uses.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlxas import __version__
from mlxas.surrogate.data import SiteData
from mlxas.surrogate.descriptors import SymmetrySettings, descriptors
from mlxas.surrogate.environments import Environments, SurrogateInputError
from mlxas.surrogate.grids import SpectrumGrid
from mlxas.surrogate.kinds import SurrogateKind, kind_class

__all__ = ["SURROGATE_KIND", "Prediction", "Surrogate", "TrainSettings", "ood_features", "train"]

#: Layout version of a surrogate card's ``surrogate`` section.
SURROGATE_CARD_VERSION = 2
#: ``kind`` of every surrogate card.
SURROGATE_KIND = "surrogate"


@dataclass(frozen=True)
class TrainSettings:
    """epochs, batch size, learning rate (Adam), early-stopping patience (epochs) and the
    relative improvement of the validation loss that resets it, members of the
    ensemble, first seed, TensorFlow threads."""

    epochs: int = 300
    batch_size: int = 16
    learning_rate: float = 2e-3
    patience: int = 40
    min_improvement: float = 0.005
    members: int = 1
    seed: int = 0
    threads: int = 2


@dataclass
class Prediction:
    """``spectra`` [n, n_grid]: chi(k) (EXAFS) or normalised mu(E) (XANES) on the grid;
    ``weighted``: what the network fits (k^w·chi or mu); ``spread``: the ensemble's
    standard deviation of ``weighted`` (None for one network)."""

    spectra: np.ndarray
    weighted: np.ndarray
    spread: np.ndarray | None


def ood_features(env: Environments, elements: tuple[str, ...], cutoff: float) -> np.ndarray:
    """Radial symmetry functions (G2, centres every 0.25 Å, η = 8 Å⁻²) per element: the
    vector the OOD statistics of a surrogate are fitted on (cheap, rotation-invariant)."""
    s = SymmetrySettings(
        elements=elements,
        cutoff=cutoff,
        g2_centres=tuple(np.arange(1.5, cutoff + 1e-9, 0.25).tolist()),
        g2_eta=8.0,
        g4_eta=(),
    )
    return descriptors(env, s)


def _stack(members: list, name: str):
    """One Keras model whose output stacks the members' outputs: [batch, members, n]."""
    import keras

    inputs = {
        k: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=k)
        for k, t in members[0].input.items()
    }
    outs = []
    for i, m in enumerate(members):
        y = m(inputs)
        outs.append(keras.layers.Reshape((1, y.shape[-1]), name=f"member_{i}")(y))
    return keras.Model(inputs, keras.layers.Concatenate(axis=1, name="members")(outs), name=name)


class Surrogate:
    """A loaded or freshly trained surrogate (``model``, ``card``)."""

    def __init__(self, model, card: dict[str, Any]):
        from mlxas.surrogate import numpy_graph

        self.model, self.card = model, card
        sec = card["surrogate"]
        k = sec["kind"]
        self.grid = SpectrumGrid.from_json(sec["grid"])
        self.kind: SurrogateKind = kind_class(k["kind"])(
            self.grid, tuple(k["elements"]), k["cutoff"], k["params"]
        )
        #: What runs the network: "numpy" (:mod:`mlxas.surrogate.numpy_graph`, the same
        #: weights, several times less CPU) where the kind has it, else "keras".
        self.backend = "numpy" if numpy_graph.supported(self.kind) else "keras"
        self._fused = None

    @classmethod
    def from_network(
        cls,
        model,
        kind: SurrogateKind,
        train_env: Environments,
        train_spectra: np.ndarray,
        members: int = 1,
        feff: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
        name: str = "surrogate",
    ) -> Surrogate:
        """A surrogate of a built Keras ``model`` of ``kind`` with its card (not saved):
        OOD statistics fitted on ``train_env``, the training band from ``train_spectra``
        (on the kind's grid); ``feff``: the FEFF engine of the training spectra
        (:func:`mlxas.surrogate.feff_runs.provenance`); ``training``: what training did."""
        from mlxas.models.card import CARD_VERSION
        from mlxas.ood import fit_ood

        card = {
            "card_version": CARD_VERSION,
            "name": name,
            "kind": SURROGATE_KIND,
            "surrogate_card_version": SURROGATE_CARD_VERSION,
            "surrogate": {
                "kind": kind.to_json(),
                "grid": kind.grid.to_json(),
                "members": int(members),
            },
            "mlxas_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "feff": feff or {},
            "training": training or {},
            "ood": fit_ood(ood_features(train_env, kind.elements, kind.cutoff)),
            "training_band": training_band(train_spectra, kind.grid),
            "provenance": provenance or {},
            "metrics": {},
        }
        return cls(model, card)

    @property
    def model_id(self) -> str:
        """The id of the saved model folder; a surrogate has none before :meth:`save`."""
        if "model_id" not in self.card:
            raise SurrogateInputError("this surrogate has no model id before it is saved")
        return self.card["model_id"]

    @property
    def members(self) -> int:
        return int(self.card["surrogate"]["members"])

    def feff_engine(self):
        """The FEFF engine (with its settings) of the training spectra: what sites the
        surrogate is unsure of are run with."""
        from mlxas.engines.base import get_engine

        feff = self.card.get("feff") or {}
        if "engine" not in feff:
            raise SurrogateInputError(
                f"surrogate {self.card.get('model_id', '')}: the card names no FEFF engine"
            )
        return get_engine(feff["engine"], feff["settings"])

    def featurize(self, env: Environments) -> dict[str, np.ndarray]:
        if env.cutoff + 1e-9 < self.kind.cutoff:
            raise SurrogateInputError(
                f"environments cut at {env.cutoff:g} Å; the surrogate needs {self.kind.cutoff:g} Å"
            )
        return self.kind.featurize(env)

    def use_xla(self) -> None:
        """Run Keras predictions XLA-compiled: several times less CPU per site in large
        batches, at a compilation of seconds per new input shape (worth it from ~10⁴
        sites).  No effect while :attr:`backend` is "numpy"."""
        self.model.compile(jit_compile=True)

    def network_outputs(self, x: dict[str, np.ndarray], batch_size: int = 2048) -> np.ndarray:
        """The network's output for featurised inputs: [n, members, n_grid] for an
        ensemble, [n, n_grid] for one network, run by :attr:`backend`."""
        if self.backend == "numpy":
            from mlxas.surrogate import numpy_graph

            if self._fused is None:
                self._fused = numpy_graph.fuse(self.model)
            y = numpy_graph.predict(self._fused, x)
            return y if self.members > 1 else y[:, 0]
        return self._keras_outputs(x, batch_size)

    def _keras_outputs(self, x: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        """Keras in batches of ``min(batch_size, n)`` rows (the last one padded with copies
        of its first row), so that the network sees one input shape per call."""
        n = len(next(iter(x.values())))
        size = max(1, min(batch_size, n))
        parts = []
        for i in range(0, n, size):
            batch = {k: v[i : i + size] for k, v in x.items()}
            m = min(size, n - i)
            if m < size:
                batch = {k: np.concatenate([v, np.repeat(v[:1], size - m, axis=0)])
                         for k, v in batch.items()}  # fmt: skip
            parts.append(np.asarray(self.model.predict_on_batch(batch))[:m])
        return np.concatenate(parts) if parts else np.zeros((0, len(self.grid)), np.float32)

    def predict_inputs(self, x: dict[str, np.ndarray], batch_size: int = 2048) -> Prediction:
        """Prediction from featurised inputs (:meth:`featurize`); ``batch_size``: sites
        per Keras call."""
        n = len(next(iter(x.values())))
        y = self.network_outputs(x, batch_size)
        if self.members > 1:
            mean, spread = y.mean(axis=1), y.std(axis=1, ddof=1)
        else:
            mean, spread = y.reshape(n, -1), None
        return Prediction(self.grid.unweight(mean), mean, spread)

    def predict(self, env: Environments, batch_size: int = 2048) -> Prediction:
        """Spectra of every site of ``env`` (see :class:`Prediction`)."""
        return self.predict_inputs(self.featurize(env), batch_size)

    def ood(self, env: Environments) -> np.ndarray:
        """OOD score of every site (above 1: unlike every training environment)."""
        from mlxas.ood import ood_scores

        x = ood_features(env, self.kind.elements, self.kind.cutoff)
        return ood_scores(x, self.card["ood"])[0]

    def save(self, store: str | Path) -> Path:
        """Write the bound model folder ``<store>/<model id>/`` (see the module text) and
        return it; the card then holds ``model_id`` and ``files``.  Metrics must be in
        the card before: the id covers them."""
        from mlxas.models.folder import save_model_folder

        card = {k: v for k, v in self.card.items() if k not in ("ood", "training_band")}
        card.pop("model_dir", None)
        _, folder, written = save_model_folder(
            self.model, card, self.card["ood"], self.card["training_band"], Path(store)
        )
        kept = {k: self.card[k] for k in ("ood", "training_band")}
        self.card = {**written, **kept, "model_dir": str(folder)}
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Surrogate:
        """Load with :func:`mlxas.models.card.load_model` (files verified, safe_mode on,
        no Lambda).  ``path``: the model folder, its ``model.keras`` or a pointer."""
        import mlxas.surrogate.layers  # noqa: F401  (registers the layers for loading)
        from mlxas.models.card import load_model

        model, card = load_model(path)
        check_surrogate_card(card, path)
        return cls(model, card)


def check_surrogate_card(card: dict[str, Any], path: str | Path) -> None:
    """Refuse a card that is not a surrogate's of a layout this mlxas reads."""
    from mlxas.models.card import ModelLoadError

    if card.get("kind") != SURROGATE_KIND or not isinstance(card.get("surrogate"), dict):
        raise ModelLoadError(
            f"{path}: a {card.get('kind')!r} model, not a surrogate (card kind 'surrogate')"
        )
    version = card.get("surrogate_card_version")
    if version != SURROGATE_CARD_VERSION:
        raise ModelLoadError(
            f"{path}: surrogate card layout {version!r}; this mlxas reads "
            f"{SURROGATE_CARD_VERSION} (train the surrogate again)"
        )


def training_band(spectra: np.ndarray, grid: SpectrumGrid) -> dict[str, Any]:
    """Percentiles (5, 50, 95) of the training spectra at every grid point: the band a
    plot of a surrogate spectrum shows beside it (``training_band.json``)."""
    from mlxas.models.folder import BAND_PERCENTILES

    x = np.asarray(spectra, dtype=np.float64)
    return {
        "input": "chi" if grid.target == "exafs" else "mu",
        "grid": grid.values.tolist(),
        "percentiles": list(BAND_PERCENTILES),
        "values": np.percentile(x, BAND_PERCENTILES, axis=0).tolist(),
        "n_train": len(x),
    }


def _fit_member(kind, x_tr, y_tr, x_va, y_va, settings: TrainSettings, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = kind.build(x_tr, y_tr)
    # XLA: about 2.5x less CPU per epoch for the graph model (measured on the Cu set).
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate), loss="mse", jit_compile=True
    )
    from mlxas.surrogate.callbacks import progress_callback, relative_early_stopping

    callbacks = [
        relative_early_stopping(settings.patience, settings.min_improvement),
        keras.callbacks.ReduceLROnPlateau(
            factor=0.5, patience=max(2, settings.patience // 4), min_lr=1e-5
        ),
        progress_callback(f"{kind.name} seed {seed}"),
    ]
    hist = model.fit(
        x_tr,
        y_tr,
        validation_data=(x_va, y_va),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        verbose=0,
        callbacks=callbacks,
    )
    val = hist.history["val_loss"]
    return model, {
        "seed": seed,
        "epochs_run": len(val),
        "best_epoch": int(np.argmin(val)) + 1,
        "best_val_loss": float(np.min(val)),
    }


def train(
    kind: SurrogateKind,
    train_data: SiteData,
    val_data: SiteData,
    settings: TrainSettings | None = None,
    provenance: dict[str, Any] | None = None,
    name: str = "surrogate",
) -> Surrogate:
    """Train ``settings.members`` networks of ``kind`` on ``train_data`` (early stopping on
    ``val_data``) and return the surrogate with its card (no metrics yet)."""
    from mlxas.models.train import set_threads
    from mlxas.provenance import hash_json

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    settings = settings or TrainSettings()
    if train_data.grid != kind.grid or val_data.grid != kind.grid:
        raise SurrogateInputError("training data and surrogate kind have different grids")
    set_threads(settings.threads)
    x_tr, x_va = kind.featurize(train_data.env), kind.featurize(val_data.env)
    y_tr, y_va = kind.grid.weight(train_data.spectra), kind.grid.weight(val_data.spectra)
    start = time.perf_counter()
    nets, records = [], []
    for i in range(settings.members):
        net, rec = _fit_member(kind, x_tr, y_tr, x_va, y_va, settings, settings.seed + i)
        net.name = f"member_{i}_{kind.name}"
        nets.append(net)
        records.append(rec)
    model = nets[0] if settings.members == 1 else _stack(nets, f"{kind.name}_ensemble")
    data_hash = hash_json(sorted(train_data.sites["input_hash"].astype(str)))
    training = {
        "settings": asdict(settings),
        "networks": records,
        "seconds": time.perf_counter() - start,
        "n_train": len(train_data),
        "n_val": len(val_data),
        "data_hash": data_hash,
    }
    return Surrogate.from_network(
        model, kind, train_data.env, train_data.spectra, settings.members,
        _feff_provenance(train_data), training, provenance, name,
    )  # fmt: skip


def _feff_provenance(data: SiteData) -> dict[str, Any]:
    """The FEFF engine of the training spectra (:attr:`SiteData.feff`) and the engine
    versions of its rows."""
    s = data.sites
    return {**data.feff, "engine_versions": sorted(set(s["engine_version"].astype(str)))}
