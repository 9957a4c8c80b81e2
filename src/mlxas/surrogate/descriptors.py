"""Atom-centred symmetry functions of an absorbing site (Behler–Parrinello G2 and G4).

The descriptor of a site is a fixed-length vector that does not change when the site is
rotated, translated, or its neighbours are listed in another order.  It is the input of
the ``descriptor_mlp`` surrogate.  Every function is resolved by neighbour element (the
weighting of XANESNET-style descriptors by element, done here as separate blocks):

Cutoff function (r, R_c in Å)::

    f_c(r) = ½ (cos(π r / R_c) + 1)   for r ≤ R_c,   0 beyond

Radial functions, one per neighbour element Z and centre R_s (Å), width η (Å⁻²)::

    G2[Z, R_s] = Σ_{j: Z_j = Z} exp(−η (r_j − R_s)²) · f_c(r_j)

Angular functions, one per unordered element pair {Z_a, Z_b} and (η, ζ, λ), summed over
unordered neighbour pairs j < l (each triangle absorber–j–l counted once; Behler's
original sum over ordered pairs is twice this), θ the angle j–absorber–l::

    G4[{Z_a,Z_b}, η, ζ, λ] = 2^(1−ζ) Σ_{j<l} (1 + λ cos θ_jl)^ζ
                              · exp(−η (r_j² + r_l² + r_jl²)) · f_c(r_j) f_c(r_l) f_c(r_jl)

with the angular cutoff ``g4_cutoff`` (Å) used for f_c in G4.  All G are dimensionless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlxas.surrogate.environments import Environments, SurrogateInputError

__all__ = [
    "SymmetrySettings",
    "cutoff_function",
    "descriptor_names",
    "descriptors",
]


def _default_centres() -> tuple[float, ...]:
    return tuple(np.round(np.arange(1.6, 6.01, 0.1), 4).tolist())


@dataclass(frozen=True)
class SymmetrySettings:
    """Which symmetry functions, with units.

    ``elements``: neighbour elements, one block of functions each (a neighbour of another
    element is an error, not dropped); ``cutoff`` (Å): R_c of G2; ``g2_centres`` (Å): the
    R_s; ``g2_eta`` (Å⁻²): their width (η = 1/(2 w²) for a Gaussian of rms w);
    ``g4_cutoff`` (Å): R_c of G4; ``g4_eta`` (Å⁻²), ``g4_zeta``, ``g4_lambda`` (±1): the
    angular functions' parameters (all combinations).
    """

    elements: tuple[str, ...]
    cutoff: float = 6.0
    g2_centres: tuple[float, ...] = field(default_factory=_default_centres)
    g2_eta: float = 50.0
    g4_cutoff: float = 4.5
    g4_eta: tuple[float, ...] = (0.005, 0.02)
    g4_zeta: tuple[float, ...] = (1.0, 2.0, 4.0, 16.0)
    g4_lambda: tuple[float, ...] = (-1.0, 1.0)

    def __post_init__(self):
        if not self.elements:
            raise SurrogateInputError("symmetry functions need at least one neighbour element")
        if not (self.cutoff > 0 and self.g4_cutoff > 0 and self.g2_eta > 0):
            raise SurrogateInputError("cutoffs and g2_eta must be positive")
        if any(lam not in (-1.0, 1.0) for lam in self.g4_lambda):
            raise SurrogateInputError(f"g4_lambda values must be ±1, got {self.g4_lambda}")

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Unordered element pairs (indices into ``elements``) of the G4 blocks."""
        n = len(self.elements)
        return [(a, b) for a in range(n) for b in range(a, n)]

    @property
    def g4_params(self) -> list[tuple[float, float, float]]:
        return [(e, z, lam) for e in self.g4_eta for z in self.g4_zeta for lam in self.g4_lambda]

    @property
    def size(self) -> int:
        return len(self.elements) * len(self.g2_centres) + len(self.pairs) * len(self.g4_params)

    def to_json(self) -> dict:
        return {
            "elements": list(self.elements),
            "cutoff": self.cutoff,
            "g2_centres": list(self.g2_centres),
            "g2_eta": self.g2_eta,
            "g4_cutoff": self.g4_cutoff,
            "g4_eta": list(self.g4_eta),
            "g4_zeta": list(self.g4_zeta),
            "g4_lambda": list(self.g4_lambda),
        }

    @classmethod
    def from_json(cls, d: dict) -> SymmetrySettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def cutoff_function(r: np.ndarray, rc: float) -> np.ndarray:
    """Behler's cosine cutoff ½(cos(πr/R_c) + 1) for r ≤ R_c, 0 beyond (r, R_c in Å)."""
    r = np.asarray(r, dtype=np.float64)
    return np.where(r <= rc, 0.5 * (np.cos(np.pi * r / rc) + 1.0), 0.0)


