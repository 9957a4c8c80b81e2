"""Every path under ``results/<experiment>/``, defined once.

The rules, the stage commands, ``mlxas status`` and ``mlxas predict`` take their paths
from here; no other module writes a results path or an output file name.  Methods take
plain strings, so a rule passes Snakemake wildcards (``layout.sites("{source}")``).

Work folders (``simulation/<source>/runs``, ``quarantine``, ``structures/<source>/work``,
``dataset.cache``) hold state that must outlive a failed or killed job so that the next
run resumes (finished FEFF runs, MD checkpoints, computed features).  They are therefore
not rule outputs: Snakemake deletes the outputs of a failed job.  Every other file a rule
writes is one of its outputs or lies inside a directory output.

Kept free of imports beyond the standard library: ``mlxas status`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CARD_FILE",
    "DONE_MARKER",
    "FAILURE_FILE",
    "MODEL_FILE",
    "MODEL_NPZ_FILE",
    "OOD_FILE",
    "RESULTS",
    "RESULT_FILE",
    "TRAINING_BAND_FILE",
    "Layout",
    "ModelFiles",
    "SimulationFolder",
    "chunk_name",
    "summary_name",
]

#: Folder of all experiments, relative to the working directory.
RESULTS = "results"

# In a run folder ``runs/<item_id>/``:
#: written atomically, last, when a run passed every check
DONE_MARKER = ".mlxas-done.json"
#: the run's arrays and scalars, read back when a chunk is resumed
RESULT_FILE = ".mlxas-result.npz"
# In ``quarantine/<item_id>/``:
#: reason, detail and input hash of a failed run
FAILURE_FILE = "mlxas-failure.json"

# In a model folder ``models/<name>/<model id>/``:
MODEL_FILE = "model.keras"
#: the arrays of a numpy-backend model (random forest trees), read without pickle
MODEL_NPZ_FILE = "model.npz"
CARD_FILE = "card.json"
#: out-of-distribution statistics of the training inputs (``mlxas.ood.fit_ood``)
OOD_FILE = "ood.json"
#: percentiles of the training inputs on their grid, for plots beside a prediction
TRAINING_BAND_FILE = "training_band.json"


def chunk_name(chunk: int | str) -> str:
    """File name of chunk number ``chunk`` (or a ``{chunk}`` wildcard) under ``chunks/``."""
    return f"{chunk:05d}.h5" if isinstance(chunk, int) else f"{chunk}.h5"


def summary_name(chunk: int | str) -> str:
    """The small JSON summary written beside a chunk file."""
    return f"{chunk:05d}.summary.json" if isinstance(chunk, int) else f"{chunk}.summary.json"


@dataclass(frozen=True)
class SimulationFolder:
    """``simulation/<source>/``: the input table, chunk plan, chunk files and run folders
    of one source (every engine uses the same layout)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of_plan(cls, plan: str | Path) -> SimulationFolder:
        """The folder of a chunk plan (``chunks.json``)."""
        return cls(Path(plan).parent)

    @property
    def source(self) -> str:
        return self.path.name

    @property
    def inputs_table(self) -> Path:
        return self.path / "inputs.parquet"

    @property
    def chunk_plan(self) -> Path:
        return self.path / "chunks.json"

    @property
    def chunks_dir(self) -> Path:
        return self.path / "chunks"

    def chunk(self, chunk: int | str) -> Path:
        return self.chunks_dir / chunk_name(chunk)

    def chunk_summary(self, chunk: int | str) -> Path:
        return self.chunks_dir / summary_name(chunk)

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def quarantine_dir(self) -> Path:
        return self.path / "quarantine"


@dataclass(frozen=True)
class ModelFiles:
    """The files of one model folder ``models/<name>/<model id>/``."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def model_npz(self) -> Path:
        return self.path / MODEL_NPZ_FILE

    @property
    def card(self) -> Path:
        return self.path / CARD_FILE

    @property
    def ood(self) -> Path:
        return self.path / OOD_FILE

    @property
    def training_band(self) -> Path:
        return self.path / TRAINING_BAND_FILE


@dataclass(frozen=True)
class Layout:
    """Paths of one experiment's results folder ``root`` (``results/<experiment>``)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def for_experiment(cls, experiment: str, base: str | Path = RESULTS) -> Layout:
        return cls(Path(base) / experiment)

    # --- structures and sites (per source) ----------------------------------------------

    def structures_dir(self, source: str) -> Path:
        return self.root / "structures" / source

    def structures_frames(self, source: str) -> Path:
        return self.structures_dir(source) / "structures.extxyz"

    def structures_index(self, source: str) -> Path:
        return self.structures_dir(source) / "index.csv"

    def structures_rejected(self, source: str) -> Path:
        return self.structures_dir(source) / "rejected.csv"

    def structures_work(self, source: str) -> Path:
        """Restartable state of a generator (MD checkpoints); a work folder."""
        return self.structures_dir(source) / "work"

    def sites(self, source: str) -> Path:
        return self.root / "sites" / f"{source}.parquet"

    def labels(self, source: str) -> Path:
        return self.root / "labels" / f"{source}.parquet"

    # --- simulation ---------------------------------------------------------------------

    def simulation(self, source: str) -> SimulationFolder:
        return SimulationFolder(self.root / "simulation" / source)

    def simulation_root(self) -> Path:
        return self.root / "simulation"

    # --- dataset ------------------------------------------------------------------------

    @property
    def dataset(self) -> Path:
        return self.root / "dataset.h5"

    @property
    def dataset_cache(self) -> Path:
        """Per-chunk feature cache of ``gather``; a work folder."""
        return self.root / "dataset.cache"

    # --- models -------------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_pointer(self, name: str) -> Path:
        """``models/<name>.json``: id and metrics of the model trained for entry ``name``."""
        return self.models_dir / f"{name}.json"

    def model_store(self, name: str) -> Path:
        """``models/<name>/``: the folder (a rule output) holding ``<model id>/``."""
        return self.models_dir / name

    def model_dir(self, name: str, model_id: str) -> Path:
        return self.model_store(name) / model_id

    @property
    def latest(self) -> Path:
        """Symbolic link to the newest model folder."""
        return self.models_dir / "latest"

    # --- tuning and evaluation ----------------------------------------------------------

    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    @property
    def tune_best(self) -> Path:
        return self.tune_dir / "best.json"

    @property
    def tune_entry(self) -> Path:
        return self.tune_dir / "best_model.yaml"

    @property
    def tune_trials(self) -> Path:
        return self.tune_dir / "trials.csv"

    @property
    def evaluation_dir(self) -> Path:
        return self.root / "evaluation"

    @property
    def metrics(self) -> Path:
        return self.evaluation_dir / "metrics.json"

    @property
    def comparison_md(self) -> Path:
        return self.evaluation_dir / "comparison.md"

    @property
    def comparison_csv(self) -> Path:
        return self.evaluation_dir / "comparison.csv"

    def parity(self, target: str) -> Path:
        """Parity plot of the primary model."""
        return self.evaluation_dir / f"parity_{target}.png"

    def model_plot(self, kind: str, model: str, target: str) -> Path:
        """``parity`` or ``errors`` plot of one model and target."""
        return self.evaluation_dir / f"{kind}_{model}_{target}.png"

    # --- logs ---------------------------------------------------------------------------

    def log(self, stage: str, *parts: str) -> Path:
        """``logs/<stage>.log`` or ``logs/<stage>/<part>/.../<last>.log``."""
        if not parts:
            return self.root / "logs" / f"{stage}.log"
        return self.root.joinpath("logs", stage, *parts[:-1], f"{parts[-1]}.log")
