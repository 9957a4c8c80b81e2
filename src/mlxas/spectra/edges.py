"""Which absorber and edge a measured spectrum is: from its header, else from its E0.

For choosing a model by edge (``mlxas predict FILE`` without a model).  The header wins
(XDI ``Element.symbol``/``Element.edge`` or ``Scan.element``/``Scan.edge``, an Athena
group's element and edge); an element without an edge gets that element's tabulated edge
nearest to E0; a file without either gets the edge xraydb finds nearest to E0
(``xraydb.guess_edge``).  A header that disagrees with E0 is kept and noted.  Tabulated
edge energies come from xraydb.  Units: eV.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlxas.spectra.measured import Spectrum, SpectrumError

__all__ = ["EDGE_TOLERANCE_EV", "EdgeGuess", "detect_edge", "edge_from_energy"]

#: Largest distance (eV) between E0 and the tabulated energy of the edge it is taken for
#: (the same tolerance ``mlxas predict`` allows between a file and a model).
EDGE_TOLERANCE_EV = 50.0


@dataclass(frozen=True)
class EdgeGuess:
    """``element``, ``edge`` (K, L3, ...), ``source`` ('header', 'header element and E0'
    or 'E0'), the spectrum's ``e0`` and the tabulated ``edge_energy`` (eV)."""

    element: str
    edge: str
    source: str
    e0: float
    edge_energy: float
    notes: list[str] = field(default_factory=list)


def _edge_name(edge: str) -> str:
    e = edge.strip().upper().replace("_", "").replace("-", "")
    return {"L": "L3", "M": "M5"}.get(e, e)


def _tabulated(element: str, edge: str, source: str) -> float:
    import xraydb

    try:
        return float(xraydb.xray_edge(element, edge).energy)
    except Exception:  # xraydb raises ValueError/KeyError/TypeError for unknown names
        raise SpectrumError(
            source, f"unknown absorber edge in the header: {element} {edge}"
        ) from None


def edge_from_energy(e0: float, source: str = "spectrum") -> tuple[str, str, float]:
    """(element, edge, tabulated energy) of the edge nearest to ``e0`` among xraydb's K,
    L and M5 edges; refused when none lies within :data:`EDGE_TOLERANCE_EV`."""
    import xraydb

    try:
        element, edge = xraydb.guess_edge(float(e0))
        energy = float(xraydb.xray_edge(element, edge).energy)
    except Exception:  # guess_edge fails outside its tables
        element, edge, energy = "", "", float("inf")
    if abs(energy - e0) > EDGE_TOLERANCE_EV:
        raise SpectrumError(
            source, f"no absorption edge within {EDGE_TOLERANCE_EV:.0f} eV of E0 = {e0:.1f} eV"
        )
    return element, edge, energy


def detect_edge(spectrum: Spectrum, e0: float | None = None) -> EdgeGuess:
    """The absorber and edge of ``spectrum``; ``e0`` (eV) defaults to larch's find_e0."""
    import xraydb

    from mlxas.spectra.xafsmath import find_e0

    src = spectrum.source
    e0 = float(find_e0(spectrum.energy, spectrum.mu) if e0 is None else e0)
    element = (spectrum.element or "").strip()
    if element:
        element = element.capitalize()
        if spectrum.edge:
            edge = _edge_name(spectrum.edge)
            energy = _tabulated(element, edge, src)
            guess = EdgeGuess(element, edge, "header", e0, energy)
        else:
            try:
                edges = xraydb.xray_edges(element)
            except Exception:  # an element xraydb does not know
                raise SpectrumError(src, f"unknown element in the header: {element}") from None
            edge = min(edges, key=lambda name: abs(edges[name].energy - e0))
            guess = EdgeGuess(element, edge, "header element and E0", e0, edges[edge].energy)
        if abs(guess.edge_energy - e0) > EDGE_TOLERANCE_EV:
            try:
                seen = "; it looks like {} {}".format(*edge_from_energy(e0, src)[:2])
            except SpectrumError:
                seen = ""
            guess.notes.append(
                f"header says {element} {guess.edge} ({guess.edge_energy:.0f} eV) but E0 is "
                f"{e0:.1f} eV{seen}"
            )
        return guess
    element, edge, energy = edge_from_energy(e0, src)
    return EdgeGuess(element, edge, "E0", e0, energy)
