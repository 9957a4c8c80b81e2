# Per source: structures -> sites (items) -> labels.  Labels are their own rule, so that a
# label setting reruns the labels and what reads them, never the simulation.


rule structures:
    input:
        source_files,
    output:
        frames=L.structures_frames("{source}"),
        index=L.structures_index("{source}"),
        rejected=L.structures_rejected("{source}"),
    log:
        L.log("structures", "{source}"),
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 60 * attempt,
        mem_mb=lambda w, attempt: 2000 * attempt,
    params:
        spec=lambda w: EXP.spec("structures", w.source),
        work=lambda w: L.structures_work(w.source),
        code=EXP.code("structures"),
    shell:
        "mlxas structures --spec {params.spec:q} --frames {output.frames:q} "
        "--index {output.index:q} --rejected {output.rejected:q} --work {params.work:q} "
        "> {log:q} 2>&1"


rule sites:
    input:
        frames=rules.structures.output.frames,
        rejected=rules.structures.output.rejected,
    output:
        L.sites("{source}"),
    log:
        L.log("sites", "{source}"),
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 2000 * attempt,
    params:
        spec=lambda w: EXP.spec("sites", w.source),
        code=EXP.code("sites"),
    shell:
        "mlxas sites --spec {params.spec:q} --structures {input.frames:q} "
        "--rejected {input.rejected:q} --out {output:q} > {log:q} 2>&1"


rule labels:
    input:
        frames=rules.structures.output.frames,
        sites=rules.sites.output[0],
    output:
        L.labels("{source}"),
    log:
        L.log("labels", "{source}"),
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 2000 * attempt,
    params:
        spec=EXP.spec("labels"),
        code=EXP.code("labels"),
    shell:
        "mlxas labels --spec {params.spec:q} --structures {input.frames:q} "
        "--sites {input.sites:q} --out {output:q} > {log:q} 2>&1"
