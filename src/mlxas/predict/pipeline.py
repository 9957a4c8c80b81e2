"""From measured files to model inputs: read, check, E0, background removal, features.

:func:`process_spectrum_paths` is the unit of work for a model on spectra (reached
through :func:`process_paths` and the spec's ``process_paths``): it runs in the calling
process for a few files and in worker processes for batches (everything it needs travels
in a picklable :class:`ProcessSpec`).  E0 of each spectrum is chosen by
:mod:`mlxas.predict.e0`.  Spectra that share an energy grid and E0 go through the
batched background removal of :mod:`mlxas.spectra.background`; the others through
larch's ``pre_edge`` + ``autobk``.

Units: energy and E0 in eV, k in Å⁻¹.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from mlxas.predict.e0 import edge_energies
from mlxas.predict.spec import (
    EDGE_TOLERANCE_EV,
    MIN_K,
    MIN_PRE_EDGE_POINTS,
    InputSpec,
    ProcessSpec,
    Result,
    edge_name,
    process_spec_from_card,
    required_k_range,
)
from mlxas.spectra.measured import SeriesReader, Spectrum, SpectrumError

__all__ = [
    "EDGE_TOLERANCE_EV",
    "MIN_K",
    "MIN_PRE_EDGE_POINTS",
    "ProcessSpec",
    "Result",
    "process_paths",
    "process_spec_from_card",
    "process_spectra",
    "process_spectrum_paths",
    "required_k_range",
]

# --- worker -----------------------------------------------------------------------------

_READERS: dict[tuple, SeriesReader] = {}
#: Spectra seen per (grid, E0, settings) in this process.
_SEEN: Counter = Counter()


def _reader(spec: ProcessSpec) -> SeriesReader:
    key = (spec.mu_label, spec.energy_label, spec.repair, spec.fast_read)
    if key not in _READERS:
        _READERS[key] = SeriesReader(spec.mu_label, spec.energy_label, spec.repair, spec.fast_read)
    return _READERS[key]


def _covers(spec: ProcessSpec) -> str:
    """The model's absorbers and edge, for messages: 'Mn K' or 'Ti, V, Cr K'."""
    return f"{', '.join(a for a, _ in spec.covered)} {spec.edge}"


def _check_header(s: Spectrum, spec: ProcessSpec) -> str | None:
    model = f"the model is for {_covers(spec)}"
    names = {a.lower() for a, _ in spec.covered}
    if s.element and s.element.strip().lower() not in names:
        return f"element {s.element} in the file, {model}"
    if s.edge and edge_name(s.edge) != edge_name(spec.edge):
        return f"edge {s.edge} in the file, {model}"
    return None


def _absorber_of(s: Spectrum, e0: float, spec: ProcessSpec) -> tuple[str, float]:
    """(element, tabulated edge energy in eV) of the covered absorber a spectrum is
    taken for: the file's element when the header names one, else the edge nearest E0."""
    if s.element:
        for a, energy in spec.covered:
            if a.lower() == s.element.strip().lower():
                return a, energy
    return min(spec.covered, key=lambda c: abs(c[1] - e0))


