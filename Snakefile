# mlxas workflow: structures -> sites -> FEFF inputs -> FEFF chunks -> dataset -> models -> evaluation
# Default config: config/config.yaml (Cu fcc nanoparticles, Cu K edge, FEFF8L EXAFS).
# Other experiments: snakemake --configfile config/experiments/<name>.yaml
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/structures.smk"
include: "rules/feff.smk"
include: "rules/dataset.smk"
include: "rules/models.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
