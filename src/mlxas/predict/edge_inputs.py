"""Model inputs of mu(E) near the edge (``xanes``, ``mu``, ``xanes_deriv``,
``xanes_channels``; XANES geometry models) from measured spectra.

No background removal and no k-range: the spectrum is normalised as the training spectra
were (:func:`mlxas.spectra.xanes.edge_on_grid`) and must span the model's E − E0 grid.
Units: energy, E0 and widths in eV.
"""

from __future__ import annotations

import numpy as np

from mlxas.predict.spec import ProcessSpec

__all__ = ["edge_inputs"]


def edge_inputs(
    spectra: list[tuple], accepted: list[int], e0s: dict[int, float], spec: ProcessSpec
) -> dict[int, np.ndarray]:
    """The mu(E) input per accepted spectrum: normalised as the training spectra were
    (:func:`mlxas.spectra.xanes.edge_on_grid`, E0 moved as ``features.xanes.e0`` says),
    refused when the data do not span the model's E − E0 grid at that final E0 or when
    mu does not rise at the edge."""
    from mlxas.spectra.features import edge_features
    from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid

    out: dict[int, np.ndarray] = {}
    lo, hi = spec.e_required
    xcfg = spec.features["xanes"]
    for i in accepted:
        res, s = spectra[i]
        try:
            edge = edge_on_grid([EdgeSpectrum(s.energy, s.mu, e0=e0s[i])], xcfg)
        except Exception as err:  # larch's pre_edge or the half-step search failing
            res.refuse(f"edge normalisation failed ({type(err).__name__}: {err})")
            continue
        res.e0, res.edge_step = float(edge.e0[0]), float(edge.edge_step[0])
        res.background = "none (mu(E) input)"
        start, end = float(s.energy[0]) - res.e0, float(s.energy[-1]) - res.e0
        step = 0.5 * float(xcfg["de"])
        if start > lo + step or end < hi - step:
            res.refuse(
                f"energy range too short: data span E - E0 = {start:.1f} to {end:.1f} eV "
                f"(E0 = {res.e0:.1f} eV), the model reads {lo:g} to {hi:g} eV"
            )
        elif not res.edge_step > 0:
            res.refuse(
                f"edge step is {res.edge_step:.3g}: mu does not rise at the edge "
                f"({s.mu_from}; inverted or not an absorption edge?)"
            )
        else:
            if spec.xanes_broaden > 0:
                edge = _broadened(edge, spec)
                res.notes.append(
                    f"normalised mu(E) convolved with a {spec.xanes_broaden:g} eV Lorentzian"
                )
            res.edge_norm = np.asarray(edge.norm[0], dtype=float)
            row = edge_features(edge, spec.features)[spec.input][0]
            if np.all(np.isfinite(row)):
                out[i] = row
            else:
                res.refuse("edge normalisation gave NaN or infinite mu(E)")
    return out


def _broadened(edge, spec: ProcessSpec):
    """``edge`` with its normalised mu(E) convolved with a Lorentzian of FWHM
    ``spec.xanes_broaden`` eV (:func:`mlxas.xanes.augment.broaden`, area kept)."""
    from mlxas.spectra.xanes import EdgeGrid
    from mlxas.xanes.augment import broaden

    norm = broaden(edge.norm, float(spec.features["xanes"]["de"]), 0.0, spec.xanes_broaden)
    return EdgeGrid(edge.mu, norm.astype(edge.norm.dtype), edge.e0, edge.edge_step)