def descriptor_names(settings: SymmetrySettings) -> list[str]:
    """A name for every column of :func:`descriptors`, in order."""
    el = settings.elements
    names = [f"G2[{z}, Rs={rs:g}]" for z in el for rs in settings.g2_centres]
    for a, b in settings.pairs:
        for eta, zeta, lam in settings.g4_params:
            names.append(f"G4[{el[a]}-{el[b]}, eta={eta:g}, zeta={zeta:g}, lambda={lam:+g}]")
    return names


def _element_index(env: Environments, settings: SymmetrySettings) -> np.ndarray:
    lookup = {z: i for i, z in enumerate(settings.elements)}
    try:
        return np.fromiter((lookup[s] for s in env.symbols), dtype=np.int64, count=len(env.symbols))
    except KeyError as err:
        raise SurrogateInputError(
            f"neighbour element {str(err.args[0])!r} has no descriptor block "
            f"(elements: {', '.join(settings.elements)})"
        ) from None


def descriptors(env: Environments, settings: SymmetrySettings) -> np.ndarray:
    """Symmetry-function vectors of every site of ``env``: float64 [n_sites, settings.size].

    ``env`` must have been built with a cutoff ≥ both ``settings.cutoff`` and
    ``settings.g4_cutoff``; neighbours beyond them contribute 0.
    """
    need = max(settings.cutoff, settings.g4_cutoff if settings.g4_params else 0.0)
    if env.cutoff + 1e-9 < need:
        raise SurrogateInputError(
            f"environments were cut at {env.cutoff:g} Å, the descriptors need {need:g} Å"
        )
    n_sites, n_el = len(env), len(settings.elements)
    zidx = _element_index(env, settings)
    r = env.distances
    site = np.repeat(np.arange(n_sites), env.counts)
    # G2: one Gaussian per centre, summed per (site, element) with bincount.
    centres = np.asarray(settings.g2_centres)
    g2_terms = np.exp(-settings.g2_eta * (r[:, None] - centres[None, :]) ** 2)
    g2_terms *= cutoff_function(r, settings.cutoff)[:, None]
    g2 = np.zeros((n_sites * n_el, len(centres)))
    np.add.at(g2, site * n_el + zidx, g2_terms)
    g2 = g2.reshape(n_sites, n_el * len(centres))
    g4 = _g4(env, settings, zidx, r, site)
    return np.concatenate([g2, g4], axis=1)


def _g4(env, settings, zidx, r, site) -> np.ndarray:
    """G4 block [n_sites, n_pairs · n_params] from the neighbours within g4_cutoff."""
    rc = settings.g4_cutoff
    n_sites, n_el = len(env), len(settings.elements)
    pair_ids = {p: i for i, p in enumerate(settings.pairs)}
    pair_lookup = np.full((n_el, n_el), -1, dtype=np.int64)
    for (a, b), i in pair_ids.items():
        pair_lookup[a, b] = pair_lookup[b, a] = i
    params = settings.g4_params
    out = np.zeros((n_sites * len(pair_ids), len(params)))
    if not params:
        return out.reshape(n_sites, 0)
    inside = np.nonzero(r <= rc)[0]
    s_in = site[inside]
    # Neighbour pairs j < l of the same site: pairs of positions within each site's
    # block of `inside` (sorted by site because env is).
    starts = np.searchsorted(s_in, np.arange(n_sites + 1))
    counts = np.diff(starts)
    for n in np.unique(counts[counts >= 2]):
        sites_n = np.nonzero(counts == n)[0]
        ju, lu = np.triu_indices(n, 1)
        j = inside[(starts[sites_n][:, None] + ju[None, :]).ravel()]
        l_ = inside[(starts[sites_n][:, None] + lu[None, :]).ravel()]
        vj, vl = env.vectors[j], env.vectors[l_]
        rj, rl = r[j], r[l_]
        rjl = np.linalg.norm(vj - vl, axis=1)
        cos = np.einsum("ij,ij->i", vj, vl) / (rj * rl)
        fc = cutoff_function(rj, rc) * cutoff_function(rl, rc) * cutoff_function(rjl, rc)
        r2 = rj**2 + rl**2 + rjl**2
        rows = np.repeat(sites_n, len(ju)) * len(pair_ids) + pair_lookup[zidx[j], zidx[l_]]
        terms = np.empty((len(j), len(params)))
        for p, (eta, zeta, lam) in enumerate(params):
            base = np.clip(1.0 + lam * cos, 0.0, None)
            terms[:, p] = 2.0 ** (1.0 - zeta) * base**zeta * np.exp(-eta * r2) * fc
        np.add.at(out, rows, terms)
    return out.reshape(n_sites, len(pair_ids) * len(params))
