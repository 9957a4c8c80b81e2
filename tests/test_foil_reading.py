"""A simulation-trained model reads the measured foils within a stated bound of their
crystal structure (truth: tests/data/experimental/README.md).

The models are the foil experiments' (config/experiments/foil_*.yaml), trained only on
FEFF spectra.  Training one takes far longer than a test may, so the test uses the
model bundled with mlxas: ``models/foil_<element>/`` holds the experiment's models
folder as the workflow wrote it (``results/foil_<element>/models/``), at least the
pointer of the primary model (``<primary>.json``, ``evaluation.primary``) and the bound
model folder it names (``<primary>/<model id>/``, verified against its card when
loaded).  The test is skipped, naming the missing model, while the repository has none.

Bounds: |CN − 12| ≤ 1.0 and |R − R_true| ≤ 0.03 Å, the targets of
benchmarks/bench_predict_foils.py (which measures them on freshly trained models).
Models with a target per shell (bcc Fe, diamond Ge) are read shell by shell against the
README's "8 Fe at 2.482 Å, then 6 Fe at 2.866 Å" with issue 17's bounds, those of
benchmarks/bench_predict_measured.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTAL = Path(__file__).resolve().parent / "data" / "experimental"
#: Where bundled models live: one folder per foil experiment.
BUNDLED = ROOT / "models"
FOILS = {"cu": "Cu K", "ni": "Ni K", "pt": "Pt L3"}
CN_BOUND = 1.0
R_BOUND = 0.03  # Å
#: experiment -> (measured file, (CN, R Å) bound per shell, first shell first)
SHELL_MODELS = {
    "foil_fe": ("fe_metal_rt.xdi", [(1.0, 0.03), (1.0, 0.03)]),
    "ge_crystal": ("ge_crystalline_rt.xdi", [(0.5, 0.02)]),
    "nio": ("nio_rt.xdi", [(1.0, 0.03), (1.5, 0.03)]),
}
#: Bundled models that ship although they miss a bound on their measured file (measured
#: in benchmarks/results/predict_measured.json; the cards and docs/beamline.md say so).
#: Strict: the test fails once a retrained model meets the bound, so that this is updated.
NOT_MET = {
    "foil_fe": "R of both shells 0.030-0.032 Å long, flagged (docs/foils.md)",
    "ge_crystal": "R 0.036 Å long and CN 3.6 (flagged OOD; docs/foils.md)",
    "nio": "Ni-Ni CN 8.3 for 12, flagged (docs/foils.md)",
}
#: How far each NOT_MET model may miss: (shell, "cn" | "r") -> widened bound around the
#: miss recorded in benchmarks/results/predict_measured.json (Fe R 0.030 and 0.032 Å long,
#: Ge R 0.036 Å long, NiO Ni-Ni CN 3.7 short).  The other bounds of SHELL_MODELS hold.
#: A strict xfail passes on any AssertionError, so without this a model that got worse
#: (or a broken reading) would pass as the known miss.
KNOWN_MISS = {
    "foil_fe": {(1, "r"): 0.045, (2, "r"): 0.045},
    "ge_crystal": {(1, "r"): 0.05},
    "nio": {(2, "cn"): 4.5},
}


def _truth(low: str) -> tuple[float, float]:
    """(CN, R in Å) of the foil's first shell, read from the test data's truth table."""
    row = next(
        line
        for line in (EXPERIMENTAL / "README.md").read_text().splitlines()
        if f"`{low}_metal_rt.xdi`" in line
    )
    m = re.search(r"first shell N = (\d+) at ([0-9.]+) Å", row)
    return float(m.group(1)), float(m.group(2))


def _shell_truth(name: str) -> list[tuple[float, str, float]]:
    """(CN, neighbour element, R in Å) of each shell the truth table states for ``name``."""
    row = next(
        line
        for line in (EXPERIMENTAL / "README.md").read_text().splitlines()
        if f"`{name}`" in line
    )
    return [
        (float(n), el, float(r))
        for n, el, r in re.findall(r"(\d+) ([A-Z][a-z]?) at ([0-9.]+) Å", row)
    ]


def test_truth_table_is_parsed():
    assert _truth("cu") == (12.0, 2.556) and _truth("pt") == (12.0, 2.775)
    assert _shell_truth("fe_metal_rt.xdi") == [(8.0, "Fe", 2.482), (6.0, "Fe", 2.866)]
    assert _shell_truth("ge_crystalline_rt.xdi") == [(4.0, "Ge", 2.450), (12.0, "Ge", 4.001)]


def _bundled_pointer(low: str, experiment: str | None = None) -> Path:
    """``models/<experiment>/<primary>.json`` (default experiment ``foil_<low>``): the
    pointer of the experiment's primary model in its bundled models folder."""
    experiment = experiment or f"foil_{low}"
    config = ROOT / "config" / "experiments" / f"{experiment}.yaml"
    primary = yaml.safe_load(config.read_text())["evaluation"]["primary"]
    return BUNDLED / experiment / f"{primary}.json"


