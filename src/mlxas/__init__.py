"""mlxas: machine-learning pipeline for X-ray absorption spectroscopy.

Structures go in, FEFF computes spectra, mlxas gathers them into an HDF5 dataset,
trains Keras models on them and reads coordination numbers and bond lengths off
measured spectra.  Importing the package is cheap on purpose: heavy libraries
(TensorFlow, pymatgen, larch) load only in the modules that need them.
"""

from mlxas._native import preload_cctbx_runtime

# Before anything else loads a C++ runtime: see mlxas._native (cctbx crashes otherwise).
preload_cctbx_runtime()

__version__ = "0.1.0"
