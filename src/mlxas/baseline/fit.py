"""The first-shell fit: larch's ``feffit`` of one path to chi(R), on chi(k) or on files.

Units: k in Å⁻¹, R in Å, σ² in Å², energies in eV, times in s.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlxas.baseline.reference import (
    BaselineError,
    ReferencePath,
    first_shell_path,
    read_reference_path,
)

__all__ = ["EDGE_TOLERANCE_EV", "BaselineResult", "FitSettings", "fit_chi", "fit_files"]

#: Largest distance (eV) between a spectrum's E0 and the tabulated edge of the element.
EDGE_TOLERANCE_EV = 50.0


@dataclass(frozen=True)
class FitSettings:
    """Fit window and transform.

    kmin, kmax (Å⁻¹): k-range of the Fourier transform (kmax is lowered to the end of the
    data, with a note); kweight: k-weight of the fit; dk (Å⁻¹): window sill; rmin, rmax
    (Å): fit window in R, None for ``reff − 0.9`` and ``reff + 0.45`` (the first-shell
    peak of an fcc metal and none of the second); s02: fixed S0², None for FEFF's value
    (1.0 if the path file does not hold one).
    """

    kmin: float = 3.0
    kmax: float = 14.0
    kweight: float = 2.0
    dk: float = 1.0
    window: str = "hanning"
    rmin: float | None = None
    rmax: float | None = None
    s02: float | None = None

    def __post_init__(self) -> None:
        numbers = {"kmin": self.kmin, "kmax": self.kmax, "kweight": self.kweight, "dk": self.dk}
        numbers |= {k: v for k, v in (("rmin", self.rmin), ("rmax", self.rmax), ("s02", self.s02))
                    if v is not None}  # fmt: skip
        for name, value in numbers.items():
            if not math.isfinite(value):
                raise BaselineError(f"{name} {value}: not a number")
        if not 0 <= self.kmin < self.kmax:
            raise BaselineError(f"fit k-range is empty: kmin {self.kmin:g}, kmax {self.kmax:g} Å⁻¹")
        if self.dk < 0:
            raise BaselineError(f"dk {self.dk:g}: the window sill cannot be negative")
        if self.s02 is not None and self.s02 <= 0:
            raise BaselineError(f"s02 {self.s02:g}: must be more than 0")

    def window_for(self, reff: float) -> tuple[float, float]:
        """The R window (Å) used with a path of half length ``reff``."""
        rmin = reff - 0.9 if self.rmin is None else float(self.rmin)
        rmax = reff + 0.45 if self.rmax is None else float(self.rmax)
        if not 0 <= rmin < rmax:
            raise BaselineError(f"fit window in R is empty: rmin {rmin:g} Å, rmax {rmax:g} Å")
        return rmin, rmax


@dataclass
class BaselineResult:
    """One spectrum's fit.  ``status`` is 'ok' or 'refused' (then ``reason`` says why).

    ``cn``, ``r`` (Å), ``sigma2`` (Å²), ``delta_e0`` (eV) with their 1σ errors from the
    fit; ``r_factor`` and ``chi2_reduced`` judge the fit; ``seconds``: the feffit call;
    ``seconds_total``: reading, background removal and fit.
    """

    source: str
    status: str = "ok"
    reason: str = ""
    cn: float = math.nan
    cn_err: float = math.nan
    r: float = math.nan
    r_err: float = math.nan
    sigma2: float = math.nan
    sigma2_err: float = math.nan
    delta_e0: float = math.nan
    delta_e0_err: float = math.nan
    r_factor: float = math.nan
    chi2_reduced: float = math.nan
    n_independent: float = math.nan
    s02: float = math.nan
    kmin: float = math.nan
    kmax: float = math.nan
    rmin: float = math.nan
    rmax: float = math.nan
    e0: float = math.nan
    edge_step: float = math.nan
    seconds: float = math.nan
    seconds_total: float = math.nan
    notes: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> BaselineResult:
        self.status, self.reason = "refused", reason
        return self

    def as_dict(self) -> dict[str, Any]:
        """Plain values (NaN as None, notes joined by '; ')."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "notes":
                value = "; ".join(value)
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[key] = value
        return out


