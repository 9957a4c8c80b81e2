"""What the processing of measured files knows: the model's side and the user's options.

:class:`InputSpec` is what every caller of the predict layer asks of a model's input side,
whatever the model reads; :class:`ProcessSpec` (XAS spectra) and
:class:`~mlxas.predict.patterns.PatternSpec` (powder patterns) implement it, and
:func:`input_spec_from_card` is the one place that tells the two kinds apart.  Specs travel
to worker processes (they are picklable); :class:`Result` is one file's (or spectrum's)
outcome.  Units: energy and E0 in eV, k in Å⁻¹.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlxas.spectra.background import BackgroundSettings
from mlxas.spectra.input_names import EDGE_INPUTS, reads_edge

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "EDGE_TOLERANCE_EV",
    "MIN_K",
    "MIN_PRE_EDGE_POINTS",
    "POWDER_PATTERN",
    "SPECTRUM",
    "InputSpec",
    "ProcessSpec",
    "Result",
    "card_absorbers",
    "edge_name",
    "input_spec_from_card",
    "process_spec_from_card",
    "required_e_range",
    "required_k_range",
]

#: Largest distance (eV) between the measured E0 and the model's tabulated edge energy.
#: Chemical shifts and calibration offsets stay well inside it; the nearest edge of
#: another element is usually further away.
EDGE_TOLERANCE_EV = 50.0
#: Points required below E0 − 20 eV for the pre-edge line.
MIN_PRE_EDGE_POINTS = 5
#: A spectrum must reach at least this k (Å⁻¹) to have any EXAFS to remove a background from.
MIN_K = 3.0
#: The kinds of input a model reads (:attr:`InputSpec.input_kind`).
SPECTRUM, POWDER_PATTERN = "spectrum", "powder pattern"


@runtime_checkable
class InputSpec(Protocol):
    """The input side of one loaded model, as the predict layer's callers need it.

    ``Predictor``, ``auto``, ``mlxas serve`` and the command ask the spec rather than
    test which kind of model they hold, so a new kind of input is one new class instead
    of a branch in each of them.  Implementations are picklable (they go to workers).
    """

    @property
    def input_kind(self) -> str:
        """What one input file holds for this model: :data:`SPECTRUM` or
        :data:`POWDER_PATTERN` (also used in messages, as 'reads <kind>s')."""
        ...

    @property
    def plots_supported(self) -> bool:
        """Whether ``mlxas predict --plot`` can draw this input (it draws XAS spectra)."""
        ...

    def process_paths(self, paths: list[str]) -> tuple[list[Result], np.ndarray]:
        """Results for every input in ``paths`` and the model inputs of the accepted ones
        (rows in the order of the results whose status is 'ok')."""
        ...

    def model_meta(self) -> dict[str, Any]:
        """How the output describes the model's input (between the model's name and its
        ``ood_available`` in :func:`mlxas.predict.auto.model_meta`)."""
        ...

    def serve_refusal(self) -> str | None:
        """Why ``mlxas serve`` (which answers XAS spectra) cannot load this model, as
        'reads ...'; None when it can."""
        ...


@dataclass(frozen=True)
class ProcessSpec:
    """What the processing needs to know about the model and the user's options."""

    absorber: str
    edge: str
    edge_energy: float  # eV, tabulated (xraydb)
    features: dict  # the card's features config, reduced to the model's input
    input: str
    k_required: tuple[float, float] | None  # Å⁻¹; None: the input does not use chi(k)
    allow_short_k: bool = False
    repair: bool = False
    mu_label: str | None = None
    energy_label: str | None = None
    e0: str | float = "auto"  # "auto", "file" or a fixed value in eV (mlxas.predict.e0)
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    #: Spectra on one (grid, E0), in one call or seen so far by the process, from which on
    #: the batched background is used.  1 (all): it gives larch's answer, costs about one
    #: larch autobk for a single spectrum, and spares a single prediction larch's import.
    min_batch: int = 1
    fast_read: bool = True
    #: (element, tabulated edge energy in eV) of every absorber the model was trained on;
    #: empty for a one-absorber card (then ``absorber`` and ``edge_energy`` are the one).
    absorbers: tuple[tuple[str, float], ...] = ()
    #: E − E0 span (eV) a mu(E) input reads; None for chi(k) inputs.
    e_required: tuple[float, float] | None = None
    #: Lorentzian FWHM (eV) convolved into the normalised mu(E) of a mu(E) input before
    #: the model reads it: brings a HERFD spectrum to the lifetime broadening of the
    #: training spectra.  0: none.
    xanes_broaden: float = 0.0

    @property
    def covered(self) -> tuple[tuple[str, float], ...]:
        """(element, edge energy in eV) of each absorber the model covers."""
        return self.absorbers or ((self.absorber, self.edge_energy),)

    @property
    def edge_input(self) -> bool:
        """Whether the model reads mu(E) near the edge (no background removal): the
        spec's side of :func:`mlxas.spectra.input_names.reads_edge`."""
        return self.input in EDGE_INPUTS

    # --- InputSpec ------------------------------------------------------------------

    @property
    def input_kind(self) -> str:
        return SPECTRUM

    @property
    def plots_supported(self) -> bool:
        return True

    def process_paths(self, paths: list[str]) -> tuple[list[Result], np.ndarray]:
        from mlxas.predict.pipeline import process_spectrum_paths

        return process_spectrum_paths(paths, self)

    def model_meta(self) -> dict[str, Any]:
        return {
            "absorber": self.absorber,
            "edge": self.edge,
            "input": self.input,
            "k_required": self.k_required,
            "absorbers": [a for a, _ in self.covered],
            "e_required": self.e_required,
        }

    def serve_refusal(self) -> str | None:
        return None


