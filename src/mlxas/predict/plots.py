"""Pictures of predictions: what the model saw for one spectrum, and a series of them.

One spectrum (:func:`plot_spectrum`): mu(E) with larch's pre-edge line and post-edge
curve, E0 and the edge step; k^w·chi(k) and |chi(R)| drawn over the band of the training
spectra (``training_band.json``, :mod:`mlxas.predict.band`), or, for a model that reads
mu(E) near the edge (XANES), the normalised edge it read with its derivative and the
class probabilities; the prediction with its uncertainty.  A spectrum flagged out of
distribution gets a red frame and title.

A series (:func:`plot_series`): one picture per target against the file order or a header
field (``--x-axis temperature``), with the ensemble spread as error bars and the OOD
points marked.

The spectra are processed again for the pictures with the prediction's E0 (batched
pre-edge and AUTOBK of :mod:`mlxas.spectra.background`: larch's answer), so the curves are
the ones the model's input was made from.  matplotlib draws on its Agg canvas (no display,
no pyplot state).  Units: energy in eV, k in Å⁻¹, R in Å.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlxas.predict.band import TrainBand, chi_views
from mlxas.predict.spec import ProcessSpec, Result
from mlxas.spectra.measured import SeriesReader, Spectrum
from mlxas.spectra.measured.spectrum import COMMENT_CHARS

__all__ = [
    "SpectrumDetail",
    "header_fields",
    "header_value",
    "plot_series",
    "plot_spectrum",
    "spectrum_details",
]

OOD_COLOR = "#c62828"
UNITS = {"cn": "", "r": "Å"}
LABELS = {"cn": "CN", "r": "R"}


@dataclass
class SpectrumDetail:
    """The curves behind one prediction."""

    source: str
    energy: np.ndarray
    mu: np.ndarray
    pre_edge: np.ndarray
    post_edge: np.ndarray
    e0: float
    edge_step: float
    k: np.ndarray
    chi_k: np.ndarray  # k^w·chi(k) on the model's k grid (empty for mu(E) models)
    r: np.ndarray
    chir_mag: np.ndarray
    #: mu(E) models: E − E0 (eV) and the normalised mu(E) the model read on it.
    edge_grid: np.ndarray | None = None
    edge_norm: np.ndarray | None = None


def _read_all(paths: list[str], spec: ProcessSpec) -> dict[str, Spectrum]:
    reader = SeriesReader(spec.mu_label, spec.energy_label, spec.repair)
    out: dict[str, Spectrum] = {}
    for p in dict.fromkeys(paths):
        for s in reader.read(p):
            out[s.source] = s
    return out


def spectrum_details(results: Sequence[Result], spec: ProcessSpec) -> dict[str, SpectrumDetail]:
    """Curves of the accepted spectra among ``results`` (by source), recomputed with each
    result's E0 and the model's feature settings."""
    from mlxas.spectra.background import operator_for, pre_edge_batch
    from mlxas.spectra.grids import interp_on_grid, k_grid
    from mlxas.spectra.xanes import pre_edge_kwargs

    ok = [r for r in results if r.status == "ok"]
    spectra = _read_all([r.source.split("#", 1)[0] for r in ok], spec)
    groups: dict[tuple[bytes, float], list[Result]] = {}
    for r in ok:
        groups.setdefault((spectra[r.source].energy.tobytes(), r.e0), []).append(r)
    kq = k_grid(spec.features["k_grid"])
    out: dict[str, SpectrumDetail] = {}
    for (_, e0), rs in groups.items():
        energy = spectra[rs[0].source].energy
        mu = np.stack([spectra[r.source].mu for r in rs])
        # A mu(E) model's lines are those of its own normalisation (features.xanes).
        kws = pre_edge_kwargs(spec.features["xanes"]) if spec.edge_input else {}
        pre = pre_edge_batch(energy, mu, e0, **kws)
        if spec.edge_input:  # a mu(E) model: its picture shows the edge it read, no chi(k)
            none = np.empty(0)
            k, rr, chik, mag = none, none, [none] * len(rs), [none] * len(rs)
        else:
            op = operator_for(energy, e0, spec.background)
            chi = op.apply(mu, pre.edge_step)
            chi = np.stack([interp_on_grid(op.k, row, kq) for row in chi])
            k, chik, rr, mag = chi_views(chi, spec.features)
        pre_lines, post_lines = pre.pre_edge, pre.post_edge
        for j, r in enumerate(rs):
            out[r.source] = SpectrumDetail(
                r.source, energy, mu[j], pre_lines[j], post_lines[j], float(e0),
                float(pre.edge_step[j]), k, chik[j], rr, mag[j],
            )  # fmt: skip
            if spec.edge_input and r.edge_norm is not None:
                from mlxas.spectra.grids import energy_grid

                out[r.source].edge_grid = energy_grid(spec.features["xanes"])
                out[r.source].edge_norm = r.edge_norm
    return out


# --- header fields ------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def header_fields(path: str | Path) -> dict[str, str]:
    """``key: value`` (or ``key = value``) lines of a text file's comment header, keys in
    lower case; an XDI ``Family.field`` is also found as ``field`` when unambiguous."""
    out: dict[str, str] = {}
    short: dict[str, list[str]] = {}
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            s = line.strip()
            if not s or s[0] not in COMMENT_CHARS:
                break
            s = s.lstrip(COMMENT_CHARS).strip()
            m = re.match(r"^([\w.\-]+)\s*[:=]\s*(.*)$", s)
            if m:
                key = m.group(1).lower()
                out[key] = m.group(2).strip()
                if "." in key:
                    short.setdefault(key.split(".", 1)[1], []).append(key)
    for name, keys in short.items():
        if name not in out and len(keys) == 1:
            out[name] = out[keys[0]]
    return out


def header_value(path: str | Path, field: str) -> tuple[float | dt.datetime, str] | None:
    """(value, unit) of header ``field`` of ``path``: the first number and the word after
    it (``300 K`` → 300.0, "K"), or an ISO date-time; None when absent or not a value."""
    if "#" in str(path):
        path = str(path).split("#", 1)[0]
    try:
        text = header_fields(path).get(field.lower())
    except OSError:
        return None
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.strip()), ""
    except ValueError:
        pass
    m = _NUMBER.search(text)
    if not m:
        return None
    unit = text[m.end() :].strip().split(" ")[0] if text[m.end() :].strip() else ""
    return float(m.group(0)), unit


# --- figures ------------------------------------------------------------------------------


def _figure(width: float, height: float, layout: str | None = "constrained"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _pm(value: float, std: float | None, digits: int) -> str:
    if std is None or not math.isfinite(std):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {std:.{digits}f}"


def _band(ax, x: np.ndarray, band: np.ndarray, levels: TrainBand, label: str) -> None:
    lo, q1, med, q3, hi = (band[levels.level(q)] for q in (0.05, 0.25, 0.5, 0.75, 0.95))
    ax.fill_between(x, lo, hi, color="#90caf9", alpha=0.5, lw=0, label=f"{label} 5–95 %")
    ax.fill_between(x, q1, q3, color="#42a5f5", alpha=0.5, lw=0, label=f"{label} 25–75 %")
    ax.plot(x, med, color="#1565c0", lw=0.8, label=f"{label} median")


def _prediction_text(result: Result, targets: Sequence[str], meta: dict) -> list[str]:
    lines = []
    for key, probs in result.values.items():  # class targets: the class and its probability
        if key.endswith("_probabilities") and isinstance(probs, dict):
            t = key[: -len("_probabilities")]
            best = result.values.get(t)
            lines.append(f"{t}: {best} (p = {probs.get(best, math.nan):.2f})")
    for t in targets:
        v = result.values.get(t)
        if isinstance(v, float):
            digits = 3 if t == "r" else 2
            unit = UNITS.get(t, "")
            lines.append(
                f"{LABELS.get(t, t)} = {_pm(v, result.values.get(f'{t}_std'), digits)} {unit}"
            )
    ood = result.values.get("ood")
    if ood is None:
        lines.append("OOD: not available")
    else:
        score = result.values.get("ood_score", math.nan)
        lines.append(f"OOD: {'YES' if ood else 'no'} (score {score:.2f}; > 1 is out)")
    lines += [
        "",
        f"model {meta.get('name', '?')} ({meta.get('model_id', '?')})",
        f"E0 = {result.e0:.1f} eV, edge step = {result.edge_step:.3g}",
        f"data to k = {result.k_max:.2f} 1/Å; background {result.background}",
    ]
    notes = [textwrap.fill(f"note: {n}", 58, subsequent_indent="  ") for n in result.notes]
    return lines + notes


def plot_spectrum(
    detail: SpectrumDetail,
    result: Result,
    band: TrainBand | None,
    targets: Sequence[str],
    meta: dict,
    k_range: tuple[float, float] | None = None,
) -> bytes:
    """PNG of one spectrum and its prediction (2 × 2 panels)."""
    # A fixed layout: the text panel's long notes must not squeeze the plots.
    fig = _figure(11.0, 8.0, layout=None)
    (ax_mu, ax_k), (ax_r, ax_p) = fig.subplots(2, 2)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.07, hspace=0.32, wspace=0.22)
    ood = bool(result.values.get("ood"))
    d = detail
    ax_mu.plot(d.energy, d.mu, color="k", lw=1, label="mu(E)")
    ax_mu.plot(d.energy, d.pre_edge, "--", color="#1e88e5", lw=1, label="pre-edge line")
    ax_mu.plot(d.energy, d.post_edge, "--", color="#43a047", lw=1, label="post-edge curve")
    ax_mu.axvline(d.e0, color="0.4", ls=":", lw=1, label=f"E0 = {d.e0:.1f} eV")
    i0 = int(np.abs(d.energy - d.e0).argmin())
    ax_mu.annotate(
        "", (d.e0, d.post_edge[i0]), (d.e0, d.pre_edge[i0]),
        arrowprops={"arrowstyle": "<->", "color": "#e65100"},
    )  # fmt: skip
    ax_mu.text(d.e0, (d.pre_edge[i0] + d.post_edge[i0]) / 2, f"  step {d.edge_step:.3g}",
               color="#e65100", va="center")  # fmt: skip
    ax_mu.set(xlabel="energy (eV)", ylabel=r"$\mu(E)$",
              title=r"$\mu(E)$, pre-/post-edge lines, $E_0$, edge step")  # fmt: skip
    ax_mu.legend(fontsize=7, loc="lower right")

    if d.edge_norm is not None:  # a mu(E) model: what it read, and its class probabilities
        _edge_panels(ax_k, ax_r, d, result)
        lo, hi = d.e0 + 2 * d.edge_grid[0], d.e0 + 2 * d.edge_grid[-1]
        seen = (d.energy >= lo) & (d.energy <= hi)
        if seen.any():  # zoom on the edge region the model reads
            curves = np.concatenate([c[seen] for c in (d.mu, d.pre_edge, d.post_edge)])
            pad = 0.05 * float(np.ptp(curves))
            ax_mu.set(xlim=(lo, hi), ylim=(curves.min() - pad, curves.max() + pad))
    else:
        _chi_panels(ax_k, ax_r, d, band, meta, k_range)

    ax_p.axis("off")
    color = OOD_COLOR if ood else "k"
    ax_p.text(0.02, 0.98, "\n".join(_prediction_text(result, targets, meta)),
              va="top", ha="left", family="monospace", fontsize=10, color=color,
              transform=ax_p.transAxes)  # fmt: skip
    title = result.source
    if ood:
        title += "\nOUT OF DISTRIBUTION: the model has seen nothing like it; do not trust"
        fig.patch.set_edgecolor(OOD_COLOR)
        fig.patch.set_linewidth(8)
    fig.suptitle(title, color=color, fontsize=11)
    return _png(fig)


def _edge_panels(ax_e, ax_c, d: SpectrumDetail, result: Result) -> None:
    """The normalised mu(E) a XANES model read, with its derivative; the probability of
    each class of each class target."""
    x, y = d.edge_grid, d.edge_norm
    ax_e.plot(x, y, color="k", lw=1, label="normalised mu(E)")
    deriv = np.gradient(y, x)
    scale = 0.5 / max(float(np.abs(deriv).max()), 1e-12)  # drawn in the same axes
    ax_e.plot(x, deriv * scale, color="#8e24aa", lw=0.8,
              label=f"derivative × {scale:.3g} eV")  # fmt: skip
    ax_e.axvline(0.0, color="0.4", ls=":", lw=1)
    ax_e.set(xlabel=r"$E - E_0$ (eV)", ylabel="normalised mu(E)",
             title="the edge the model reads (its E − E0 grid)")  # fmt: skip
    ax_e.legend(fontsize=7, loc="lower right")
    probs = {k[: -len("_probabilities")]: v for k, v in result.values.items()
             if k.endswith("_probabilities") and isinstance(v, dict)}  # fmt: skip
    if not probs:
        ax_c.axis("off")
        return
    names, heights, colors = [], [], []
    for t, p in probs.items():
        for cls, v in p.items():
            names.append(f"{cls}" if len(probs) == 1 else f"{t}: {cls}")
            heights.append(float(v))
            colors.append("#1565c0" if cls == result.values.get(t) else "#90caf9")
    rows = np.arange(len(names))[::-1]
    ax_c.barh(rows, heights, color=colors)
    for row, name, h in zip(rows, names, heights, strict=True):  # names inside the axes
        ax_c.text(0.01, row, f"{name}  {h:.2f}", va="center", fontsize=8)
    ax_c.set(xlim=(0, 1), xlabel="probability", title="class probabilities", yticks=[])


def _chi_panels(ax_k, ax_r, d: SpectrumDetail, band, meta: dict, k_range) -> None:
    """k^w·chi(k) and |chi(R)| of an EXAFS model's input, over the training band."""
    w = meta.get("kweight", band.kweight if band else "w")
    if band is not None:
        _band(ax_k, band.k, band.chi_k, band, "training")
        _band(ax_r, band.r, band.chir_mag, band, "training")
    ax_k.plot(d.k, d.chi_k, color="k", lw=1, label="this spectrum")
    if k_range is not None:
        ax_k.axvspan(*k_range, color="0.9", zorder=-1, label="k-range the model reads")
    ax_k.set(xlabel="k (1/Å)", ylabel=rf"$k^{{{w}}}\chi(k)$ (Å$^{{-{w}}}$)",
             title=rf"$k^{{{w}}}\chi(k)$ on the model's k grid")  # fmt: skip
    ax_k.legend(fontsize=7, loc="lower left", ncols=2)
    ax_r.plot(d.r, d.chir_mag, color="k", lw=1, label="this spectrum")
    ax_r.set(xlabel="R (Å)", ylabel=r"$|\chi(R)|$", title=r"$|\chi(R)|$ over the training spectra")
    if band is None:
        ax_r.set_title(r"$|\chi(R)|$ (the model has no training band)")
    ax_r.legend(fontsize=7, loc="upper right")


