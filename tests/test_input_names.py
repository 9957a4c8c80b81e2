"""Which model inputs read the edge (mlxas.spectra.input_names), and that every place that
asks (bundled models, the predict spec, ``mlxas models``, the error flag) agrees with it.

Each input kind is tried on a minimal card; the expected answers are written out here, so
that moving an input from one list to the other fails a test rather than passing quietly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxas.error_flag import ErrorFlagSettings, not_applicable, readings_kind
from mlxas.error_flag_edge import EdgeReadings, is_edge_model
from mlxas.predict.bundled import BundledModel
from mlxas.predict.models_command import _input_lines
from mlxas.predict.spec import ProcessSpec, required_e_range, required_k_range
from mlxas.spectra.input_names import (
    EDGE_INPUTS,
    NORMALISED_EDGE_INPUTS,
    reads_edge,
    reads_normalised_edge,
)

#: input → (reads the edge, reads the normalised edge)
KINDS = {
    "xanes": (True, True),
    "xanes_channels": (True, True),
    "mu": (True, False),
    "xanes_deriv": (True, False),
    "chi_k": (False, False),
    "ft_mag": (False, False),
    "wavelet_morlet": (False, False),
}


def _card(name: str) -> dict:
    grid = {"kmin": 2.0, "kmax": 12.0, "dk": 0.05}
    return {
        "model_id": "m",
        "preprocessing": {
            "input": name,
            "targets": ["cn"],
            "features": {
                "k_grid": grid,
                "ft": {"kmin": 3.0, "kmax": 11.0},
                "xanes": {"emin": -20.0, "emax": 60.0, "de": 0.5},
            },
        },
        "outputs": {"slices": {"cn": [0, 1]}},
    }


def test_the_lists_are_what_the_table_says():
    assert set(EDGE_INPUTS) == {n for n, (edge, _) in KINDS.items() if edge}
    assert set(NORMALISED_EDGE_INPUTS) == {n for n, (_, norm) in KINDS.items() if norm}
    assert set(NORMALISED_EDGE_INPUTS) < set(EDGE_INPUTS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_caller_agrees_with_the_predicates(name):
    edge, normalised = KINDS[name]
    card = _card(name)
    assert reads_edge(card) is edge and reads_normalised_edge(card) is normalised
    bundled = BundledModel(name, "exp", "entry", Path("p.json"), None, card)
    assert bundled.reads_edge is edge
    spec = ProcessSpec("Cu", "K", 8979.0, {}, name, None)
    assert spec.edge_input is edge
    assert (required_k_range(card) is None) is edge
    assert (required_e_range(card) == (-20.0, 60.0)) is edge
    assert ("normalised mu(E)" in dict(_input_lines(card))["input"]) is edge
    # the error flag perturbs only normalised edges as edges ...
    assert is_edge_model(card) is normalised
    assert (readings_kind(card) is EdgeReadings) is normalised
    # ... and gives the other edge inputs no flag: they are not computed from chi(k)
    why = not_applicable(card, ErrorFlagSettings(bounds=(("cn", 1.0),)))
    assert (why is not None and "not computed from chi(k)" in why) is (edge and not normalised)


def test_a_card_without_an_input_reads_no_edge():
    for card in ({}, {"preprocessing": {}}, {"preprocessing": None}):
        assert not reads_edge(card) and not reads_normalised_edge(card)
        assert not BundledModel("e/m", "e", "m", Path("p.json"), None, card).reads_edge
