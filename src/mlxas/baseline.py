"""The conventional baseline: a first-shell EXAFS fit with larch's ``feffit``.

An expert reads CN and R off a measured spectrum by fitting one FEFF scattering path, the
first shell of a reference crystal, to chi(R) over a window around that shell.  mlxas
runs that fit on the same spectra as its models, so the two can be compared file by file
(``mlxas baseline``, ``benchmarks/bench_predict_foils.py``).

The path comes from the FEFF engine mlxas uses for its training spectra (FEFF8L): a
cluster cut from the element's reference crystal in ASE (fcc Cu, Ni, Pt, Au, ...), one
FEFF run with ``RPATH`` just past the first shell.  ``S02 0`` makes FEFF compute S0² from
atomic overlap integrals; that value is the fit's fixed S0² unless the user gives one.
The run's ``feff0001.dat`` is cached under a key that is the hash of the exact
``feff.inp`` and the engine version, so it is computed once per element, edge and
settings.

Fitted parameters (larch ``feffit``, path degeneracy set to 1):

- ``n``: coordination number N; the path amplitude is S0²·N with S0² fixed;
- ``delta_r``: R − R_eff (Å); R = R_eff + ΔR;
- ``sigma2``: Debye–Waller factor σ² (Å²);
- ``delta_e0``: E0 shift (eV) between the data's E0 (larch ``find_e0``) and FEFF's.

Units: k in Å⁻¹, R in Å, σ² in Å², energies in eV, times in s.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BaselineError",
    "BaselineResult",
    "FitSettings",
    "ReferencePath",
    "default_cache_dir",
    "first_shell_path",
    "fit_chi",
    "fit_files",
    "read_reference_path",
]

#: Largest distance (eV) between a spectrum's E0 and the tabulated edge of the element.
EDGE_TOLERANCE_EV = 50.0
#: Cluster radius (Å) of the reference FEFF run, at least this and twice the first shell:
#: the muffin-tin potentials need the neighbours of the first shell too.
MIN_CLUSTER_RADIUS = 5.5
#: FEFF's path file of the first shell, and the marker written once a reference run passed.
PATH_FILE = "feff0001.dat"
MARKER = "reference.json"


class BaselineError(RuntimeError):
    """The baseline cannot run: no reference crystal, a failed FEFF run, a bad path file."""


@dataclass(frozen=True)
class ReferencePath:
    """A first-shell FEFF path ready for ``feffit``.

    ``reff``: half path length (Å); ``degeneracy``: neighbours in the shell; ``s02``: S0²
    computed by FEFF (NaN for a user's path file without it); ``feff_seconds``: wall time
    of the FEFF run (0 when read from the cache).
    """

    file: Path
    element: str
    edge: str
    reff: float
    degeneracy: float
    s02: float
    lattice_constant: float | None = None
    engine: str = ""
    engine_version: str = ""
    feff_seconds: float = 0.0
    cached: bool = False


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


# --- the reference path -------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where reference paths are kept: ``$MLXAS_CACHE/feff_paths`` or a per-user temp folder."""
    root = os.environ.get("MLXAS_CACHE")
    if root:
        return Path(root) / "feff_paths"
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"mlxas-{user}" / "feff_paths"


def _reference_crystal(element: str, lattice_constant: float | None):
    from ase.build import bulk
    from ase.data import atomic_numbers, reference_states

    if element not in atomic_numbers:
        raise BaselineError(f"unknown element {element!r}")
    state = reference_states[atomic_numbers[element]]
    if state is None or state.get("symmetry") not in ("fcc", "bcc", "hcp", "diamond", "sc"):
        raise BaselineError(
            f"ASE has no reference crystal for {element}; give a FEFF path file (--path)"
        )
    try:
        return bulk(element, a=lattice_constant) if lattice_constant else bulk(element)
    except (ValueError, KeyError) as err:
        raise BaselineError(f"no reference crystal for {element} ({err})") from None


def _feff_input(element: str, edge: str, lattice_constant: float | None, engine) -> str:
    from mlxas.feff.cards import merged_cards
    from mlxas.feff.inputs import cluster_around, feff_input_text

    crystal = _reference_crystal(element, lattice_constant)
    _, probe = cluster_around(crystal, 0, 4.5)
    if len(probe) < 2:
        raise BaselineError(f"the reference crystal of {element} has no neighbour within 4.5 Å")
    r1 = float(np.linalg.norm(probe[1]))
    symbols, positions = cluster_around(crystal, 0, max(MIN_CLUSTER_RADIUS, 2.0 * r1))
    cards = merged_cards(
        engine.name,
        edge,
        {
            # The first shell only, single scattering.
            "RPATH": round(r1 + 0.1, 3),
            "NLEGS": 2,
            # FEFF computes S0² from atomic overlap integrals.
            "S02": 0,
            # ff2x print level 3 writes the path file feff0001.dat.
            "PRINT": [1, 0, 0, 0, 0, 3],
            "DEBYE": None,
            "SIG2": None,
        },
    )
    title = (
        f"mlxas baseline: {element} {edge} first shell of the {element} reference crystal, "
        f"R1 = {r1:.4f}"
    )
    return feff_input_text(symbols, positions, cards, title)


_S02_LINE = re.compile(r"S02\s*=?\s*([0-9.]+)", re.IGNORECASE)


def _feff_s02(rundir: Path) -> float:
    """S0² that FEFF used, from the header of ``chi.dat`` (or the log)."""
    for name in ("chi.dat", "feff.log"):
        p = rundir / name
        if p.is_file():
            m = _S02_LINE.search(p.read_text(errors="replace"))
            if m:
                return float(m.group(1))
    return math.nan


def read_reference_path(
    file: str | Path, element: str = "", edge: str = "", s02: float = math.nan
) -> ReferencePath:
    """A user's FEFF path file (``feffNNNN.dat``) as a :class:`ReferencePath`."""
    from larch.xafs.feffdat import FeffDatFile

    file = Path(file)
    if not file.is_file():
        raise BaselineError(f"{file}: no such FEFF path file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dat = FeffDatFile(str(file))
    except Exception as err:  # larch raises several kinds on a damaged file
        raise BaselineError(f"{file}: not a FEFF path file ({type(err).__name__}: {err})") from None
    if int(dat.nleg) != 2:
        raise BaselineError(
            f"{file}: a path with {int(dat.nleg)} legs; the baseline fits a single-scattering "
            "first-shell path"
        )
    return ReferencePath(
        file=file, element=element, edge=edge, reff=float(dat.reff),
        degeneracy=float(dat.degen), s02=s02,
    )  # fmt: skip


def first_shell_path(
    element: str,
    edge: str = "K",
    cache_dir: str | Path | None = None,
    lattice_constant: float | None = None,
    engine: str = "feff8l",
    timeout: float = 300.0,
) -> ReferencePath:
    """The first-shell path of ``element``'s reference crystal, computed by FEFF once.

    ``lattice_constant`` (Å): None takes ASE's reference value (fitted R does not depend
    on it; it only sets R_eff).  The run folder ``<cache>/<element>_<edge>_<hash>/`` keeps
    ``feff.inp``, ``feff.log``, ``chi.dat`` and ``feff0001.dat``; a folder whose marker
    holds the same input hash is reused.
    """
    from mlxas.feff.checks import RunFailure, check_log
    from mlxas.feff.engines import EngineTimeout, get_engine
    from mlxas.simulation.inputs import input_hash

    eng = get_engine(engine)
    edge = edge.strip().upper()
    text = _feff_input(element, edge, lattice_constant, eng)
    key = input_hash(eng, text)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / f"{element}_{edge}_{key}"
    marker = final / MARKER
    if marker.is_file() and (final / PATH_FILE).is_file():
        try:
            info = json.loads(marker.read_text())
        except ValueError:
            info = {}
        if info.get("input_hash") == key:
            path = read_reference_path(final / PATH_FILE, element, edge, info["s02"])
            return ReferencePath(
                **{**asdict(path), "lattice_constant": info.get("lattice_constant"),
                   "engine": eng.name, "engine_version": eng.version, "cached": True},
            )  # fmt: skip

    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{element}_{edge}_", dir=root))
    try:
        (work / "feff.inp").write_text(text)
        try:
            seconds = eng.run(work, timeout, work / "feff.log")
            check_log((work / "feff.log").read_text(errors="replace"))
        except (EngineTimeout, RunFailure) as err:
            raise BaselineError(
                f"FEFF ({eng.label}) failed for the {element} {edge} reference path: {err} "
                f"(run folder {work})"
            ) from None
        if not (work / PATH_FILE).is_file():
            raise BaselineError(
                f"FEFF ({eng.label}) wrote no {PATH_FILE} for the {element} {edge} reference "
                f"(run folder {work})"
            )
        s02 = _feff_s02(work)
        path = read_reference_path(work / PATH_FILE, element, edge, s02)
        for p in work.iterdir():  # keep what the fit and a reader of the run need
            if p.name not in ("feff.inp", "feff.log", "chi.dat", PATH_FILE):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        info = {
            "element": element, "edge": edge, "input_hash": key, "engine": eng.name,
            "engine_version": eng.version, "s02": s02, "reff": path.reff,
            "degeneracy": path.degeneracy, "lattice_constant": lattice_constant,
            "feff_seconds": seconds,
        }  # fmt: skip
        (work / MARKER).write_text(json.dumps(info, indent=1))
        if final.exists():  # another process finished the same run first
            shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ReferencePath(
        file=final / PATH_FILE, element=element, edge=edge, reff=path.reff,
        degeneracy=path.degeneracy, s02=s02, lattice_constant=lattice_constant,
        engine=eng.name, engine_version=eng.version, feff_seconds=seconds,
    )  # fmt: skip


# --- the fit ------------------------------------------------------------------------------


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
    import xraydb

    from mlxas.spectra.background import BackgroundSettings, larch_background
    from mlxas.spectra.measured import SpectrumError, read_spectra

    settings = settings or FitSettings()
    background = background or BackgroundSettings()
    paths: dict[tuple[str, str], ReferencePath] = {}
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
            res = BaselineResult(source=s.source, notes=list(s.notes))
            results.append(res)
            el = element or s.element
            ed = _edge_name(edge or s.edge or ("K" if el else ""))
            if not el:
                res.refuse("no element in the file header; give the element (--element)")
                continue
            if element and s.element and s.element.strip().lower() != element.lower():
                res.refuse(f"element {s.element} in the file, the fit is for {element}")
                continue
            if edge and s.edge and _edge_name(s.edge) != _edge_name(edge):
                res.refuse(f"edge {s.edge} in the file, the fit is for {element or el} {edge}")
                continue
            el = el.strip().capitalize()
            try:
                edge_energy = float(xraydb.xray_edge(el, ed).energy)
            except Exception:  # xraydb raises several kinds for unknown elements and edges
                res.refuse(f"unknown absorption edge {el} {ed}")
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    k, chi, e0, step = larch_background(s.energy, s.mu, None, background)
            except Exception as err:  # larch failing on a pathological spectrum
                res.refuse(f"background removal failed ({type(err).__name__}: {err})")
                continue
            res.e0, res.edge_step = e0, step
            if abs(e0 - edge_energy) > EDGE_TOLERANCE_EV:
                res.refuse(
                    f"edge at {e0:.1f} eV does not match {el} {ed} ({edge_energy:.0f} eV "
                    f"± {EDGE_TOLERANCE_EV:.0f})"
                )
                continue
            if not step > 0:
                res.refuse(f"edge step is {step:.3g}: mu does not rise at the edge")
                continue
            key = (el, ed)
            if key not in paths:
                paths[key] = (
                    read_reference_path(path_file, el, ed)
                    if path_file is not None
                    else first_shell_path(el, ed, cache_dir=cache_dir)
                )
            fit = fit_chi(k, chi, paths[key], settings, source=s.source)
            fit.notes = res.notes + fit.notes
            fit.e0, fit.edge_step = e0, step
            fit.seconds_total = time.perf_counter() - start
            results[-1] = fit
    return results


# --- output -------------------------------------------------------------------------------

COLUMNS = (
    "source", "status", "reason", "cn", "cn_err", "r", "r_err", "sigma2", "sigma2_err",
    "delta_e0", "delta_e0_err", "r_factor", "chi2_reduced", "n_independent", "s02", "kmin",
    "kmax", "rmin", "rmax", "e0", "edge_step", "seconds", "seconds_total", "notes",
)  # fmt: skip


def format_table(results: Sequence[BaselineResult]) -> str:
    """A terminal table: CN ± err, R ± err (Å), σ² (Å²), ΔE0 (eV), R-factor, fit time."""
    width = max([len("file")] + [len(r.source) for r in results])
    head = (
        f"{'file':<{width}}  {'CN':>11}  {'R (Å)':>15}  {'σ² (Å²)':>8}  {'ΔE0 (eV)':>8}  "
        f"{'R-factor':>8}  {'fit (s)':>7}"
    )
    lines = [head]
    for r in results:
        if r.status != "ok":
            lines.append(f"{r.source:<{width}}  refused: {r.reason}")
            continue
        lines.append(
            f"{r.source:<{width}}  {r.cn:5.2f} ± {r.cn_err:4.2f}  {r.r:6.4f} ± {r.r_err:6.4f}  "
            f"{r.sigma2:8.5f}  {r.delta_e0:8.2f}  {r.r_factor:8.4f}  {r.seconds:7.3f}"
        )
    return "\n".join(lines)


def output_format(out: str | Path) -> str:
    """csv, json or jsonl from the file name, as ``mlxas predict`` reads it; else an error."""
    from mlxas.predict.output import FORMATS, guess_format

    try:
        return guess_format(Path(out))
    except ValueError:
        known = ", ".join(f".{f}" for f in FORMATS)
        raise BaselineError(f"{out}: unknown output format; name it {known}") from None


def write_results(results: Sequence[BaselineResult], out: str | Path, fmt: str | None = None):
    """Write CSV, JSON (``{"results": [...]}``) or JSON Lines, by ``fmt`` or the suffix."""
    import csv

    out = Path(out)
    fmt = fmt or output_format(out)
    rows = [r.as_dict() for r in results]
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_text(json.dumps({"results": rows}, indent=1) + "\n")
    elif fmt == "jsonl":
        out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})


