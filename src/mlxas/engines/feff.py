"""FEFF8L, FEFF6L and FEFF10 as engines of the simulation stage.

Each class wraps the programs of :mod:`mlxas.feff.engines` (which start, time and kill
the FEFF processes) and the FEFF knowledge of :mod:`mlxas.feff`: the input text
(:mod:`mlxas.feff.inputs`, cards from :mod:`mlxas.feff.cards`), the verdict on a run
(:mod:`mlxas.feff.checks`) and the spectral features of its chi(k) and mu(E)
(:mod:`mlxas.spectra`).  Settings come from the ``feff`` config section, shared by the
three codes; ``simulation.engine`` picks the code.

Arrays of a successful item: ``k`` (Å⁻¹), ``chi``; ``energy`` (eV), ``mu``, ``mu0``
where the run wrote ``xmu.dat`` (FEFF6L does not, XANES runs have no ``chi.dat``).
Scalar: ``e0`` (eV, from ``xmu.dat``; NaN without it).

With ``feff.spectroscopy: xanes`` (FEFF10) an item has no chi(k): its signals are the
``edge/*`` arrays only and its model inputs the edge features of
:func:`mlxas.spectra.features.edge_features` (``xanes``, ``xanes_deriv``, ...); the
chi(k) features must then be switched off (the config check says so).

A structure may bring cards of its own (:func:`mlxas.feff.temperature.structure_cards`:
the crystal source's per-structure DEBYE card, or the removal of the config's DEBYE card
for thermal snapshots); they are merged over the config's cards in that structure's
inputs, so its input hash follows them.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlxas.engines.base import (
    Axis,
    EngineError,
    InputError,
    ItemInput,
    ItemResult,
    SignalEngine,
    register,
)

__all__ = ["Feff6LEngine", "Feff8LEngine", "Feff10Engine", "FeffEngine", "FeffSettings"]

#: Files a finished run keeps; FEFF's scratch files (phase.pad ~100 kB, ...) are deleted.
KEPT_FILES = frozenset({"feff.inp", "feff.log", "chi.dat", "xmu.dat"})
#: Signals of a XANES-enabled dataset besides ``chi``.
_EDGE = ("edge/mu", "edge/norm", "edge/e0", "edge/edge_step")


@dataclass(frozen=True)
class FeffSettings:
    """The ``feff`` config section, resolved for one engine.

    ``cards``: every card of feff.inp except POTENTIALS/ATOMS, already merged from the
    engine's template, the spectroscopy, the edge and the config (see
    :func:`mlxas.feff.cards.merged_cards`); ``cluster_radius`` in Å;
    ``keep_files`` keeps FEFF's scratch files in the run folders.
    """

    edge: str = "K"
    spectroscopy: str = "exafs"
    cards: dict[str, Any] = field(default_factory=dict)
    cluster_radius: float = 8.0
    keep_files: bool = False


class FeffEngine(SignalEngine):
    """One FEFF code; subclasses only name it."""

    unit: ClassVar[str] = "site"
    arrays: ClassVar[tuple[str, ...]] = ("k", "chi", "energy", "mu", "mu0")
    scalars: ClassVar[tuple[str, ...]] = ("e0",)
    settings_class: ClassVar[type] = FeffSettings
    section: ClassVar[str] = "feff"

    @classmethod
    def settings_from_config(
        cls, section: Mapping[str, Any] | None, *, absorber: str | None, edge: str | None
    ) -> FeffSettings:
        from mlxas.feff.cards import CardError, merged_cards

        section = dict(section or {})
        spectroscopy = section.get("spectroscopy", "exafs")
        edge = edge or "K"
        try:
            cards = merged_cards(cls.name, edge, section.get("cards") or {}, spectroscopy)
        except CardError as err:
            raise EngineError(str(err)) from None
        return FeffSettings(
            edge=edge,
            spectroscopy=spectroscopy,
            cards=cards,
            cluster_radius=float(section.get("cluster_radius", 8.0)),
            keep_files=bool(section.get("keep_files", False)),
        )

    @property
    def programs(self):
        """The process side: :class:`mlxas.feff.engines.Engine` of this code."""
        from mlxas.feff.engines import get_engine

        return get_engine(self.name)

    @property
    def version(self) -> str:
        return self.programs.version

    def prepare(self) -> None:
        self.programs.prepare()

    def input_text(self, atoms: Any, site_index: int | None, item_id: str) -> str:
        from mlxas.feff.cards import CardError, cards_with
        from mlxas.feff.inputs import cluster_around, feff_input_text
        from mlxas.feff.temperature import structure_cards

        if site_index is None:
            raise EngineError(f"{self.name} computes absorbing sites, not whole structures")
        s: FeffSettings = self.settings
        # A structure may bring its own cards (its DEBYE temperature, mlxas.feff.temperature).
        try:
            own = structure_cards(atoms)
            cards = cards_with(self.name, s.cards, own) if own else s.cards
        except (CardError, ValueError) as err:
            raise InputError("structure_cards", f"structure {item_id}: {err}") from None
        symbols, xyz = cluster_around(atoms, int(site_index), s.cluster_radius)
        prog = self.programs
        return feff_input_text(
            symbols, xyz, cards, f"mlxas site {item_id}", prog.max_atoms, prog.max_potentials
        )

    def run(self, item: ItemInput, rundir: Path, timeout: float) -> ItemResult:
        from mlxas.feff.checks import RunFailure, check_log, check_outputs
        from mlxas.feff.engines import EngineTimeout

        prog = self.programs
        result = ItemResult(
            item.item_id, "failed", item.input_hash, self.name, self.version,
            scalars={"e0": float("nan")},
        )  # fmt: skip
        inp = rundir / "feff.inp"
        inp.write_text(item.text)
        try:
            try:
                result.seconds = prog.run(rundir, timeout, rundir / "feff.log")
            finally:
                # FEFF10 rewrites feff.inp in its own layout; keep the text the hash is of.
                inp.write_text(item.text)
            check_log((rundir / "feff.log").read_text(errors="replace"))
            out = check_outputs(rundir, prog.outputs(item.text), prog.expected_kmax(item.text))
        except EngineTimeout as err:
            result.reason, result.detail, result.seconds = "timeout", str(err), float(timeout)
            return result
        except RunFailure as err:
            result.reason, result.detail = err.reason, err.detail
            return result
        if not self.settings.keep_files:
            _remove_scratch(rundir)
        result.status = "ok"
        result.scalars["e0"] = float(out.e0)
        result.arrays = {
            name: np.asarray(getattr(out, name), dtype=np.float64) for name in self.arrays
        }
        return result

    # --- dataset side -------------------------------------------------------------------

    @property
    def xanes_only(self) -> bool:
        """XANES runs write mu(E) only: no chi(k) signal or chi(k) features."""
        return self.settings.spectroscopy == "xanes"

    def check_features(self, features: Any) -> None:
        """Refuse feature settings this spectroscopy cannot feed (a config error)."""
        from mlxas.spectra.features import enabled_features
        from mlxas.spectra.input_names import EDGE_INPUTS

        if not self.xanes_only:
            return
        if not features["xanes"]["enabled"]:
            raise EngineError("feff.spectroscopy xanes: switch on features.xanes.enabled")
        chi_features = [f for f in enabled_features(features) if f not in EDGE_INPUTS]
        if chi_features:
            raise EngineError(
                f"feff.spectroscopy xanes computes no chi(k); switch off the chi(k) features "
                f"{chi_features} (features.chi_k, features.ft.enabled, features.wavelet)"
            )

    def check_item(self, result: ItemResult, features: Any) -> tuple[str, str] | None:
        k, chi = result.arrays.get("k", np.zeros(0)), result.arrays.get("chi", np.zeros(0))
        if not self.xanes_only and not (np.all(np.isfinite(chi)) and len(k) == len(chi) > 1):
            return "invalid_spectrum", "chi(k) in the chunk file is empty or not finite"
        if features["xanes"]["enabled"]:
            try:
                _edges([result], features)
            except ValueError as err:
                return "xanes_normalisation", f"mu(E) could not be normalised: {err}"
        return None

    def signal_names(self, features: Any) -> tuple[str, ...]:
        chi = () if self.xanes_only else ("chi",)
        return (*chi, *(_EDGE if features["xanes"]["enabled"] else ()))

    def featurize(self, results: Sequence[ItemResult], features: Any) -> dict[str, np.ndarray]:
        from mlxas.spectra.grids import interp_on_grid, k_grid

        self.check_features(features)
        k = k_grid(features["k_grid"])
        chi = np.zeros((len(results), len(k)), dtype=np.float64)
        signals: dict[str, np.ndarray] = {}
        if not self.xanes_only:
            for i, r in enumerate(results):
                chi[i] = interp_on_grid(r.arrays["k"], r.arrays["chi"], k)
            signals["chi"] = chi.astype(np.float32)
        if features["xanes"]["enabled"]:
            edge = _edges(results, features)
            signals.update({f"edge/{a}": getattr(edge, a) for a in ("mu", "norm", "e0")})
            signals["edge/edge_step"] = edge.edge_step
        feats = self._features(chi, signals, features) if len(results) else {}
        return {**signals, **feats}

    def featurize_signals(
        self, signals: Mapping[str, np.ndarray], features: Any
    ) -> dict[str, np.ndarray]:
        chi = signals["edge/mu"] if self.xanes_only else signals["chi"]
        return self._features(np.asarray(chi, dtype=np.float64), signals, features)

    def _features(self, chi: np.ndarray, signals: Mapping[str, np.ndarray], features: Any):
        from mlxas.spectra.features import compute_features, edge_features
        from mlxas.spectra.xanes import EdgeGrid

        edge = None
        if features["xanes"]["enabled"]:
            n = len(chi)
            e0 = signals.get("edge/e0", np.zeros(n))
            step = signals.get("edge/edge_step", np.ones(n))
            edge = EdgeGrid(signals["edge/mu"], signals["edge/norm"], e0, step)
        if self.xanes_only:  # ``chi`` holds no chi(k) here, only the number of items
            return edge_features(edge, features)
        return compute_features(chi, features, edge)

    def feature_axes(self, features: Any) -> dict[str, Sequence[Axis]]:
        from mlxas.spectra.features import enabled_features
        from mlxas.spectra.grids import (
            energy_grid,
            ft_r_grid,
            k_grid,
            wavelet_k_grid,
            wavelet_r_grid,
        )

        k = Axis("k", k_grid(features["k_grid"]), "1/Angstrom", "photoelectron wavenumber")
        axes: dict[str, Sequence[Axis]] = {} if self.xanes_only else {"chi": (k,)}
        xanes = features["xanes"]["enabled"]
        if xanes:
            e = Axis("energy", energy_grid(features["xanes"]), "eV", "energy relative to E0")
            axes.update({"edge/mu": (e,), "edge/norm": (e,), "edge/e0": (), "edge/edge_step": ()})
        for name in enabled_features(features):
            if name == "chi_k":
                axes[name] = (k,)
            elif name.startswith("ft_"):
                r = ft_r_grid(features["k_grid"], features["ft"])
                axes[name] = (Axis("ft_r", r, "Angstrom", "R of chi(R)"),)
            elif name.startswith("wavelet_"):
                w = features["wavelet"]
                axes[name] = (
                    Axis("wavelet_k", wavelet_k_grid(w), "1/Angstrom", "k axis of maps"),
                    Axis("wavelet_r", wavelet_r_grid(w), "Angstrom", "R axis of maps"),
                )
            elif name == "xanes_channels":
                channel = Axis(
                    "channel", np.arange(2.0), "", "0: normalised mu(E), 1: its derivative"
                )
                axes[name] = (Axis("energy", energy_grid(features["xanes"]), "eV", ""), channel)
            else:
                axes[name] = (Axis("energy", energy_grid(features["xanes"]), "eV", ""),)
        return axes

    def feature_units(self, features: Any) -> dict[str, str]:
        from mlxas.spectra.features import feature_units

        units = {"chi": "", "edge/mu": "", "edge/norm": "", "edge/e0": "eV", "edge/edge_step": ""}
        return {**units, **feature_units(features)}


def _edges(results: Sequence[ItemResult], features: Any):
    from mlxas.spectra.xanes import EdgeSpectrum, edge_on_grid

    spectra = [EdgeSpectrum(r.arrays["energy"], r.arrays["mu"], None, True) for r in results]
    return edge_on_grid(spectra, features["xanes"])


def _remove_scratch(rundir: Path) -> None:
    for p in rundir.iterdir():
        if p.name not in KEPT_FILES and not p.name.startswith("."):
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()


@register
class Feff8LEngine(FeffEngine):
    """FEFF8L from the xraylarch wheel (EXAFS)."""

    name = "feff8l"


@register
class Feff6LEngine(FeffEngine):
    """FEFF6L from the xraylarch wheel (EXAFS; paths summed by larch's ff2chi)."""

    name = "feff6l"


@register
class Feff10Engine(FeffEngine):
    """FEFF10 from the feff10-rs wheel (EXAFS and XANES)."""

    name = "feff10"
