"""The ``graph`` EXAFS surrogate run with numpy: the same trained weights as its Keras
model, several times less CPU per site.

The Keras layers (:mod:`mlxas.surrogate.layers`) work on padded arrays ([sites, nodes],
[sites, pairs]) with masks, and their gathers and scatters (``segment_sum``) cost most of
the time on a CPU.  Here the same equations run on the real pairs only (padding rows
dropped), the ensemble members side by side (their weights as block-diagonal matrices, so
one matrix product serves all of them), the geometry and the path list computed once for
all members, and the two sums over pairs -- messages into nodes and paths onto the
path-length grid -- as sparse matrix products whose structure (column = pair or path,
2 or 4 rows) is known without sorting.  ``PathSpectrum``'s kernel matrix does not depend
on the input and is computed once.

The ``.keras`` file stays the trained artefact: :func:`fuse` reads the weights from the
loaded Keras model, and the tests check that both give the same spectra (float32, as
Keras runs on a CPU; max difference ~1e-5 of the spectrum's largest value).

Only the EXAFS read-out (``PathWeights`` + ``PathSpectrum``) is implemented; XANES graph
surrogates run through Keras (:func:`supported`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FusedGraph", "fuse", "member_networks", "predict", "supported"]

_F = np.float32
_BLAS = None  # threadpoolctl's controller of the BLAS libraries, made on first use
_EPS = _F(1e-6)  # as SiteGeometry's


def supported(kind) -> bool:
    """Whether surrogates of ``kind`` run here (the graph kind with an EXAFS grid)."""
    return kind.name == "graph" and kind.grid.target == "exafs"


@dataclass(frozen=True)
class FusedGraph:
    """Weights of ``members`` graph networks, side by side (M members of d units, C
    channels; ``bd`` = block-diagonal over members, ``cat`` = concatenated).

    Embedding: ``embed`` [n_species+1, M·d] cat, ``radial`` [n_basis, M·d] cat (+ bias),
    ``mix`` bd (+ bias).  Per interaction: (edge weights of h bd, edge weights of the
    pair basis and angles cat, edge bias, update bd, update bias).  ``absorber`` cat;
    ``site_pool``/``site_absorber`` bd (site_out split by its input halves); ``node_out``
    bd; ``tri``/``via`` bd (pair_out's two halves); ``bounce_e``/``bounce_h`` bd
    (bounce_out split by input).  ``kernels``: PathSpectrum's [n_l·C, n_k] per member.
    """

    members: int
    channels: int
    centres: np.ndarray
    width: float
    cutoff: float
    l_min: float
    dl: float
    n_l: int
    embed: np.ndarray
    radial: tuple[np.ndarray, np.ndarray]
    mix: tuple[np.ndarray, np.ndarray]
    interactions: tuple[tuple[np.ndarray, ...], ...]
    absorber: np.ndarray
    site_pool: np.ndarray
    site_absorber: np.ndarray
    node_out: tuple[np.ndarray, np.ndarray]
    tri: tuple[np.ndarray, np.ndarray]
    via: tuple[np.ndarray, np.ndarray]
    bounce_e: tuple[np.ndarray, np.ndarray]
    bounce_h: np.ndarray
    kernels: tuple[np.ndarray, ...]


def member_networks(model) -> list:
    """The member networks of a surrogate's Keras model (the model itself for one)."""
    import keras

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested or [model]


def _block_diag(mats: list[np.ndarray]) -> np.ndarray:
    rows, cols = sum(m.shape[0] for m in mats), sum(m.shape[1] for m in mats)
    out = np.zeros((rows, cols), dtype=_F)
    i = j = 0
    for m in mats:
        out[i : i + m.shape[0], j : j + m.shape[1]] = m
        i, j = i + m.shape[0], j + m.shape[1]
    return out


def _member(net) -> dict:
    """The arrays of one member network (float32 numpy)."""
    from keras import ops

    def a(v):
        return np.asarray(ops.convert_to_numpy(v), dtype=_F)

    emb, paths, spec = net.get_layer("embedding"), net.get_layer("paths"), net.get_layer("spectrum")
    basis = net.get_layer("r_basis")
    inter = sorted(
        (la for la in net.layers if la.name.startswith("interaction_")),
        key=lambda la: int(la.name.split("_")[1]),
    )
    return {
        "centres": np.asarray(basis.centres, _F),
        "width": float(basis.width),
        "embed": a(emb.embed.embeddings),
        "radial": (a(emb.radial.kernel), a(emb.radial.bias)),
        "mix": (a(emb.mix.kernel), a(emb.mix.bias)),
        "inter": [
            (a(i.edge.kernel), a(i.edge.bias), a(i.update.kernel), a(i.update.bias)) for i in inter
        ],
        "absorber": a(net.get_layer("absorber_embedding").embeddings),
        "node_out": (a(paths.node_out.kernel), a(paths.node_out.bias)),
        "pair_out": (a(paths.pair_out.kernel), a(paths.pair_out.bias)),
        "bounce_out": (a(paths.bounce_out.kernel), a(paths.bounce_out.bias)),
        "site_out": a(paths.site_out.kernel),
        "channels": int(paths.channels),
        "cutoff": float(paths.cutoff),
        "kernel": a(spec.kernel()),
        "grid": (float(spec.l_min), float(spec.dl), int(spec.n_l)),
    }


def fuse(model) -> FusedGraph:
    """:class:`FusedGraph` of a loaded graph EXAFS surrogate's Keras model."""
    ms = [_member(n) for n in member_networks(model)]
    m0, d, c = ms[0], ms[0]["mix"][0].shape[0], ms[0]["channels"]
    nb = len(m0["centres"])

    def cat(f):
        return np.concatenate([f(m) for m in ms], axis=-1).astype(_F)

    def bd(f):
        return _block_diag([f(m) for m in ms])

    inter = []
    for i in range(len(m0["inter"])):
        inter.append(
            (
                bd(lambda m, i=i: m["inter"][i][0][:d]),
                cat(lambda m, i=i: m["inter"][i][0][d:]),
                cat(lambda m, i=i: m["inter"][i][1]),
                bd(lambda m, i=i: m["inter"][i][2]),
                cat(lambda m, i=i: m["inter"][i][3]),
            )
        )
    if m0["inter"] and m0["inter"][0][0].shape[0] != d + nb + 3:
        raise ValueError("graph surrogate: unexpected edge layer input size")
    l_min, dl, n_l = m0["grid"]
    return FusedGraph(
        members=len(ms),
        channels=c,
        centres=m0["centres"],
        width=m0["width"],
        cutoff=m0["cutoff"],
        l_min=l_min,
        dl=dl,
        n_l=n_l,
        embed=cat(lambda m: m["embed"]),
        radial=(cat(lambda m: m["radial"][0]), cat(lambda m: m["radial"][1])),
        mix=(bd(lambda m: m["mix"][0]), cat(lambda m: m["mix"][1])),
        interactions=tuple(inter),
        absorber=cat(lambda m: m["absorber"]),
        site_pool=bd(lambda m: m["site_out"][:d]),
        site_absorber=bd(lambda m: m["site_out"][d:]),
        node_out=(bd(lambda m: m["node_out"][0]), cat(lambda m: m["node_out"][1])),
        tri=(bd(lambda m: m["pair_out"][0][:, :c]), cat(lambda m: m["pair_out"][1][:c])),
        via=(bd(lambda m: m["pair_out"][0][:, c:]), cat(lambda m: m["pair_out"][1][c:])),
        bounce_e=(bd(lambda m: m["bounce_out"][0][:d]), cat(lambda m: m["bounce_out"][1])),
        bounce_h=bd(lambda m: m["bounce_out"][0][d:]),
        kernels=tuple(m["kernel"] for m in ms),
    )


def _silu(x: np.ndarray) -> np.ndarray:
    """x·sigmoid(x) = x / (1 + exp(−x)), in one temporary."""
    t = np.negative(x)
    with np.errstate(over="ignore"):  # exp(-x) → inf for x ≪ 0 gives x/inf = -0, right
        np.exp(t, out=t)
    t += _F(1.0)
    return np.divide(x, t, out=t)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product of two [n, 3] arrays."""
    return np.einsum("ij,ij->i", a, b)


def _geometry(fg: FusedGraph, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Node distances and masks, and the real pairs with their geometry (as
    ``SiteGeometry`` computes them, padding pairs dropped)."""
    species, pairs = x["species"], x["pairs"]
    b, n = species.shape
    mask = (species > 0).reshape(-1).astype(_F)
    pos = np.ascontiguousarray(x["positions"], dtype=_F).reshape(-1, 3)
    r = np.sqrt(_dot(pos, pos) + _EPS) * mask + (_F(1.0) - mask)
    j, l_ = pairs[..., 0], pairs[..., 1]
    site, slot = np.nonzero(j != l_)
    gj, gl = site * n + j[site, slot], site * n + l_[site, slot]
    pj, pl = np.take(pos, gj, 0), np.take(pos, gl, 0)
    rj, rl = np.take(r, gj), np.take(r, gl)
    djl = pl - pj
    rjl = np.sqrt(_dot(djl, djl) + _EPS)
    cosj, cosl = -_dot(pj, djl) / (rj * rjl), _dot(pl, djl) / (rl * rjl)
    nb = len(fg.centres)
    basis = np.empty((len(gj), nb + 3), dtype=_F)  # edge input: basis(r_jl), angles
    basis[:, :nb] = np.exp(_F(-0.5) * ((rjl[:, None] - fg.centres) / _F(fg.width)) ** 2)
    basis[:, nb] = _dot(pj, pl) / (rj * rl)
    basis[:, nb + 1] = cosj + cosl
    basis[:, nb + 2] = cosj * cosl
    return {"b": b, "n": n, "mask": mask, "r": r, "site": site, "gj": gj, "gl": gl,
            "rj": rj, "rl": rl, "rjl": rjl, "edge_geom": basis}  # fmt: skip


def _message_passing(fg: FusedGraph, x, geo) -> tuple[np.ndarray, np.ndarray]:
    """Node states h [B·N, M·d] and pair states e [pairs, M·d] (NeighbourEmbedding and
    the PairInteraction rounds)."""
    import scipy.sparse as sp

    mask, r, gj, gl = geo["mask"], geo["r"], geo["gj"], geo["gl"]
    rb = np.exp(_F(-0.5) * ((r[:, None] - fg.centres) / _F(fg.width)) ** 2)
    z = np.take(fg.embed, x["species"].reshape(-1), 0) + rb @ fg.radial[0] + fg.radial[1]
    h = _silu(z @ fg.mix[0] + fg.mix[1]) * mask[:, None]
    p = len(gj)
    # Incidence matrix node ← pair (column p has rows j and l): the scatter of messages.
    inc = sp.csc_matrix(
        (np.ones(2 * p, _F), np.stack([gj, gl], 1).reshape(-1), np.arange(0, 2 * p + 1, 2)),
        shape=(len(r), p),
    )
    e = np.zeros((p, h.shape[1]), dtype=_F)
    for w_h, w_geom, bias, w_up, b_up in fg.interactions:
        hw = h @ w_h  # (h_j + h_l)·W = h_j·W + h_l·W: one product per node, not per pair
        z = geo["edge_geom"] @ w_geom
        z += bias
        z += np.take(hw, gj, 0)
        z += np.take(hw, gl, 0)
        e = _silu(z)
        h = (h + (inc @ e) @ w_up + b_up) * mask[:, None]
    return h, e


def _paths(fg: FusedGraph, x, geo, h, e) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position u on the L grid [paths], site [paths], weights [paths, M·C]) of every
    path with a nonzero weight (PathWeights: single scattering, then the four pair
    kinds); u = (L − l_min)/dl, L the half length.

    Weights are computed for the paths that carry weight only: within the cutoff and
    inside PathSpectrum's L grid (for the Cu set: every triangle, a third of the
    bounce paths and a fifth of the via-absorber ones)."""
    b, n, mask, r = geo["b"], geo["n"], geo["mask"], geo["r"]
    m, c = fg.members, fg.channels
    site, gj, gl = geo["site"], geo["gj"], geo["gl"]
    rj, rl, rjl = geo["rj"], geo["rl"], geo["rjl"]
    pool = h.reshape(b, n, -1).sum(1) / np.maximum(mask.reshape(b, n).sum(1), 1.0)[:, None]
    gw = pool @ fg.site_pool + np.take(fg.absorber, x["absorber"], 0) @ fg.site_absorber
    # Site offsets per path kind [B, M·C]: ss, triangle, bounce (both), via.
    off = [
        np.ascontiguousarray(gw.reshape(b, m, 4, c)[:, :, k]).reshape(b, m * c) for k in range(4)
    ]

    def keep(length, ok):
        u = (length - _F(fg.l_min)) / _F(fg.dl)
        idx = np.nonzero(ok & (length <= _F(fg.cutoff)) & (u >= 1.0) & (u <= fg.n_l - 2.0))[0]
        return idx, u[idx]

    idx, u_ss = keep(r, mask > 0)
    w_ss = np.take(h, idx, 0) @ fg.node_out[0] + fg.node_out[1]
    w_ss += np.take(off[0], idx // n, 0)
    w_ss *= (_F(1.0) / (np.take(r, idx) ** 2))[:, None]
    us, owners, ws = [u_ss], [idx // n], [w_ss]
    ij, il, ijl = _F(1.0) / rj, _F(1.0) / rl, _F(1.0) / rjl
    hb = h @ fg.bounce_h
    kinds = (
        (_F(0.5) * (rj + rl + rjl), ij * il * ijl, fg.tri, None, 1),
        (rj + rjl, (ij * ijl) ** 2, fg.bounce_e, gj, 2),
        (rl + rjl, (il * ijl) ** 2, fg.bounce_e, gl, 2),
        (rj + rl, (ij * il) ** 2, fg.via, None, 3),
    )
    every = np.ones(len(gj), dtype=bool)
    for length, factor, (w_e, b_e), node, k in kinds:
        idx, u = keep(length, every)
        w = np.take(e, idx, 0) @ w_e + b_e
        if node is not None:  # bounce paths also see the state of the node they start at
            w += np.take(hb, np.take(node, idx), 0)
        owner = np.take(site, idx)
        w += np.take(off[k], owner, 0)
        w *= np.take(factor, idx)[:, None]
        us.append(u)
        owners.append(owner)
        ws.append(w)
    return np.concatenate(us), np.concatenate(owners), np.concatenate(ws)


def _spectrum(fg: FusedGraph, b: int, u, owner, w) -> np.ndarray:
    """PathSpectrum: paths spread on the L grid (cubic Lagrange weights on the 4 nearest
    points), then the kernel product; [B, M, n_k]."""
    import scipy.sparse as sp

    m, c, n_l = fg.members, fg.channels, fg.n_l
    u = np.minimum(u, _F(n_l - 2.0001))  # as PathSpectrum clips (u = n_l − 2 exactly)
    i1 = np.floor(u).astype(np.int64)
    t = u - i1.astype(_F)
    lag = np.stack(
        [
            -t * (t - 1.0) * (t - 2.0) / 6.0,
            (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0,
            -(t + 1.0) * t * (t - 2.0) / 2.0,
            (t + 1.0) * t * (t - 1.0) / 6.0,
        ],
        axis=1,
    ).astype(_F)
    rows = ((owner * n_l + i1 - 1)[:, None] + np.arange(4)).reshape(-1)
    q = len(u)
    spread = sp.csc_matrix((lag.reshape(-1), rows, np.arange(0, 4 * q + 1, 4)), shape=(b * n_l, q))
    hist = np.asarray(spread @ w, dtype=_F).reshape(b, n_l, m, c)
    return np.stack(
        [np.ascontiguousarray(hist[:, :, k]).reshape(b, n_l * c) @ fg.kernels[k] for k in range(m)],
        axis=1,
    )


def predict(fg: FusedGraph, x: dict[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
    """k^w·chi(k) of every site of the graph arrays ``x`` (:func:`mlxas.surrogate.graphs.
    build_graphs`), [n, members, n_k] as the Keras model gives it; ``batch_size`` sites
    at a time (~64 keep the pair arrays in cache: measured best on the Cu set)."""
    global _BLAS
    n = len(x["species"])
    parts = []
    if _BLAS is None:  # finding the loaded BLAS libraries costs ~1 ms: once per process
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    # One BLAS thread: the products are small, and threads waiting for work would burn
    # CPU time (measured: ~2x the CPU per site with OpenBLAS' default of all cores).
    with _BLAS.limit(limits=1, user_api="blas"):
        for i in range(0, n, max(1, batch_size)):
            xb = {k: v[i : i + batch_size] for k, v in x.items()}
            geo = _geometry(fg, xb)
            h, e = _message_passing(fg, xb, geo)
            parts.append(_spectrum(fg, geo["b"], *_paths(fg, xb, geo, h, e)))
    if not parts:
        return np.zeros((0, fg.members, fg.kernels[0].shape[1]), dtype=_F)
    return np.concatenate(parts)
