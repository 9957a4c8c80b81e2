"""Coordination labels of absorbing sites, computed for all sites of a structure at once.

The math of the ``coordination`` label set (:mod:`mlxas.sites.coordination`); settings
are a :class:`CoordinationSettings` (the ``labels.coordination`` config section).

``cn``
    first-shell coordination number: neighbours within the first shell;
``r``
    mean distance (Å) from the absorber to those neighbours (NaN when ``cn`` is 0);
``cn_<El>``
    first-shell neighbours of element ``El`` (partial CN, for alloys and compounds);
``rdf``
    radial distribution around the absorber, ``n(r) = sum_j G(r - r_j; sigma)`` in atoms
    per Å on the ``labels.rdf`` grid; its integral over the first shell is ``cn``.

The first shell is found by ``labels.cn_rule``:

``rdf_minimum`` (default)
    every neighbour closer than the first minimum of the absorber-centred pair
    distribution g(r), pooled over all absorbing atoms of all frames of a trajectory (one
    radius for a whole MD run) or over one structure (a crystal or cluster); the radius
    of each site is in the ``shell_radius`` column (see :func:`pooled_first_minimum`);
``cutoff``
    every neighbour closer than ``labels.cutoff`` (Å);
``nn:<Class>``
    the neighbours a pymatgen near-neighbour class (``pymatgen.analysis.local_env``, e.g.
    ``nn:CrystalNN``) assigns to the site; slow, meant for small sets of crystals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from mlxas.errors import ConfigError
from mlxas.sites.neighbours import neighbour_pairs

__all__ = [
    "CoordinationSettings",
    "LabelError",
    "RdfSettings",
    "element_slots",
    "frame_labels",
    "label_pool",
    "labels_from_pairs",
    "pooled_first_minimum",
    "pooled_histogram",
    "radial_density",
    "rdf_grid",
    "shell_radii",
    "shell_radius",
    "site_pairs",
]

#: Bin width (Å) of the pooled distance histogram that locates the first minimum.
POOL_BIN = 0.005
#: Smallest Gaussian width (Å) used to smooth the pooled histogram.
POOL_SMOOTHING = 0.1
#: Gaussian tails beyond this many sigmas are left out of the RDF (relative weight 4e-6).
GAUSS_TAIL = 5.0


class LabelError(ConfigError):
    """The site or label settings cannot be applied to these structures."""


@dataclass(frozen=True)
class RdfSettings:
    """Grid of the RDF label: ``dr`` to ``r_max`` in steps of ``dr`` (Å); Gaussian
    broadening ``sigma`` (Å; 0 puts each neighbour in its grid bin)."""

    r_max: float = 6.0
    dr: float = 0.05
    sigma: float = 0.05


@dataclass(frozen=True)
class CoordinationSettings:
    """How the first shell is found (``cn_rule``: ``rdf_minimum``, ``cutoff`` with
    ``cutoff`` in Å, or ``nn:<pymatgen class>``) and the RDF grid."""

    cn_rule: str = "rdf_minimum"
    cutoff: float | None = None
    rdf: RdfSettings = field(default_factory=RdfSettings)


def rdf_grid(rdf: RdfSettings) -> np.ndarray:
    """Radial grid (Å) of the RDF label, from ``dr`` to ``r_max``."""
    return np.arange(rdf.dr, rdf.r_max + rdf.dr / 2, rdf.dr)


def search_radius(settings: CoordinationSettings, shell: float | None) -> float:
    """Neighbours farther than this (Å) touch no label."""
    rdf = settings.rdf
    r = rdf.r_max + GAUSS_TAIL * rdf.sigma + rdf.dr
    return max(r, shell or 0.0)


def radial_density(
    slot: np.ndarray, d: np.ndarray, n_sites: int, grid: np.ndarray, sigma: float
) -> np.ndarray:
    """``n(r)`` (atoms per Å) of ``n_sites`` sites on ``grid`` from pairs ``(slot, d)``.

    Each neighbour adds a normalised Gaussian of width ``sigma`` (Å) at its distance; with
    ``sigma = 0`` it adds 1/dr to the grid bin that holds it.  Vectorised over all pairs:
    each pair touches only the grid points within ``GAUSS_TAIL * sigma`` of it.
    """
    n_grid = len(grid)
    dr = grid[1] - grid[0] if n_grid > 1 else 1.0
    size = n_sites * n_grid
    if len(d) == 0:
        return np.zeros((n_sites, n_grid))
    if sigma <= 0:
        idx = np.floor((d - grid[0]) / dr + 0.5).astype(np.int64)
        ok = (idx >= 0) & (idx < n_grid)
        out = np.bincount(slot[ok] * n_grid + idx[ok], minlength=size) / dr
        return out.reshape(n_sites, n_grid)
    # Each pair adds to the grid points within `half` steps of its nearest one, c.  The
    # Gaussian at c+o is G(c) * E**o * exp(-a²o²/2) with E = exp(-a u), so two exp() per
    # pair suffice.  A padded row per site takes contributions that fall off the grid.
    half = int(np.ceil(GAUSS_TAIL * sigma / dr))
    pad = half + 2
    width = n_grid + 2 * pad
    a = dr / sigma
    c = np.clip(np.rint((d - grid[0]) / dr).astype(np.int64), half - pad, n_grid + pad - half - 1)
    u = (grid[0] + c * dr - d) / sigma
    g0 = np.exp(-0.5 * u * u) / (sigma * np.sqrt(2 * np.pi))
    e_up = np.exp(-a * u)
    e_down = 1.0 / e_up
    base = slot * width + c + pad
    out = np.bincount(base, weights=g0, minlength=n_sites * width)
    up, down = g0, g0
    for o in range(1, half + 1):
        step = np.exp(-0.5 * a * a * (2 * o - 1))
        up = up * e_up * step
        down = down * e_down * step
        out += np.bincount(base + o, weights=up, minlength=out.size)
        out += np.bincount(base - o, weights=down, minlength=out.size)
    return out.reshape(n_sites, width)[:, pad : pad + n_grid]


def pooled_histogram(
    images: Iterable[Atoms], absorber: str, r_max: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Histogram of absorber-neighbour distances over all absorbers of all ``images``.

    Returns bin centres (Å), counts, and the number of absorbing atoms pooled.
    """
    n_bins = int(np.ceil(r_max / POOL_BIN))
    counts = np.zeros(n_bins)
    n_abs = 0
    z = _number(absorber)
    for atoms in images:
        centres = np.nonzero(atoms.numbers == z)[0]
        if len(centres) == 0:
            continue
        n_abs += len(centres)
        _, _, d = neighbour_pairs(atoms, r_max, centres)
        counts += np.bincount(
            np.minimum((d / POOL_BIN).astype(np.int64), n_bins - 1), minlength=n_bins
        )
    return (np.arange(n_bins) + 0.5) * POOL_BIN, counts, n_abs


