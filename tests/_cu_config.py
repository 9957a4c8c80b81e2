"""The small Cu nanoparticle experiments of the tests and the predict benchmarks.

Imported by ``conftest.py``, ``_dataset_support.py`` and ``benchmarks/_predict_model.py``
(which puts ``tests/`` on ``sys.path``); it imports nothing, so it is cheap to load.
"""

from __future__ import annotations

__all__ = ["cu_nanoparticles_config"]


def cu_nanoparticles_config(
    experiment: str, octahedra: list[int], cuboctahedra: list[int], **simulation: int
) -> dict:
    """Raw config head: Cu K edge, Cu octahedra and cuboctahedra (a = 3.61 Å) of the given
    sizes as the sources ``octa`` and ``cubo``, short FEFF8L settings (RPATH 4.5, NLEGS 4,
    6 Å clusters) and the ``simulation`` section (e.g. ``chunk_size``, ``threads``).

    Every call returns new dicts, so callers may add sections or change it in place.
    """
    return {
        "experiment": experiment,
        "absorber": "Cu",
        "edge": "K",
        "structures": [
            {
                "name": name,
                "kind": "nanoparticles",
                "element": "Cu",
                "lattice_constant": 3.61,
                "shape": shape,
                "sizes": list(sizes),
            }
            for name, shape, sizes in (
                ("octa", "octahedron", octahedra),
                ("cubo", "cuboctahedron", cuboctahedra),
            )
        ],
        "simulation": {"engine": "feff8l", **simulation},
        "feff": {"cards": {"RPATH": 4.5, "NLEGS": 4}, "cluster_radius": 6.0},
    }
