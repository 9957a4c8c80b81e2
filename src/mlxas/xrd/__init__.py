"""Powder X-ray diffraction: the ``xrd`` simulation engine, random and prototype crystals,
structure labels (crystal system, space group, structure type), classifiers, readers of
measured patterns and prediction.  See ``docs/xrd.md``.

Importing :mod:`mlxas.xrd.engine` registers the ``xrd`` engine.
"""