def pooled_first_minimum(r: np.ndarray, counts: np.ndarray, sigma: float) -> float:
    """Radius (Å) of the first minimum of the pair distribution ``g(r)`` after its first peak.

    ``g(r)`` is the pooled histogram smoothed with a Gaussian of width
    ``max(sigma, POOL_SMOOTHING)`` and divided by r², as in the usual radial distribution
    function (without the r² the many far neighbours would hide a small first shell, like
    the two O around Cu in Cu2O).  The first peak is the first local maximum reaching 10 %
    of the highest one; the minimum is the lowest point between it and the next such peak
    (or the end of the range).  Where the minimum is a flat gap, as between the shells of
    an ideal crystal, the middle of the gap is taken, as far as possible from both shells.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    width = max(sigma, POOL_SMOOTHING)
    g = gaussian_filter1d(counts.astype(float), width / POOL_BIN, mode="constant") / r**2
    if g.max() <= 0:
        raise LabelError("no absorber has a neighbour within the RDF range (labels.rdf.r_max)")
    peaks, _ = find_peaks(np.concatenate([[0.0], g, [0.0]]), height=0.1 * g.max())
    peaks = peaks - 1
    first = peaks[0]
    stop = peaks[1] if len(peaks) > 1 else len(g) - 1
    window = g[first : stop + 1]
    k = int(np.argmin(window))
    flat = window <= window[k] + 1e-3 * g[first]
    lo, hi = k, k
    while lo > 0 and flat[lo - 1]:
        lo -= 1
    while hi + 1 < len(window) and flat[hi + 1]:
        hi += 1
    return float((r[first + lo] + r[first + hi]) / 2)


def shell_radius(
    images: list[Atoms], absorber: str, settings: CoordinationSettings
) -> float | None:
    """The first-shell radius (Å) of the ``cutoff`` and ``rdf_minimum`` rules, else None.

    For ``rdf_minimum`` all ``images`` are pooled into one distribution; see
    :func:`shell_radii` for the pools of a source.
    """
    rule = settings.cn_rule
    if rule == "cutoff":
        if settings.cutoff is None:
            raise LabelError("labels.coordination.cutoff must be set for cn_rule 'cutoff'")
        return float(settings.cutoff)
    if rule == "rdf_minimum":
        r_max = settings.rdf.r_max
        r, counts, n_abs = pooled_histogram(images, absorber, r_max)
        if n_abs == 0 or counts.sum() == 0:
            return float(r_max)  # nothing within range: no first-shell neighbour at all
        return pooled_first_minimum(r, counts, settings.rdf.sigma)
    if rule.startswith("nn:"):
        _nn_class(rule[3:])  # fail early on an unknown class
        return None
    raise LabelError(
        f"labels.coordination.cn_rule: unknown rule {rule!r} "
        "(use cutoff, rdf_minimum or nn:<Class>)"
    )


def label_pool(atoms: Atoms) -> str:
    """The ``rdf_minimum`` pool of a structure: frames of one trajectory share a pool (their
    origin), every other structure is its own pool."""
    info = atoms.info
    if int(info.get("frame", -1) if info.get("frame") is not None else -1) >= 0:
        return f"trajectory:{info.get('origin') or info.get('source', '')}"
    return f"structure:{info.get('structure_id', id(atoms))}"


def shell_radii(
    images: list[Atoms], absorber: str, settings: CoordinationSettings
) -> list[float | None]:
    """First-shell radius (Å) of each structure; None for ``nn:`` rules.

    With ``rdf_minimum`` the radius is the first minimum of the pair distribution pooled
    over the structure's pool (:func:`label_pool`): all frames of an MD trajectory get one
    radius from all their atoms, and each crystal or cluster gets its own.
    """
    if settings.cn_rule != "rdf_minimum":
        shell = shell_radius(images, absorber, settings)
        return [shell] * len(images)
    pools: dict[str, list[int]] = {}
    for k, atoms in enumerate(images):
        pools.setdefault(label_pool(atoms), []).append(k)
    out: list[float | None] = [None] * len(images)
    for members in pools.values():
        shell = shell_radius([images[k] for k in members], absorber, settings)
        for k in members:
            out[k] = shell
    return out


def site_pairs(
    atoms: Atoms,
    centres: np.ndarray,
    settings: CoordinationSettings,
    shell: float | None,
    element_slots: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour pairs of the sites ``centres`` of one structure, ready for
    :func:`labels_from_pairs`: site slot (0..len(centres)-1), distance (Å), neighbour
    element slot (``element_slots[Z]``) and whether the neighbour is in the first shell."""
    centres = np.asarray(centres, dtype=np.int64)
    i, j, d = neighbour_pairs(atoms, search_radius(settings, shell), centres)
    slot_of = np.full(len(atoms), -1)
    slot_of[centres] = np.arange(len(centres))
    if shell is not None:
        in_shell = d <= shell
    else:
        in_shell = _pymatgen_shell(atoms, centres, settings.cn_rule[3:], i, j, d)
    return slot_of[i], d, element_slots[atoms.numbers[j]], in_shell