def _finite(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def fit_chi(
    k: np.ndarray,
    chi: np.ndarray,
    path: ReferencePath,
    settings: FitSettings | None = None,
    source: str = "",
) -> BaselineResult:
    """Fit N, ΔR, σ² and ΔE0 of the first shell to one unweighted chi(k) (k in Å⁻¹).

    Never raises for a bad spectrum: the result is refused with the reason.
    """
    from larch import Group
    from larch.fitting import param, param_group
    from larch.xafs import feffit, feffit_dataset, feffit_transform, feffpath

    settings = settings or FitSettings()
    res = BaselineResult(source=source)
    k = np.asarray(k, dtype=float)
    chi = np.asarray(chi, dtype=float)
    if k.ndim != 1 or k.shape != chi.shape or len(k) < 10:
        return res.refuse(f"chi(k) needs matching 1-D arrays of at least 10 points: {chi.shape}")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(chi))):
        return res.refuse("NaN or infinite values in chi(k)")
    if np.any(np.diff(k) <= 0):
        return res.refuse("k does not increase")
    kmax = min(float(settings.kmax), float(k[-1]))
    if kmax < settings.kmax - 1e-9:
        res.notes.append(f"k-range of the fit ends at the data: {kmax:.2f} 1/Å")
    if kmax - settings.kmin < 2 * settings.dk + 2.0:
        return res.refuse(
            f"k-range too short for the fit: data end at k = {k[-1]:.2f} 1/Å "
            f"(fit from {settings.kmin:g} 1/Å)"
        )
    rmin, rmax = settings.window_for(path.reff)
    s02 = settings.s02 if settings.s02 is not None else path.s02
    if not math.isfinite(s02):
        s02 = 1.0
        res.notes.append("S0² = 1: the path file holds no S0² and none was given")
    res.s02, res.kmin, res.kmax, res.rmin, res.rmax = s02, settings.kmin, kmax, rmin, rmax

    params = param_group(
        n=param(path.degeneracy, vary=True),
        s02=param(s02, vary=False),
        delta_e0=param(0.0, vary=True),
        delta_r=param(0.0, vary=True),
        sigma2=param(0.005, vary=True),
    )
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fpath = feffpath(
                str(path.file), degen=1, s02="n*s02", e0="delta_e0", deltar="delta_r",
                sigma2="sigma2",
            )  # fmt: skip
            transform = feffit_transform(
                kmin=settings.kmin, kmax=kmax, kweight=settings.kweight, dk=settings.dk,
                window=settings.window, rmin=rmin, rmax=rmax,
            )  # fmt: skip
            dataset = feffit_dataset(
                data=Group(k=k, chi=chi), paths={"first_shell": fpath}, transform=transform
            )
            out = feffit(params, dataset)
    except Exception as err:  # the fit failing on one spectrum must not stop a batch
        res.seconds = time.perf_counter() - start
        return res.refuse(f"feffit failed ({type(err).__name__}: {err})")
    res.seconds = time.perf_counter() - start
    p = out.params
    res.cn, res.cn_err = _finite(p["n"].value), _finite(p["n"].stderr)
    res.r = path.reff + _finite(p["delta_r"].value)
    res.r_err = _finite(p["delta_r"].stderr)
    res.sigma2, res.sigma2_err = _finite(p["sigma2"].value), _finite(p["sigma2"].stderr)
    res.delta_e0, res.delta_e0_err = _finite(p["delta_e0"].value), _finite(p["delta_e0"].stderr)
    res.r_factor = _finite(getattr(out, "rfactor", math.nan))
    res.chi2_reduced = _finite(getattr(out, "chi2_reduced", math.nan))
    res.n_independent = _finite(getattr(out, "n_independent", math.nan))
    if not (math.isfinite(res.cn) and math.isfinite(res.r)):
        return res.refuse("feffit returned no finite N and R")
    if not math.isfinite(res.cn_err):
        res.notes.append("uncertainties not estimated (singular fit)")
    if abs(res.delta_e0) > 15.0:
        res.notes.append(f"warning: |ΔE0| = {abs(res.delta_e0):.1f} eV is unphysically large")
    return res


