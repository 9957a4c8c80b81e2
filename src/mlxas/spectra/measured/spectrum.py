"""One measured spectrum: its columns, and the checks on its arrays.

Units: energy in eV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "COMMENT_CHARS",
    "ENERGY_LABELS",
    "MIN_POINTS",
    "Spectrum",
    "SpectrumError",
    "check_arrays",
    "find_column",
    "find_columns",
]

#: Fewest points a spectrum may have: a scan cut short is refused, not extrapolated.
MIN_POINTS = 30
#: Energies closer than this (eV) count as duplicated; larch's own threshold (TINY_ENERGY).
DUPLICATE_EV = 5e-4

ENERGY_LABELS = ("energy", "energy_ev", "e", "en", "ene", "mono_energy", "enc", "energy_enc")
MU_LABELS = (
    "mutrans", "mu", "xmu", "mu_trans", "mut", "mu_t", "mufluor", "mu_fluor", "muf", "mufl",
    "mutey", "mu_tey",
)  # fmt: skip
I0_LABELS = ("i0", "io", "imon", "i_0", "izero")
IT_LABELS = ("itrans", "it", "i1", "itr", "i_t", "itransmission")
IF_LABELS = ("ifluor", "if", "_if", "if_", "ifl", "iff", "fluor", "fluo", "ifluo")
COMMENT_CHARS = "#;!*%<"


class SpectrumError(ValueError):
    """A measured spectrum that mlxas refuses; the message names the file and the reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass
class Spectrum:
    """One measured mu(E).  ``source`` is the file, ``file#group`` for Athena groups."""

    source: str
    energy: np.ndarray
    mu: np.ndarray
    mu_from: str
    element: str | None = None
    edge: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.source.split("#", 1)[0] if "#" in self.source else self.source


def find_column(labels: list[str], names: tuple[str, ...]) -> int | None:
    """Index of the first of ``names`` among ``labels`` (case-insensitive), or None."""
    low = [lab.lower() for lab in labels]
    for name in names:
        if name in low:
            return low.index(name)
    return None


def find_columns(
    source: str,
    labels: list[str],
    data: np.ndarray,
    mu_label: str | None = None,
    energy_label: str | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(energy, mu, how mu was obtained) from labelled columns ``data[i]``.

    ``mu_label``/``energy_label`` choose a column by name; otherwise the first label of
    :data:`MU_LABELS` wins, then ln(i0/itrans), then ifluor/i0.
    """
    cols = ", ".join(labels) or "none"
    if energy_label:
        ie = find_column(labels, (energy_label.lower(),))
        if ie is None:
            raise SpectrumError(source, f"missing column '{energy_label}' (columns: {cols})")
    else:
        ie = find_column(labels, ENERGY_LABELS)
        if ie is None:
            raise SpectrumError(
                source,
                f"missing energy column (columns: {cols}); name it with --energy LABEL",
            )
    energy = data[ie]
    if mu_label:
        im = find_column(labels, (mu_label.lower(),))
        if im is None:
            raise SpectrumError(source, f"missing column '{mu_label}' (columns: {cols})")
        return energy, data[im], f"column {labels[im]}"
    im = find_column(labels, MU_LABELS)
    if im is not None:
        return energy, data[im], f"column {labels[im]}"
    i0 = find_column(labels, I0_LABELS)
    it = find_column(labels, IT_LABELS)
    ifl = find_column(labels, IF_LABELS)
    if i0 is not None and it is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = np.log(data[i0] / data[it])
        return energy, mu, f"ln({labels[i0]}/{labels[it]})"
    if i0 is not None and ifl is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = data[ifl] / data[i0]
        return energy, mu, f"{labels[ifl]}/{labels[i0]}"
    raise SpectrumError(
        source,
        f"missing columns: no mu column and no i0 with itrans or ifluor (columns: {cols}); "
        "choose one with --mu LABEL",
    )


# --- checks -----------------------------------------------------------------------------


def _show(e: float) -> str:
    return f"{e:.4g} eV" if abs(e) < 1e4 else f"{e:.1f} eV"


#: The last energy grid that passed every energy check unrepaired.
_CHECKED_GRID: np.ndarray | None = None


def check_arrays(spec: Spectrum, repair: bool = False) -> Spectrum:
    """Refuse NaNs, too few points, unsorted or duplicated energies.

    With ``repair`` the energies are sorted and duplicates nudged the way larch does it
    (``argsort``, then ``larch.math.remove_dups``), and each repair is added to the notes.
    """
    from mlxas.spectra.xafsmath import remove_dups  # larch's, without importing larch

    src, e, mu = spec.source, np.asarray(spec.energy, float), np.asarray(spec.mu, float)
    if len(e) != len(mu):
        raise SpectrumError(src, f"energy has {len(e)} points but mu has {len(mu)}")
    if len(e) < MIN_POINTS:
        raise SpectrumError(src, f"too few points: {len(e)} (need at least {MIN_POINTS})")
    global _CHECKED_GRID
    known = _CHECKED_GRID
    # The energies of the last spectrum that passed (a series shares its scan grid): only
    # mu is left to check.
    same_grid = known is not None and known.shape == e.shape and np.array_equal(known, e)
    if same_grid and np.isfinite(mu).all():
        spec.energy, spec.mu = e, mu
        return spec
    bad_e, bad_mu = ~np.isfinite(e), ~np.isfinite(mu)
    if bad_e.any() or bad_mu.any():
        which = []
        if bad_e.any():
            which.append(f"{int(bad_e.sum())} in energy")
        if bad_mu.any():
            at = e[np.nonzero(bad_mu)[0][0]]
            which.append(
                f"{int(bad_mu.sum())} in mu ({spec.mu_from}), first at {_show(at)}"
                if np.isfinite(at)
                else f"{int(bad_mu.sum())} in mu ({spec.mu_from})"
            )
        raise SpectrumError(src, "NaN or infinite values: " + "; ".join(which))
    top = float(np.max(e))
    if top < 200.0:
        raise SpectrumError(
            src,
            f"energies end at {top:.4g}: not eV (keV without a declared unit?); declare the "
            "unit (XDI 'Column.1: energy keV') or write the energies in eV",
        )
    step = np.diff(e)
    back = np.nonzero(step < 0)[0]
    if len(back):
        i = back[0]
        msg = (
            f"energies are not increasing: {len(back)} step(s) go down, first "
            f"{_show(e[i])} -> {_show(e[i + 1])} at point {i + 1}"
        )
        if not repair:
            raise SpectrumError(src, msg + "; larch would sort them silently (--repair sorts)")
        order = np.argsort(e, kind="stable")
        e, mu = e[order], mu[order]
        spec.notes.append(f"repaired: energies sorted ({len(back)} out of order)")
        step = np.diff(e)
    dup = np.nonzero(np.abs(step) < DUPLICATE_EV)[0]
    if len(dup):
        msg = f"{len(dup)} duplicated energies, first {_show(e[dup[0]])}"
        if not repair:
            raise SpectrumError(
                src, msg + "; larch would shift them by 0.0005 eV silently (--repair does)"
            )
        e = remove_dups(e, tiny=DUPLICATE_EV)
        spec.notes.append(f"repaired: {len(dup)} duplicated energies shifted by larch remove_dups")
    elif not len(back):
        _CHECKED_GRID = e.copy()
    spec.energy, spec.mu = e, mu
    return spec
