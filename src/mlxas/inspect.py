"""``mlxas dataset inspect PATH``: what a dataset holds, and plots of it.

Prints counts per split, the features with their shapes and units, label statistics and
the failure reasons; writes PNGs (matplotlib, Agg backend) of the CN and bond-length
distributions, as histograms per split, and of example spectra of each CN class.
Every array is read once first, so a damaged file is refused here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["inspect_dataset", "summary_lines", "write_plots"]

_MAX_EXAMPLES = 6


def summary_lines(ds) -> list[str]:
    """Text summary of an open :class:`mlxas.dataset.Dataset`."""
    from mlxas.dataset import SPLITS

    st = ds.settings
    a = ds.attrs
    lines = [
        f"{ds.path}",
        f"  schema {ds.schema_version}, mlxas {a.get('mlxas_version', '?')}, "
        f"created {a.get('created', '?')}, hash {ds.hash}",
        f"  absorber {a.get('absorber', '?')} {a.get('edge', '')}; "
        f"{int(a['n_sites'])} sites, {len(ds)} examples "
        f"(averaging k = {st['averaging']['k']}, within {st['averaging'].get('within', 'split')})",
        f"  split by {st['split']['group_by']}, seed {st['split']['seed']}, fractions "
        f"{st['split']['fractions']}: " + ", ".join(f"{s} {n}" for s, n in ds.sizes.items()),
        "  features:",
    ]
    for name in ds.feature_names():
        shape = ds.h5[f"examples/features/{name}"].shape[1:]
        axes = ", ".join(f"{ax} [{ds.unit(ax)}]" for ax in ds.axes(name))
        lines.append(f"    {name:<15s} {shape!s:<10s} on {axes}; unit {ds.unit(name) or '-'}")
    lines.append("  labels:")
    frame = ds.frame()
    for name in ds.label_names():
        values = ds.labels(name)
        if values.ndim > 1:
            axis = next(iter(ds.axes(name)), "its")
            lines.append(
                f"    {name:<15s} {values.shape[1]} points on the {axis} grid; "
                f"unit {ds.unit(name) or '-'}"
            )
            continue
        finite = values[np.isfinite(values)]
        lines.append(
            f"    {name:<15s} min {finite.min():.4g}  mean {finite.mean():.4g}  "
            f"max {finite.max():.4g}  std {finite.std():.3g}"
            if len(finite)
            else f"    {name:<15s} no finite values"
        )
    if "cn" in frame:
        lines.append("  CN classes (rounded) per split:")
        classes = np.rint(frame["cn"]).astype(int)
        for c in np.unique(classes):
            counts = [int(((classes == c) & (frame["split"] == s)).sum()) for s in SPLITS]
            per_split = ", ".join(f"{s} {n}" for s, n in zip(SPLITS, counts, strict=True))
            lines.append(f"    CN {c:>2d}: {per_split}")
    fail = ds.failures()
    lines.append(f"  failures: {len(fail)}")
    if len(fail):
        for (stage, reason), group in fail.groupby(["stage", "reason"]):
            example = group.iloc[0]
            who = example["site_id"] or example["source"]
            lines.append(
                f"    {stage}/{reason}: {len(group)} (e.g. {who}: {str(example['detail'])[:80]})"
            )
    return lines


def write_plots(ds, out_dir: Path) -> list[Path]:
    """Histograms of CN and R per split, and example spectra; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlxas.dataset import SPLITS

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = ds.frame()
    written = []
    for label, title, unit in (("cn", "coordination number", ""), ("r", "mean bond length", "Å")):
        if label not in frame:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        values = frame[label].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
        if label == "cn" and ds.settings["averaging"]["k"] == 1:
            bins = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.0, 1.0)  # one bar per CN
        else:
            pad = max(0.01 * abs(hi), 1e-3) if hi - lo < 1e-9 else 0.0
            bins = np.linspace(lo - pad, hi + pad, 41)
        data = [values[(frame["split"] == s).to_numpy() & np.isfinite(values)] for s in SPLITS]
        ax.hist(data, bins=bins, stacked=True, label=list(SPLITS))
        ax.set_xlabel(f"{title} ({unit})" if unit else title)
        ax.set_ylabel("examples")
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"{label}_histogram.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # Example spectra: one example of each CN class (up to six), every 1-D feature stored.
    rows = _example_rows(frame)
    panels = [n for n in ("chi_k", "ft_mag", "xanes", "mu") if n in ds.feature_names()]
    maps = [n for n in ds.feature_names() if n.startswith("wavelet_")]
    if not panels and not maps:  # no spectra (e.g. the reflections' amplitudes)
        return written
    fig, axes = plt.subplots(1, len(panels) + len(maps[:1]), figsize=(4.5 * (len(panels) + 1), 3.6))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, panels, strict=False):
        grid = ds.grid(name)
        values = ds.read(f"examples/features/{name}", np.asarray(rows))
        for i, row in enumerate(rows):
            ax.plot(grid, values[i], lw=1, label=f"CN {frame['cn'].iloc[row]:.3g}")
        ax.set_title(name)
        ax.set_xlabel(f"{next(iter(ds.axes(name)))} ({ds.unit(next(iter(ds.axes(name))))})")
    if len(panels):
        axes[0].legend(fontsize=7)
    if maps:
        ax = axes[len(panels)]
        name = maps[0]
        (kname, kax), (rname, rax) = ds.axes(name).items()
        m = ds.read(f"examples/features/{name}", slice(rows[-1], rows[-1] + 1))[0]
        ax.imshow(m.T, origin="lower", aspect="auto", extent=[kax[0], kax[-1], rax[0], rax[-1]])
        ax.set_title(f"{name}, CN {frame['cn'].iloc[rows[-1]]:.3g}")
        ax.set_xlabel(f"k ({ds.unit(kname)})")
        ax.set_ylabel(f"R ({ds.unit(rname)})")
    fig.tight_layout()
    path = out_dir / "example_spectra.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def _example_rows(frame) -> list[int]:
    if "cn" not in frame or not len(frame):
        return list(range(min(len(frame), _MAX_EXAMPLES)))
    classes = np.rint(frame["cn"].to_numpy(dtype=float))
    rows = []
    for c in np.unique(classes[np.isfinite(classes)]):
        rows.append(int(np.nonzero(classes == c)[0][0]))
    if len(rows) > _MAX_EXAMPLES:
        pick = np.linspace(0, len(rows) - 1, _MAX_EXAMPLES).round().astype(int)
        rows = [rows[i] for i in pick]
    return rows


def inspect_dataset(path: str | Path, plots: str | Path | None = None) -> int:
    """Print the summary of ``path`` and write its plots (default: ``<stem>_inspect/``)."""
    from mlxas.dataset import open as open_dataset

    path = Path(path)
    with open_dataset(path) as ds:
        ds.verify()
        for line in summary_lines(ds):
            print(line)
        out_dir = Path(plots) if plots else path.with_name(f"{path.stem}_inspect")
        for png in write_plots(ds, out_dir):
            print(f"  wrote {png}")
    return 0
