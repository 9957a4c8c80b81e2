# The simulation stage, the same for every engine (simulation.engine): one input per item
# and the chunk plan (checkpoint), then one job per chunk.


checkpoint inputs:
    input:
        frames=rules.structures.output.frames,
        sites=rules.sites.output[0],
    output:
        table=L.simulation("{source}").inputs_table,
        plan=L.simulation("{source}").chunk_plan,
    log:
        L.log("inputs", "{source}"),
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        # engine, its version and resolved settings (FEFF: merged cards): the input hashes
        spec=EXP.spec("inputs"),
        folder=lambda w: L.simulation(w.source).path,
        code=EXP.code("inputs"),
    shell:
        "mlxas inputs --spec {params.spec:q} --structures {input.frames:q} "
        "--sites {input.sites:q} --folder {params.folder:q} > {log:q} 2>&1"


rule simulate:
    input:
        table=L.simulation("{source}").inputs_table,
        plan=L.simulation("{source}").chunk_plan,
    output:
        chunk=L.simulation("{source}").chunk("{chunk}"),
        summary=L.simulation("{source}").chunk_summary("{chunk}"),
    log:
        L.log("simulate", "{source}", "{chunk}"),
    conda:
        "../envs/mlxas.yaml"
    threads: EXP.simulation.threads
    resources:
        # minutes: every item of the chunk hits the timeout, `threads` items at a time;
        # a retry doubles it (finished items are not rerun)
        runtime=lambda w, threads, attempt: attempt
        * (
            10
            + (EXP.simulation.chunk_size + threads - 1)
            // threads
            * (int(EXP.simulation.timeout) // 60 + 1)
        ),
        mem_mb=lambda w, threads, attempt: attempt * (1000 + 500 * threads),
    params:
        spec=EXP.spec("simulate"),
        folder=lambda w: L.simulation(w.source).path,
        code=EXP.code("simulate"),
    shell:
        "mlxas simulate --spec {params.spec:q} --folder {params.folder:q} "
        "--chunk {wildcards.chunk} --threads {threads} > {log:q} 2>&1"
