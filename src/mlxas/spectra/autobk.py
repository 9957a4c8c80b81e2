"""larch's AUTOBK problem for one energy grid and E0, factorised once
(:class:`AutobkOperator`), so that :func:`mlxas.spectra.background.autobk_batch` solves
every spectrum of a series as a few matrix products.

The operator follows larch's definitions (knot placement, ``ftwindow``, ``xftf_fast``,
``realimag`` ordering) through :mod:`mlxas.spectra.xafsmath`, without importing larch.
Units: energy in eV, k in Å⁻¹, rbkg in Å.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # background imports this module: the settings' class for hints only
    from mlxas.spectra.background import BackgroundSettings

__all__ = ["AutobkOperator"]


class AutobkOperator:
    """larch's AUTOBK problem for one energy grid and E0, factorised once.

    ``apply(mu, edge_step)`` returns chi(k) on ``self.k`` for every row of ``mu``; each row
    is the minimiser of larch's ``autobk`` residual (chi(R) below rbkg plus the weighted
    end-point clamps) with the spline knots larch would place.
    """

    def __init__(self, energy: np.ndarray, e0: float, settings: BackgroundSettings):
        from scipy.interpolate import make_interp_spline, splev, splrep

        from mlxas.spectra.xafsmath import (
            ETOK,
            TINY_ENERGY,
            ftwindow,
            index_nearest,
            index_of,
            remove_dups,
            xftf_fast,
        )

        s = settings
        energy = remove_dups(np.asarray(energy, dtype=float), tiny=TINY_ENERGY)
        if not energy.min() <= e0 <= energy.max():
            raise ValueError(f"E0 = {e0} eV is outside the energy range")
        self.settings = s
        self.e0 = float(e0)
        self.npts = len(energy)
        iek0 = index_of(energy, e0)
        rgrid = np.pi / (s.kstep * s.nfft)
        rbkg = max(s.rbkg, 2 * rgrid)
        enpe = energy[iek0:] - e0
        kraw = np.sign(enpe) * np.sqrt(ETOK * abs(enpe))
        kmax = max(kraw) if s.kmax is None or s.kmax < 0 else max(0, min(max(kraw), s.kmax))
        kout = s.kstep * np.arange(int(1.01 + kmax / s.kstep), dtype="float64")
        iemax = min(len(energy), 2 + index_of(energy, e0 + kmax * kmax / ETOK)) - 1
        ftwin = kout**s.kweight * ftwindow(
            kout, xmin=s.kmin, xmax=kmax, window=s.win, dx=s.dk, dx2=s.dk
        )
        nspl = 1 + int(2 * rbkg * (kmax - s.kmin) / np.pi)
        irbkg = int(1 + (nspl - 1) * np.pi / (2 * rgrid * (kmax - s.kmin)))
        if s.nknots is not None:
            nspl = s.nknots
        nspl = max(5, min(128, nspl))
        spl_k = np.array(
            [
                kraw[index_nearest(kraw, s.kmin + i * (kmax - s.kmin) / (nspl - 1))]
                for i in range(nspl)
            ]
        )
        # With s=0 splrep's knots depend only on the abscissae: these are larch's knots.
        knots = splrep(spl_k, np.ones(nspl), k=3)[0]
        kr = kraw[: iemax - iek0 + 1]

        # B: spline background at the measured k points, one column per coefficient.
        eye = np.eye(len(knots))
        basis = np.stack([splev(kr, (knots, eye[j], 3)) for j in range(nspl)], axis=1)
        # S: larch's UnivariateSpline(s=0) interpolation onto kout (not-a-knot cubic).
        interp = make_interp_spline(kr, np.eye(len(kr)), k=3)(kout)
        # F: windowed, k-weighted FT below rbkg, real/imag interleaved as larch's realimag.
        ft = np.empty((2 * irbkg, len(kout)))
        unit = np.zeros(len(kout))
        for j in range(len(kout)):
            unit[j] = ftwin[j]
            c = xftf_fast(unit, nfft=s.nfft)[:irbkg]
            ft[0::2, j], ft[1::2, j] = c.real, c.imag
            unit[j] = 0.0

        self.k = kout
        self.kmax = float(kmax)
        self.iek0, self.iemax = iek0, iemax
        self.nspl, self.irbkg = nspl, irbkg
        self.knots = knots
        self.basis = basis
        self._interp_t = np.ascontiguousarray(interp.T)  # (n_e, n_k)
        sb = interp @ basis  # chi change per unit coefficient (n_k, nspl)
        self._sb = sb
        self._a = ft @ sb  # (m, nspl)
        self._ft_interp_t = np.ascontiguousarray((ft @ interp).T)  # (n_e, m)
        # Clamped chi points and their weights; a zero weight adds nothing to the residual.
        nc = s.nclamp
        rows, weights = [], []
        for sel, wt in ((np.r_[0:nc], s.clamp_lo), (np.r_[len(kout) - nc : len(kout)], s.clamp_hi)):
            if nc and wt:
                rows.append(sel)
                weights.append(np.full(nc, abs(wt)))
        self._clamp_rows = np.concatenate(rows) if rows else None
        self._clamp_w = np.concatenate(weights) if rows else None

    def _clamp_parts(self, chi0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clamp targets (n, nq) and matrix (nq, nspl), with the user weights applied."""
        rows, w = self._clamp_rows, self._clamp_w
        return chi0[:, rows] * w, self._sb[rows] * w[:, None]

    def coefficients(self, mu: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """Spline coefficients minimising larch's residual, and chi0 = S·mu (raw units).

        The clamp weight ``0.1 + 10·mean(r²)`` depends on the FT residual r, so the
        problem is solved by Gauss–Newton on the full residual, started from the
        fixed-weight solution; every step is one batched (nspl × nspl) solve.
        """
        mu_ = np.atleast_2d(mu)[:, self.iek0 : self.iemax + 1]
        chi0 = mu_ @ self._interp_t
        b = mu_ @ self._ft_interp_t
        a = self._a
        ata = a.T @ a
        atb = b @ a  # (n, nspl)
        if self._clamp_rows is None:
            return np.linalg.solve(ata, atb.T).T, chi0
        q0, qm = self._clamp_parts(chi0)
        m = a.shape[0]
        qtq = qm.T @ qm
        qtq0 = q0 @ qm
        # Fixed-weight start: weight of an exact background (r = 0).
        w = np.full(len(b), 0.1)
        for _ in range(2):
            lhs = ata[None] + (w**2)[:, None, None] * qtq[None]
            rhs = atb + (w**2)[:, None] * qtq0
            c = np.linalg.solve(lhs, rhs[..., None])[..., 0]
            r = b - c @ a.T
            w = 0.1 + 10 * (r * r).mean(axis=1)
        for _ in range(iterations):
            r = b - c @ a.T  # (n, m)
            q = q0 - c @ qm.T  # (n, nq)
            w = 0.1 + 10 * (r * r).mean(axis=1)
            dw = -(20.0 / m) * (r @ a)  # d w / d c, (n, nspl)
            # Jacobian of [r; w q] with respect to c.
            jq = -w[:, None, None] * qm[None] + q[:, :, None] * dw[:, None, :]
            jtj = ata[None] + np.einsum("nqi,nqj->nij", jq, jq)
            jtr = -(r @ a) + np.einsum("nqi,nq->ni", jq, w[:, None] * q)
            step = np.linalg.solve(jtj, -jtr[..., None])[..., 0]
            c = c + step
            self.last_iterations = _ + 1
            if np.all(np.abs(step) <= 1e-12 * (1 + np.abs(c))):
                break
        return c, chi0

    def apply(self, mu: np.ndarray, edge_step: np.ndarray | float) -> np.ndarray:
        """chi(k) on ``self.k`` for each row of ``mu`` (divided by the edge step)."""
        mu = np.atleast_2d(np.asarray(mu, dtype=float))
        if mu.shape[1] != self.npts:
            raise ValueError(f"mu has {mu.shape[1]} points, the grid has {self.npts}")
        c, chi0 = self.coefficients(mu)
        chi = chi0 - c @ self._sb.T
        return chi / np.broadcast_to(np.asarray(edge_step, dtype=float), (len(mu),))[:, None]

    def background(self, mu: np.ndarray) -> np.ndarray:
        """mu0(E), the spline background, on the measured grid (mu itself below E0)."""
        mu = np.atleast_2d(np.asarray(mu, dtype=float))
        c, _ = self.coefficients(mu)
        bkg = mu.copy()
        bkg[:, self.iek0 : self.iemax + 1] = c @ self.basis.T
        return bkg
