rule gather:
    input:
        chunks=chunk_files,
        plans=[L.simulation(s).chunk_plan for s in SOURCES],
        tables=[L.simulation(s).inputs_table for s in SOURCES],
        sites=[L.sites(s) for s in SOURCES],
        labels=[L.labels(s) for s in SOURCES],
    output:
        L.dataset,
    log:
        L.log("gather"),
    conda:
        "../envs/mlxas.yaml"
    # Worker processes computing features; Snakemake caps this at --cores.
    threads: 4
    resources:
        runtime=lambda w, attempt: 60 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        spec=EXP.spec("gather"),
        # Per-chunk feature cache: Snakemake deletes the dataset before rerunning gather,
        # the cache lets the rerun featurize only the items of new or changed chunks.
        cache=L.dataset_cache,
        code=EXP.code("gather"),
    shell:
        "mlxas gather --spec {params.spec:q} --plans {input.plans:q} --sites {input.sites:q} "
        "--labels {input.labels:q} --cache {params.cache:q} --threads {threads} "
        "--out {output:q} > {log:q} 2>&1"