@dataclass
class Result:
    """One spectrum's outcome.  ``status`` is 'ok' or 'refused' (then ``reason`` says why)."""

    source: str
    status: str = "ok"
    reason: str = ""
    e0: float = math.nan
    edge_step: float = math.nan
    k_max: float = math.nan
    mu_from: str = ""
    background: str = ""
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    #: mu(E) models: the normalised mu(E) the model read, on its E − E0 grid (pictures).
    edge_norm: Any = field(default=None, repr=False)

    def refuse(self, reason: str) -> Result:
        self.status, self.reason = "refused", reason
        return self


def edge_name(edge: str | None) -> str:
    return (edge or "").strip().upper().replace("_", "").replace("-", "")


def required_k_range(card: dict[str, Any]) -> tuple[float, float] | None:
    """k-range (Å⁻¹) of chi(k) that the model's input depends on, None for mu(E) inputs.

    The card's ``preprocessing.k_range`` (written at training) is used when present, else
    it is derived from the features: the k grid for ``chi_k`` (narrowed to
    ``input_range``), the FT window for ``ft_*``, the k grid otherwise.  A model trained
    with k-range truncation (``augment.kmax = [lo, hi]``) accepts spectra down to ``lo``.
    """
    pre = card["preprocessing"]
    name = pre["input"]
    if reads_edge(card):
        return None
    if pre.get("k_range"):
        lo, hi = (float(v) for v in pre["k_range"])
    else:
        f = pre["features"]
        if name.startswith("ft_"):
            lo, hi = float(f["ft"]["kmin"]), float(f["ft"]["kmax"])
        else:
            lo, hi = float(f["k_grid"]["kmin"]), float(f["k_grid"]["kmax"])
            rng = pre.get("input_range") or (card.get("config") or {}).get("input_range")
            if name == "chi_k" and rng:
                lo, hi = max(lo, float(rng[0])), min(hi, float(rng[1]))
    augment = (card.get("training") or {}).get("augment") or (card.get("config") or {}).get(
        "augment"
    )
    kmax_aug = (augment or {}).get("kmax")
    if kmax_aug:
        hi = min(hi, float(kmax_aug[0]))
    return lo, hi


def required_e_range(card: dict[str, Any]) -> tuple[float, float] | None:
    """E − E0 span (eV) of the relative energy grid a mu(E) input reads (the card's
    ``features.xanes`` emin/emax), None for chi(k) inputs."""
    pre = card["preprocessing"]
    if not reads_edge(card):
        return None
    x = pre["features"]["xanes"]
    return float(x["emin"]), float(x["emax"])


