"""Surrogate model kinds by name: how each turns environments into inputs and builds its
network.  The registry mirrors :mod:`mlxas.models.registry` (name → class, defaults,
builder), for networks whose input is a site rather than a spectrum.

``descriptor_mlp``  Behler–Parrinello G2/G4 symmetry functions per neighbour element
                    (:mod:`mlxas.surrogate.descriptors`) → standardised → Dense stack →
                    the spectrum on the grid (targets standardised per grid point).
``graph``           neighbours as nodes, pair distances and angles on edges, message
                    passing (:mod:`mlxas.surrogate.layers`); EXAFS read out through the
                    learned EXAFS equation (``PathSpectrum``: exact phases 2kL of every
                    single- and double-scattering path), XANES through a pooled Dense head.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from mlxas.surrogate.descriptors import SymmetrySettings, descriptors
from mlxas.surrogate.environments import Environments, SurrogateInputError
from mlxas.surrogate.graphs import GraphSettings, _codes, build_graphs
from mlxas.surrogate.grids import SpectrumGrid

__all__ = ["KINDS", "DescriptorMLP", "GraphNetwork", "SurrogateKind", "kind_class", "register"]

KINDS: dict[str, type[SurrogateKind]] = {}


def register(cls: type[SurrogateKind]) -> type[SurrogateKind]:
    """Class decorator: make a surrogate kind selectable by its ``name``."""
    if cls.name in KINDS and KINDS[cls.name] is not cls:
        raise ValueError(f"surrogate kind {cls.name!r} registered twice")
    KINDS[cls.name] = cls
    return cls


def kind_class(name: str) -> type[SurrogateKind]:
    try:
        return KINDS[name]
    except KeyError:
        raise SurrogateInputError(
            f"unknown surrogate kind {name!r} (known: {', '.join(sorted(KINDS))})"
        ) from None


class SurrogateKind(ABC):
    """One kind of surrogate network.  ``params`` are the kind's builder parameters,
    filled from ``defaults``; ``elements`` are the elements the model knows; ``cutoff``
    (Å) is the neighbour radius (for EXAFS: FEFF's RPATH, the longest half path)."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def __init__(
        self,
        grid: SpectrumGrid,
        elements: tuple[str, ...],
        cutoff: float,
        params: dict[str, Any] | None = None,
    ):
        unknown = set(params or {}) - set(self.defaults)
        if unknown:
            raise SurrogateInputError(
                f"surrogate kind {self.name}: unknown parameters {sorted(unknown)} "
                f"(known: {sorted(self.defaults)})"
            )
        self.grid, self.elements, self.cutoff = grid, tuple(elements), float(cutoff)
        self.params = {**copy.deepcopy(self.defaults), **(params or {})}

    @abstractmethod
    def featurize(self, env: Environments) -> dict[str, np.ndarray]:
        """Model inputs of the sites of ``env`` (a dict of arrays, first axis = site)."""

    @abstractmethod
    def build(self, inputs: dict[str, np.ndarray], targets: np.ndarray):
        """An uncompiled Keras model from inputs to the weighted spectrum; ``inputs`` and
        ``targets`` (weighted, [n, n_grid]) are the training data, used for statistics."""

    def pad(self, inputs: dict[str, np.ndarray], like: dict[str, np.ndarray]):
        """``inputs`` padded to the shapes of ``like`` (graphs of another batch)."""
        return inputs

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "elements": list(self.elements),
            "cutoff": self.cutoff,
            "params": self.params,
        }


def _target_scaling(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = targets.mean(axis=0)
    std = targets.std(axis=0)
    return mean, np.where(std > 1e-8, std, 1.0)


def spectral_head(z, targets: np.ndarray, components: int | None):
    """The output layers: the spectrum on the grid from the last hidden state ``z``.

    ``components`` None: one output per grid point, standardised per point and returned
    to physical units by ``Normalization(invert=True)``.  A number n: the spectrum is the
    training mean plus n coefficients times the leading principal components of the
    training spectra (a fixed, non-trainable Dense layer), so every prediction is a smooth
    combination of spectra seen in training -- no point-to-point noise (used for XANES,
    where spurious wiggles would count as peaks).
    """
    import keras

    if components is None:
        z = keras.layers.Dense(targets.shape[1], name="spectrum_std")(z)
        mean, scale = _target_scaling(targets)
        return keras.layers.Normalization(
            mean=mean, variance=scale**2, invert=True, name="spectrum"
        )(z)
    mean = targets.mean(axis=0)
    _, sv, vt = np.linalg.svd(targets - mean, full_matrices=False)
    n = max(1, min(int(components), len(sv)))
    scale = sv[:n] / np.sqrt(max(len(targets) - 1, 1))  # coefficient rms of each component
    coef = keras.layers.Dense(n, name="coefficients")(z)
    basis = keras.layers.Dense(targets.shape[1], trainable=False, name="spectrum")
    out = basis(coef)
    basis.set_weights([(vt[:n] * scale[:, None]).astype("float32"), mean.astype("float32")])
    return out


@register
class DescriptorMLP(SurrogateKind):
    name = "descriptor_mlp"
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": [256, 256, 256],
        "activation": "silu",
        "g2_step": 0.1,  # Å between G2 centres
        "g2_eta": 50.0,  # Å⁻²
        "g4_cutoff": 4.5,  # Å
        "components": None,  # principal components of the output (None: every grid point)
        # One-hot of the absorbing element after the symmetry functions: they describe
        # the neighbours only, and one network may serve several absorbers (XANES).
        "absorber_onehot": True,
    }

    @property
    def symmetry(self) -> SymmetrySettings:
        p = self.params
        centres = tuple(np.round(np.arange(1.6, self.cutoff + 1e-9, p["g2_step"]), 4).tolist())
        return SymmetrySettings(
            elements=self.elements,
            cutoff=self.cutoff,
            g2_centres=centres,
            g2_eta=p["g2_eta"],
            g4_cutoff=min(p["g4_cutoff"], self.cutoff),
        )

    def featurize(self, env: Environments) -> dict[str, np.ndarray]:
        x = descriptors(env, self.symmetry).astype(np.float32)
        if self.params["absorber_onehot"]:
            codes = _codes(env.absorber, self.elements, "absorber")
            x = np.concatenate([x, np.eye(len(self.elements), dtype=np.float32)[codes - 1]], 1)
        return {"descriptors": x}

    def build(self, inputs, targets):
        import keras

        x = inputs["descriptors"]
        inp = keras.Input(shape=x.shape[1:], name="descriptors")
        # A symmetry function that barely varies in training (a far, rare neighbour) would
        # be blown up by its tiny spread; floor the spread at 5 % of the typical one.
        std = x.std(axis=0)
        floor = 0.05 * float(np.median(std[std > 0])) if np.any(std > 0) else 1.0
        z = keras.layers.Normalization(
            mean=x.mean(axis=0), variance=np.maximum(std, floor) ** 2, name="standardize"
        )(inp)
        for i, units in enumerate(self.params["hidden"]):
            z = keras.layers.Dense(units, activation=self.params["activation"], name=f"dense_{i}")(
                z
            )
        out = spectral_head(z, targets, self.params["components"])
        return keras.Model({"descriptors": inp}, out, name="descriptor_mlp")


