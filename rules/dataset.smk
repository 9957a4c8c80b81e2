rule gather:
    input:
        chunks=all_feff_chunks,
        sites=expand(f"{RES}/sites/{{source}}.parquet", source=SOURCES),
        rejected=expand(f"{RES}/structures/{{source}}/rejected.csv", source=SOURCES),
        inputs=expand(f"{RES}/feff/{{source}}/inputs.parquet", source=SOURCES),
    output:
        f"{RES}/dataset.h5",
    log:
        f"{RES}/logs/gather.log",
    conda:
        "../envs/mlxas.yaml"
    # Worker processes computing features; Snakemake caps this at --cores.
    threads: 4
    resources:
        runtime=lambda w, attempt: 60 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        spec=spec(
            {
                "settings": {
                    "features": config["features"],
                    "averaging": config["averaging"],
                    "split": config["dataset"]["split"],
                },
                "absorber": config["absorber"],
                "edge": config["edge"],
            }
        ),
        chunk_list=lambda w, output: f"{output[0]}.chunks.txt",
        # Per-chunk feature cache: Snakemake deletes dataset.h5 before rerunning gather,
        # the cache lets the rerun compute only spectra of new or changed chunks.
        cache=f"{RES}/dataset.cache",
        code=code("mlxas.dataset"),
    shell:
        "printf '%s\\n' {input.chunks:q} > {params.chunk_list:q}; "
        "mlxas gather --spec {params.spec:q} --chunks @{params.chunk_list:q} "
        "--sites {input.sites:q} --rejected {input.rejected:q} --inputs {input.inputs:q} "
        "--cache {params.cache:q} --threads {threads} --out {output:q} > {log:q} 2>&1"