def _load_error(card: dict[str, Any], why: str) -> Exception:
    from mlxas.models.card import ModelLoadError

    return ModelLoadError(f"model {card.get('model_id', '?')}: {why}")


def _edge_energy(card: dict[str, Any], absorber: str, edge: str, known: Any) -> float:
    """Tabulated edge energy (eV): the card's when it has one (spares xraydb's import at
    start-up), else xraydb's."""
    try:
        if known is None:
            import xraydb

            known = xraydb.xray_edge(absorber, edge).energy
        return float(known)
    except Exception as err:  # xraydb raises ValueError/KeyError for unknown edges
        raise _load_error(card, f"unknown absorber edge {absorber} {edge} ({err})") from None


def card_absorbers(card: dict[str, Any]) -> list[str]:
    """The absorbers a model covers: the card's ``absorbers`` (written at training from
    the dataset's sites), else its one ``absorber`` (cards written before that)."""
    pre = card["preprocessing"]
    found = pre.get("absorbers") or ([pre["absorber"]] if pre.get("absorber") else [])
    return [str(a) for a in found]


def input_spec_from_card(card: dict[str, Any], **options: Any) -> InputSpec:
    """The input side of the model of ``card`` with the user's options: a
    :class:`~mlxas.predict.patterns.PatternSpec` for a model trained on powder patterns,
    else a :class:`ProcessSpec`.  An option that does not apply to the model's kind of
    input is refused (:class:`~mlxas.models.card.ModelLoadError`)."""
    from mlxas.predict.patterns import is_pattern_card, pattern_spec_from_card

    if is_pattern_card(card):
        return pattern_spec_from_card(card, **options)
    return process_spec_from_card(card, **options)


def process_spec_from_card(card: dict[str, Any], **options: Any) -> ProcessSpec:
    """A :class:`ProcessSpec` for the model of ``card`` with the user's options."""
    pre = card["preprocessing"]
    absorbers, edge = card_absorbers(card), pre.get("edge") or ""
    if not absorbers or not edge:
        raise _load_error(
            card,
            "card names no absorber/edge; cannot check measured spectra against it"
            + (" (a model trained on several absorbers before the card recorded them:"
               " retrain it)" if edge else ""),
        )  # fmt: skip
    if options.get("wavelength") is not None:
        raise _load_error(card, "reads XAS spectra: --wavelength applies to powder patterns")
    options.pop("wavelength", None)
    if options.get("xanes_broaden") and not reads_edge(card):
        raise _load_error(
            card, f"reads {pre['input']}: --broaden applies to models on mu(E) near the edge"
        )
    energies = pre.get("edge_energies") or {}
    one = pre.get("edge_energy") if len(absorbers) == 1 else None
    covered = tuple((a, _edge_energy(card, a, edge, energies.get(a, one))) for a in absorbers)
    return ProcessSpec(
        absorber=", ".join(absorbers),
        edge=edge,
        edge_energy=covered[0][1],
        features=_only_input(pre["features"], pre["input"]),
        input=pre["input"],
        k_required=required_k_range(card),
        absorbers=covered if len(covered) > 1 else (),
        e_required=required_e_range(card),
        **options,
    )


def _only_input(cfg: dict, name: str) -> dict:
    """A copy of the features config that computes only ``name`` (same definitions)."""
    import copy

    cfg = copy.deepcopy(cfg)
    cfg["chi_k"] = name == "chi_k"
    cfg["ft"]["enabled"] = name.startswith("ft_")
    for kind in ("morlet", "cauchy"):
        cfg.setdefault("wavelet", {})[kind] = name == f"wavelet_{kind}"
    xanes = cfg.setdefault("xanes", {})
    xanes["enabled"] = name in EDGE_INPUTS
    xanes["mu"] = name == "mu"
    xanes["derivative"] = name in ("xanes_deriv", "xanes_channels")
    return cfg
