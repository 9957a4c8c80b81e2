rule structures:
    input:
        source_files,
    output:
        frames=f"{RES}/structures/{{source}}/structures.extxyz",
        index=f"{RES}/structures/{{source}}/index.csv",
        rejected=f"{RES}/structures/{{source}}/rejected.csv",
    log:
        f"{RES}/logs/structures/{{source}}.log",
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 60 * attempt,
        mem_mb=lambda w, attempt: 2000 * attempt,
    params:
        spec=lambda w: spec(
            {
                "source": SOURCES[w.source],
                "absorber": config["absorber"],
                "engine": config["feff"]["engine"],
                "cluster_radius": config["feff"]["cluster_radius"],
            }
        ),
        code=code("mlxas.structures", "mlxas.feff.engines"),
    shell:
        "mlxas structures --spec {params.spec:q} --out-dir $(dirname {output.index:q}) > {log:q} 2>&1"


rule sites:
    input:
        frames=rules.structures.output.frames,
    output:
        f"{RES}/sites/{{source}}.parquet",
    log:
        f"{RES}/logs/sites/{{source}}.log",
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 2000 * attempt,
    params:
        spec=spec(
            {
                "absorber": config["absorber"],
                "sites": config["sites"],
                "labels": config["labels"],
            }
        ),
        code=code("mlxas.sites"),
    shell:
        "mlxas sites --spec {params.spec:q} --structures {input.frames:q} --out {output:q} > {log:q} 2>&1"
