"""FEFF card templates, validation and feff.inp text; each engine's real input reader.

The card lists of the templates are checked against the engines themselves: every card
mlxas accepts is fed to the real FEFF8L and FEFF6L input readers and to FEFF10's parser.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ase.cluster import Octahedron

from mlxas.feff.cards import (
    CardError,
    engine_names,
    engine_template,
    merged_cards,
    render_card,
)
from mlxas.feff.checks import first_fatal
from mlxas.feff.engines import _larch_bindir, get_engine
from mlxas.feff.inputs import cluster_around, feff_input_text

ENGINES = ["feff8l", "feff6l", "feff10"]

#: The Au L3 settings of the published ML-XAS study (EXAFS to k = 20 Å⁻¹, paths up to
#: 7 Å and 8 legs, correlated Debye model at 300 K with θ_D = 160 K, SCF and exchange).
PAPER_AU_L3 = {
    "EXAFS": 20,
    "RPATH": 7.0,
    "NLEGS": 8,
    "DEBYE": [300, 160],
    "SCF": 4.5,
    "EXCHANGE": [0, 0.0, 0.0],
}


def au_cluster(radius: float) -> tuple[list[str], np.ndarray]:
    atoms = Octahedron("Au", 6, 1, latticeconstant=4.08)
    centre = int(np.argmin(np.linalg.norm(atoms.positions - atoms.positions.mean(0), axis=1)))
    return cluster_around(atoms, centre, radius)


def test_engines_have_k_and_l3_templates():
    assert set(ENGINES) <= set(engine_names())
    for name in ENGINES:
        tpl = engine_template(name)
        assert {"K", "L3"} <= set(tpl["edges"])
        assert "exafs" in tpl["spectroscopy"]
        # Every default card is a card the engine accepts, with a valid value.
        for kind in tpl["spectroscopy"]:
            for edge in tpl["edges"]:
                merged_cards(name, edge, {}, kind)
    assert "xanes" in engine_template("feff10")["spectroscopy"]


def test_merge_order_and_removal():
    cards = merged_cards("feff8l", "L3", {"rpath": 7.0, "DEBYE": [300, 160], "NLEGS": None})
    assert cards["EDGE"] == "L3" and cards["RPATH"] == 7.0 and cards["EXAFS"] == 20
    assert cards["DEBYE"] == [300, 160] and "NLEGS" not in cards
    assert merged_cards("feff6l", "L3", {})["HOLE"] == [4, 1.0]
    xanes = merged_cards("feff10", "K", {}, "xanes")
    assert "EXAFS" not in xanes and "RPATH" not in xanes and xanes["XANES"] == 4.0


def test_a_config_switching_engine_removes_the_defaults_of_the_other_engine(tmp_path):
    from mlxas.errors import ConfigError
    from mlxas.workflow.checks import load_experiment

    # A second config file merged over config/config.yaml (RPATH, NLEGS for FEFF8L)
    # switches to FEFF6L: it must be able to drop the first file's cards.
    base = Path(__file__).resolve().parent.parent / "config" / "config.yaml"
    over = tmp_path / "feff6l.yaml"
    over.write_text("simulation: {engine: feff6l}\n")
    with pytest.raises(ConfigError, match="FEFF6L's path length card is RMAX"):
        load_experiment([base, over])
    over.write_text(
        "simulation: {engine: feff6l}\n"
        "feff: {cards: {RPATH: null, NLEGS: null, RMAX: 5.0, NLEG: 4}}\n"
    )
    cards = load_experiment([base, over]).engine.settings.cards
    assert cards["RMAX"] == 5.0 and cards["NLEG"] == 4
    assert "RPATH" not in cards and "NLEGS" not in cards
    # A misspelt card is still an error, also when removing it.
    with pytest.raises(CardError, match="FEFF6L does not accept card RPTH"):
        merged_cards("feff6l", "K", {"RPTH": None})


@pytest.mark.parametrize(
    ("engine", "overrides", "spectroscopy", "message"),
    [
        ("feff8l", {"FOOBAR": 1}, "exafs", "FEFF8L does not accept card FOOBAR"),
        ("feff8l", {"CONFIG": 1}, "exafs", "does not accept card CONFIG"),
        ("feff8l", {"RMAX": 5.0}, "exafs", "FEFF8L's path length card is RPATH"),
        ("feff6l", {"RPATH": 5.0}, "exafs", "FEFF6L's path length card is RMAX"),
        ("feff8l", {"XANES": 4.0}, "exafs", "use engine feff10"),
        ("feff8l", {}, "xanes", "FEFF8L does not compute xanes"),
        ("feff8l", {"DEBYE": 300}, "exafs", "DEBYE: takes 2 to 3 value(s), got 1"),
        ("feff8l", {"NLEGS": 8.0}, "exafs", "NLEGS: value(s) [8.0] must be integers"),
        ("feff6l", {"ION": [1, 0.5]}, "exafs", "ION: value(s) [0.5] must be integers"),
        ("feff8l", {"RPATH": "far"}, "exafs", "RPATH: values must be numbers"),
        ("feff8l", {"EDGE": 3}, "exafs", "first value must be a word"),
        ("feff8l", {"NOHOLE": False}, "exafs", "use null to remove"),
        ("feff8l", {"ATOMS": 1}, "exafs", "mlxas writes ATOMS from the structure"),
        ("feff8l", {"rpath": 5.0, "RPATH": 6.0}, "exafs", "RPATH is given twice"),
        ("feff10", {"EXAFS": 20}, "xanes", "two spectroscopies"),
    ],
)
def test_bad_cards_are_config_errors(engine, overrides, spectroscopy, message):
    with pytest.raises(CardError, match=re.escape(message)):
        merged_cards(engine, "K", overrides, spectroscopy)


def test_render_card():
    assert render_card("DEBYE", [300, 160]) == "DEBYE 300 160"
    assert render_card("NOHOLE", True) == "NOHOLE"
    assert render_card("RPATH", 7.0) == "RPATH 7.0"


def test_paper_au_l3_settings_render_with_stoichiometry():
    syms, xyz = au_cluster(7.5)
    cards = merged_cards("feff8l", "L3", PAPER_AU_L3)
    text = feff_input_text(syms, xyz, cards, "Au L3 paper settings")
    lines = text.splitlines()
    for line in [
        "EDGE L3",
        "EXAFS 20",
        "RPATH 7.0",
        "NLEGS 8",
        "DEBYE 300 160",
        "SCF 4.5",
        "EXCHANGE 0 0.0 0.0",
    ]:
        assert line in lines
    # POTENTIALS: the absorber (token stoichiometry) and Au with its count in the cluster.
    pots = lines[lines.index("POTENTIALS") + 2 : lines.index("ATOMS")]
    assert [p.split()[:3] for p in pots] == [["0", "79", "Au"], ["1", "79", "Au"]]
    assert float(pots[1].split()[5]) == Counter(syms[1:])["Au"] == len(syms) - 1
    # Every Au-Au distance in the ATOMS list is at least the fcc nearest-neighbour 2.885 Å.
    rows = lines[lines.index("ATOMS") + 2 : lines.index("END")]
    xyz_back = np.array([[float(v) for v in r.split()[:3]] for r in rows])
    d = np.linalg.norm(xyz_back[:, None] - xyz_back[None], axis=-1)[np.triu_indices(len(rows), 1)]
    assert d.min() == pytest.approx(4.08 / np.sqrt(2), abs=1e-4)


def test_paper_au_l3_settings_accepted_by_feff8l(tmp_path):
    """FEFF8L reads every card (SCF included) and runs the paper's settings without SCF."""
    syms, xyz = au_cluster(6.0)
    cards = merged_cards("feff8l", "L3", PAPER_AU_L3)
    # The input reader alone with SCF: it records the SCF radius for the POT module.
    (tmp_path / "feff.inp").write_text(feff_input_text(syms, xyz, cards, "Au L3"))
    out = subprocess.run(
        [str(_larch_bindir() / "feff8l_rdinp")], cwd=tmp_path, capture_output=True, text=True
    )
    assert first_fatal(out.stdout + out.stderr) is None
    # The values the reader parsed, as numbers (the file writes 4.5 as 0.45...E+001).
    pot = json.loads((tmp_path / "pot.json").read_text())
    assert pot["rfms1"] == pytest.approx(PAPER_AU_L3["SCF"], abs=1e-9)  # SCF radius, Å
    assert pot["ixc"] == PAPER_AU_L3["EXCHANGE"][0]  # Hedin-Lundqvist exchange
    # The full run without SCF (SCF takes minutes): a clean log and a complete chi.dat.
    from mlxas.engines import ItemInput
    from mlxas.engines import get_engine as signal_engine
    from mlxas.simulation.runner import run_item
    from mlxas.workflow.layout import SimulationFolder

    no_scf = merged_cards("feff8l", "L3", {**PAPER_AU_L3, "SCF": None})
    item = ItemInput("au", "s", 0, feff_input_text(syms, xyz, no_scf, "Au L3"), "x")
    engine = signal_engine("feff8l", {"edge": "L3", "cards": no_scf})
    res = run_item(item, engine, SimulationFolder(tmp_path), timeout=120)
    assert res.ok, (res.reason, res.detail)
    assert res.arrays["k"][-1] == pytest.approx(20.0)
    # E0 of the Au L3 edge: 11919 eV (tabulated), within FEFF's Fermi-level offset.
    assert abs(res.scalars["e0"] - 11919) < 15


