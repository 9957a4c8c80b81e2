"""Powder patterns for ``mlxas predict``: what an XRD model needs from a measured file.

A model trained on the ``xrd`` engine's patterns reads a pattern on the 2θ (or Q) grid of
its training data, scaled as the dataset scaled it.  :func:`process_pattern_paths` reads
each file (:func:`mlxas.xrd.measured.read_pattern`), puts it on the model's grid
(:func:`mlxas.xrd.measured.on_model_grid`, converting another wavelength through d) and
applies the dataset's own feature function (:func:`mlxas.xrd.engine.pattern_features`),
so a measured pattern and a simulated one take the same path into the model.
:class:`PatternSpec` is the powder-pattern side of :class:`mlxas.predict.spec.InputSpec`.

Units: 2θ in degrees, Q in Å⁻¹, wavelengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlxas.predict.spec import POWDER_PATTERN, Result

__all__ = [
    "MIN_COVERAGE",
    "PatternSpec",
    "is_pattern_card",
    "pattern_spec_from_card",
    "process_pattern_paths",
]

#: Share of the model's grid a measured pattern must cover.  Below it most of what the
#: model reads would be the zeros put outside the measured range.
MIN_COVERAGE = 0.5

#: Options of ``mlxas predict`` that only mean something for XAS spectra, with the value
#: that leaves them unused.
_XAS_OPTIONS = {
    "allow_short_k": False,
    "repair": False,
    "mu_label": None,
    "energy_label": None,
    "e0": "auto",
    "xanes_broaden": 0.0,
}

#: How the output names where the wavelength came from (on_model_grid's sources).
_SOURCE = {
    "argument": "from --wavelength",
    "header": "from the header",
    "model": "none in the file: the model's assumed",
}


@dataclass(frozen=True)
class PatternSpec:
    """What reading a measured pattern for one XRD model needs (picklable, for the
    worker processes of large batches)."""

    settings: dict  #: the card's ``preprocessing.engine.settings`` (the training grid)
    features: dict  #: the card's ``preprocessing.features`` (``xrd``: the scaling)
    input_shape: tuple[int, ...]
    #: Å; the user's wavelength, used instead of the header's (None: header, else model's)
    wavelength: float | None = None
    min_coverage: float = MIN_COVERAGE

    # --- InputSpec (mlxas.predict.spec) ---------------------------------------------

    @property
    def input_kind(self) -> str:
        return POWDER_PATTERN

    @property
    def plots_supported(self) -> bool:
        return False  # --plot draws mu(E), chi(k) and chi(R)

    def process_paths(self, paths: list[str]) -> tuple[list[Result], np.ndarray]:
        return process_pattern_paths(paths, self)

    def model_meta(self) -> dict[str, Any]:
        return {
            "input": POWDER_PATTERN,
            "axis": self.settings["axis"],
            "range": [self.settings["axis_min"], self.settings["axis_max"]],
            "source": self.settings["source"],
        }

    def serve_refusal(self) -> str | None:
        return (
            "reads powder patterns; mlxas serve answers XAS spectra only "
            "(use mlxas predict for pattern files)"
        )


def is_pattern_card(card: dict[str, Any]) -> bool:
    """Whether the model of ``card`` reads powder patterns (trained on the xrd engine)."""
    engine = (card.get("preprocessing") or {}).get("engine") or {}
    return engine.get("name") == "xrd"


def pattern_spec_from_card(card: dict[str, Any], **options: Any) -> PatternSpec:
    """The :class:`PatternSpec` of an XRD model's ``card`` with the user's options:
    ``wavelength`` (Å); an XAS-only option set to anything but its default is refused."""
    from mlxas.models.card import ModelLoadError

    wavelength = options.pop("wavelength", None)
    for key, value in options.items():
        if key in _XAS_OPTIONS and value != _XAS_OPTIONS[key]:
            raise ModelLoadError(
                f"model {card.get('model_id', '?')} reads powder patterns: "
                f"{key.replace('_', '-')} applies to XAS spectra only"
            )
    if wavelength is not None and not (0.05 <= float(wavelength) <= 5.0):
        raise ModelLoadError(f"--wavelength {wavelength}: expected 0.05 to 5 Å")
    pre = card["preprocessing"]
    return PatternSpec(
        settings=dict(pre["engine"]["settings"]),
        features=dict(pre["features"]),
        input_shape=tuple(int(n) for n in pre["input_shape"]),
        wavelength=None if wavelength is None else float(wavelength),
    )


def process_pattern_paths(paths: list[str], spec: PatternSpec) -> tuple[list[Result], np.ndarray]:
    """Results for every file in ``paths`` and the model inputs of the accepted ones (rows
    in the order of the results whose status is 'ok'); a file that cannot be read, or
    covers too little of the model's grid, is refused with the reason."""
    from mlxas.settings import from_mapping
    from mlxas.xrd.engine import pattern_features
    from mlxas.xrd.measured import MeasuredPatternError, on_model_grid, read_pattern
    from mlxas.xrd.settings import XRDFeatures, XRDSettings

    settings = from_mapping(XRDSettings, spec.settings, "card: preprocessing.engine.settings")
    features = from_mapping(XRDFeatures, spec.features.get("xrd"), "card: features.xrd")
    results: list[Result] = []
    rows: list[np.ndarray] = []
    for path in paths:
        res = Result(source=str(path))
        results.append(res)
        try:
            pattern = read_pattern(path)
            y, notes = on_model_grid(pattern, settings, spec.wavelength)
        except MeasuredPatternError as err:
            res.refuse(err.reason)
            continue
        except OSError as err:
            res.refuse(err.strerror or str(err))
            continue
        unit = "°" if settings.axis == "two_theta" else " Å⁻¹"
        span = f"{settings.axis_min:g}–{settings.axis_max:g}{unit}"
        if notes["coverage"] < spec.min_coverage:
            res.refuse(
                f"covers {notes['coverage']:.0%} of the model's range {span} at "
                f"λ {notes['wavelength']:.4f} Å ({_SOURCE[notes['wavelength_source']]}); "
                f"at least {spec.min_coverage:.0%} is needed"
            )
            continue
        res.notes.append(f"λ {notes['wavelength']:.4f} Å ({_SOURCE[notes['wavelength_source']]})")
        if notes["coverage"] < 1.0:
            res.notes.append(f"covers {notes['coverage']:.0%} of {span}")
        rows.append(y)
    if not rows:
        return results, np.zeros((0, *spec.input_shape), dtype=np.float32)
    return results, pattern_features(np.stack(rows), features)
