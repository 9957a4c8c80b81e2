"""The models that ship with mlxas, and picking one for a measured file.

The bundled models folder (``models/`` at the repository root; ``--models DIR`` or
``$MLXAS_MODELS`` name another) holds one folder per experiment, each as the workflow
wrote the experiment's ``results/<experiment>/models/``: pointers ``<entry>.json`` and
the bound model folders they name, ``<entry>/<model id>/``.  A model is called
``<experiment>/<entry>`` (``foil_cu/ensemble``); the experiment's name alone means its default
model (the only one, else the experiment's ``evaluation.primary`` when
``config/experiments/<experiment>.yaml`` is at hand, else the first by name).

Listing reads the cards; loading for prediction verifies every file against its card
(:func:`mlxas.models.card.verify_model_dir`), so a damaged bundled model is refused
with the reason, never used.

Picking (:func:`pick_model`): the absorber and edge come from the file's header
(XDI ``Element.symbol``/``Element.edge``, Athena groups); without them, from E0 (larch's
``find_e0``, restated in :mod:`mlxas.spectra.xafsmath`) against each model's tabulated
edge energy.  Among the models for that edge, one whose k-range the data reach is
preferred, then the experiment's default, then the name.  A file that no model covers is
refused with the file and the reason.  Units: eV, Å⁻¹.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BundledModel",
    "Pick",
    "add_models_option",
    "bundled_dir",
    "find_model",
    "list_models",
    "pick_model",
]

#: Environment variable naming the bundled models folder.
MODELS_ENV = "MLXAS_MODELS"
#: The repository that holds this package (src layout: <root>/src/mlxas/predict/).
REPO_ROOT = Path(__file__).resolve().parents[3]


def add_models_option(parser, use: str = "") -> None:
    """``--models DIR`` (the bundled models folder) of ``mlxas predict|serve|models``;
    ``use`` says what the folder is for in that command."""
    parser.add_argument(
        "--models",
        metavar="DIR",
        help=f"bundled models folder{use} (default: ${MODELS_ENV}, else models/ of the "
        "mlxas repository)",
    )


def bundled_dir(override: str | Path | None = None) -> Path:
    """``override``, else ``$MLXAS_MODELS``, else ``models/`` at the repository root."""
    return Path(override or os.environ.get(MODELS_ENV) or REPO_ROOT / "models")


def missing_folder(override: str | Path | None = None) -> str | None:
    """Why the bundled models folder (see :func:`bundled_dir`) cannot be read: it does not
    exist or is not a folder; None when it is a folder (with or without models)."""
    root = bundled_dir(override)
    if root.is_dir():
        return None
    where = f" (from ${MODELS_ENV})" if not override and os.environ.get(MODELS_ENV) else ""
    what = "is not a folder" if root.exists() else "no such models folder"
    return f"{root}: {what}{where}"


@dataclass(frozen=True)
class BundledModel:
    """One model of the bundled folder: ``name`` (``<experiment>/<entry>``), its pointer
    and folder, the card as read (not yet verified) and ``error`` when it cannot be used."""

    name: str
    experiment: str
    entry: str
    pointer: Path
    folder: Path | None
    card: dict[str, Any] = field(default_factory=dict, repr=False)
    default: bool = False
    error: str = ""

    @property
    def absorber(self) -> str:
        return str(self.card.get("preprocessing", {}).get("absorber") or "")

    @property
    def edge(self) -> str:
        return str(self.card.get("preprocessing", {}).get("edge") or "")

    @property
    def covered(self) -> dict[str, float | None]:
        """Each absorber the model reads, with its tabulated edge energy (eV): the one of
        a single-absorber model, or every element of a multi-absorber one (the XANES
        geometry models read the K edges of Ti–Zn)."""
        from mlxas.predict.spec import card_absorbers

        pre = self.card.get("preprocessing", {})
        if not pre or not self.edge:
            return {}
        given = pre.get("edge_energies") or {}
        if self.absorber:
            given = {**given, self.absorber: self.edge_energy}
        return {a: given.get(a) or _tabulated_edge(a, self.edge) for a in card_absorbers(self.card)}

    @property
    def reads_edge(self) -> bool:
        """Whether the model reads mu(E) near the edge (XANES) rather than chi(k)."""
        from mlxas.spectra.input_names import reads_edge

        return reads_edge(self.card)

    @property
    def edge_energy(self) -> float | None:
        """Tabulated edge energy (eV): the card's, else xraydb's (older cards)."""
        e = self.card.get("preprocessing", {}).get("edge_energy")
        if e is None and self.absorber and self.edge:
            return _tabulated_edge(self.absorber, self.edge)
        return None if e is None else float(e)

    @property
    def model_id(self) -> str:
        return str(self.card.get("model_id") or (self.folder.name if self.folder else ""))

    @property
    def k_required(self) -> tuple[float, float] | None:
        from mlxas.predict.spec import required_k_range

        try:
            return required_k_range(self.card)
        except (KeyError, TypeError, ValueError):
            return None

    def size_bytes(self) -> int:
        if self.folder is None or not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


@functools.cache
def _tabulated_edge(absorber: str, edge: str) -> float | None:
    import xraydb

    try:
        return float(xraydb.xray_edge(absorber, edge).energy)
    except Exception:  # xraydb raises ValueError/KeyError for unknown edges
        return None


def _entry(exp_dir: Path, pointer: Path, default: bool) -> BundledModel:
    from mlxas.models.card import ModelLoadError, read_card, resolve_model_dir

    exp, entry = exp_dir.name, pointer.stem
    name = f"{exp}/{entry}"
    try:
        folder = resolve_model_dir(pointer)
        card = read_card(folder)
    except ModelLoadError as err:
        return BundledModel(name, exp, entry, pointer, None, {}, default, str(err))
    return BundledModel(name, exp, entry, pointer, folder, card, default)


def _primary_from_config(experiment: str) -> str | None:
    """``evaluation.primary`` of ``config/experiments/<experiment>.yaml``, if present."""
    path = REPO_ROOT / "config" / "experiments" / f"{experiment}.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        return ((yaml.safe_load(path.read_text()) or {}).get("evaluation") or {}).get("primary")
    except yaml.YAMLError:
        return None


def _pointers(exp_dir: Path) -> list[Path]:
    """The model pointers of an experiment folder; one that cannot be read as JSON is
    kept (its entry is then refused with the reason) rather than passed over unseen."""
    from mlxas.predict.model_facts import FACTS_SUFFIX

    out = []
    for p in sorted(exp_dir.glob("*.json")):
        if p.name.endswith(FACTS_SUFFIX):
            continue
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            out.append(p)
            continue
        if isinstance(data, dict) and "model_id" in data and "name" in data:
            out.append(p)
    return out


def list_models(root: str | Path | None = None) -> list[BundledModel]:
    """Every model of the bundled folder ``root`` (see :func:`bundled_dir`), by name."""
    root = bundled_dir(root)
    if not root.is_dir():
        return []
    models: list[BundledModel] = []
    for exp_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        pointers = _pointers(exp_dir)
        if not pointers:
            continue
        default = pointers[0].stem
        if len(pointers) > 1:
            primary = _primary_from_config(exp_dir.name)
            if primary and any(p.stem == primary for p in pointers):
                default = primary
        models += [_entry(exp_dir, p, p.stem == default) for p in pointers]
    return models


def find_model(name: str, root: str | Path | None = None) -> BundledModel:
    """The bundled model called ``name``: ``<experiment>/<entry>``, an experiment (its
    default model) or a model id (at least 6 leading hex digits)."""
    from mlxas.models.card import ModelLoadError

    if (missing := missing_folder(root)) is not None:
        raise ModelLoadError(missing)
    models = list_models(root)
    for m in models:
        if name in (m.name, m.pointer.name) or (name == m.experiment and m.default):
            return m
    by_id = [m for m in models if len(name) >= 6 and m.model_id.startswith(name)]
    if len(by_id) == 1:
        return by_id[0]
    known = ", ".join(m.name for m in models) or "none"
    raise ModelLoadError(f"{name}: no such bundled model in {bundled_dir(root)} (models: {known})")


# --- picking a model for a file ---------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """The model chosen for ``source`` (None: refused, ``reason`` says why) and how the
    edge was found (``how``: 'header' or 'E0')."""

    source: str
    model: BundledModel | None
    how: str = ""
    reason: str = ""
    #: Other models as good for the file's edge and k-range (several experiments for one
    #: edge, e.g. Ni metal and NiO): the one whose training spectra the file lies
    #: closest to (lowest OOD score) is used (:class:`mlxas.predict.auto.AutoPredictor`).
    alternatives: tuple[BundledModel, ...] = ()


def _edge_key(edge: str | None) -> str:
    e = (edge or "").strip().upper().replace("_", "").replace("-", "")
    return {"L": "L3", "M": "M5"}.get(e, e)


def _usable(models: list[BundledModel]) -> list[BundledModel]:
    return [m for m in models if not m.error and m.covered and m.edge]


def _covered(models: list[BundledModel]) -> str:
    return ", ".join(sorted({f"{a} {m.edge}" for m in models for a in m.covered})) or "none"


def _unusable(models: list[BundledModel]) -> str:
    """'; unusable: a, b (...)' naming the models that cannot be used, else ''."""
    bad = [m.name for m in models if m.error]
    return f"; unusable: {', '.join(bad)}, see mlxas models list" if bad else ""


def _rank(candidates: list[BundledModel], k_max: float) -> tuple[BundledModel, tuple]:
    """The first model by (reaches the file's k_max, reads chi(k) rather than the edge,
    is its experiment's default, name), and the other models that rank level with it but
    for the name.  A file with EXAFS goes to an EXAFS model of its edge when there is
    one (CN and R); a XANES model (geometry, oxidation state) takes the files that no
    EXAFS model can read, and is asked for by name otherwise.  An OOD score never
    decides between the two kinds: they answer different questions."""

    def key(m: BundledModel) -> tuple:
        k = m.k_required
        reaches = k is None or k_max >= k[1] - 1e-6
        return (not reaches, m.reads_edge, not m.default)

    ranked = sorted(candidates, key=lambda m: (*key(m), m.name))
    return ranked[0], tuple(m for m in ranked[1:] if key(m) == key(ranked[0]))


def pick_model(spectrum, models: list[BundledModel]) -> Pick:
    """The bundled model for one measured ``spectrum`` (:class:`Spectrum`), or a refusal."""
    import numpy as np

    from mlxas.spectra.edges import EDGE_TOLERANCE_EV
    from mlxas.spectra.xafsmath import ETOK, find_e0

    src = spectrum.source
    usable = _usable(models)
    if not usable:
        why = _unusable(models) or " (mlxas models list)"
        return Pick(src, None, reason=f"no usable bundled model{why}")
    try:
        e0 = float(find_e0(spectrum.energy, spectrum.mu))
    except Exception:  # a pathological spectrum: the header may still name the edge
        e0 = float("nan")
    k_max = float(np.sqrt(max(ETOK * (spectrum.energy[-1] - e0), 0.0))) if e0 == e0 else 0.0
    if spectrum.element:
        el, edge = spectrum.element.strip().capitalize(), _edge_key(spectrum.edge)
        cands = [
            m
            for m in usable
            if el.lower() in (a.lower() for a in m.covered)
            and (not edge or _edge_key(m.edge) == edge)
        ]
        if not cands:
            said = f"{el} {edge}".strip()
            covered = f"models for: {_covered(usable)}{_unusable(models)}"
            return Pick(src, None, reason=f"no bundled model for {said} ({covered})")
        best, others = _rank(cands, k_max)
        return Pick(src, best, "header", alternatives=others)
    if e0 != e0:
        return Pick(src, None, reason="no element in the header and no edge found (find_e0)")
    cands = [
        m
        for m in usable
        if any(e is not None and abs(e - e0) <= EDGE_TOLERANCE_EV for e in m.covered.values())
    ]
    if not cands:
        return Pick(src, None, reason=_no_model_at(e0, src, usable, _unusable(models)))
    best, others = _rank(cands, k_max)
    return Pick(src, best, "E0", alternatives=others)


def _no_model_at(e0: float, src: str, usable: list[BundledModel], unusable: str = "") -> str:
    from mlxas.spectra.edges import edge_from_energy
    from mlxas.spectra.measured import SpectrumError

    try:
        el, edge, _ = edge_from_energy(e0, src)
        seen = f"it looks like {el} {edge}"
    except SpectrumError as err:
        seen = err.reason
    return (
        f"no element in the header and no bundled model's edge within 50 eV of E0 = "
        f"{e0:.1f} eV ({seen}; models for: {_covered(usable)}{unusable})"
    )
