"""Site graphs: the padded arrays the ``graph`` surrogate reads.

Nodes are the neighbours of the absorber within ``node_cutoff`` (Å); edges join pairs of
neighbours (j, l) that can form a multiple-scattering path no longer than
``path_cutoff``: the triangle absorber → j → l → absorber, of half length
L = (r_j + r_jl + r_l)/2, or the paths absorber → j → absorber → l → absorber
(L = r_j + r_l), each within ``path_cutoff``.  For FEFF's path expansion this is RPATH.

Arrays of a batch of ``n`` sites (``n_nodes``, ``n_pairs``: the largest counts of the
batch, rounded up to ``pad_to``; padding rows are zero):

``species``  int32 [n, n_nodes]      element index + 1 of each neighbour (0: padding)
``positions`` float32 [n, n_nodes, 3] neighbour positions relative to the absorber (Å)
``pairs``    int32 [n, n_pairs, 2]   node indices (j, l), j < l; padding rows are (0, 0)
``absorber`` int32 [n]               element index + 1 of the absorber

Distances, angles and path lengths are computed inside the model from ``positions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlxas.surrogate.environments import Environments, SurrogateInputError

__all__ = ["GraphSettings", "build_graphs"]


@dataclass(frozen=True)
class GraphSettings:
    """``elements``: elements the model knows (absorbers and neighbours), index + 1 is the
    species code; ``node_cutoff``, ``path_cutoff`` (Å); ``pad_to``: node and pair counts
    are rounded up to a multiple of this, so that few distinct shapes reach the model."""

    elements: tuple[str, ...]
    node_cutoff: float = 6.0
    path_cutoff: float = 6.0
    pad_to: int = 32

    def to_json(self) -> dict:
        return {
            "elements": list(self.elements),
            "node_cutoff": self.node_cutoff,
            "path_cutoff": self.path_cutoff,
            "pad_to": self.pad_to,
        }

    @classmethod
    def from_json(cls, d: dict) -> GraphSettings:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _codes(symbols: np.ndarray, elements: tuple[str, ...], what: str) -> np.ndarray:
    """Species code (index in ``elements`` + 1) of each symbol."""
    uniq, inverse = np.unique(np.asarray(symbols), return_inverse=True)
    lookup = {z: i + 1 for i, z in enumerate(elements)}
    unknown = [str(z) for z in uniq if z not in lookup]
    if unknown:
        raise SurrogateInputError(
            f"{what} element {unknown[0]!r} is not one the model knows ({', '.join(elements)})"
        )
    return np.asarray([lookup[z] for z in uniq], dtype=np.int32)[inverse.reshape(-1)]


def _round_up(n: int, m: int) -> int:
    return max(m, -(-n // m) * m)


def _slots(owner: np.ndarray, n: int, pad_to: int, forced: int | None, what: str):
    """(padded width, slot of each entry) for entries grouped by ``owner`` (sorted site
    index): the k-th entry of a site goes to slot k; the width is the largest count
    rounded up to ``pad_to``, or ``forced`` (an error if a site needs more)."""
    counts = np.bincount(owner, minlength=n)
    width = _round_up(int(counts.max(initial=1)), pad_to)
    if forced is not None:
        if forced < counts.max(initial=0):
            raise SurrogateInputError(f"a site has {counts.max()} {what}, more than {forced}")
        width = forced
    starts = np.zeros(n + 1, dtype=np.int64)
    starts[1:] = np.cumsum(counts)
    return width, np.arange(len(owner)) - np.repeat(starts[:-1], counts)


def build_graphs(
    env: Environments,
    settings: GraphSettings,
    n_nodes: int | None = None,
    n_pairs: int | None = None,
) -> dict[str, np.ndarray]:
    """Padded graph arrays of every site of ``env`` (see the module text).

    ``n_nodes``/``n_pairs`` force the padded sizes (an error if a site needs more).
    """
    if env.cutoff + 1e-9 < settings.node_cutoff:
        raise SurrogateInputError(
            f"environments were cut at {env.cutoff:g} Å, the graphs need {settings.node_cutoff:g} Å"
        )
    n = len(env)
    keep = env.distances <= settings.node_cutoff
    site = np.repeat(np.arange(n), env.counts)[keep]
    nn, slot = _slots(site, n, settings.pad_to, n_nodes, "nodes")
    species = np.zeros((n, nn), dtype=np.int32)
    positions = np.zeros((n, nn, 3), dtype=np.float32)
    species[site, slot] = _codes(env.symbols[keep], settings.elements, "neighbour")
    positions[site, slot] = env.vectors[keep]
    pair_site, pj, pl = _path_pairs(positions, species, settings.path_cutoff)
    npairs, pslot = _slots(pair_site, n, settings.pad_to, n_pairs, "pairs")
    pairs = np.zeros((n, npairs, 2), dtype=np.int32)
    pairs[pair_site, pslot, 0] = pj
    pairs[pair_site, pslot, 1] = pl
    absorber = _codes(env.absorber, settings.elements, "absorber")
    return {"species": species, "positions": positions, "pairs": pairs, "absorber": absorber}


def _path_pairs(positions: np.ndarray, species: np.ndarray, cutoff: float):
    """(site, j, l) of the node pairs j < l that form a path of half length ≤ cutoff.

    The triangle absorber → j → l has half length (r_j + r_l + r_jl)/2; when r_j + r_l ≤
    cutoff the triangle is short enough too (r_jl ≤ r_j + r_l), so one test covers both
    path kinds: r_jl ≤ 2·cutoff − r_j − r_l.  It runs on the pairs j < l of the real
    nodes (the first slots of every site), one block of sites at a time (sized to stay
    in cache), in site, j, l order.
    """
    m = int((species > 0).sum(axis=1).max(initial=1))
    pos = positions[:, :m].astype(np.float32)
    ok_node = species[:, :m] > 0
    r = np.sqrt((pos * pos).sum(axis=2))
    iu, ju = np.triu_indices(m, 1)
    two_c = np.float32(2.0 * cutoff)
    block = max(1, 131_072 // max(len(iu), 1))
    out_s, out_p = [], []
    for a in range(0, len(pos), block):
        p, rr, ok = pos[a : a + block], r[a : a + block], ok_node[a : a + block]
        slack = two_c - (rr[:, iu] + rr[:, ju])
        d = p[:, iu, 0] - p[:, ju, 0]
        rjl2 = d * d
        for k in (1, 2):
            d = p[:, iu, k] - p[:, ju, k]
            rjl2 += d * d
        keep = (slack >= 0) & (rjl2 <= slack * slack) & ok[:, iu] & ok[:, ju]
        s, q = np.nonzero(keep)
        out_s.append(s + a)
        out_p.append(q)
    q = np.concatenate(out_p)
    return (
        np.concatenate(out_s).astype(np.int64),
        iu[q].astype(np.int32),
        ju[q].astype(np.int32),
    )