def _card_line_input(engine: str, name: str) -> str:
    """A small valid input plus one card with its template example (for the real readers)."""
    atoms = Octahedron("Cu", 3, 0, latticeconstant=3.61)
    syms, xyz = cluster_around(atoms, 0, 4.0)
    base = merged_cards(engine, "K", {})
    example = engine_template(engine)["cards"][name]["example"]
    value = example if example else True
    # One spectroscopy per input: XANES replaces the template's EXAFS.
    cards = {k: v for k, v in base.items() if k != name}
    if name == "XANES":
        cards.pop("EXAFS", None)
    text = feff_input_text(syms, xyz, cards, "card check")
    return text.replace("POTENTIALS", render_card(name, value) + "\nPOTENTIALS", 1)


@pytest.mark.parametrize("engine", ["feff8l", "feff6l"])
def test_every_accepted_card_is_read_by_the_real_engine(engine, tmp_path):
    program = {"feff8l": "feff8l_rdinp", "feff6l": "feff6l"}[engine]
    tpl = engine_template(engine)
    rejected = []
    for name in sorted(tpl["cards"]):
        run = tmp_path / name
        run.mkdir()
        text = _card_line_input(engine, name)
        if engine == "feff6l":  # only read the input: no potentials, paths or sums
            text = text.replace("CONTROL 1 1 1 1", "CONTROL 0 0 0 0")
        (run / "feff.inp").write_text(text)
        out = subprocess.run(
            [str(_larch_bindir() / program)], cwd=run, capture_output=True, text=True, timeout=60
        )
        if first_fatal(out.stdout + out.stderr) is not None:
            rejected.append(name)
    assert rejected == []
    # The same reader rejects a card outside the list: the check above has teeth.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "feff.inp").write_text(
        _card_line_input(engine, "TITLE").replace("POTENTIALS", "CONFIG 1\nPOTENTIALS", 1)
    )
    out = subprocess.run([str(_larch_bindir() / program)], cwd=bad, capture_output=True, text=True)
    assert first_fatal(out.stdout + out.stderr).reason == "unknown_card"


