"""Error-flag readings of models that read normalised mu(E) (XANES inputs).

:mod:`mlxas.error_flag` calibrates a flag on perturbed readings of simulated spectra.
For a chi(k) model the perturbations act on chi(k).  A XANES model reads the normalised
edge on the grid E − E0, so its readings are perturbed the way
:mod:`mlxas.xanes.augment` perturbs an edge (instrument and lifetime broadening, an
energy shift, an edge-step error with a background slope, noise):

- the model's own training ranges (``augment.xanes`` of its card), or the defaults of
  :class:`~mlxas.xanes.augment.AugmentSettings` for a model trained without them;
- :data:`HARSH_EDGE`, about twice as wide, which no model trains on.

A reading is *wrong* when the most probable class of a class target (the coordination
geometry) is not the true one, or when a bounded value target misses its truth by more
than its bound (:data:`EDGE_BOUNDS`): CN by more than 1.5 or R by more than 0.05 Å, the
bounds of every EXAFS reading (:data:`mlxas.error_flag.DEFAULT_BOUNDS`, one definition
of a wrong CN or R whatever the model reads), and the oxidation state by more than 1, the
tolerance issue 19 sets for measured spectra.  A forest's features include the spread
over its trees of each value target (:func:`mlxas.models.inference.value_spread`).

A value target the fitted flag does not bound (an older flag fitted with the oxidation
state alone, or a target outside :data:`EDGE_BOUNDS`) is named on every reading by
:func:`unflagged_note`.
"""

from __future__ import annotations

from dataclasses import asdict
from types import SimpleNamespace
from typing import Any

import numpy as np

from mlxas.error_flag import DEFAULT_BOUNDS
from mlxas.xanes.augment import AugmentSettings

__all__ = [
    "EDGE_BOUNDS",
    "HARSH_EDGE",
    "EdgeReadings",
    "edge_augments",
    "edge_readings",
    "is_edge_model",
    "perturbation_record",
    "unflagged_note",
]

#: Bounds of a right XANES reading besides its classes: CN and R as for EXAFS (the
#: bounds are taken from their one owner, not repeated), oxidation state within 1.
EDGE_BOUNDS: tuple[tuple[str, float], ...] = (*DEFAULT_BOUNDS, ("oxidation_state", 1.0))
#: About twice the default training ranges: edges the model never learnt to absorb.
HARSH_EDGE = AugmentSettings(
    shift=(-3.0, 3.0),
    gauss_fwhm=(0.0, 2.5),
    lorentz_fwhm=(0.0, 2.0),
    scale=(-0.10, 0.10),
    slope=(-0.06, 0.06),
    noise=(0.0, 0.03),
)


def is_edge_model(card: dict[str, Any]) -> bool:
    """Whether the model's readings are perturbed as edges here: it reads the normalised
    edge (``xanes``, ``xanes_channels``).  Narrower than
    :func:`~mlxas.spectra.input_names.reads_edge` on purpose: :func:`edge_readings`
    perturbs inputs with :func:`~mlxas.models.edge_augment.augment_input`, whose physics
    needs a normalised edge; a ``mu`` or ``xanes_deriv`` model has none, and
    :func:`mlxas.error_flag.not_applicable` gives it no flag."""
    from mlxas.spectra.input_names import reads_normalised_edge

    return reads_normalised_edge(card)


def edge_augments(card: dict[str, Any]) -> list[AugmentSettings]:
    """The perturbation sets of a XANES model's calibration readings: its own training
    ranges (defaults when it trained without) and :data:`HARSH_EDGE`."""
    from mlxas.models.edge_augment import edge_settings

    augment = (card.get("training") or {}).get("augment") or {}
    spec = SimpleNamespace(
        augment=augment, input=card["preprocessing"]["input"], name=card.get("name", "model")
    )
    own = edge_settings(spec) if augment.get("xanes") is not None else None
    return [own or AugmentSettings(), HARSH_EDGE]


