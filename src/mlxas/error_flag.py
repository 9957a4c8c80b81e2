"""Error flag: does a reading risk being off by more than the error bounds?

The input-space distance of :mod:`mlxas.ood` flags spectra unlike the training inputs;
it does not know when the model is wrong on a spectrum that looks ordinary.  The error
flag is calibrated against errors instead:

1. every spectrum of the training split and of the validation split is perturbed as
   measured spectra are (the model's own augmentation, or :data:`MEASURED_LIKE` when it
   had none, and the harsher :data:`HARSH` ranges it never trained on: E0 shift, S0²,
   extra sigma², noise, k-range cuts), ``draws`` times each, and read by the model;
2. a reading is *wrong* when any target misses its truth by more than its bound
   (:data:`DEFAULT_BOUNDS`: 1.5 in CN, 0.05 Å in R; the same for each shell of a model
   with one target per neighbour shell, :func:`model_bounds`);
3. a small random forest learns P(wrong) from cheap features of the reading: the
   predicted targets, the log of the ensemble spread of each (a random forest's: the
   spread over its trees, :func:`mlxas.models.inference.value_spread`), and the log of
   the input distance (:func:`mlxas.ood.ood_scores`), on the perturbed *training* readings;
4. the threshold is chosen on the perturbed *validation* readings: the largest one that
   still flags ``recall`` of their wrong readings (split-conformal style).

A model that reads the normalised edge (XANES) is calibrated the same way on perturbed
edges, with the same CN and R bounds, its class and its oxidation state bounded too
(:mod:`mlxas.error_flag_edge`).

Only simulated spectra are used; measured files never choose anything here.  The result
is plain JSON, stored under ``error`` in the model's OOD statistics (``ood.json``), so the
card's SHA-256 binds it like the weights.  :func:`error_scores` evaluates it with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_BOUNDS",
    "ErrorFlagSettings",
    "combined_flags",
    "error_scores",
    "fit_error_flag",
    "flag_spread",
    "in_fitted_order",
    "model_bounds",
    "prepare",
    "reading_features",
]

VERSION = 1
#: Error bounds of a *right* reading (issue 18): CN within 1.5, R within 0.05 Å.  Their one
#: owner: the XANES flag (``error_flag_edge.EDGE_BOUNDS``) and bench_ood_calibration read them.
DEFAULT_BOUNDS: tuple[tuple[str, float], ...] = (("cn", 1.5), ("r", 0.05))
#: Perturbations of a measured foil, for a model trained without augmentation.
MEASURED_LIKE: dict[str, Any] = {
    "e0_shift": [-10.0, 10.0],
    "s02": [0.8, 1.05],
    "sigma2": [-0.003, 0.003],
    "noise": [0.0, 0.1],
    "kmax": [13.0, 16.0],
    "probability": 0.9,
}
#: Harsher than any model's training augmentation: the flag must also see readings of
#: spectra outside what the model learnt to absorb.
HARSH: dict[str, Any] = {
    "e0_shift": [-15.0, 15.0],
    "s02": [0.7, 1.1],
    "sigma2": [-0.004, 0.006],
    "noise": [0.0, 0.2],
    "kmax": [11.0, 16.0],
    "probability": 1.0,
}
_TINY = 1e-12


@dataclass(frozen=True)
class ErrorFlagSettings:
    """How the error flag is fitted.

    ``bounds``: (target, bound) pairs in the target's units; ``draws``: perturbations of
    each spectrum per perturbation set; ``recall``: fraction of the wrong validation
    readings the threshold must flag; ``trees``, ``max_depth``, ``min_leaf``: the forest.
    """

    bounds: tuple[tuple[str, float], ...] = DEFAULT_BOUNDS
    draws: int = 8
    recall: float = 0.95
    trees: int = 50
    max_depth: int = 6
    min_leaf: int = 20
    seed: int = 0


def model_bounds(
    card: dict[str, Any], bounds: tuple[tuple[str, float], ...] = DEFAULT_BOUNDS
) -> tuple[tuple[str, float], ...]:
    """``bounds`` and, for a model with one target per neighbour shell, the same bound
    for each shell's ``cn_s<i>_<El>`` and ``r_s<i>_<El>`` (the bound of ``cn`` and ``r``)."""
    import re

    by_kind = dict(bounds)
    out = list(bounds)
    for t in card["outputs"]["slices"]:
        m = re.fullmatch(r"(cn|r)_s\d+_[A-Z][a-z]?", t)
        if m and m[1] in by_kind and t not in by_kind:
            out.append((t, by_kind[m[1]]))
    return tuple(out)


