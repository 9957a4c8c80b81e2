"""Single-scattering EXAFS-equation spectra with known CN and R, for model tests.

The model tests check training mechanics, cards and metrics against labels that are
exactly known; the FEFF-backed dataset is covered by the workflow tests.  The spectra
follow chi(k) = N·S0²·F(k)/(kR²)·exp(−2k²σ²)·sin(2kR + φ(k)) for a first and a second
fcc-like shell; :class:`SyntheticDataset` serves them through the reader interface of
:class:`mlxas.dataset.Dataset`.
"""

from __future__ import annotations

import numpy as np

from mlxas.provenance import hash_json
from mlxas.spectra.features import compute_features, feature_grids
from mlxas.spectra.grids import k_grid

SPLITS = ("train", "val", "test")


def features_cfg(**over) -> dict:
    """The schema's feature settings (defaults filled in) on a short k grid."""
    from mlxas.workflow.config import apply_schema

    cfg = apply_schema(
        {
            "experiment": "t",
            "absorber": "Cu",
            "structures": [{"name": "s", "kind": "files", "paths": ["x.xyz"]}],
        }
    )["features"]
    cfg["k_grid"] = {"kmin": 0.5, "kmax": 14.0, "dk": 0.1}
    cfg["ft"] = {**cfg["ft"], "kmin": 2.0, "kmax": 12.0, "rmax": 5.0}
    for key, value in over.items():
        cfg[key] = value
    return cfg


def exafs(k: np.ndarray, cn: np.ndarray, r: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Unweighted chi(k) rows for first-shell (cn, r, σ²) plus a fixed-ratio second shell."""
    k = k[None, :]
    amp = np.exp(-(((k - 5.0) / 6.0) ** 2))  # smooth backscattering envelope
    phase = -0.3 * k
    out = np.zeros((len(cn), k.shape[1]))
    for n, rr, s2 in (
        (cn[:, None], r[:, None], sigma2[:, None]),
        (0.5 * cn[:, None], np.sqrt(2) * r[:, None], 1.2 * sigma2[:, None]),
    ):
        out += n * amp / (k * rr**2) * np.exp(-2 * k**2 * s2) * np.sin(2 * k * rr + phase)
    return out


class SyntheticDataset:
    """In-memory stand-in with the reader interface of ``mlxas.dataset.Dataset``."""

    def __init__(
        self,
        n: int = 300,
        seed: int = 0,
        cfg: dict | None = None,
        rdf_bins: int = 0,
        shells: tuple[int, ...] = (),
    ):
        """``shells``: draw CN from these values only and add the categorical label
        ``shell`` (class names ``cn<N>``, codes in the order of ``shells``)."""
        rng = np.random.default_rng(seed)
        self.path = f"synthetic-{seed}"
        self.cfg = cfg or features_cfg()
        self.k = k_grid(self.cfg["k_grid"])
        if shells:
            code = rng.integers(0, len(shells), n)
            cn = np.asarray(shells, dtype=float)[code]
        else:
            cn = rng.integers(4, 13, n).astype(float)
        r = rng.uniform(2.45, 2.60, n)
        s2 = rng.uniform(0.004, 0.009, n)
        self._chi = exafs(self.k, cn, r, s2)
        self._labels = {"cn": cn, "r": r}
        self._classes = {}
        if shells:
            self._labels["shell"] = code.astype(np.int32)
            self._classes["shell"] = tuple(f"cn{s}" for s in shells)
        if rdf_bins:
            grid = np.linspace(2.0, 3.0, rdf_bins)
            self._labels["rdf"] = (
                cn[:, None]
                * np.exp(-((grid[None, :] - r[:, None]) ** 2) / (2 * s2[:, None]))
                / np.sqrt(2 * np.pi * s2[:, None])
            )
            self._rdf_grid = grid
        self._split = rng.choice(3, size=n, p=[0.6, 0.2, 0.2])
        self._features = compute_features(self._chi, self.cfg)
        self.attrs = {"absorber": "Cu", "edge": "K"}
        self.settings = {
            "features": self.cfg,
            "split": {"fractions": [0.6, 0.2, 0.2], "group_by": "site", "seed": seed},
        }
        self.hash = hash_json(
            {"synthetic": n, "seed": seed, "cfg": self.cfg, "rdf": rdf_bins}
            | ({"shells": list(shells)} if shells else {})
        )

    def _rows(self, split):
        return slice(None) if split is None else self._split == SPLITS.index(split)

    def features(self, name, split=None):
        return self._features[name][self._rows(split)]

    def labels(self, name, split=None):
        return self._labels[name][self._rows(split)]

    def chi(self, split=None):
        return self._chi[self._rows(split)]

    def grid(self, name):
        if name == "rdf":
            return self._rdf_grid
        return feature_grids(self.cfg)[name][0]

    def feature_names(self):
        return sorted(self._features)

    def label_names(self):
        return sorted(self._labels)

    def classes(self, name):
        return self._classes.get(name)


#: Model entries trained once per test session on :class:`SyntheticDataset` (no XLA: the
#: networks are tiny and compiling would cost more than it saves).
SESSION_MODELS = (
    {"name": "mt", "kind": "mlp", "targets": ["cn", "r", "rdf"], "input_range": [2.0, 12.0],
     "epochs": 60, "patience": 20, "params": {"hidden": [64, 64]}, "jit_compile": False},
    {"name": "ens", "kind": "ensemble", "epochs": 4, "params": {"members": 2, "hidden": [16]},
     "jit_compile": False},
)  # fmt: skip


def train_session_models(root) -> dict:
    """Train :data:`SESSION_MODELS` in the results layout under ``root``; returns the
    dataset, layout, models folder, and per name the card, spec, pointer and folder."""
    from mlxas.models.spec import ModelSpec
    from mlxas.models.train import train, write_pointer
    from mlxas.workflow.layout import Layout

    ds = SyntheticDataset(n=300, seed=0, rdf_bins=12)
    layout = Layout(root)
    out = {"ds": ds, "layout": layout, "models": layout.models_dir, "cards": {}, "specs": {},
           "pointers": {}, "folders": {}}  # fmt: skip
    for entry in SESSION_MODELS:
        spec = ModelSpec.from_config(entry)
        mid, card, folder = train(ds, spec, layout.model_store(spec.name), threads=1, verbose=0)
        pointer = layout.model_pointer(spec.name)
        write_pointer(pointer, mid, card)
        out["cards"][spec.name] = card
        out["specs"][spec.name] = spec
        out["pointers"][spec.name] = str(pointer)
        out["folders"][spec.name] = folder
    return out
