"""Spectral processing shared by simulated (FEFF) and measured spectra.

Everything a model sees goes through :func:`mlxas.spectra.features.compute_features`,
whether chi(k) came from FEFF's chi.dat or from background removal of a beamline file.
Modules: ``grids`` (k, E, R and wavelet-map grids), ``features`` (chi(k)·k^w, Fourier
transform), ``wavelets`` (Morlet and Cauchy maps), ``xanes`` (mu(E) normalisation).
"""

from mlxas.spectra.features import compute_features, enabled_features, feature_grids
from mlxas.spectra.grids import energy_grid, k_grid
from mlxas.spectra.xanes import EdgeGrid, EdgeSpectrum, edge_on_grid

__all__ = [
    "EdgeGrid",
    "EdgeSpectrum",
    "compute_features",
    "edge_on_grid",
    "enabled_features",
    "energy_grid",
    "feature_grids",
    "k_grid",
]