def unflagged_note(card: dict[str, Any]) -> str | None:
    """For a XANES model, the note every reading carries: which of its value targets its
    error flag does not bound, with their test-split MAE from the card, so that a user
    does not read an unflagged R as a checked one; None for other models and when the
    flag bounds every value target.

    The bounds are those the model's flag was fitted with (``ood.json``'s ``error``), not
    today's :data:`EDGE_BOUNDS`: a model calibrated before CN and R were bounded keeps
    saying so until it is recalibrated; a model without a fitted flag bounds nothing."""
    if not is_edge_model(card):
        return None
    err = (card.get("ood") or {}).get("error") or {}
    bounded: set[str] = set()
    if err.get("status") == "fitted":  # value bounds, and the class targets it checks
        bounded = set(err.get("bounds") or {}) | set(err.get("classes_right") or [])
    free = [t for t in card["preprocessing"]["targets"] if t not in bounded]
    if not free:
        return None
    test = (card.get("metrics") or {}).get("test") or {}
    units = (card.get("outputs") or {}).get("units") or {}
    mae = [
        f"{t} {test[t]['mae']:.3g}" + (f" {units[t]}" if units.get(t) else "")
        for t in free
        if "mae" in (test.get(t) or {})
    ]
    tail = f" (test MAE {', '.join(mae)})" if mae else ""
    return f"{', '.join(free)} read from the edge are not covered by the OOD flag{tail}"


def _truth(ds, card: dict[str, Any], split: str, bounds) -> tuple[dict, dict]:
    """(value targets → (truth, bound), class targets → true class names) of ``split``."""
    slices = card["outputs"]["slices"]
    values = {
        t: (np.asarray(ds.labels(t, split), dtype=np.float64).reshape(-1), float(b))
        for t, b in bounds
        if t in slices
    }
    classes = {}
    for t in card["outputs"].get("classes") or {}:
        names = ds.classes(t)
        codes = np.asarray(ds.labels(t, split)).reshape(-1).astype(int)
        classes[t] = np.asarray(names, dtype=object)[codes]
    return values, classes


def edge_readings(
    model, card: dict[str, Any], ood: dict[str, Any], ds, split: str, bounds, draws: int, rng
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features, wrong-flags and feature names of ``draws`` perturbed readings of every
    input of ``split``, for each perturbation set of :func:`edge_augments`."""
    from mlxas.error_flag import reading_features
    from mlxas.models.edge_augment import augment_input
    from mlxas.models.inference import (
        class_predictions,
        predict_array,
        split_targets,
        value_spread,
    )
    from mlxas.ood import model_input_scores
    from mlxas.spectra.grids import energy_grid

    pre = card["preprocessing"]
    x0 = np.asarray(ds.features(pre["input"], split), dtype=np.float32)
    grid = energy_grid(pre["features"]["xanes"])
    values, classes = _truth(ds, card, split, bounds)
    feats, wrong, names = [], [], []
    for settings in edge_augments(card):
        for _ in range(draws):
            x = augment_input(x0, grid, settings, rng)
            mean, std = predict_array(model, card, x)
            m = split_targets(card, mean)
            s = value_spread(model, card, x, split_targets(card, std) if std is not None else {})
            f, names = reading_features(card, m, s, model_input_scores(x, ood, card)[0])
            bad = np.zeros(len(x), dtype=bool)
            for t, (truth, bound) in values.items():
                bad |= np.abs(m[t].reshape(-1) - truth) > bound
            for t, (best, _) in class_predictions(card, m).items():
                bad |= np.asarray(best, dtype=object) != classes[t]
            feats.append(f)
            wrong.append(bad)
    return np.concatenate(feats), np.concatenate(wrong), names


def perturbation_record(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The perturbation ranges of :func:`edge_augments`, as JSON for the calibration."""
    return [{k: list(v) for k, v in asdict(a).items()} for a in edge_augments(card)]


class EdgeReadings:
    """The calibration readings of a model on the normalised edge (the module doc), as
    :class:`mlxas.error_flag.ChiReadings` makes them for a model on chi(k)."""

    default_bounds = EDGE_BOUNDS

    @staticmethod
    def n_val(card: dict[str, Any], ds) -> int:
        return len(ds.features(card["preprocessing"]["input"], "val"))

    readings = staticmethod(edge_readings)
    perturbations = staticmethod(perturbation_record)
