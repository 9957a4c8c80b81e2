# mlxas workflow: structures -> sites -> labels | inputs -> simulate (chunks) -> gather
#                 -> train (per model) -> latest, evaluate, tune
# The experiment: --configfile FILE (several merge in order); without one, the default
# experiment config/config.yaml is selected.  Every check runs before any job, the same as
# `mlxas config check FILE`; paths and rule parameters come from mlxas.workflow.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/common.smk"
include: "rules/structures.smk"
include: "rules/simulation.smk"
include: "rules/dataset.smk"
include: "rules/models.smk"


rule all:
    default_target: True
    input:
        EXP.final_outputs(),