def not_applicable(card: dict[str, Any], settings: ErrorFlagSettings) -> str | None:
    """Why a model gets no error flag (None when it can have one)."""
    from mlxas.error_flag_edge import is_edge_model
    from mlxas.spectra.input_names import reads_edge

    pre = card["preprocessing"]
    widths = {t: b - a for t, (a, b) in card["outputs"]["slices"].items()}
    if is_edge_model(card):  # readings perturbed as edges (mlxas.error_flag_edge)
        if card["outputs"].get("classes") or any(widths.get(t) == 1 for t, _ in settings.bounds):
            return None
        return "the model has no class target and none of the bounded targets"
    if not any(widths.get(t) == 1 for t, _ in settings.bounds):
        return "none of the bounded targets is a scalar output of the model"
    # the edge inputs left here (mu, xanes_deriv) are not normalised edges, so they get no
    # edge readings above, and no chi(k) to perturb either
    if reads_edge(card) or (card.get("config") or {}).get("extra_inputs"):
        return f"input {pre['input']!r} is not computed from chi(k) alone"
    if "k_grid" not in pre["features"]:
        return "the features have no k grid"
    return None


def reading_features(
    card: dict[str, Any],
    mean: dict[str, np.ndarray],
    std: dict[str, np.ndarray],
    distance: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """Features of readings ``[N, F]`` (float32) and their names: each scalar value target,
    the log of its ensemble spread, the largest probability of each class target
    (``p_max_<target>``), the log of the input distance score."""
    cols, names = [], []
    classes = card["outputs"].get("classes") or {}
    for t, (a, b) in card["outputs"]["slices"].items():
        if t in classes:
            p = np.asarray(mean[t], dtype=np.float64).reshape(len(distance), -1)
            cols.append(p.max(axis=1))
            names.append(f"p_max_{t}")
            continue
        if b - a != 1:
            continue
        cols.append(np.asarray(mean[t], dtype=np.float64).reshape(-1))
        names.append(t)
        if t in std:
            cols.append(np.log(np.asarray(std[t], dtype=np.float64).reshape(-1) + _TINY))
            names.append(f"log_{t}_std")
    d = np.asarray(distance, dtype=np.float64)
    cols.append(np.log(np.where(np.isfinite(d), d, 1e30) + _TINY))
    names.append("log_distance")
    return np.column_stack(cols).astype(np.float32), names


def _readings(model, card, ood, chi, k, labels, base, augment, draws, rng):
    """Features and wrong-flags of ``draws`` perturbed readings of every ``chi`` row."""
    from mlxas.models.data import compute_input
    from mlxas.models.inference import predict_array, split_targets
    from mlxas.ood import model_input_scores
    from mlxas.spectra.augment import augment_chi

    pre = card["preprocessing"]
    kw = float(pre["features"].get("kweight") or 2.0)
    feats, wrong = [], []
    for _ in range(draws):
        chi_p = augment_chi(chi, k, augment, rng, kweight=kw, sigma2_base=base)
        x = compute_input(chi_p, pre["features"], pre["input"])
        mean, std = predict_array(model, card, x)
        m = split_targets(card, mean)
        s = split_targets(card, std) if std is not None else {}
        f, names = reading_features(card, m, s, model_input_scores(x, ood, card)[0])
        feats.append(f)
        bad = np.zeros(len(x), dtype=bool)
        for t, bound in labels.items():
            bad |= np.abs(m[t].reshape(-1) - bound[0]) > bound[1]
        wrong.append(bad)
    return np.concatenate(feats), np.concatenate(wrong), names


def _augments(card: dict[str, Any], has_sigma2: bool) -> list[dict[str, Any]]:
    from mlxas.spectra.augment import is_enabled

    own = (card.get("training") or {}).get("augment")
    own = own if is_enabled(own) else MEASURED_LIKE
    sets = [dict(own), dict(HARSH)]
    if not has_sigma2:  # no sigma² labels: damping can be added, not removed
        for a in sets:
            if a.get("sigma2") is not None:
                a["sigma2"] = [max(0.0, float(a["sigma2"][0])), float(a["sigma2"][1])]
    return sets


def _split_readings(model, card, ood, ds, split, bounds, draws, rng):
    from mlxas.spectra.grids import k_grid

    k = k_grid(card["preprocessing"]["features"]["k_grid"])
    chi = np.asarray(ds.chi(split), dtype=np.float64)
    labels = {
        t: (np.asarray(ds.labels(t, split), dtype=np.float64).reshape(-1), b)
        for t, b in bounds
        if t in card["outputs"]["slices"]
    }
    s2 = [n for n in ds.label_names() if n.startswith("sigma2_")]
    base = None
    if s2:
        table = np.stack([np.asarray(ds.labels(n, split), dtype=np.float64) for n in s2], 1)
        with np.errstate(all="ignore"):
            low = np.nanmin(np.where(np.isfinite(table), table, np.nan), axis=1)
        base = np.where(np.isfinite(low), np.maximum(low, 0.0), 0.0)
    out = [
        _readings(model, card, ood, chi, k, labels, base, aug, draws, rng)
        for aug in _augments(card, bool(s2))
    ]
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]), out[0][2]


