"""Spectral processing shared by simulated (FEFF) and measured spectra.

Everything a model sees goes through :func:`mlxas.spectra.features.compute_features`,
whether chi(k) came from FEFF's chi.dat or from background removal of a beamline file.
"""

from mlxas.spectra.features import compute_features, feature_grids
from mlxas.spectra.grids import k_grid

__all__ = ["compute_features", "feature_grids", "k_grid"]