def _edge_name(edge: str | None) -> str:
    return (edge or "").strip().upper().replace("_", "").replace("-", "")


def fit_files(
    files: Iterable[str | Path],
    element: str | None = None,
    edge: str | None = None,
    settings: FitSettings | None = None,
    cache_dir: str | Path | None = None,
    path_file: str | Path | None = None,
    mu_label: str | None = None,
    energy_label: str | None = None,
    repair: bool = False,
    background: Any = None,
) -> list[BaselineResult]:
    """First-shell fits of measured files (XDI, Athena projects, column files).

    Reading and checks are those of ``mlxas predict`` (:mod:`mlxas.spectra.measured`);
    E0 is larch's ``find_e0``, the background larch's ``pre_edge`` + ``autobk`` with
    ``background`` (:class:`~mlxas.spectra.background.BackgroundSettings`, larch's
    defaults).  ``element``/``edge`` default to the file headers; a header that disagrees
    with a given element or edge is refused.  ``path_file`` replaces the FEFF reference
    run by a user's first-shell path file.
    """
    from mlxas.spectra.background import BackgroundSettings
    from mlxas.spectra.measured import SpectrumError, read_spectra

    settings = settings or FitSettings()
    background = background or BackgroundSettings()
    paths: dict[tuple[str, str], ReferencePath] = {}

    def reference(el: str, ed: str) -> ReferencePath:
        if (el, ed) not in paths:
            paths[el, ed] = (
                read_reference_path(path_file, el, ed)
                if path_file is not None
                else first_shell_path(el, ed, cache_dir=cache_dir)
            )
        return paths[el, ed]

    results: list[BaselineResult] = []
    for f in files:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spectra = read_spectra(f, mu_label, energy_label, repair)
        except SpectrumError as err:
            results.append(BaselineResult(source=err.source).refuse(err.reason))
            continue
        except Exception as err:  # one unreadable file must not stop a batch
            results.append(
                BaselineResult(source=str(f)).refuse(f"cannot read ({type(err).__name__}: {err})")
            )
            continue
        for s in spectra:
            res = _fit_spectrum(s, element, edge, settings, background, reference)
            res.seconds_total = time.perf_counter() - start
            results.append(res)
    return results


def _fit_spectrum(s, element, edge, settings, background, reference) -> BaselineResult:
    """Check one measured spectrum against the element and edge, remove its background
    and fit it; ``reference(element, edge)`` gives the path.  Refused with the reason."""
    import xraydb

    from mlxas.spectra.background import larch_background

    res = BaselineResult(source=s.source, notes=list(s.notes))
    el = element or s.element
    ed = _edge_name(edge or s.edge or ("K" if el else ""))
    if not el:
        return res.refuse("no element in the file header; give the element (--element)")
    if element and s.element and s.element.strip().lower() != element.lower():
        return res.refuse(f"element {s.element} in the file, the fit is for {element}")
    if edge and s.edge and _edge_name(s.edge) != _edge_name(edge):
        return res.refuse(f"edge {s.edge} in the file, the fit is for {element or el} {edge}")
    el = el.strip().capitalize()
    try:
        edge_energy = float(xraydb.xray_edge(el, ed).energy)
    except Exception:  # xraydb raises several kinds for unknown elements and edges
        return res.refuse(f"unknown absorption edge {el} {ed}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            k, chi, e0, step = larch_background(s.energy, s.mu, None, background)
    except Exception as err:  # larch failing on a pathological spectrum
        return res.refuse(f"background removal failed ({type(err).__name__}: {err})")
    res.e0, res.edge_step = e0, step
    if abs(e0 - edge_energy) > EDGE_TOLERANCE_EV:
        return res.refuse(
            f"edge at {e0:.1f} eV does not match {el} {ed} ({edge_energy:.0f} eV "
            f"± {EDGE_TOLERANCE_EV:.0f})"
        )
    if not step > 0:
        return res.refuse(f"edge step is {step:.3g}: mu does not rise at the edge")
    fit = fit_chi(k, chi, reference(el, ed), settings, source=s.source)
    fit.notes = res.notes + fit.notes
    fit.e0, fit.edge_step = e0, step
    return fit
