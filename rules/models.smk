# Models: train each `models` entry, tune one (optional), evaluate all on the test split.
PRIMARY = config["evaluation"]["primary"] or config["models"][0]["name"]
if PRIMARY not in MODELS:
    raise ValueError(
        f"evaluation.primary: no model named {PRIMARY!r} (models: {sorted(MODELS)})"
    )
TUNE_MODEL = config["tune"]["model"] or config["models"][0]["name"]
if TUNE_MODEL not in MODELS:
    raise ValueError(
        f"tune.model: no model named {TUNE_MODEL!r} (models: {sorted(MODELS)})"
    )
EVAL = f"{RES}/evaluation"


# Per-model plots of `mlxas evaluate`: <kind>_<model>_<target>.png
MODEL_PLOTS = {
    kind: [
        f"{EVAL}/{kind}_{m}_{t}.png"
        for m, entry in MODELS.items()
        for t in entry["targets"]
    ]
    for kind in ("parity", "errors")
}


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


rule tune:
    input:
        dataset=rules.gather.output[0],
    output:
        best=f"{RES}/tune/best.json",
        entry=f"{RES}/tune/best_model.yaml",
        trials=report(
            f"{RES}/tune/trials.csv",
            category="Tuning",
            caption="../docs/report/tune.rst",
        ),
    log:
        f"{RES}/logs/tune.log",
    conda:
        "../envs/mlxas.yaml"
    threads: 8
    resources:
        runtime=lambda w, attempt: 480 * attempt,
        mem_mb=lambda w, attempt: 8000 * attempt,
    params:
        spec=spec({"tune": config["tune"], "model": MODELS[TUNE_MODEL]}),
        code=code("mlxas.models.tune"),
    shell:
        "mlxas tune --spec {params.spec:q} --dataset {input.dataset:q} "
        "--out-dir $(dirname {output.best:q}) --threads {threads} > {log:q} 2>&1"


rule evaluate:
    input:
        dataset=rules.gather.output[0],
        models=expand(f"{RES}/models/{{model}}.json", model=MODELS),
    output:
        metrics=f"{EVAL}/metrics.json",
        table=f"{EVAL}/comparison.md",
        csv=report(
            f"{EVAL}/comparison.csv",
            category="Evaluation",
            subcategory="Comparison",
            caption="../docs/report/comparison.rst",
        ),
        parity=report(
            expand(f"{EVAL}/parity_{{target}}.png", target=MODELS[PRIMARY]["targets"]),
            category="Evaluation",
            subcategory="Primary model",
            caption="../docs/report/parity.rst",
        ),
        parity_models=report(
            MODEL_PLOTS["parity"],
            category="Evaluation",
            subcategory="Parity per model",
            caption="../docs/report/parity_models.rst",
        ),
        errors=report(
            MODEL_PLOTS["errors"],
            category="Evaluation",
            subcategory="Errors per CN class",
            caption="../docs/report/errors.rst",
        ),
    log:
        f"{RES}/logs/evaluate.log",
    conda:
        "../envs/mlxas.yaml"
    resources:
        runtime=lambda w, attempt: 30 * attempt,
        mem_mb=lambda w, attempt: 4000 * attempt,
    params:
        primary=PRIMARY,
        code=code("mlxas.evaluate"),
    shell:
        "mlxas evaluate --dataset {input.dataset:q} --models {input.models:q} "
        "--out-dir $(dirname {output.metrics:q}) --primary {params.primary} > {log:q} 2>&1"