def test_every_accepted_card_is_parsed_by_feff10():
    import feff10

    for name in sorted(engine_template("feff10")["cards"]):
        feff10.FeffInput.parse_strict(_card_line_input("feff10", name))
    with pytest.raises(feff10.FeffParseError, match="unrecognized keyword"):
        feff10.FeffInput.parse_strict(
            _card_line_input("feff10", "TITLE").replace("POTENTIALS", "FOOBAR 1\nPOTENTIALS")
        )


def test_engine_version_goes_into_input_hash():
    from mlxas.simulation.inputs import input_hash

    v8, v10 = get_engine("feff8l").version, get_engine("feff10").version
    assert v8.startswith("8.5L+xraylarch") and v10.startswith("10.0.0+feff10-rs")
    text = "TITLE x\nEND\n"
    assert input_hash(get_engine("feff8l"), text) != input_hash(get_engine("feff10"), text)


def test_feff_section_and_cli_config_check(tmp_path, capsys):
    from mlxas.engines import EngineError, engine_class

    feff8l = engine_class("feff8l")
    settings = feff8l.settings_from_config({"cards": PAPER_AU_L3}, absorber="Au", edge="L3")
    assert settings.cards["SCF"] == 4.5 and settings.cards["EDGE"] == "L3"
    with pytest.raises(EngineError, match=r"feff\.cards\.FOO"):
        feff8l.settings_from_config({"cards": {"FOO": 1}}, absorber="Cu", edge="K")
    path = tmp_path / "bad.yaml"
    path.write_text(
        "experiment: bad\nabsorber: Cu\nstructures:\n"
        "  - {name: a, kind: nanoparticles, element: Cu, shape: cube, sizes: [2]}\n"
        "feff: {cards: {FOO: 1}}\n"
    )
    from mlxas.cli import main

    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        f"mlxas: error: {path}: feff.cards.FOO: FEFF8L does not accept card FOO"
    )


def test_workflow_stops_on_unknown_card_before_any_job(tmp_path):
    from conftest import TINY_CONFIG, snakemake, write_config

    cfg = {**TINY_CONFIG, "feff": {**TINY_CONFIG["feff"], "cards": {"RPATH": 4.5, "FOO": 1}}}
    path = write_config(tmp_path, cfg)
    proc = snakemake(tmp_path, "--configfile", str(path), "--cores", "1", check=False)
    assert proc.returncode != 0
    assert f"invalid config: {path}: feff.cards.FOO: FEFF8L does not accept card FOO" in (
        proc.stderr
    )
    assert not (tmp_path / "results").exists()  # no job ran


def test_cluster_around_periodic_follows_the_structure_content():
    """Periodic clusters come from ASE's neighbour list of the whole cell, kept per
    structure content: the same answer as ASE's own list, and a moved atom (same Atoms
    object) is seen at once."""
    from ase.build import bulk
    from ase.neighborlist import neighbor_list

    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    cell.rattle(0.03, seed=2)
    for index in (0, 7):
        syms, xyz = cluster_around(cell, index, 5.0)
        i, _, d = neighbor_list("ijD", cell, 5.0)
        expect = d[i == index]
        expect = expect[np.argsort(np.linalg.norm(expect, axis=1), kind="stable")]
        np.testing.assert_array_equal(xyz[1:], expect)
        assert len(syms) == len(xyz) == len(expect) + 1
    cell.positions[1] += [0.2, 0.0, 0.0]
    _, moved = cluster_around(cell, 0, 5.0)
    i, _, d = neighbor_list("ijD", cell, 5.0)
    expect = d[i == 0]
    np.testing.assert_array_equal(
        moved[1:], expect[np.argsort(np.linalg.norm(expect, axis=1), kind="stable")]
    )
