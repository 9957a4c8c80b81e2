"""Absorbing sites and their labels.

A *site* is one absorbing atom of one structure (or MD frame).  For ordered structures
only symmetry-unique sites are computed and each carries its multiplicity
(:mod:`mlxas.sites.symmetry`); :mod:`mlxas.sites.table` chooses the sites of a source
(``unique``, ``all`` or ``sample``) and writes the site table; :mod:`mlxas.sites.labels`
computes CN, mean first-shell distance, partial CNs and the RDF of all sites of a
structure at once from one neighbour search (:mod:`mlxas.sites.neighbours`).
"""

from mlxas.sites.labels import LabelError, frame_labels, rdf_grid, shell_radii, shell_radius
from mlxas.sites.neighbours import neighbour_pairs
from mlxas.sites.symmetry import equivalent_sites
from mlxas.sites.table import (
    SITE_COLUMNS,
    choose_sites,
    enumerate_sites,
    read_sites,
    site_id,
    write_sites,
)

__all__ = [
    "SITE_COLUMNS",
    "LabelError",
    "choose_sites",
    "enumerate_sites",
    "equivalent_sites",
    "frame_labels",
    "neighbour_pairs",
    "rdf_grid",
    "read_sites",
    "shell_radii",
    "shell_radius",
    "site_id",
    "write_sites",
]
