"""The simulation stage around any engine of :mod:`mlxas.engines`, engine-blind.

:mod:`~mlxas.simulation.inputs` writes one input per item and the chunk plan (the
``inputs`` checkpoint), :mod:`~mlxas.simulation.runner` runs one chunk with resume,
quarantine and threads (rule ``simulate``), :mod:`~mlxas.simulation.chunk` reads and
writes the chunk files (named ragged arrays).  ``gather`` calls the engine's
``featurize`` on the chunk files (:mod:`mlxas.dataset`).
"""
