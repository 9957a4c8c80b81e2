rule train:
    input:
        dataset=rules.gather.output[0],
    output:
        f"{RES}/models/{{model}}.json",
    log:
        f"{RES}/logs/train/{{model}}.log",
    conda:
        "../envs/mlxas.yaml"
    # TensorFlow threads; capped by --cores locally and by --max-threads on a cluster
    threads: 8
    resources:
        runtime=lambda w, attempt: 120 * attempt,
        mem_mb=lambda w, attempt: 8000 * attempt,
    params:
        spec=lambda w: spec(MODELS[w.model]),
        models_dir=lambda w, output: os.path.dirname(output[0]),
        code=code("mlxas.models.train"),
    shell:
        "mlxas train --spec {params.spec:q} --dataset {input.dataset:q} "
        "--models-dir {params.models_dir:q} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule evaluate:
    input:
        dataset=rules.gather.output[0],
        models=expand(f"{RES}/models/{{model}}.json", model=MODELS),
    output:
        metrics=f"{RES}/evaluation/metrics.json",
        table=f"{RES}/evaluation/comparison.md",
        parity=report(
            expand(
                f"{RES}/evaluation/parity_{{target}}.png",
                target=config["models"][0]["targets"],
            ),
            category="Evaluation",
            caption="../docs/report/parity.rst",
        ),
    log:
        f"{RES}/logs/evaluate.log",
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        primary=config["evaluation"]["primary"] or config["models"][0]["name"],
        code=code("mlxas.evaluate"),
    shell:
        "mlxas evaluate --dataset {input.dataset:q} --models {input.models:q} "
        "--out-dir $(dirname {output.metrics:q}) --primary {params.primary} > {log:q} 2>&1"