def _check_edge_energy(s: Spectrum, e0: float, spec: ProcessSpec) -> str | None:
    absorber, energy = _absorber_of(s, e0, spec)
    if abs(e0 - energy) <= EDGE_TOLERANCE_EV:
        return None
    hint = ""
    try:
        import xraydb

        el, ed = xraydb.guess_edge(e0) if e0 > 100 else (None, None)
        if el:
            hint = f"; it looks like {el} {ed}"
    except Exception:  # guess_edge fails outside its tables: no hint then
        pass
    if e0 < 100 and energy > 1000:
        hint = "; energies in keV without a unit?"
    if len(spec.covered) > 1 and not s.element:
        edges = ", ".join(f"{a} {e:.0f}" for a, e in spec.covered)
        return (
            f"edge at {e0:.1f} eV matches none of the model's {spec.edge} edges "
            f"({edges} eV; ± {EDGE_TOLERANCE_EV:.0f}){hint}"
        )
    return (
        f"edge at {e0:.1f} eV does not match the model's {absorber} {spec.edge} edge "
        f"({energy:.0f} eV ± {EDGE_TOLERANCE_EV:.0f}){hint}"
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
    if spec.edge_input:  # mu(E) near the edge: its span is checked at the final E0
        return None
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


def process_paths(paths: list[str], spec: InputSpec) -> tuple[list[Result], np.ndarray]:
    """Results for every file in ``paths`` and the model inputs of the accepted ones
    (rows in the order of the results whose status is 'ok'), read as the model's kind
    of input says (:meth:`InputSpec.process_paths`): spectra here, powder patterns in
    :mod:`mlxas.predict.patterns`."""
    return spec.process_paths(paths)


def process_spectrum_paths(paths: list[str], spec: ProcessSpec) -> tuple[list[Result], np.ndarray]:
    """:func:`process_paths` for a model on XAS spectra: read every file, then
    :func:`process_spectra`."""
    return process_spectra(_read(paths, spec), spec)


def process_spectra(
    items: list[Spectrum | Result], spec: ProcessSpec
) -> tuple[list[Result], np.ndarray]:
    """As :func:`process_paths` for spectra already read and checked
    (:func:`mlxas.spectra.measured.check_arrays`), such as arrays sent to ``mlxas serve``.
    A :class:`Result` among ``items`` is a file that could not be read; it keeps its place."""
    results, spectra = _check_headers(items, spec)
    e0s = edge_energies([s for _, s in spectra], spec)
    accepted = _accepted(spectra, e0s, spec)
    if spec.edge_input:  # mu(E) near the edge: no background removal, no chi(k)
        from mlxas.predict.edge_inputs import edge_inputs

        rows = edge_inputs(spectra, accepted, e0s, spec)
    else:
        rows = _backgrounds(spectra, accepted, e0s, spec)
    ok = [i for i in accepted if i in rows and spectra[i][0].status == "ok"]
    if not ok:
        return results, np.zeros((0,), dtype=np.float32)
    if spec.edge_input:
        x = np.stack([rows[i] for i in ok])
    else:
        x = _model_inputs(spectra, ok, rows, e0s, spec)
    # Results of refused spectra keep their place; inputs follow the accepted ones in order.
    order = {id(spectra[i][0]): n for n, i in enumerate(ok)}
    rows = [order[id(r)] for r in results if r.status == "ok"]
    return results, x[rows]


def _read(paths: list[str], spec: ProcessSpec) -> list[Spectrum | Result]:
    """The spectra of every file; a refused :class:`Result` for a file that cannot be read."""
    import warnings

    reader = _reader(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = reader.read_many(paths)
    items: list[Spectrum | Result] = []
    for p, got in zip(paths, read, strict=True):
        if isinstance(got, SpectrumError):
            items.append(Result(got.source).refuse(got.reason))
        elif isinstance(got, Exception):  # one unreadable file must not stop a batch
            items.append(Result(str(p)).refuse(f"cannot read ({type(got).__name__}: {got})"))
        else:
            items.extend(got)
    return items


def _check_headers(
    items: list[Spectrum | Result], spec: ProcessSpec
) -> tuple[list[Result], list[tuple]]:
    """One result per item; the spectra whose header fits the model."""
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
    return results, spectra


def _accepted(spectra: list[tuple], e0s: dict[int, float], spec: ProcessSpec) -> list[int]:
    """Indices of the spectra whose edge and ranges fit the model; the others refused."""
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
            continue
        accepted.append(i)
        if len(spec.covered) > 1:  # say which of the model's absorbers it was taken for
            how = "the file's header" if s.element else "E0"
            res.notes.append(f"absorber {_absorber_of(s, e0, spec)[0]} (from {how})")
    return accepted


def _backgrounds(
    spectra: list[tuple], accepted: list[int], e0s: dict[int, float], spec: ProcessSpec
) -> dict[int, np.ndarray]:
    """chi(k) on the model's k grid per accepted spectrum: batched per (grid, E0) group,
    larch for the rest; a group whose removal fails is refused with the reason."""
    from mlxas.spectra.grids import k_grid

    groups: dict[tuple[bytes, float], list[int]] = {}
    for i in accepted:
        groups.setdefault((spectra[i][1].energy.tobytes(), e0s[i]), []).append(i)
    kq = k_grid(spec.features["k_grid"])
    chi_rows: dict[int, np.ndarray] = {}
    for (_, e0), idx in groups.items():
        try:
            chi_rows.update(_group_background(spectra, idx, e0, kq, spec))
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
    return chi_rows


def _group_background(
    spectra: list[tuple], idx: list[int], e0: float, kq: np.ndarray, spec: ProcessSpec
) -> dict[int, np.ndarray]:
    """Background removal of spectra on one energy grid with one E0."""
    import warnings

    from mlxas.spectra.background import (
        grid_key,
        larch_background,
        operator_for,
        pre_edge_batch,
    )
    from mlxas.spectra.grids import interp_on_grid

    energy = spectra[idx[0]][1].energy
    out: dict[int, np.ndarray] = {}
    # Files arriving one by one from one scan (watch mode) share the factorisation too,
    # once min_batch of them have been seen by this process.
    key = (grid_key(energy), e0, spec.background)
    if len(_SEEN) > 100_000:  # a long-running watch over many different grids
        _SEEN.clear()
    _SEEN[key] += len(idx)
    if len(idx) >= spec.min_batch or _SEEN[key] >= spec.min_batch:
        mu = np.stack([spectra[i][1].mu for i in idx])
        steps = pre_edge_batch(energy, mu, e0).edge_step
        op = operator_for(energy, e0, spec.background)
        good = steps > 0
        chi = op.apply(mu, np.where(good, steps, 1.0))
        for j, i in enumerate(idx):
            spectra[i][0].edge_step = float(steps[j])
            spectra[i][0].background = "batched"
            if good[j]:
                out[i] = interp_on_grid(op.k, chi[j], kq)
        return out
    for i in idx:
        s = spectra[i][1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            k, chi, _, step = larch_background(s.energy, s.mu, e0, spec.background)
        spectra[i][0].edge_step = step
        spectra[i][0].background = "larch"
        if step > 0:
            out[i] = interp_on_grid(k, chi, kq)
    return out


def _model_inputs(
    spectra: list[tuple],
    ok: list[int],
    chi_rows: dict[int, np.ndarray],
    e0s: dict[int, float],
    spec: ProcessSpec,
) -> np.ndarray:
    """The model's input of the accepted spectra, by the function that made the training
    inputs."""
    from mlxas.spectra.features import compute_features

    chi = np.stack([chi_rows[i] for i in ok])
    edge = None
    if spec.features["xanes"]["enabled"]:
        from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid

        edge = edge_on_grid(
            [EdgeSpectrum(spectra[i][1].energy, spectra[i][1].mu, e0=e0s[i]) for i in ok],
            spec.features["xanes"],
        )
    return compute_features(chi, spec.features, edge)[spec.input]
