"""The ``shells`` label set: CN, R and sigma² of each configured shell, per neighbour element.

A *shell* is a distance window ``[r_min, r_max)`` (Å) around the absorber and, when
``element`` is given, one neighbour species::

    labels:
      sets: [shells]
      shells:
        windows:
          - {element: O, r: [1.6, 2.5]}     # NiO: s1_O, 6 O at a/2
          - {element: Ni, r: [2.5, 3.4]}    # s2_Ni, 12 Ni at a/√2

Shells are named ``s<k>_<El>``: ``k`` numbers the distinct distance windows in the order
given (1 = nearest; two elements in one window, e.g. the Cu and Ni neighbours of an
alloy's first shell, share k: ``s1_Cu``, ``s1_Ni``) and ``<El>`` is the neighbour
element (absent for a window of every element: ``s1``).  bcc Fe has two Fe shells,
``s1_Fe`` (8 at a√3/2) and ``s2_Fe`` (6 at a).  Windows are fixed in Å, like
``labels.coordination.cutoff``, so a thermal fluctuation moves a neighbour across a
boundary only where the radial distribution is (nearly) empty.  Columns, all model
targets, for a shell named ``s``:

``cn_s``
    number of neighbours in the window;
``r_s``
    their mean distance (Å; NaN when the shell is empty);
``sigma2_s``
    their mean-square relative displacement (Å²), computed the way the spectrum sees it:
    the variance of the shell's distances in this structure (static and snapshot
    disorder), plus, for a structure whose spectrum FEFF damps with its DEBYE card
    (``thermal: debye_card`` in its provenance, or ``temperature`` and
    ``debye_temperature`` given here), the mean correlated-Debye sigma² of its
    absorber–neighbour paths from larch's ``sigma2_correldebye`` (the routine FEFF
    uses) at the same T and θ.

The correlated Debye model needs FEFF's mean Norman radius; it is estimated as
``norman_scale`` (default 1) times the Wigner–Seitz radius of the crystal, (3V/4πN)^(1/3),
from the structure's ``volume_per_atom`` (or its periodic cell); ``norman_radius`` (Å)
overrides it.  For close-packed metals and rock salt the Wigner–Seitz radius is within
2 % of FEFF8L's value and the sigma² within 1.5 %; open structures have smaller Norman
radii (diamond Ge: 0.89 times; ``benchmarks/bench_sigma2_feff.py`` prints FEFF's), and
without ``norman_scale`` their sigma² labels come out up to 14 % low.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from ase import Atoms

from mlxas.errors import ConfigError
from mlxas.sites.labelsets import LabelColumns, LabelSet, register_label_set
from mlxas.sites.neighbours import neighbour_pairs

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BOHR",
    "Shell",
    "ShellError",
    "ShellLabels",
    "ShellSettings",
    "ShellWindow",
    "correlated_debye_sigma2",
    "pooled_shell_labels",
    "shell_labels",
    "shell_table",
]

#: Bohr radius in Å (FEFF's length unit for the Norman radius).
BOHR = 0.52917721
SIGMA2_MODES = ("auto", "geometry", "none")


class ShellError(ConfigError):
    """Shell settings that cannot be applied, or a structure they cannot label."""


@dataclass(frozen=True)
class Shell:
    """One shell: neighbours of ``element`` (any when None) with r_min <= d < r_max (Å)."""

    name: str
    r_min: float
    r_max: float
    element: str | None = None


@dataclass(frozen=True)
class ShellWindow:
    """One ``labels.shells.windows`` entry: ``r`` = [r_min, r_max) in Å and the neighbour
    ``element`` (None: every element)."""

    r: tuple[float, float]
    element: str | None = None


@dataclass(frozen=True)
class ShellSettings:
    """The ``labels.shells`` section (see the module docstring)."""

    windows: tuple[ShellWindow, ...]
    sigma2: str = "auto"  #: auto (geometry + DEBYE card), geometry, or none
    temperature: float | None = None  #: K, DEBYE T for structures without provenance
    debye_temperature: float | None = None  #: K, DEBYE θ for those
    norman_radius: float | None = None  #: Å; None: norman_scale x Wigner–Seitz radius
    norman_scale: float = 1.0  #: FEFF's Norman radius / the Wigner–Seitz radius

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> ShellSettings:
        """From ``{windows: [{element?, r: [r_min, r_max]}, ...], sigma2?, ...}``."""
        from ase.data import atomic_numbers

        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - {f.name for f in fields(cls)})
        if unknown:
            raise ShellError(f"labels.shells: unknown key(s) {unknown}")
        items = cfg.get("windows")
        if not isinstance(items, list | tuple) or not items:
            raise ShellError(
                "labels.shells.windows: give a non-empty list of {element, r: [r_min, r_max]}"
            )
        windows = []
        for k, item in enumerate(items):
            where = f"labels.shells.windows[{k}]"
            if not isinstance(item, Mapping) or set(item) - {"element", "r"}:
                raise ShellError(f"{where}: give {{element?, r: [r_min, r_max]}}")
            el = item.get("element")
            if el is not None and el not in atomic_numbers:
                raise ShellError(f"{where}: {el!r} is not an element symbol")
            r = item.get("r")
            if not (isinstance(r, list | tuple) and len(r) == 2) or not 0 <= r[0] < r[1]:
                raise ShellError(f"{where}: r must be [r_min, r_max] with 0 <= r_min < r_max (Å)")
            windows.append(ShellWindow((float(r[0]), float(r[1])), el))
        if len(set(windows)) != len(windows):
            raise ShellError("labels.shells.windows: the same window and element given twice")
        mode = cfg.get("sigma2", "auto")
        if mode not in SIGMA2_MODES:
            raise ShellError(f"labels.shells.sigma2: {mode!r}; choose {', '.join(SIGMA2_MODES)}")
        t, theta = cfg.get("temperature"), cfg.get("debye_temperature")
        if (t is None) != (theta is None):
            raise ShellError("labels.shells: give temperature and debye_temperature together (K)")
        rn, scale = cfg.get("norman_radius"), float(cfg.get("norman_scale", 1.0))
        if (rn is not None and float(rn) <= 0) or scale <= 0:
            raise ShellError("labels.shells: norman_radius and norman_scale must be > 0")
        return cls(
            tuple(windows),
            mode,
            None if t is None else float(t),
            None if theta is None else float(theta),
            None if rn is None else float(rn),
            scale,
        )

    @property
    def shells(self) -> tuple[Shell, ...]:
        """The named shells: ``s<k>_<El>``, k counting the distinct distance windows in
        the order given (two elements in one window share k), ``_<El>`` absent for a
        window of every element."""
        numbers: dict[tuple[float, float], int] = {}
        out = []
        for w in self.windows:
            k = numbers.setdefault(w.r, len(numbers) + 1)
            out.append(Shell(f"s{k}" + (f"_{w.element}" if w.element else ""), *w.r, w.element))
        return tuple(out)

    def columns(self) -> list[str]:
        """Column names, three per shell (two with ``sigma2: none``)."""
        keys = ("cn", "r") if self.sigma2 == "none" else ("cn", "r", "sigma2")
        return [f"{key}_{s.name}" for s in self.shells for key in keys]


@lru_cache(maxsize=4096)
def _correlated(d: float, t: float, theta: float, rs_bohr: float, m1: float, m2: float) -> float:
    from larch.xafs.sigma2_models import sigma2_correldebye

    return float(
        sigma2_correldebye(2, t, theta, rs_bohr, [0.0, d], [0.0, 0.0], [0.0, 0.0], [m1, m2])
    )


def correlated_debye_sigma2(
    distance: float, temperature: float, theta: float, norman_radius: float, m1: float, m2: float
) -> float:
    """sigma² (Å²) of one single-scattering path in the correlated Debye model.

    ``distance`` in Å, T and θ in K, ``norman_radius`` in Å (FEFF's mean Norman radius),
    masses in amu.  Calls larch's ``sigma2_correldebye`` (FEFF's own routine), which
    takes the radius in bohr; rounding the distance to 1e-4 Å lets ideal shells share
    one call.
    """
    return _correlated(
        round(float(distance), 4),
        float(temperature),
        float(theta),
        round(float(norman_radius) / BOHR, 6),
        round(float(m1), 4),
        round(float(m2), 4),
    )


def _debye_parameters(atoms: Atoms, settings: ShellSettings) -> tuple[float, float, float] | None:
    """(T, θ, Norman radius in Å) when a DEBYE card damps this structure's spectrum."""
    info = atoms.info
    if settings.sigma2 != "auto":
        return None
    if info.get("thermal") == "debye_card":
        t, theta = float(info["temperature"]), float(info["debye_temperature"])
    elif settings.temperature is not None and info.get("thermal") in (None, "", "static"):
        t, theta = settings.temperature, settings.debye_temperature
    else:
        return None
    if settings.norman_radius is not None:
        return t, theta, settings.norman_radius
    vpa = info.get("volume_per_atom")
    if vpa is None and np.all(atoms.pbc):
        vpa = atoms.cell.volume / len(atoms)
    if vpa is None:
        raise ShellError(
            "sigma2 from the DEBYE card needs the crystal's volume per atom (the "
            "structure's volume_per_atom) or labels.norman_radius for a cluster"
        )
    r_ws = (3.0 * float(vpa) / (4.0 * np.pi)) ** (1.0 / 3.0)
    return t, theta, float(settings.norman_scale * r_ws)


