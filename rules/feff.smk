from mlxas.feff.engines import get_engine


checkpoint feff_inputs:
    input:
        frames=rules.structures.output.frames,
        sites=rules.sites.output[0],
    output:
        table=f"{RES}/feff/{{source}}/inputs.parquet",
        chunks=f"{RES}/feff/{{source}}/chunks.json",
    log:
        f"{RES}/logs/feff_inputs/{{source}}.log",
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        spec=spec({"feff": config["feff"], "edge": config["edge"]}),
        # merged cards (the engine's template included) and engine version: the input hashes
        feff=spec(
            {
                "cards": FEFF_CARDS,
                "engine_version": get_engine(config["feff"]["engine"]).version,
            }
        ),
        code=code("mlxas.feff.inputs"),
    shell:
        "mlxas feff-inputs --spec {params.spec:q} --structures {input.frames:q} "
        "--sites {input.sites:q} --table {output.table:q} --chunks {output.chunks:q} > {log:q} 2>&1"


rule run_feff:
    input:
        table=f"{RES}/feff/{{source}}/inputs.parquet",
    output:
        f"{RES}/feff/{{source}}/chunks/{{chunk}}.h5",
    log:
        f"{RES}/logs/run_feff/{{source}}/{{chunk}}.log",
    conda:
        "../envs/mlxas.yaml"
    threads: config["feff"]["threads"]
    resources:
        # minutes: every site of the chunk hits the FEFF timeout, `threads` sites at a time;
        # a retry doubles it (finished sites are not rerun)
        runtime=lambda w, threads, attempt: attempt
        * (
            10
            + (config["feff"]["chunk_size"] + threads - 1)
            // threads
            * (int(config["feff"]["timeout"]) // 60 + 1)
        ),
        mem_mb=lambda w, threads, attempt: attempt * (1000 + 500 * threads),
    params:
        workdir=lambda w, input: os.path.join(os.path.dirname(input.table), "runs"),
        engine=config["feff"]["engine"],
        timeout=config["feff"]["timeout"],
        keep=lambda w: "--keep-files" if config["feff"]["keep_files"] else "",
        code=code("mlxas.feff.runner", "mlxas.feff.feff10_driver"),
    shell:
        "mlxas run-feff --inputs {input.table:q} --chunk {wildcards.chunk} "
        "--workdir {params.workdir:q} --out {output:q} --engine {params.engine} "
        "--timeout {params.timeout} --threads {threads} {params.keep} > {log:q} 2>&1"
