"""``mlxas predict --plot DIR``: pictures and a self-contained HTML page, kept up to date.

:class:`PlotWriter` receives every batch of results (once for a list of files, after each
batch in ``--watch`` mode) and writes into ``DIR``:

- ``<file>.png`` per accepted spectrum (:func:`mlxas.predict.plots.plot_spectrum`);
- ``series_<target>.png`` per scalar target, all spectra so far against the file order
  or a header field (``--x-axis``);
- ``index.html``: the series pictures and the latest spectrum embedded as data URIs, and
  a table of the results; in watch mode it reloads itself every few seconds.

Every file is written under a temporary name and renamed, so a browser or a copy never
sees half a file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from mlxas.predict.spec import Result

__all__ = ["PlotWriter", "add_arguments", "atomic_write"]

#: Rows of the HTML table; more results are summarised (the full list is in --out).
MAX_ROWS = 1000
REFRESH_S = 5


def add_arguments(group) -> None:
    """``--plot`` and ``--x-axis`` of ``mlxas predict``."""
    group.add_argument(
        "--plot",
        metavar="DIR",
        help="write pictures to DIR: per spectrum mu(E), k^w chi(k) and |chi(R)| over the "
        "training spectra with the prediction; series_<target>.png; index.html (with "
        "--watch: rewritten as files arrive, reloading itself)",
    )
    group.add_argument(
        "--x-axis",
        metavar="FIELD",
        help="with --plot: header field for the x axis of the series (e.g. temperature or "
        "Sample.temperature); default: the order of the files",
    )


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _slug(source: str) -> str:
    path, _, group = source.partition("#")
    name = Path(path).stem + (f"_{group}" if group else "")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "spectrum"


class PlotWriter:
    """Pictures of the results of one :class:`~mlxas.predict.predictor.Predictor`."""

    def __init__(
        self,
        directory: str | Path,
        predictor,
        x_axis: str | None = None,
        watch: bool = False,
        warn: Callable[[str], None] | None = None,
    ):
        from mlxas.predict.band import band_from_card

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spec = predictor.spec
        self.card = predictor.card
        self.targets = [
            t
            for t in predictor.targets
            if t in ("cn", "r", "oxidation_state") or t.startswith("cn_")
        ]
        self.band = band_from_card(predictor.card)
        self.meta = {
            "name": self.card.get("name"),
            "model_id": self.card.get("model_id"),
            "kweight": self.spec.features.get("kweight"),
        }
        self.x_axis = x_axis
        self.refresh = REFRESH_S if watch else None
        self.warn = warn or (lambda msg: None)
        self.results: list[Result] = []
        self.x: list = []
        self.unit = ""
        self.images: dict[str, str] = {}  # source -> PNG file name
        self.latest: bytes | None = None
        if self.band is None:
            self.warn("the model has no chi(k) training band: pictures show no band")

    # --- per batch ----------------------------------------------------------------------

    def update(self, results: Sequence[Result]) -> None:
        """Pictures of the new results, then the series and the page again."""
        from mlxas.predict.plots import header_value, plot_spectrum, spectrum_details

        results = list(results)
        try:
            details = spectrum_details(results, self.spec)
        except Exception as err:  # a file changed or vanished since it was predicted
            self.warn(f"no pictures for this batch ({type(err).__name__}: {err})")
            details = {}
        for r in results:
            self.results.append(r)
            self.x.append(self._x_value(r, header_value))
            if r.source not in details:
                continue
            png = plot_spectrum(
                details[r.source], r, self.band, self.targets, self.meta, self.spec.k_required
            )
            name = self._image_name(r.source)
            atomic_write(self.dir / name, png)
            self.latest = png
        self._write_series()
        self.write_page()

    def _x_value(self, r: Result, header_value):
        if not self.x_axis or r.status != "ok":
            return None
        got = header_value(r.source, self.x_axis)
        if got is None:
            self.warn(f"{r.source}: no header field '{self.x_axis}'; left out of the series")
            return None
        value, unit = got
        self.unit = self.unit or unit
        return value

    def _image_name(self, source: str) -> str:
        if source in self.images:
            return self.images[source]
        base, n = _slug(source), 1
        taken = set(self.images.values())
        name = f"{base}.png"
        while name in taken or name.startswith("series_") or name == "index.html":
            n += 1
            name = f"{base}_{n}.png"
        self.images[source] = name
        return name

    def _write_series(self) -> None:
        from mlxas.predict.plots import plot_series

        x = self.x if self.x_axis else None
        label = "file (order of arrival)"
        note = ""
        if self.x_axis:
            label = self.x_axis + (f" ({self.unit})" if self.unit else "")
            pairs = zip(self.results, self.x, strict=True)
            missing = sum(r.status == "ok" and v is None for r, v in pairs)
            note = f"{missing} without '{self.x_axis}' not shown" if missing else ""
        for t in self.targets:
            atomic_write(self.dir / f"series_{t}.png", plot_series(self.results, t, x, label, note))

    # --- the page -----------------------------------------------------------------------

    def write_page(self) -> Path:
        """Write ``index.html`` (self-contained: pictures as data URIs)."""
        path = self.dir / "index.html"
        atomic_write(path, self._html().encode("utf-8"))
        return path

    def _img(self, png: bytes, ident: str, alt: str) -> str:
        data = base64.b64encode(png).decode("ascii")
        return f'<img id="{ident}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    def _row(self, i: int, r: Result) -> str:
        v = r.values
        cls = "refused" if r.status != "ok" else ("ood" if v.get("ood") else "ok")

        def pm(t: str, digits: int) -> str:
            if not isinstance(v.get(t), float):
                return ""
            s = v.get(f"{t}_std")
            return f"{v[t]:.{digits}f}" + (f" ± {s:.{digits}f}" if isinstance(s, float) else "")

        ood = "" if v.get("ood") is None else ("YES" if v["ood"] else "no")
        if ood:
            ood += f" ({v.get('ood_score', float('nan')):.2f})"
        text = r.reason if r.status != "ok" else "; ".join(r.notes)
        img = self.images.get(r.source)
        link = f'<a href="{html.escape(img)}">png</a>' if img else ""
        cells = [str(i + 1), r.source, r.status, pm("cn", 2), pm("r", 3), ood, text, link]
        return f'<tr class="{cls}">' + "".join(
            f"<td>{c if c is link else html.escape(c)}</td>" for c in cells
        ) + "</tr>"  # fmt: skip

    def _html(self) -> str:
        n = len(self.results)
        ok = sum(r.status == "ok" for r in self.results)
        ood = sum(bool(r.values.get("ood")) for r in self.results)
        name = html.escape(f"{self.meta['name']} ({self.meta['model_id']})")
        head = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>mlxas predict: {name}</title>",
        ]
        if self.refresh:
            head.append(f'<meta http-equiv="refresh" content="{self.refresh}">')
        head.append(
            "<style>body{font-family:sans-serif;margin:1em;background:#fff}"
            "table{border-collapse:collapse;font-size:13px}"
            "td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}th{background:#e3f2fd}"
            "tr.ood td{background:#ffcdd2}tr.refused td{color:#757575}"
            "img{max-width:100%;border:1px solid #ddd;margin:4px 0}</style></head><body>"
        )
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        body = [
            f"<h1>mlxas predict &mdash; model {name}</h1>",
            f'<p id="summary">updated {stamp}: {n} spectra, {ok} predicted, {n - ok} refused, '
            f"{ood} out of distribution</p>",
            '<h2>Series</h2><div id="series">',
        ]
        for t in self.targets:
            p = self.dir / f"series_{t}.png"
            if p.is_file():
                body.append(self._img(p.read_bytes(), f"series-{t}", f"{t} series"))
        body.append("</div>")
        if self.latest is not None:
            body += ["<h2>Latest spectrum</h2>", self._img(self.latest, "latest", "latest")]
        body.append("<h2>Results</h2>")
        first = max(0, n - MAX_ROWS)
        if first:
            body.append(f"<p>showing the last {MAX_ROWS} of {n} results (all in --out)</p>")
        body.append(
            '<table id="results"><tr><th>#</th><th>file</th><th>status</th><th>CN</th>'
            "<th>R (Å)</th><th>OOD (score)</th><th>notes / reason</th><th>picture</th></tr>"
        )
        body += [self._row(i, self.results[i]) for i in range(first, n)]
        body.append("</table></body></html>")
        return "\n".join(head + body) + "\n"


class PerModelPlots:
    """``--plot DIR`` when models are picked per file: one :class:`PlotWriter` per model,
    in ``DIR/<experiment>_<entry>/`` (its own series and page), made when the model is
    first used.  Files refused before a model was chosen have no pictures."""

    def __init__(self, directory: str | Path, auto, **kwargs):
        self.dir, self.auto, self.kwargs = Path(directory), auto, kwargs
        self.writers: dict[str, PlotWriter] = {}

    def update(self, results: Sequence[Result]) -> None:
        groups: dict[str, list[Result]] = {}
        for r in results:
            if r.values.get("model"):
                groups.setdefault(r.values["model"], []).append(r)
        for name, rs in groups.items():
            if name not in self.writers:
                folder = self.dir / name.replace("/", "_")
                self.writers[name] = PlotWriter(folder, self.auto.predictors[name], **self.kwargs)
            self.writers[name].update(rs)


def plot_writer(a, pred, auto: bool, warn: Callable[[str], None]):
    """The picture writer of ``mlxas predict --plot`` for a predictor (or per-file models)."""
    kwargs = {"x_axis": a.x_axis, "watch": bool(a.watch), "warn": warn}
    if auto:
        return PerModelPlots(a.plot, pred, **kwargs)
    return PlotWriter(a.plot, pred, **kwargs)