def labels_from_pairs(
    slot: np.ndarray,
    d: np.ndarray,
    element: np.ndarray,
    in_shell: np.ndarray,
    n_sites: int,
    elements: list[str],
    settings: CoordinationSettings,
) -> dict[str, np.ndarray]:
    """Labels of ``n_sites`` sites from their pairs (see :func:`site_pairs`); the pairs of
    many structures can be joined, with site slots made unique, and labelled in one go."""
    s_slot, s_d = slot[in_shell], d[in_shell]
    cn = np.bincount(s_slot, minlength=n_sites).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.bincount(s_slot, weights=s_d, minlength=n_sites) / cn
    out: dict[str, np.ndarray] = {"cn": cn, "r": r}
    n_el = len(elements)
    partial = np.bincount(s_slot * n_el + element[in_shell], minlength=n_sites * n_el)
    partial = partial.reshape(n_sites, n_el).astype(float)
    for k, el in enumerate(elements):
        out[f"cn_{el}"] = partial[:, k]
    rdf = settings.rdf
    out["rdf"] = radial_density(slot, d, n_sites, rdf_grid(rdf), rdf.sigma).astype(np.float32)
    return out


def element_slots(elements: list[str]) -> np.ndarray:
    """Lookup from atomic number to the position of its element in ``elements`` (-1: none)."""
    from ase.data import atomic_numbers

    table = np.full(119, -1, dtype=np.int64)
    for k, el in enumerate(elements):
        table[atomic_numbers[el]] = k
    return table


