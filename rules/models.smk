# Models: train each `models` entry, point `latest` at the newest, tune one (optional),
# evaluate all on the test split.


rule train:
    input:
        dataset=rules.gather.output[0],
    output:
        pointer=L.model_pointer("{model}"),
        # models/<name>/<model id>/: the id is the hash of the card, known after training
        store=directory(L.model_store("{model}")),
    log:
        L.log("train", "{model}"),
    conda:
        "../envs/mlxas.yaml"
    # TensorFlow threads; capped by --cores locally and by --max-threads on a cluster
    threads: 8
    resources:
        runtime=lambda w, attempt: 120 * attempt,
        mem_mb=lambda w, attempt: 8000 * attempt,
    params:
        spec=lambda w: EXP.spec("train", w.model),
        code=EXP.code("train"),
    shell:
        "mlxas train --spec {params.spec:q} --dataset {input.dataset:q} "
        "--store {output.store:q} --pointer {output.pointer:q} --threads {threads} "
        "> {log:q} 2>&1"


rule latest:
    input:
        pointers=[L.model_pointer(m) for m in MODELS],
        stores=[L.model_store(m) for m in MODELS],
    output:
        directory(L.latest),
    log:
        L.log("latest"),
    conda:
        "../envs/mlxas.yaml"
    params:
        code=EXP.code("latest"),
    shell:
        "mlxas latest --pointers {input.pointers:q} --out {output:q} > {log:q} 2>&1"


rule tune:
    input:
        dataset=rules.gather.output[0],
    output:
        best=L.tune_best,
        entry=L.tune_entry,
        trials=report(
            L.tune_trials,
            category="Tuning",
            caption="../docs/report/tune.rst",
        ),
    log:
        L.log("tune"),
    conda:
        "../envs/mlxas.yaml"
    threads: 8
    resources:
        runtime=lambda w, attempt: 480 * attempt,
        mem_mb=lambda w, attempt: 8000 * attempt,
    params:
        spec=EXP.spec("tune"),
        results=L.root,
        code=EXP.code("tune"),
    shell:
        "mlxas tune --spec {params.spec:q} --dataset {input.dataset:q} "
        "--results {params.results:q} --threads {threads} > {log:q} 2>&1"


rule evaluate:
    input:
        dataset=rules.gather.output[0],
        models=[L.model_pointer(m) for m in MODELS],
    output:
        metrics=L.metrics,
        table=L.comparison_md,
        csv=report(
            L.comparison_csv,
            category="Evaluation",
            subcategory="Comparison",
            caption="../docs/report/comparison.rst",
        ),
        parity=report(
            [L.parity(t) for t in EXP.models[EXP.primary].targets],
            category="Evaluation",
            subcategory="Primary model",
            caption="../docs/report/parity.rst",
        ),
        parity_models=report(
            EXP.model_plots("parity"),
            category="Evaluation",
            subcategory="Parity per model",
            caption="../docs/report/parity_models.rst",
        ),
        errors=report(
            EXP.model_plots("errors"),
            category="Evaluation",
            subcategory="Errors per CN class",
            caption="../docs/report/errors.rst",
        ),
    log:
        L.log("evaluate"),
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        spec=EXP.spec("evaluate"),
        results=L.root,
        code=EXP.code("evaluate"),
    shell:
        "mlxas evaluate --spec {params.spec:q} --dataset {input.dataset:q} "
        "--models {input.models:q} --results {params.results:q} > {log:q} 2>&1"
