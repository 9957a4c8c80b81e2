"""From measured files to model inputs: read, check, E0, background removal, features.

:func:`process_paths` is the unit of work: it runs in the calling process for a few
files and in worker processes for batches (everything it needs travels in a picklable
:class:`ProcessSpec`).  Spectra that share an energy grid and E0 go through the batched
background removal of :mod:`mlxas.spectra.background`; the others through larch's
``pre_edge`` + ``autobk``.

Units: energy and E0 in eV, k in Å⁻¹.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlxas.spectra.background import BackgroundSettings
from mlxas.spectra.measured import SeriesReader, Spectrum, SpectrumError

__all__ = [
    "EDGE_TOLERANCE_EV",
    "ProcessSpec",
    "Result",
    "process_paths",
    "process_spec_from_card",
    "process_spectra",
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
    e0: str | float = "auto"  # "auto", "file" or a fixed value in eV (see series_e0)
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    #: Spectra on one (grid, E0), in one call or seen so far by the process, from which on
    #: the batched background is used.  1 (all): it gives larch's answer, costs about one
    #: larch autobk for a single spectrum, and spares a single prediction larch's import.
    min_batch: int = 1
    fast_read: bool = True


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

    def refuse(self, reason: str) -> Result:
        self.status, self.reason = "refused", reason
        return self


def _edge_name(edge: str | None) -> str:
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
    if name in ("xanes", "mu"):
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


def process_spec_from_card(card: dict[str, Any], **options: Any) -> ProcessSpec:
    """A :class:`ProcessSpec` for the model of ``card`` with the user's options."""
    pre = card["preprocessing"]
    absorber, edge = pre.get("absorber") or "", pre.get("edge") or ""
    if not absorber or not edge:
        from mlxas.models.card import ModelLoadError

        raise ModelLoadError(
            f"model {card.get('model_id', '?')}: card names no absorber/edge; "
            "cannot check measured spectra against it"
        )
    # A card may carry the tabulated edge energy, sparing xraydb's import at start-up.
    edge_energy = pre.get("edge_energy")
    try:
        if edge_energy is None:
            import xraydb

            edge_energy = xraydb.xray_edge(absorber, edge).energy
    except Exception as err:  # xraydb raises ValueError/KeyError for unknown edges
        from mlxas.models.card import ModelLoadError

        raise ModelLoadError(
            f"model card: unknown absorber edge {absorber} {edge} ({err})"
        ) from None
    features = _only_input(pre["features"], pre["input"])
    return ProcessSpec(
        absorber=absorber,
        edge=edge,
        edge_energy=float(edge_energy),
        features=features,
        input=pre["input"],
        k_required=required_k_range(card),
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
    cfg.setdefault("xanes", {})["enabled"] = name in ("xanes", "mu")
    if name == "mu":
        cfg["xanes"]["mu"] = True
    return cfg


# --- worker -----------------------------------------------------------------------------

_READERS: dict[tuple, SeriesReader] = {}
#: Spectra seen per (grid, E0, settings) in this process.
_SEEN: Counter = Counter()


def _reader(spec: ProcessSpec) -> SeriesReader:
    key = (spec.mu_label, spec.energy_label, spec.repair, spec.fast_read)
    if key not in _READERS:
        _READERS[key] = SeriesReader(spec.mu_label, spec.energy_label, spec.repair, spec.fast_read)
    return _READERS[key]


def _check_header(s: Spectrum, spec: ProcessSpec) -> str | None:
    model = f"{spec.absorber} {spec.edge}"
    if s.element and s.element.strip().lower() != spec.absorber.lower():
        return f"element {s.element} in the file, the model is for {model}"
    if s.edge and _edge_name(s.edge) != _edge_name(spec.edge):
        return f"edge {s.edge} in the file, the model is for {model}"
    return None


def _check_edge_energy(s: Spectrum, e0: float, spec: ProcessSpec) -> str | None:
    if abs(e0 - spec.edge_energy) <= EDGE_TOLERANCE_EV:
        return None
    hint = ""
    try:
        import xraydb

        el, ed = xraydb.guess_edge(e0) if e0 > 100 else (None, None)
        if el:
            hint = f"; it looks like {el} {ed}"
    except Exception:  # guess_edge fails outside its tables: no hint then
        pass
    if e0 < 100 and spec.edge_energy > 1000:
        hint = "; energies in keV without a unit?"
    return (
        f"edge at {e0:.1f} eV does not match the model's {spec.absorber} {spec.edge} edge "
        f"({spec.edge_energy:.0f} eV ± {EDGE_TOLERANCE_EV:.0f}){hint}"
    )


def _check_ranges(s: Spectrum, e0: float, spec: ProcessSpec, res: Result) -> str | None:
    from mlxas.spectra.xafsmath import ETOK

    n_pre = int(np.sum(s.energy < e0 - 20.0))
    if n_pre < MIN_PRE_EDGE_POINTS:
        return (
            f"no pre-edge region: {n_pre} points below E0 - 20 eV "
            f"(need {MIN_PRE_EDGE_POINTS}; E0 = {e0:.1f} eV, data start at {s.energy[0]:.1f} eV)"
        )
    kmax = math.sqrt(ETOK * max(float(s.energy[-1]) - e0, 0.0))
    res.k_max = kmax
    if kmax < MIN_K:
        return f"data end at k = {kmax:.2f} 1/Å: no EXAFS region to analyse"
    if spec.k_required is not None:
        need = spec.k_required[1]
        dk = float(spec.features["k_grid"]["dk"])
        if kmax < need - 0.5 * dk:
            msg = (
                f"k-range too short: data end at k = {kmax:.2f} 1/Å, "
                f"the model reads chi(k) to {need:.2f} 1/Å"
            )
            if not spec.allow_short_k:
                return msg + " (--allow-short-k runs it with chi = 0 beyond the data)"
            res.notes.append("warning: " + msg + "; chi set to 0 beyond the data")
    return None


def _e0_of(s: Spectrum) -> float:
    """larch's find_e0; NaN when it fails on a pathological spectrum (refused later)."""
    from mlxas.spectra.xafsmath import find_e0  # larch's, without importing larch

    try:
        return float(find_e0(s.energy, s.mu))
    except (ValueError, IndexError, FloatingPointError):
        return math.nan


#: In a series, a spectrum whose steepest point lies further than this (eV) from the
#: series E0 gets its own E0 from larch's find_e0.
SERIES_E0_TOLERANCE_EV = 2.0


def _edge_energies(spectra: list[Spectrum], spec: ProcessSpec) -> dict[int, float]:
    """E0 (eV) of each spectrum, by index.

    ``e0 = "file"``: larch's ``find_e0`` on every spectrum.  A number: that value.
    ``e0 = "auto"``: spectra on one energy grid (at least ``min_batch`` of them: a
    quick-EXAFS run, a map) share one E0, larch's ``find_e0`` on their mean spectrum;
    the noise of a single scan then does not move E0 from scan to scan, and the whole
    series shares one background factorisation.  A spectrum whose steepest rise is more
    than :data:`SERIES_E0_TOLERANCE_EV` away from that E0 (a different sample on the same
    scan grid) gets its own ``find_e0``.  Smaller groups: ``find_e0`` per spectrum.
    """
    if isinstance(spec.e0, int | float) and not isinstance(spec.e0, bool):
        return {i: float(spec.e0) for i in range(len(spectra))}
    if spec.e0 == "file":
        return {i: _e0_of(s) for i, s in enumerate(spectra)}
    e0s: dict[int, float] = {}
    by_grid: dict[bytes, list[int]] = {}
    for i, s in enumerate(spectra):
        by_grid.setdefault(s.energy.tobytes(), []).append(i)
    for idx in by_grid.values():
        if len(idx) < spec.min_batch:
            e0s.update({i: _e0_of(spectra[i]) for i in idx})
            continue
        s0 = spectra[idx[0]]
        mu = np.stack([spectra[i].mu for i in idx])
        common = _e0_of(Spectrum(s0.source, s0.energy, mu.mean(axis=0), s0.mu_from))
        steepest = _steepest_rise(s0.energy, mu, common)
        for j, i in enumerate(idx):
            near = abs(steepest[j] - common) <= SERIES_E0_TOLERANCE_EV
            e0s[i] = common if near else _e0_of(spectra[i])
    return e0s


def _steepest_rise(energy: np.ndarray, mu: np.ndarray, e0: float, half_width: float = 30.0):
    """Energy of the largest dmu/dE within ``e0 ± half_width`` eV, for each row of ``mu``."""
    sel = np.nonzero(np.abs(energy - e0) <= half_width)[0]
    if len(sel) < 3:
        return np.full(len(mu), e0)
    lo, hi = max(sel[0] - 1, 0), min(sel[-1] + 2, len(energy))
    e = energy[lo:hi]
    d = np.gradient(mu[:, lo:hi], e, axis=1)
    return e[np.argmax(d, axis=1)]


def process_paths(paths: list[str], spec: ProcessSpec) -> tuple[list[Result], np.ndarray]:
    """Results for every spectrum in ``paths`` and the model inputs of the accepted ones
    (rows in the order of the results whose status is 'ok')."""
    import warnings

    reader = _reader(spec)
    items: list[Spectrum | Result] = []
    for p in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                items.extend(reader.read(p))
        except SpectrumError as err:
            items.append(Result(err.source).refuse(err.reason))
        except Exception as err:  # one unreadable file must not stop a batch
            items.append(Result(str(p)).refuse(f"cannot read ({type(err).__name__}: {err})"))
    return process_spectra(items, spec)


def process_spectra(
    items: list[Spectrum | Result], spec: ProcessSpec
) -> tuple[list[Result], np.ndarray]:
    """As :func:`process_paths` for spectra already read and checked
    (:func:`mlxas.spectra.measured.check_arrays`), such as arrays sent to ``mlxas serve``.
    A :class:`Result` among ``items`` is a file that could not be read; it keeps its place."""
    import warnings

    from mlxas.spectra.background import (
        grid_key,
        larch_background,
        operator_for,
        pre_edge_batch,
    )
    from mlxas.spectra.features import compute_features
    from mlxas.spectra.grids import interp_on_grid, k_grid

    results: list[Result] = []
    spectra: list[tuple[Result, Spectrum]] = []
    for s in items:
        if isinstance(s, Result):
            results.append(s)
            continue
        res = Result(s.source, mu_from=s.mu_from, notes=list(s.notes))
        results.append(res)
        bad = _check_header(s, spec)
        if bad:
            res.refuse(bad)
        else:
            spectra.append((res, s))

    e0s = _edge_energies([s for _, s in spectra], spec)
    accepted: list[int] = []
    for i, (res, s) in enumerate(spectra):
        e0 = e0s[i]
        res.e0 = e0
        if not math.isfinite(e0):
            res.refuse("larch's find_e0 found no edge")
            continue
        bad = _check_edge_energy(s, e0, spec) or _check_ranges(s, e0, spec, res)
        if bad:
            res.refuse(bad)
        else:
            accepted.append(i)

    # Background removal: batched per (grid, E0) group, larch for the rest.
    groups: dict[tuple[bytes, float], list[int]] = {}
    for i in accepted:
        groups.setdefault((spectra[i][1].energy.tobytes(), e0s[i]), []).append(i)
    kq = k_grid(spec.features["k_grid"])
    chi_rows: dict[int, np.ndarray] = {}
    for (_, e0), idx in groups.items():
        energy = spectra[idx[0]][1].energy
        try:
            # Files arriving one by one from one scan (watch mode) share the
            # factorisation too, once min_batch of them have been seen by this process.
            key = (grid_key(energy), e0, spec.background)
            if len(_SEEN) > 100_000:  # a long-running watch over many different grids
                _SEEN.clear()
            _SEEN[key] += len(idx)
            if len(idx) >= spec.min_batch or _SEEN[key] >= spec.min_batch:
                mu = np.stack([spectra[i][1].mu for i in idx])
                pre = pre_edge_batch(energy, mu, e0)
                steps = pre.edge_step
                op = operator_for(energy, e0, spec.background)
                good = steps > 0
                chi = op.apply(mu, np.where(good, steps, 1.0))
                for j, i in enumerate(idx):
                    spectra[i][0].edge_step = float(steps[j])
                    spectra[i][0].background = "batched"
                    if good[j]:
                        chi_rows[i] = interp_on_grid(op.k, chi[j], kq)
            else:
                for i in idx:
                    s = spectra[i][1]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        k, chi, _, step = larch_background(s.energy, s.mu, e0, spec.background)
                    spectra[i][0].edge_step = step
                    spectra[i][0].background = "larch"
                    if step > 0:
                        chi_rows[i] = interp_on_grid(k, chi, kq)
        except Exception as err:  # larch or the solver failing on one group: refuse it
            for i in idx:
                spectra[i][0].refuse(f"background removal failed ({type(err).__name__}: {err})")
            continue
        for i in idx:
            res = spectra[i][0]
            if i in chi_rows and not np.all(np.isfinite(chi_rows[i])):
                del chi_rows[i]
                res.refuse("background removal gave NaN or infinite chi(k)")
            elif res.status == "ok" and i not in chi_rows:
                res.refuse(
                    f"edge step is {res.edge_step:.3g}: mu does not rise at the edge "
                    f"({spectra[i][1].mu_from}; inverted or not an absorption edge?)"
                )

    ok = [i for i in accepted if i in chi_rows and spectra[i][0].status == "ok"]
    if not ok:
        return results, np.zeros((0,), dtype=np.float32)
    chi = np.stack([chi_rows[i] for i in ok])
    edge = None
    if spec.features["xanes"]["enabled"]:
        from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid

        edge = edge_on_grid(
            [EdgeSpectrum(spectra[i][1].energy, spectra[i][1].mu, e0=e0s[i]) for i in ok],
            spec.features["xanes"],
        )
    x = compute_features(chi, spec.features, edge)[spec.input]
    # Results of refused spectra keep their place; inputs follow the accepted ones in order.
    order = {id(spectra[i][0]): n for n, i in enumerate(ok)}
    rows = [order[id(r)] for r in results if r.status == "ok"]
    return results, x[rows]
