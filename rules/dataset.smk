rule gather:
    input:
        chunks=all_feff_chunks,
        sites=expand(f"{RES}/sites/{{source}}.parquet", source=SOURCES),
        rejected=expand(f"{RES}/structures/{{source}}/rejected.csv", source=SOURCES),
    output:
        f"{RES}/dataset.h5",
    log:
        f"{RES}/logs/gather.log",
    conda:
        "../envs/mlxas.yaml"
    threads: workflow.cores
    resources:
        mem_mb=4000,
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
        code=code("mlxas.dataset"),
    shell:
        "printf '%s\\n' {input.chunks:q} > {params.chunk_list:q}; "
        "mlxas gather --spec {params.spec:q} --chunks @{params.chunk_list:q} "
        "--sites {input.sites:q} --rejected {input.rejected:q} --out {output:q} > {log:q} 2>&1"