def plot_series(
    results: Sequence[Result],
    target: str,
    x: Sequence[float | dt.datetime] | None = None,
    x_label: str = "file (order of arrival)",
    note: str = "",
) -> bytes:
    """PNG of ``target`` for the accepted ``results`` against file order (or ``x``, one
    value per result), with error bars and the OOD points marked."""
    fig = _figure(9.0, 4.8)
    ax = fig.subplots()
    pts = [
        (i, r) for i, r in enumerate(results)
        if r.status == "ok" and isinstance(r.values.get(target), float)
        and (x is None or x[i] is not None)
    ]  # fmt: skip
    xs = [(i + 1 if x is None else x[i]) for i, _ in pts]
    ys = np.array([r.values[target] for _, r in pts], dtype=float)
    err = np.array([r.values.get(f"{target}_std") or np.nan for _, r in pts], dtype=float)
    # dtype=bool: an empty series (no spectrum yet has the --x-axis field, or every one
    # was refused) must still be a boolean mask, not an empty float array.
    ood = np.array([bool(r.values.get("ood")) for _, r in pts], dtype=bool)
    has_err = bool(np.isfinite(err).any())
    for sel, color, label in ((~ood, "#1565c0", "in distribution"), (ood, OOD_COLOR, "OOD")):
        if not sel.any():
            continue
        xsel = [v for v, s in zip(xs, sel, strict=True) if s]
        ax.errorbar(
            xsel, ys[sel], yerr=err[sel] if has_err else None, fmt="o" if label != "OOD" else "X",
            color=color, ms=6, capsize=3, lw=1, label=label + (" (± ensemble spread)" * has_err),
        )  # fmt: skip
    if len(ys):
        # Absolute tick labels; a flat series keeps a readable span (0.1 % of its value).
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        mid, half = float(np.mean(ys)), 5e-4 * max(float(np.abs(ys).max()), 1e-12)
        lo, hi = (
            float(np.nanmin(ys - np.nan_to_num(err))),
            float(np.nanmax(ys + np.nan_to_num(err))),
        )
        if hi - lo < 2 * half:
            ax.set_ylim(mid - 2 * half, mid + 2 * half)
    unit = UNITS.get(target, "")
    ax.set(xlabel=x_label, ylabel=f"{LABELS.get(target, target)}" + (f" ({unit})" if unit else ""))
    refused = sum(r.status != "ok" for r in results)
    ax.set_title(
        f"{LABELS.get(target, target)}: {len(pts)} spectra"
        + (f", {int(ood.sum())} out of distribution" if ood.any() else "")
        + (f", {refused} refused" if refused else "")
        + (f"; {note}" if note else "")
    )
    if pts:
        ax.legend(fontsize=8)
    else:  # say why the picture is empty rather than leave blank axes
        ok = any(r.status == "ok" for r in results)
        why = "no accepted spectrum" if not ok else "no spectrum has a value to draw"
        if ok and x is not None:
            why = f"no spectrum has the field for the x axis ({x_label})"
        ax.text(0.5, 0.5, f"nothing to show: {why}", ha="center", va="center",
                transform=ax.transAxes, color="0.4")  # fmt: skip
    ax.grid(alpha=0.3)
    return _png(fig)