@register
class GraphNetwork(SurrogateKind):
    name = "graph"
    defaults: ClassVar[dict[str, Any]] = {
        "units": 16,
        "interactions": 1,
        "channels": 4,  # kernel channels of PathSpectrum (EXAFS)
        "n_basis": 16,  # Gaussians for distances
        "dl": 0.03,  # Å, step of the path-length grid
        "n_k_basis": 40,
        "n_l_basis": 10,
        "head": [256, 256],  # Dense units of the XANES head
        "components": 20,  # principal components of the XANES output (None: every point)
        "pad_to": 32,
    }

    @property
    def graph_settings(self) -> GraphSettings:
        return GraphSettings(self.elements, self.cutoff, self.cutoff, int(self.params["pad_to"]))

    def featurize(self, env: Environments) -> dict[str, np.ndarray]:
        return build_graphs(env, self.graph_settings)

    def pad(self, inputs, like):
        out = dict(inputs)
        nn, npairs = like["species"].shape[1], like["pairs"].shape[1]
        for key, width in (("species", nn), ("positions", nn), ("pairs", npairs)):
            a = inputs[key]
            if a.shape[1] > width:
                raise SurrogateInputError(f"{key}: {a.shape[1]} > {width} rows after padding")
            pad = [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
            out[key] = np.pad(a, pad)
        return out

    def build(self, inputs, targets):
        import keras

        from mlxas.surrogate import layers as sl

        p = self.params
        n_sp = len(self.elements)
        species = keras.Input(shape=(None,), dtype="int32", name="species")
        positions = keras.Input(shape=(None, 3), name="positions")
        pairs = keras.Input(shape=(None, 2), dtype="int32", name="pairs")
        absorber = keras.Input(shape=(), dtype="int32", name="absorber")
        node_mask, r, pair_mask, geom, rjl = sl.SiteGeometry(name="geometry")(
            [species, positions, pairs]
        )
        basis = sl.GaussianBasis(p["n_basis"], 0.0, self.cutoff, name="r_basis")
        h = sl.NeighbourEmbedding(p["units"], n_sp, name="embedding")(
            [species, basis(r), node_mask]
        )
        pair_basis = basis(rjl)
        e = None
        for i in range(p["interactions"]):
            h, e = sl.PairInteraction(p["units"], name=f"interaction_{i}")(
                [h, pairs, pair_basis, geom, pair_mask, node_mask]
            )
        g = sl.MaskedMean(name="pool")([h, node_mask])
        g = keras.layers.Concatenate(name="site_state")(
            [g, keras.layers.Embedding(n_sp + 1, p["units"], name="absorber_embedding")(absorber)]
        )
        named = {"species": species, "positions": positions, "pairs": pairs, "absorber": absorber}
        if self.grid.target == "exafs":
            lengths, weights = sl.PathWeights(p["channels"], p["units"], self.cutoff, name="paths")(
                [h, e, g, r, geom, node_mask, pair_mask, pairs]
            )
            k = self.grid
            out = sl.PathSpectrum(
                p["channels"],
                k.start,
                k.stop,
                k.step,
                l_min=1.0,
                l_max=self.cutoff + 2 * p["dl"],
                dl=p["dl"],
                n_k_basis=p["n_k_basis"],
                n_l_basis=p["n_l_basis"],
                name="spectrum",
            )([lengths, weights])
            return keras.Model(named, out, name="graph_exafs")
        z = g
        for i, units in enumerate(p["head"]):
            z = keras.layers.Dense(units, activation="silu", name=f"head_{i}")(z)
        out = spectral_head(z, targets, p["components"])
        return keras.Model(named, out, name="graph_xanes")