def frame_labels(
    atoms: Atoms,
    centres: np.ndarray,
    settings: CoordinationSettings,
    shell: float | None,
    elements: list[str],
) -> dict[str, np.ndarray]:
    """Labels of the sites ``centres`` of one structure, as arrays (one row per site).

    ``shell`` is the first-shell radius from :func:`shell_radius` (None for ``nn:`` rules);
    ``elements`` are the neighbour elements that get a ``cn_<El>`` column.
    """
    pairs = site_pairs(atoms, centres, settings, shell, element_slots(elements))
    return labels_from_pairs(*pairs, len(centres), elements, settings)


def _number(symbol: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[symbol]


def _nn_class(name: str):
    import pymatgen.analysis.local_env as local_env

    cls = getattr(local_env, name, None)
    if not isinstance(cls, type) or not hasattr(cls, "get_nn_info"):
        raise LabelError(
            "labels.coordination.cn_rule: pymatgen.analysis.local_env has no "
            f"near-neighbour class {name!r}"
        )
    return cls


def _pymatgen_shell(
    atoms: Atoms,
    centres: np.ndarray,
    cls_name: str,
    i: np.ndarray,
    j: np.ndarray,
    d: np.ndarray,
) -> np.ndarray:
    """Mask of the pairs ``(i, j, d)`` that the pymatgen class calls first-shell neighbours.

    Neighbours are matched by atom index and distance, so periodic images stay distinct.
    """
    from pymatgen.io.ase import AseAtomsAdaptor

    cls = _nn_class(cls_name)
    if np.any(atoms.pbc):
        struct = AseAtomsAdaptor.get_structure(atoms)
    else:
        # Near-neighbour classes need a lattice: box the cluster with generous vacuum.
        boxed = atoms.copy()
        boxed.center(vacuum=15.0)
        boxed.pbc = True
        struct = AseAtomsAdaptor.get_structure(boxed)
    finder = cls()
    mask = np.zeros(len(i), dtype=bool)
    for c in centres:
        rows = np.nonzero(i == c)[0]
        for nb in finder.get_nn_info(struct, int(c)):
            dist = float(np.linalg.norm(nb["site"].coords - struct[int(c)].coords))
            hit = rows[(j[rows] == nb["site_index"]) & (np.abs(d[rows] - dist) < 1e-3)]
            hit = hit[~mask[hit]]
            if len(hit):
                mask[hit[0]] = True
    return mask