def shell_table(
    atoms: Atoms, indices: Sequence[int], settings: ShellSettings
) -> dict[str, np.ndarray]:
    """Shell labels of the absorbing atoms ``indices`` of one structure (one row each)."""
    idx = np.asarray(indices, dtype=np.int64)
    r_max = max(s.r_max for s in settings.shells)
    i, j, d = neighbour_pairs(atoms, r_max, idx)
    slot = np.full(len(atoms), -1)
    slot[idx] = np.arange(len(idx))
    symbols = np.array(atoms.get_chemical_symbols())
    masses = atoms.get_masses()
    debye = _debye_parameters(atoms, settings)
    out: dict[str, np.ndarray] = {}
    for shell in settings.shells:
        mask = (d >= shell.r_min) & (d < shell.r_max)
        if shell.element is not None:
            mask &= symbols[j] == shell.element
        s, dd = slot[i[mask]], d[mask]
        cn = np.bincount(s, minlength=len(idx)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.bincount(s, weights=dd, minlength=len(idx)) / cn
            out[f"cn_{shell.name}"], out[f"r_{shell.name}"] = cn, r
            if settings.sigma2 == "none":
                continue
            var = np.bincount(s, weights=(dd - r[s]) ** 2, minlength=len(idx)) / cn
            if debye is not None:
                t, theta, rn = debye
                per_pair = np.array(
                    [
                        correlated_debye_sigma2(x, t, theta, rn, masses[a], masses[b])
                        for x, a, b in zip(dd, i[mask], j[mask], strict=True)
                    ]
                )
                var = var + np.bincount(s, weights=per_pair, minlength=len(idx)) / cn
        out[f"sigma2_{shell.name}"] = var
    return out


def shell_labels(atoms: Atoms, site_index: int, settings: ShellSettings) -> dict[str, float]:
    """Shell labels of one absorbing atom: ``{column: value}`` (the label-set function)."""
    return {k: float(v[0]) for k, v in shell_table(atoms, [site_index], settings).items()}


def pooled_shell_labels(
    frames: Sequence[Atoms], site_index: int, settings: ShellSettings
) -> dict[str, float]:
    """Shell labels of one atom pooled over thermal snapshots (same atom order in each).

    CN is the mean count per frame, R the mean of all the frames' distances and sigma²
    their variance: the MSRD seen by the average of the snapshots' spectra.
    """
    pooled: dict[str, list[np.ndarray]] = {s.name: [] for s in settings.shells}
    r_max = max(s.r_max for s in settings.shells)
    for atoms in frames:
        _i, j, d = neighbour_pairs(atoms, r_max, np.array([site_index]))
        symbols = np.array(atoms.get_chemical_symbols())
        for shell in settings.shells:
            mask = (d >= shell.r_min) & (d < shell.r_max)
            if shell.element is not None:
                mask &= symbols[j] == shell.element
            pooled[shell.name].append(d[mask])
    out: dict[str, float] = {}
    for shell in settings.shells:
        dd = np.concatenate(pooled[shell.name])
        out[f"cn_{shell.name}"] = len(dd) / len(frames)
        out[f"r_{shell.name}"] = float(dd.mean()) if len(dd) else float("nan")
        if settings.sigma2 != "none":
            out[f"sigma2_{shell.name}"] = float(dd.var()) if len(dd) else float("nan")
    return out


@register_label_set
class ShellLabels(LabelSet):
    """CN, R and sigma² per configured shell and neighbour element of absorbing sites."""

    name = "shells"
    units: ClassVar[tuple[str, ...]] = ("site",)
    settings_class: ClassVar[type] = ShellSettings

    @classmethod
    def settings_from_config(cls, section: Mapping[str, Any] | None) -> ShellSettings:
        return ShellSettings.from_config(section)

    def provides(self, target: str) -> bool:
        return target in self.settings.columns()

    def compute(
        self, images: Sequence[Atoms], items: pd.DataFrame, absorber: str | None
    ) -> LabelColumns:
        settings: ShellSettings = self.settings
        by_id = {str(a.info["structure_id"]): a for a in images}
        columns = settings.columns()
        values = {c: np.full(len(items), np.nan) for c in columns}
        sid = items["structure_id"].astype(str).to_numpy()
        index = items["site_index"].to_numpy(dtype=np.int64)
        for structure in dict.fromkeys(sid):
            rows = np.flatnonzero(sid == structure)
            table = shell_table(by_id[structure], index[rows], settings)
            for c in columns:
                values[c][rows] = table[c]
        units = {c: "Angstrom" if c.startswith("r_") else "Angstrom^2" for c in columns
                 if not c.startswith("cn_")}  # fmt: skip
        windows = [
            {"shell": s.name, "element": s.element, "r": [s.r_min, s.r_max]}
            for s in settings.shells
        ]
        return LabelColumns(values=values, units=units, targets=tuple(columns),
                            info={"windows": windows, "sigma2": settings.sigma2})  # fmt: skip
