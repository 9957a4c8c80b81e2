import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from mlxas.errors import ConfigError
from mlxas.simulation.inputs import read_plan
from mlxas.workflow.checks import load_experiment

# The one reading of the config, the same as `mlxas config check`: schema defaults, then
# the experiment (the --configfile files, or config/config.yaml when none is given, then
# --config overrides), then every cross-field check; a bad config stops here.
try:
    EXP = load_experiment(
        workflow.config_settings.configfiles, workflow.config_settings.config
    )
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
L = EXP.layout
SOURCES = list(EXP.sources)
MODELS = list(EXP.models)
# Stages run the `mlxas` installed beside the Python that runs Snakemake, also on compute
# nodes (where Snakemake re-reads this file), even if that environment is not activated.
shell.prefix(
    f'set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; '
)


wildcard_constraints:
    source="[A-Za-z0-9_-]+",
    chunk="[0-9]+",
    model="(?!latest$)[A-Za-z0-9_-]+",


def source_files(wildcards):
    """Files a source reads (kind `files`), so that editing one reruns its source."""
    src = EXP.sources[wildcards.source]
    return src.input_files() if hasattr(src, "input_files") else []


def chunk_files(wildcards):
    """Chunk files of every source; known once the inputs checkpoint planned them."""
    files = []
    for source in SOURCES:
        plan = checkpoints.inputs.get(source=source).output.plan
        folder = L.simulation(source)
        files += [folder.chunk(i) for i in range(read_plan(plan)["n_chunks"])]
    return files
