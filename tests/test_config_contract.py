"""One config check for both paths: `mlxas config check` and the Snakefile (`snakemake -n`)
refuse every bad config with the same message before any job, and accept every shipped
config.

The table runs both in this process (the `mlxas` entry point and Snakemake's own API doing
a dry run), so that 20-odd configs cost seconds; one case also runs both commands as
subprocesses, the way a user types them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY_CONFIG, VENV_BIN, snakemake
from mlxas.cli import main as mlxas

pytestmark = pytest.mark.workflow


def _with(**changes) -> dict:
    cfg = copy.deepcopy(TINY_CONFIG)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = cfg
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[last] = value
    return cfg


def _two_models(**extra) -> dict:
    cfg = _with(**extra)
    cfg["models"] = [{"name": "a", "kind": "mlp"}, {"name": "b", "kind": "mlp"}]
    return cfg


def _crystal(**entry) -> dict:
    """The tiny config with one `kind: crystal` source (fcc Cu unless ``entry`` says)."""
    cfg = copy.deepcopy(TINY_CONFIG)
    parent = {} if {"file", "amcsd", "prototype"} & set(entry) else FCC_CU
    merged = {"name": "c", "kind": "crystal", **parent, **entry}
    cfg["structures"] = [{k: v for k, v in merged.items() if v is not None}]
    return cfg


FCC_CU = {"prototype": "fcc", "species": ["Cu"], "a": 3.61}
CRYSTAL = "structures: source 'c': "


def _duplicate(section: str) -> dict:
    cfg = copy.deepcopy(TINY_CONFIG)
    if section == "structures":
        cfg["structures"][1]["name"] = cfg["structures"][0]["name"]
    else:
        cfg["models"] = [cfg["models"][0], {**cfg["models"][0], "epochs": 5}]
    return cfg


#: (case, config, text the message must hold).  Every config here used to pass at least
#: one of the two checks (issues 15, 16) or is a bad config of the test suite.
BAD = [
    ("unknown absorber", _with(absorber="Xx"), "absorber: 'Xx' is not a chemical element"),
    ("unknown element of a source", _with(structures__0__element="Qq"),
     "structures.octa: 'Qq' is not a chemical element"),
    ("edge the absorber lacks", _with(absorber="He", edge="L3"), "edge: He has no L3 edge"),
    ("unknown target", _with(models__0__targets=["cn", "nosuch"]),
     "models.mlp.targets: 'nosuch' is not a label"),
    ("duplicate source names", _duplicate("structures"),
     "structures: duplicate source name(s) ['octa']"),
    ("duplicate model names", _duplicate("models"), "models: duplicate model name(s) ['mlp']"),
    ("fractions not summing to 1", _with(dataset__split__fractions=[0.9, 0.5, 0.1]),
     "dataset.split.fractions: [0.9, 0.5, 0.1] sum to 1.5, not 1"),
    ("primary model missing", _two_models(evaluation={"primary": "nosuch"}),
     "evaluation.primary: no model named 'nosuch'"),
    ("tuned model missing", _two_models(tune={"enabled": True, "model": "nosuch"}),
     "tune.model: no model named 'nosuch'"),
    ("model named latest", _with(models__0__name="latest"), "'latest' is the link"),
    ("unknown engine", _with(simulation__engine="feff99"), "unknown engine 'feff99'"),
    ("card the engine refuses", _with(feff__cards={"FOOBAR": 1}),
     "FEFF8L does not accept card FOOBAR"),
    ("XANES with FEFF8L", _with(feff__spectroscopy="xanes"), "FEFF8L does not compute xanes"),
    ("site engine on whole structures", _with(sites={"mode": "structure"}),
     "simulation.engine: feff8l computes one item per site"),
    ("unknown label set", _with(labels={"sets": ["nosuch"]}), "unknown label set 'nosuch'"),
    ("no absorber for absorbing sites", _with(absorber=None), "absorber: sites.mode 'unique'"),
    ("ensemble of one", _with(models__0__kind="ensemble", models__0__params={"members": 1}),
     "an ensemble needs members >= 2"),
    ("schema: chunk size", _with(simulation__chunk_size="ten"),
     "invalid value at 'simulation.chunk_size'"),
    ("schema: edge", _with(edge="M5"), "invalid value at 'edge'"),
    ("schema: model kind", _with(models__0__kind="transformer"),
     "invalid value at 'models.0.kind'"),
    ("schema: unknown key", _with(bogus_key=1), "invalid value at '<top level>'"),
    ("schema: shape", _with(structures__0__shape="dodecahedron"),
     "invalid value at 'structures.0"),
    # kind: crystal -- the schema first, then the typed checks with a message per key
    ("crystal: two parents", _crystal(prototype="fcc", species=["Cu"], amcsd="copper"),
     "invalid value at 'structures.0'"),
    ("crystal: no parent", _crystal(seed=1, prototype=None, species=None),
     "invalid value at 'structures.0"),
    ("crystal: range without steps or draws",
     _crystal(strain={"isotropic": {"range": [0.0, 0.01]}}), "invalid value at 'structures.0"),
    ("crystal: vacancy fraction above 1", _crystal(defects=[{"vacancies": {"Cu": 1.5}}]),
     "invalid value at 'structures.0"),
    ("crystal: unknown cut", _crystal(shapes=[{"cut": "blob"}]),
     "invalid value at 'structures.0"),
    ("crystal: unknown thermal model", _crystal(temperature={"values": [300], "model": "x"}),
     "invalid value at 'structures.0"),
    ("crystal: structure file missing", _crystal(file="no/such.cif"),
     CRYSTAL + "file: no/such.cif does not exist"),
    ("crystal: species of a prototype",
     _crystal(prototype="rocksalt", species=["Ni"], a=4.17),
     CRYSTAL + "prototype rocksalt: needs 2 species in this order"),
    ("crystal: lattice constant of a file", _crystal(file="x.cif", a=4.0),
     CRYSTAL + "a: apply to a prototype only"),
    ("crystal: θ range with a snapshot model",
     _crystal(temperature={"values": [300], "model": "einstein",
                           "debye_temperature": {"range": [300, 400]}}),
     CRYSTAL + "temperature.debye_temperature: a range of θ applies to model debye_card only"),
    ("crystal: strain collapsing the cell", _crystal(strain={"isotropic": [-0.6]}),
     CRYSTAL + "strain: a strain of -50 % or less collapses the cell"),
    ("crystal: substitution by no element",
     _crystal(defects=[{"substitutions": {"Cu": {"Qq": 0.1}}}]),
     CRYSTAL + "defects[0]: 'Qq' is not an element symbol"),
    ("shells: no windows", _with(labels={"sets": ["shells"], "shells": {"sigma2": "auto"}}),
     "invalid value at 'labels.shells'"),
    ("shells: window reversed",
     _with(labels={"sets": ["shells"], "shells": {"windows": [{"r": [3.0, 2.0]}]}}),
     "labels.shells.windows[0]: r must be [r_min, r_max]"),
    ("undamping without sigma² labels", _with(models__0__augment={"sigma2": [-0.002, 0.003]}),
     "models.mlp.augment.sigma2: a low end below 0 removes damping"),
]  # fmt: skip


def _mlxas_message(path: Path) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = mlxas(["config", "check", str(path)])
    assert rc == 2, err.getvalue()
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxas: error: "), err.getvalue()
    return lines[0].removeprefix("mlxas: error: ")


def _dry_run(workdir: Path, configfiles: list[Path]) -> None:
    """What `snakemake -n --configfile ...` does, through Snakemake's API."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings()) as api:
            wf = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(configfiles=configfiles),
                snakefile=ROOT / "Snakefile",
                workdir=workdir,
            )
            wf.dag().execute_workflow(executor="dryrun")
    finally:
        os.chdir(cwd)