class ChiReadings:
    """The calibration readings of a model on chi(k): perturbed as measured EXAFS differs
    from FEFF's (its own augmentation or :data:`MEASURED_LIKE`, and :data:`HARSH`), CN and
    R bounded (:data:`DEFAULT_BOUNDS`).  :class:`mlxas.error_flag_edge.EdgeReadings` is
    the same for models on the normalised edge."""

    default_bounds = DEFAULT_BOUNDS

    @staticmethod
    def n_val(card: dict[str, Any], ds) -> int:
        return len(ds.chi("val"))

    readings = staticmethod(_split_readings)

    @staticmethod
    def perturbations(card: dict[str, Any]) -> list[dict[str, Any]]:
        return _augments(card, True)


def readings_kind(card: dict[str, Any]):
    """How the calibration readings of ``card``'s model are made (its input decides)."""
    from mlxas.error_flag_edge import EdgeReadings, is_edge_model

    return EdgeReadings if is_edge_model(card) else ChiReadings


def fit_error_flag(
    model, card: dict[str, Any], ood: dict[str, Any], ds, settings: ErrorFlagSettings | None = None
) -> dict[str, Any]:
    """The error flag of ``model`` (its ``card`` and OOD statistics ``ood``) from the train
    and validation splits of the opened dataset ``ds``: plain JSON (see the module doc).

    A model that cannot have one gets ``{"version", "status": "none", "reason"}``.
    """
    from dataclasses import replace

    from sklearn.ensemble import RandomForestClassifier

    from mlxas.models.forest import export_forest

    kind = readings_kind(card)
    settings = settings or ErrorFlagSettings()
    if settings.bounds == DEFAULT_BOUNDS:  # the bounds of the kind's own targets
        settings = replace(settings, bounds=kind.default_bounds)
    settings = replace(settings, bounds=model_bounds(card, settings.bounds))
    head = {"version": VERSION, "bounds": dict(settings.bounds)}
    reason = not_applicable(card, settings)
    if reason is None and not kind.n_val(card, ds):
        reason = "the validation split is empty"
    if reason:
        return {**head, "status": "none", "reason": reason}
    if card["outputs"].get("classes"):  # a class target must be right too
        head["classes_right"] = sorted(card["outputs"]["classes"])
    rng = np.random.default_rng(settings.seed)
    b, n = settings.bounds, settings.draws
    f_train, w_train, names = kind.readings(model, card, ood, ds, "train", b, n, rng)
    f_val, w_val, _ = kind.readings(model, card, ood, ds, "val", b, n, rng)
    if w_train.all() or not w_train.any() or not w_val.any():
        why = "every" if w_train.all() else "no"
        return {**head, "status": "none", "reason": f"{why} perturbed reading is wrong"}
    forest = RandomForestClassifier(
        n_estimators=settings.trees,
        max_depth=settings.max_depth,
        min_samples_leaf=settings.min_leaf,
        random_state=settings.seed,
        n_jobs=1,
    ).fit(f_train, w_train)
    arrays = export_forest(forest, 2, forest.classes_)
    arrays["value"] = arrays["value"][:, 1:]  # P(wrong) only
    stats = {**head, "status": "fitted", "features": names, "recall_target": settings.recall}
    stats["forest"] = {k: v.tolist() for k, v in arrays.items()}
    p_val = _forest_p(stats["forest"], f_val)
    # the largest threshold that flags `recall` of the wrong validation readings
    ordered = np.sort(p_val[w_val])
    thr = float(ordered[int(np.floor((1.0 - settings.recall) * len(ordered)))])
    stats["threshold"] = float(np.nextafter(thr, 0.0)) if thr > 0 else 0.0
    # Beyond the input distances of its calibration readings the forest extrapolates:
    # there the input distance alone flags (see combined_flags).
    stats["distance_limit"] = float(np.exp(max(f_train[:, -1].max(), f_val[:, -1].max())))
    flagged = p_val > stats["threshold"]
    stats["calibration"] = {
        "train_readings": len(w_train),
        "train_wrong": int(w_train.sum()),
        "val_readings": len(w_val),
        "val_wrong": int(w_val.sum()),
        "val_wrong_flagged": int(flagged[w_val].sum()),
        "val_right_flagged_fraction": float(flagged[~w_val].mean()) if (~w_val).any() else 0.0,
        "draws": settings.draws,
        "perturbations": kind.perturbations(card),
    }
    return stats