@pytest.mark.parametrize("low", sorted(FOILS))
def test_bundled_model_reads_the_measured_foil(low):
    model = _bundled_pointer(low)
    if not model.is_file():
        pytest.skip(
            f"no bundled {FOILS[low]} model: {model.relative_to(ROOT)} and the model folder "
            f"it names (trained by config/experiments/foil_{low}.yaml, copied from "
            f"results/foil_{low}/models/) are not in the repository yet"
        )
    from mlxas.predict.predictor import Predictor

    cn_true, r_true = _truth(low)
    with Predictor(model, jobs=1) as predictor:
        (res,) = predictor.predict([EXPERIMENTAL / f"{low}_metal_rt.xdi"])
    assert res.status == "ok", res.reason
    assert abs(res.values["cn"] - cn_true) <= CN_BOUND, res.values
    assert abs(res.values["r"] - r_true) <= R_BOUND, res.values


@pytest.mark.parametrize(
    "experiment",
    [
        pytest.param(
            e, marks=pytest.mark.xfail(raises=AssertionError, strict=True, reason=NOT_MET[e])
        )
        if e in NOT_MET
        else e
        for e in sorted(SHELL_MODELS)
    ],
)
def test_bundled_model_reads_each_shell(experiment):
    name, bounds = SHELL_MODELS[experiment]
    model = _bundled_pointer("", experiment)
    if not model.is_file():
        pytest.skip(
            f"no bundled {experiment} model: {model.relative_to(ROOT)} (trained by "
            f"config/experiments/{experiment}.yaml) is not in the repository"
        )
    from mlxas.predict.predictor import Predictor

    with Predictor(model, jobs=1) as predictor:
        (res,) = predictor.predict([EXPERIMENTAL / name])
    assert res.status == "ok", res.reason
    v = res.values
    for i, ((cn, el, r), (cn_bound, r_bound)) in enumerate(
        zip(_shell_truth(name), bounds, strict=False), 1
    ):
        assert abs(v[f"cn_s{i}_{el}"] - cn) <= cn_bound, (i, v)
        assert abs(v[f"r_s{i}_{el}"] - r) <= r_bound, (i, v)


@pytest.mark.parametrize("experiment", sorted(NOT_MET))
def test_a_model_that_misses_a_bound_misses_it_only_as_recorded(experiment):
    """The models of NOT_MET read their file as recorded: flagged, every other bound met,
    the missed one missed by no more than KNOWN_MISS allows."""
    from mlxas.predict.predictor import Predictor

    name, bounds = SHELL_MODELS[experiment]
    assert set(KNOWN_MISS) == set(NOT_MET)
    with Predictor(_bundled_pointer("", experiment), jobs=1) as predictor:
        (res,) = predictor.predict([EXPERIMENTAL / name])
    assert res.status == "ok", res.reason
    v = res.values
    assert v["ood"] is True, v  # every NOT_MET reading is flagged
    wide = KNOWN_MISS[experiment]
    shells = list(zip(_shell_truth(name), bounds, strict=False))
    assert len(shells) == len(bounds)
    for i, ((cn, el, r), (cn_bound, r_bound)) in enumerate(shells, 1):
        assert abs(v[f"cn_s{i}_{el}"] - cn) <= wide.get((i, "cn"), cn_bound), (i, v)
        assert abs(v[f"r_s{i}_{el}"] - r) <= wide.get((i, "r"), r_bound), (i, v)
