"""The fixed reflection list of a ``reflections`` engine setting (space group,
``index_max``): every h, k, l of the index box reduced to the asymmetric unit, without
000 and systematic absences, sorted (see :mod:`mlxas.phases.reflections`); the phase
restriction of each of its reflections, and the positions of given reflections in it.
Each is computed once per setting and kept (read-only arrays)."""

from __future__ import annotations

from functools import cache

import numpy as np

from mlxas.phases.labels import phase_restrictions

__all__ = ["box_lookup", "list_restrictions", "reflection_list"]


@cache
def _reflection_list(space_group: str, index_max: int) -> np.ndarray:
    from cctbx import crystal, miller
    from cctbx.array_family import flex

    r = np.arange(-index_max, index_max + 1)
    box = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    box = box[np.any(box != 0, axis=1)]
    # Any cell will do: the asymmetric unit of hkl depends on the space group only.
    sym = crystal.symmetry(unit_cell=(10, 11, 12, 90, 100, 90), space_group_symbol=space_group)
    ms = miller.set(sym, flex.miller_index(box.tolist()), anomalous_flag=False)
    ms = ms.map_to_asu().unique_under_symmetry().remove_systematic_absences()
    hkl = np.array(ms.indices(), dtype=np.int32).reshape(-1, 3)
    order = np.lexsort((hkl[:, 2], hkl[:, 1], hkl[:, 0]))
    out = hkl[order]
    out.setflags(write=False)
    return out


def reflection_list(space_group: str, index_max: int) -> np.ndarray:
    """The fixed reflection list ``[n, 3]`` (int32, read-only) of a setting."""
    return _reflection_list(space_group, int(index_max))


@cache
def list_restrictions(space_group: str, index_max: int) -> np.ndarray:
    """``ht`` (radians, read-only) of every reflection of the setting's list (cctbx's
    phase restriction, computed once: per-reflection calls cost ~3 µs each)."""
    ht = phase_restrictions(space_group, reflection_list(space_group, index_max))[1]
    ht.setflags(write=False)
    return ht


@cache
def _box_lookup(space_group: str, index_max: int) -> np.ndarray:
    h = index_max
    look = np.full((2 * h + 1,) * 3, -1, dtype=np.int64)
    hkl = reflection_list(space_group, index_max)
    look[hkl[:, 0] + h, hkl[:, 1] + h, hkl[:, 2] + h] = np.arange(len(hkl))
    look.setflags(write=False)
    return look


def box_lookup(space_group: str, index_max: int, hkl: np.ndarray, where: str = "") -> np.ndarray:
    """Positions of reflections ``hkl`` [m, 3] in the setting's reflection list;
    :class:`ValueError` naming ``where`` if one is not in it."""
    h = int(index_max)
    hkl = np.asarray(hkl, dtype=np.int64)
    outside = np.any(np.abs(hkl) > h, axis=1)
    idx = np.full(len(hkl), -1, dtype=np.int64)
    inside = ~outside
    idx[inside] = _box_lookup(space_group, h)[*(hkl[inside] + h).T]
    if np.any(idx < 0):
        bad = hkl[idx < 0][0].tolist()
        raise ValueError(
            f"{where or 'reflections'}: {int((idx < 0).sum())} reflections are not in the "
            f"{space_group} list to index {h} (first: {bad})"
        )
    return idx
