"""The foil experiments (config/experiments/foil_*.yaml): what a simulation-trained model
needs to read the measured foils, checked without training a model.

- the config is valid and its FEFF cards are accepted;
- the model reads no more of chi(k) than each measured foil provides after background
  removal (larch's pre_edge + autobk, as ``mlxas predict`` does it);
- the training structures hold bulk-like sites (CN 12) and bond lengths on both sides of
  the foil's true R, with room to spare;
- every structure has its own temperature (10-600 K, FEFF's DEBYE card per structure) and
  the augmentation has every sim-to-real effect, removing damping as well as adding it;
- the model's R window holds the shells FEFF computes and ends before the first shell
  beyond RPATH, which a measured foil has and the simulations lack.

The accuracy on the foils is measured by ``benchmarks/bench_predict_foils.py``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from mlxas.predict.pipeline import required_k_range
from mlxas.workflow.checks import load_experiment

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTAL = Path(__file__).resolve().parent / "data" / "experimental"
FOILS = {"cu": ("Cu", "K"), "ni": ("Ni", "K"), "pt": ("Pt", "L3")}


def _truth(low: str) -> float:
    row = next(
        line
        for line in (EXPERIMENTAL / "README.md").read_text().splitlines()
        if f"{low}_metal_rt.xdi" in line
    )
    return float(re.search(r"N = 12 at ([0-9.]+) Å", row).group(1))


@pytest.fixture(scope="module", params=sorted(FOILS))
def foil(request: pytest.FixtureRequest) -> tuple[str, dict]:
    # Every check of the workflow runs here, FEFF8L's acceptance of the cards included.
    return request.param, dict(_experiment(request.param).config)


def _experiment(low: str):
    return load_experiment([ROOT / "config" / "experiments" / f"foil_{low}.yaml"])


def _images(low: str) -> list:
    (source,) = _experiment(low).sources.values()
    return [atoms for _, _, _, atoms in source.generate()]


def _model(cfg: dict) -> dict:
    (entry,) = [m for m in cfg["models"] if m["name"] == "ensemble"]
    return entry


def test_config_is_valid(foil: tuple[str, dict]) -> None:
    low, cfg = foil
    el, edge = FOILS[low]
    assert (cfg["absorber"], cfg["edge"], cfg["experiment"]) == (el, edge, f"foil_{low}")
    assert all(s["kind"] == "crystal" and s["species"] == [el] for s in cfg["structures"])


def test_model_needs_no_more_k_than_the_foil_has(foil: tuple[str, dict]) -> None:
    from mlxas.spectra.background import larch_background
    from mlxas.spectra.measured import read_spectra

    low, cfg = foil
    entry = _model(cfg)
    card = {  # what training writes into the card, as far as the k-range goes
        "preprocessing": {
            "input": entry["input"],
            "features": cfg["features"],
            "input_range": entry["input_range"],
        },
        "config": entry,
    }
    lo, hi = required_k_range(card)
    (spec,) = read_spectra(EXPERIMENTAL / f"{low}_metal_rt.xdi")
    k, _, _, _ = larch_background(spec.energy, spec.mu)
    assert lo >= 2.0  # below ~2 1/Å background removal dominates chi(k)
    assert hi <= k[-1] - 1.0, f"model reads chi(k) to {hi} 1/Å, the foil ends at {k[-1]}"


def test_training_structures_bracket_the_foil(foil: tuple[str, dict]) -> None:
    from mlxas.sites import enumerate_sites

    low, cfg = foil
    truth = _truth(low)
    (spec,) = cfg["structures"]
    images = _images(low)
    a0 = spec["a"]
    a = sorted({round(a0 * (1 + atoms.info["strain_a"]), 6) for atoms in images})
    r = np.array(a) / math.sqrt(2)
    assert r.min() < truth - 0.05 and r.max() > truth + 0.05  # R inside, not at the edge
    assert np.max(np.diff(r)) < 0.02  # lattice steps finer than the R target
    # The sites of one sphere: bulk-like first shells (CN 12) and surface sites.
    atoms = next(x for x in images if x.info["shape"].startswith("sphere"))
    atoms.info.update(structure_id="s", source=spec["name"], name="sphere", frame=-1)
    exp = _experiment(low)
    sites = enumerate_sites([atoms], exp.absorber, exp.sites, exp.labels)
    assert (sites["cn"] == 12).sum() >= 10 and sites["cn"].min() <= 8
    a_s = a0 * (1 + atoms.info["strain_a"])
    np.testing.assert_allclose(sites["r"], a_s / math.sqrt(2), atol=1e-6)


def test_disorder_and_augmentation(foil: tuple[str, dict]) -> None:
    low, cfg = foil
    cards = {k.upper(): v for k, v in cfg["feff"]["cards"].items()}
    assert "DEBYE" not in cards  # every structure brings its own DEBYE card
    info = [atoms.info for atoms in _images(low)]
    temps = np.array([i["temperature"] for i in info])
    assert temps.min() < 30 and temps.max() > 570  # cold and hot samples inside training
    assert all(i["thermal"] == "debye_card" and i["debye_temperature"] > 100 for i in info)
    aug = _model(cfg)["augment"]
    for key in ("sigma2", "s02", "e0_shift", "noise", "kmax"):
        assert aug[key] is not None, key
    assert aug["sigma2"][0] < 0 < aug["sigma2"][1]  # damping removed as well as added
    assert aug["e0_shift"][0] < 0 < aug["e0_shift"][1]
    assert aug["s02"][0] < 1.0 <= aug["s02"][1] + 0.05


def test_r_window_stops_before_the_shells_feff_leaves_out(foil: tuple[str, dict]) -> None:
    low, cfg = foil
    entry = _model(cfg)
    assert entry["input"] == "ft_mag"
    lo, hi = entry["input_range"]
    rpath = {k.upper(): v for k, v in cfg["feff"]["cards"].items()}["RPATH"]
    # fcc shells of the foil: a·sqrt(n/2); FT peaks sit ~0.3 Å below the distance.
    a = _truth(low) * math.sqrt(2)
    shells = [a * math.sqrt(n / 2) for n in range(1, 9)]
    computed = [d for d in shells if d <= rpath]
    missing = [d for d in shells if d > rpath]
    assert len(computed) == 4  # FEFF paths of the first four shells
    assert lo < shells[0] - 0.6  # the first-shell peak is inside
    assert computed[-1] - 0.3 < hi < missing[0] - 0.3, (computed[-1], hi, missing[0])
