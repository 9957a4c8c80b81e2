import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from mlxas.feff.cards import CardError, check_feff_config
from mlxas.provenance import code_version

# Same schema and defaults as `mlxas config check`.
validate(config, "../src/mlxas/schemas/config.schema.yaml")
# FEFF cards the engine does not accept stop the workflow here, before any job runs.
try:
    FEFF_CARDS = check_feff_config(config)
except CardError as err:
    raise WorkflowError(f"invalid config: {err}") from None

EXP = config["experiment"]
RES = f"results/{EXP}"
SOURCES = {s["name"]: s for s in config["structures"]}
MODELS = {m["name"]: m for m in config["models"]}
# Stages run the `mlxas` installed beside the Python that runs Snakemake, also on compute
# nodes (where Snakemake re-reads this file), even if that environment is not activated.
shell.prefix(
    f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; '
)


wildcard_constraints:
    source="[A-Za-z0-9_-]+",
    chunk="[0-9]+",
    model="[A-Za-z0-9_-]+",


def spec(obj):
    """A config excerpt as canonical JSON: a rule parameter, so editing it reruns the rule."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def code(*modules):
    """Hash of the mlxas code a stage runs: a code change reruns that stage."""
    return code_version(*modules)


def source_files(wildcards):
    """User structure files of a `files` source, so editing one reruns its source."""
    import glob

    src = SOURCES[wildcards.source]
    if src["kind"] != "files":
        return []
    return sorted(f for pattern in src["paths"] for f in glob.glob(pattern))


def feff_chunks(source):
    """Chunk result files of one source; known once its FEFF inputs are written."""
    plan = checkpoints.feff_inputs.get(source=source).output.chunks
    with open(plan) as fh:
        n_chunks = json.load(fh)["n_chunks"]
    return [f"{RES}/feff/{source}/chunks/{i:05d}.h5" for i in range(n_chunks)]


def all_feff_chunks(wildcards):
    return [f for s in SOURCES for f in feff_chunks(s)]


def final_outputs():
    primary = config["evaluation"]["primary"] or config["models"][0]["name"]
    targets = MODELS[primary]["targets"]
    return [
        f"{RES}/dataset.h5",
        f"{RES}/evaluation/metrics.json",
        *[f"{RES}/evaluation/parity_{t}.png" for t in targets],
        *([f"{RES}/tune/best.json"] if config["tune"]["enabled"] else []),
    ]
