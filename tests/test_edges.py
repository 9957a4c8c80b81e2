"""Absorber and edge of every measured file: from the header, and again from E0 alone
(truth: tests/data/experimental/README.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mlxas.spectra.edges import detect_edge, edge_from_energy
from mlxas.spectra.measured import SpectrumError, read_spectra

EXPERIMENTAL = Path(__file__).parent / "data" / "experimental"
TRUTH = {
    "cu_metal_rt.xdi": ("Cu", "K"),
    "ni_metal_rt.xdi": ("Ni", "K"),
    "pt_metal_rt.xdi": ("Pt", "L3"),
    "fe_metal_rt.xdi": ("Fe", "K"),
    "nio_rt.xdi": ("Ni", "K"),
    "ge_crystalline_rt.xdi": ("Ge", "K"),
    "kmno4_rt.xdi": ("Mn", "K"),
    "mno_rt.xdi": ("Mn", "K"),
    "pt_nanoparticles_T.prj": ("Pt", "L3"),
}
SPECTRA = [s for name in TRUTH for s in read_spectra(EXPERIMENTAL / name)]


def _truth(s) -> tuple[str, str]:
    return TRUTH[Path(s.path).name]


def test_every_measured_file_is_covered():
    assert {p.name for p in EXPERIMENTAL.iterdir() if p.suffix in (".xdi", ".prj")} == set(TRUTH)


@pytest.mark.parametrize("s", SPECTRA, ids=[s.source.split("/")[-1] for s in SPECTRA])
def test_edge_from_header_and_from_e0(s):
    g = detect_edge(s)
    assert (g.element, g.edge) == _truth(s) and not g.notes
    assert g.source == ("header" if s.element and s.edge else "E0")
    assert abs(g.e0 - g.edge_energy) < 20
    bare = replace(s, element=None, edge=None)
    g = detect_edge(bare)
    assert (g.element, g.edge, g.source) == (*_truth(s), "E0")


def test_header_element_without_edge_and_disagreeing_headers():
    cu = read_spectra(EXPERIMENTAL / "cu_metal_rt.xdi")[0]
    g = detect_edge(replace(cu, edge=None))
    assert (g.element, g.edge, g.source) == ("Cu", "K", "header element and E0")
    ni = read_spectra(EXPERIMENTAL / "ni_metal_rt.xdi")[0]
    g = detect_edge(replace(ni, element="Cu", edge="K"))
    assert (g.element, g.edge) == ("Cu", "K")  # the header is kept, and the conflict noted
    assert g.notes and "looks like Ni K" in g.notes[0]
    with pytest.raises(SpectrumError, match="unknown absorber edge in the header: Cu Q"):
        detect_edge(replace(cu, edge="Q"))
    with pytest.raises(SpectrumError, match="unknown element in the header: Xx"):
        detect_edge(replace(cu, element="Xx", edge=None))


def test_no_edge_near_e0_is_refused():
    assert edge_from_energy(8979.0)[:2] == ("Cu", "K")
    with pytest.raises(SpectrumError, match=r"no absorption edge within 50 eV of E0 = 150000\.0"):
        edge_from_energy(150000.0)
