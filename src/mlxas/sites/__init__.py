"""Items of the simulation stage (absorbing sites or whole structures) and their labels.

A *site* is one absorbing atom of one structure (or MD frame).  For ordered structures
only symmetry-unique sites are computed and each carries its multiplicity
(:mod:`mlxas.sites.symmetry`); :mod:`mlxas.sites.table` chooses the items of a source
(``unique``, ``all``, ``sample`` or ``structure``) and writes the site table.  Labels are
named label sets (:mod:`mlxas.sites.labelsets`); the built-in ``coordination`` set
(:mod:`mlxas.sites.coordination`) computes CN, mean first-shell distance, partial CNs and
the RDF of all sites of a structure at once from one neighbour search
(:mod:`mlxas.sites.labels`, :mod:`mlxas.sites.neighbours`).
"""

from mlxas.settings import lazy_exports

# Submodules load on first use, so that reading one of them (a stage, the workflow's
# settings) neither imports the others nor makes their code part of its code version.
_EXPORTS = {
    "CoordinationSettings": "labels",
    "LabelError": "labels",
    "RdfSettings": "labels",
    "frame_labels": "labels",
    "rdf_grid": "labels",
    "shell_radii": "labels",
    "shell_radius": "labels",
    "LabelColumns": "labelsets",
    "LabelSet": "labelsets",
    "LabelSettings": "labelsets",
    "compute_labels": "labelsets",
    "label_set_class": "labelsets",
    "label_set_names": "labelsets",
    "read_labels": "labelsets",
    "register_label_set": "labelsets",
    "write_labels": "labelsets",
    "neighbour_pairs": "neighbours",
    "equivalent_sites": "symmetry",
    "SITE_COLUMNS": "table",
    "SitesSettings": "table",
    "choose_sites": "table",
    "enumerate_sites": "table",
    "read_sites": "table",
    "site_id": "table",
    "site_table": "table",
    "write_sites": "table",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