# --- command ------------------------------------------------------------------------------


def run_command(a: Any) -> int:
    """``mlxas baseline``: fit every spectrum, print a table, write ``--out``.

    Exit status 0 when every spectrum was fitted, 1 when some were refused, 2 when none.
    """
    import sys

    settings = FitSettings(
        kmin=a.kmin, kmax=a.kmax, kweight=a.kweight, dk=a.dk, rmin=a.rmin, rmax=a.rmax,
        s02=a.s02,
    )  # fmt: skip
    # Refuse an output name without a known format before spending time on the fits.
    fmt = output_format(a.out) if a.out else None
    start = time.perf_counter()
    results = fit_files(
        a.files, element=a.element, edge=a.edge, settings=settings, cache_dir=a.cache,
        path_file=a.path, mu_label=a.mu, energy_label=a.energy, repair=a.repair,
    )  # fmt: skip
    refused = [r for r in results if r.status != "ok"]
    if a.out:
        write_results(results, a.out, fmt)
    if len(results) == 1 and refused:
        raise BaselineError(f"{refused[0].source}: {refused[0].reason}")
    if not a.quiet:
        print(format_table(results))
    for r in refused:
        print(f"mlxas: refused {r.source}: {r.reason}", file=sys.stderr)
    print(
        f"mlxas: {len(results) - len(refused)} fitted, {len(refused)} refused in "
        f"{time.perf_counter() - start:.2f} s",
        file=sys.stderr,
    )
    if not refused:
        return 0
    return 2 if len(refused) == len(results) else 1
