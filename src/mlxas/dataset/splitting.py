"""Grouped train/validation/test split and k-site averaging.

Sites are split first, by group (a structure or MD frame, a site, a whole source, or the
structures of one name), so
that the sites of one group never fall into two splits.  Averaged examples are formed
afterwards, within one split, so an example never mixes sites of two splits.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pandas as pd

from mlxas.dataset.settings import FRACTION_TOLERANCE

__all__ = [
    "FRACTION_TOLERANCE",
    "MAX_COMBINATIONS",
    "average_labels",
    "example_members",
    "group_keys",
    "split_groups",
]

#: Refuse to enumerate more combinations than this when ``n_examples`` is null.
MAX_COMBINATIONS = 20_000_000

_GROUP_COLUMN = {"structure": "structure_id", "frame": "structure_id", "site": "site_id"}


def group_keys(sites: pd.DataFrame, group_by: str) -> np.ndarray:
    """Split group of each site: its structure (= MD frame), itself, its source, or the
    structure name within its source (a compound's crystal and snapshots)."""
    if group_by == "source":
        return sites["source"].astype(str).to_numpy()
    if group_by == "name":
        return (sites["source"].astype(str) + "/" + sites["name"].astype(str)).to_numpy()
    if group_by not in _GROUP_COLUMN:
        raise ValueError(f"dataset.split.group_by: unknown grouping {group_by!r}")
    return sites[_GROUP_COLUMN[group_by]].astype(str).to_numpy()


def split_groups(groups: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Assign each row to a split (0 train, 1 val, 2 test) so that no group spans two splits.

    Groups are shuffled with ``seed`` and dealt out in turn to the split that is furthest
    below its target share of rows, which keeps the shares close to ``fractions`` even
    when groups differ in size.
    """
    frac = np.asarray(fractions, dtype=float)
    if frac.shape != (3,) or np.any(frac < 0) or abs(frac.sum() - 1.0) > FRACTION_TOLERANCE:
        raise ValueError(
            f"dataset.split.fractions must be 3 non-negative numbers summing to 1, "
            f"got {list(fractions)} (sum {frac.sum():g})"
        )
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    assigned = np.zeros(len(uniq), dtype=np.int8)
    filled = np.zeros(3)
    total = counts.sum()
    for g in order:
        deficit = frac * total - filled
        deficit[frac == 0] = -np.inf
        s = int(np.argmax(deficit))
        assigned[g] = s
        filled[s] += counts[g]
    return assigned[inverse]


def _sample_combinations(m: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct k-subsets of ``range(m)``, uniformly at random, rows sorted."""
    found = np.zeros((0, k), dtype=np.int64)
    while len(found) < n:
        draw = np.sort(rng.integers(0, m, size=(2 * (n - len(found)) + 16, k)), axis=1)
        draw = draw[np.all(np.diff(draw, axis=1) > 0, axis=1)]
        found = np.unique(np.concatenate([found, draw]), axis=0)
    pick = np.sort(rng.choice(len(found), size=n, replace=False))
    return found[pick]


def example_members(
    split: np.ndarray,
    pools: np.ndarray,
    k: int = 1,
    n_examples: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Member rows ``[n_examples, k]`` of the examples, ordered by split, then pool.

    ``split`` and ``pools`` hold one value per site; members of an example share both.
    With ``n_examples`` None every combination of ``k`` sites of a pool is used,
    otherwise ``n_examples`` distinct combinations per pool are drawn with ``seed``.
    """
    k = int(k)
    if k == 1:
        return np.argsort(split, kind="stable")[:, None].astype(np.int64)
    rng = np.random.default_rng(seed)
    n_wanted = n_examples
    out = []
    for s in range(3):
        in_split = np.nonzero(split == s)[0]
        for pool in np.unique(pools[in_split]):
            idx = in_split[pools[in_split] == pool]
            if len(idx) < k:
                continue
            n_max = comb(len(idx), k)
            if n_wanted is None or n_wanted >= n_max:
                if n_max > MAX_COMBINATIONS:
                    raise ValueError(
                        f"averaging: {len(idx)} sites give {n_max:,} combinations of "
                        f"{k}; set averaging.n_examples"
                    )
                combos = np.fromiter(
                    (c for combo in combinations(range(len(idx)), k) for c in combo),
                    dtype=np.int64,
                    count=n_max * k,
                ).reshape(n_max, k)
            else:
                combos = _sample_combinations(len(idx), k, n_wanted, rng)
            out.append(idx[combos])
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def average_labels(
    labels: dict[str, np.ndarray], members: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Labels of averaged examples.

    CN, partial CNs and the RDF are weighted means over the members.  The mean bond
    length ``r`` is averaged over bonds (weights × CN), since the first shell of the
    averaged spectrum holds the bonds of all members.
    """
    out = {}
    for name, values in labels.items():
        if name == "r":
            continue
        v = values[members]
        out[name] = np.einsum("nk,nk...->n...", weights, v).astype(values.dtype)
    if "r" in labels:
        bonds = weights * labels["cn"][members]
        total = bonds.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["r"] = np.where(
                total > 0, (bonds * labels["r"][members]).sum(axis=1) / total, np.nan
            )
    return out
