"""Both kinds of model input (XAS spectra, powder patterns) answer the one protocol the
predict layer's callers use (mlxas.predict.spec.InputSpec), with the output's model
description unchanged."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest

from mlxas.predict.auto import model_meta
from mlxas.predict.patterns import PatternSpec
from mlxas.predict.spec import (
    POWDER_PATTERN,
    SPECTRUM,
    InputSpec,
    ProcessSpec,
    input_spec_from_card,
)

SPECTRUM_CARD = {
    "model_id": "m-xas",
    "name": "cu-exafs",
    "preprocessing": {
        "absorber": "Cu",
        "edge": "K",
        "edge_energy": 8979.0,
        "input": "chi_k",
        "features": {"k_grid": {"kmin": 2.0, "kmax": 12.0, "dk": 0.05}, "ft": {}},
    },
}
PATTERN_CARD = {
    "model_id": "m-xrd",
    "name": "space-groups",
    "preprocessing": {
        "engine": {
            "name": "xrd",
            "settings": {
                "axis": "two_theta",
                "axis_min": 5.0,
                "axis_max": 90.0,
                "source": "CuKa1",
            },
        },
        "features": {"xrd": {}},
        "input_shape": [256],
    },
}


def _meta(card, spec, name=None):
    return model_meta(SimpleNamespace(card=card, spec=spec, ood=None), name)


def test_the_card_picks_the_spec_and_both_satisfy_the_protocol():
    xas = input_spec_from_card(SPECTRUM_CARD)
    xrd = input_spec_from_card(PATTERN_CARD)
    assert type(xas) is ProcessSpec and type(xrd) is PatternSpec
    cases = ((xas, SPECTRUM, True, True), (xrd, POWDER_PATTERN, False, False))
    for spec, kind, plots, servable in cases:
        assert isinstance(spec, InputSpec)
        assert spec.input_kind == kind and spec.plots_supported is plots
        assert (spec.serve_refusal() is None) is servable
        assert pickle.loads(pickle.dumps(spec)) == spec  # it goes to worker processes
    assert xrd.serve_refusal().startswith("reads powder patterns; mlxas serve")
    assert not isinstance(SimpleNamespace(input_kind=SPECTRUM), InputSpec)


def test_model_meta_keeps_the_output_keys_of_each_kind():
    xas = _meta(SPECTRUM_CARD, input_spec_from_card(SPECTRUM_CARD), name="cu")
    assert xas == {
        "model_id": "m-xas",
        "name": "cu-exafs",
        "absorber": "Cu",
        "edge": "K",
        "input": "chi_k",
        "k_required": (2.0, 12.0),
        "absorbers": ["Cu"],
        "e_required": None,
        "ood_available": False,
        "bundled": "cu",
    }
    assert list(xas)[-2:] == ["ood_available", "bundled"]  # JSON output keeps its order
    xrd = _meta(PATTERN_CARD, input_spec_from_card(PATTERN_CARD))
    assert list(xrd.items()) == [
        ("model_id", "m-xrd"),
        ("name", "space-groups"),
        ("input", "powder pattern"),
        ("axis", "two_theta"),
        ("range", [5.0, 90.0]),
        ("source", "CuKa1"),
        ("ood_available", False),
    ]


def test_an_option_of_the_other_kind_is_refused():
    from mlxas.models.card import ModelLoadError

    with pytest.raises(ModelLoadError, match="--wavelength applies to powder patterns"):
        input_spec_from_card(SPECTRUM_CARD, wavelength=1.54)
    with pytest.raises(ModelLoadError, match="applies to XAS spectra only"):
        input_spec_from_card(PATTERN_CARD, repair=True)