def _snakemake_message(workdir: Path, path: Path) -> str:
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError) as err:
        _dry_run(workdir, [path])
    text = str(err.value)
    assert text.startswith("invalid config: "), text
    return text.removeprefix("invalid config: ").splitlines()[0]


@pytest.mark.parametrize(("case", "config", "expected"), BAD, ids=[c for c, _, _ in BAD])
def test_bad_config_is_refused_by_both_with_one_message(case, config, expected, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    from_cli = _mlxas_message(path)
    assert from_cli.startswith(f"{path}: ") and expected in from_cli, from_cli
    assert _snakemake_message(tmp_path, path) == from_cli
    # Refused before any job: nothing was written.
    assert not (tmp_path / "results").exists()


def test_the_commands_themselves_print_the_same_message(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with(models__0__targets=["cn", "nosuch"])))
    proc = subprocess.run(
        [sys.executable, "-m", "mlxas", "config", "check", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("mlxas: error: "), proc.stderr
    message = proc.stderr.strip().removeprefix("mlxas: error: ")
    assert "models.mlp.targets: 'nosuch' is not a label" in message
    dry = snakemake(tmp_path, "--configfile", str(path), "-n", check=False, timeout=300)
    assert dry.returncode != 0 and f"invalid config: {message}" in dry.stdout + dry.stderr
    assert not (tmp_path / "results").exists()


CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "config").rglob("*.yaml"))


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_config_passes_both(name, tmp_path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert mlxas(["config", "check", str(ROOT / name)]) == 0
    assert "valid" in out.getvalue()
    _dry_run(tmp_path, [ROOT / name])  # raises on any refusal


def test_default_experiment_without_configfile(tmp_path):
    """No --configfile: the default experiment is selected, by both paths."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    proc = subprocess.run(
        [str(VENV_BIN / "mlxas"), "status", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    dry = snakemake(tmp_path, "-n", timeout=300)
    assert "results/cu_default/dataset.h5" in dry.stdout + dry.stderr