def prepare(ood: dict[str, Any]) -> dict[str, Any]:
    """``ood`` with its error flag's forest as numpy arrays (read once, not per call)."""
    err = ood.get("error") or {}
    if err.get("status") != "fitted":
        return ood
    forest = {k: np.asarray(v) for k, v in err["forest"].items()}
    return {**ood, "error": {**err, "forest": forest}}


def _forest_p(forest: dict[str, Any], features: np.ndarray) -> np.ndarray:
    from mlxas.models.forest import ForestModel

    f = {k: np.asarray(v) for k, v in forest.items()}
    f["value"] = f["value"].reshape(len(f["left"]), -1)
    return ForestModel._moments(f, np.asarray(features, dtype=np.float32))[0][:, 0]


def error_scores(features: np.ndarray, stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, flags) of readings' features (:func:`reading_features`); a score above 1
    is flagged: P(wrong) over the calibrated threshold."""
    if stats.get("status") != "fitted":
        n = len(features)
        return np.zeros(n), np.zeros(n, dtype=bool)
    p = _forest_p(stats["forest"], features)
    thr = float(stats["threshold"])
    score = p / thr if thr > 0 else np.where(p > 0, np.inf, 0.0)
    return score, p > thr


def in_fitted_order(features: np.ndarray, names: list[str], stats: dict[str, Any]) -> np.ndarray:
    """The columns of ``features`` (named ``names``) in the order the forest of ``stats``
    was fitted on (its ``features``).

    The order of :func:`reading_features` follows the card's outputs, and a card read
    back from disk lists them sorted by name while the card in memory at training lists
    them as the config does; a forest fitted on one order and read with the other reads
    every feature as another (a model with one target per shell then flagged every
    reading).  The stored names decide."""
    fitted = list(stats.get("features") or names)
    if fitted == list(names):
        return features
    missing = [n for n in fitted if n not in names]
    if missing:
        raise ValueError(f"error flag: the reading has no {', '.join(missing)} (it has {names})")
    return features[:, [list(names).index(n) for n in fitted]]


def flag_spread(
    model, card: dict[str, Any], ood: dict[str, Any], x: np.ndarray, std: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``std`` plus the spread features the fitted flag of ``ood`` reads and ``std`` lacks
    (:func:`~mlxas.models.inference.value_spread`); only then, so that a flag fitted
    without them costs no second walk through a forest's trees."""
    from mlxas.models.inference import value_spread

    fitted = (ood.get("error") or {}).get("features") or []
    if any(n.startswith("log_") and n.endswith("_std") and n[4:-4] not in std for n in fitted):
        return value_spread(model, card, x, std)
    return std


def combined_flags(
    card: dict[str, Any],
    ood: dict[str, Any],
    mean: dict[str, np.ndarray],
    std: dict[str, np.ndarray],
    distance: np.ndarray,
) -> dict[str, np.ndarray]:
    """The OOD flag of readings from their input distance (:func:`mlxas.ood.ood_scores`)
    and the model's error flag (``ood["error"]``).

    With a fitted error flag, a reading is flagged when its P(wrong) is above the
    calibrated threshold, or when its input distance lies beyond every calibration
    reading's (where the forest would extrapolate).  Without one, the input distance
    flags alone (score above 1).  Returns ``distance_score``, ``error_score``,
    ``ood_score`` (the larger of the error score and the distance over its limit: above 1
    is flagged) and ``ood``.
    """
    err = ood.get("error") or {}
    distance = np.asarray(distance, dtype=np.float64)
    if err.get("status") != "fitted":
        zero = np.zeros(len(distance))
        return {"distance_score": distance, "error_score": zero,
                "ood_score": distance, "ood": distance > 1.0}  # fmt: skip
    features, names = reading_features(card, mean, std, distance)
    e_score, _ = error_scores(in_fitted_order(features, names, err), err)
    score = np.maximum(e_score, distance / float(err["distance_limit"]))
    return {"distance_score": distance, "error_score": e_score, "ood_score": score,
            "ood": score > 1.0}  # fmt: skip
