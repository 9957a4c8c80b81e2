"""``mlxas predict``: arguments and the command itself."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from mlxas.predict.argument_checks import check_numbers, e0_option, expand, model_argument
from mlxas.spectra.measured import SpectrumError
from mlxas.workflow.layout import MODEL_FILE

__all__ = ["add_arguments", "main"]

EPILOG = """\
examples:
  mlxas predict scans/*.xdi                        (bundled models, picked per file)
  mlxas predict results/cu/models/mlp.json scan_*.xdi
  mlxas predict foil_cu/ensemble scan_*.xdi          (a bundled model by name)
  mlxas predict results/cu/models/latest run42/ --out run42.csv
  mlxas predict results/cu/models/mlp.json --watch /data/beamtime/ --pattern '*.xdi' --out live.csv

Without MODEL, each file gets the bundled model for its absorber and edge (`mlxas models
list`), read from the header or else from E0; the output names the model, and a file that
no bundled model covers is refused with the reason.

A model on powder patterns (XRD) gives the crystal system and space group with their
probabilities, the five most probable space groups and the OOD flag for each file.

Each spectrum gets CN and R (with the ensemble's spread when the model is an ensemble)
and an out-of-distribution flag: OOD = YES means the model's input lies far from every
training spectrum, so the numbers should not be trusted.  A file that cannot be read or
checked is refused with the reason; nothing is repaired silently.

exit status: 0 all spectra predicted, 1 some refused, 2 nothing could be predicted or a
usage error.  See docs/predict.md.
"""


class _IntermixedParser(argparse.ArgumentParser):
    """Options anywhere among the positionals: ``MODEL [options] FILE...``.

    Plain argparse gives ``MODEL`` the first positional run and ``FILE...`` nothing when an
    option follows ``MODEL`` (``predict MODEL --allow-short-k a.xdi`` fails with
    'unrecognized arguments: a.xdi').  ``parse_known_intermixed_args`` collects the
    positionals of every run; it calls ``parse_known_args`` itself, hence the flag.  An
    unknown option is reported here, with predict's usage (see ``mlxas.cli.CommandParser``).
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            namespace, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``mlxas predict`` (the subparser is created by :mod:`mlxas.cli`);
    options are accepted before, between and after the files."""
    from mlxas.predict.bundled import add_models_option

    p.__class__ = _IntermixedParser  # the subparser's class is chosen by mlxas.cli
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help=f"model folder, its {MODEL_FILE}, a models/<name>.json pointer, models/latest or "
        "a bundled model's name (foil_cu/ensemble); leave it out to pick a bundled model per "
        "file",
    )
    p.add_argument(
        "files",
        metavar="FILE",
        nargs="*",
        help="XDI files, Athena projects (.prj) or column files (for an XRD model: 2θ or Q "
        "and intensity, .xy/.xye/.csv/RRUFF); a directory means all files in it",
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", "-o", metavar="PATH", help="write results to PATH (.csv, .json or .jsonl)"
    )
    g.add_argument("--format", choices=["csv", "json", "jsonl"], help="format of --out")
    g.add_argument("--quiet", "-q", action="store_true", help="no table on the terminal")
    g.add_argument(
        "--truth",
        metavar="CSV",
        help="class models: known classes of the files (a 'file' column and one column per "
        "class target); prints accuracy, top-5, balanced accuracy and macro F1",
    )
    g.add_argument(
        "--truth-out",
        metavar="JSON",
        help="with --truth: write the metrics (per class, confusion matrix) to JSON",
    )
    add_models_option(g, " to pick from when no MODEL is given")
    from mlxas.predict.live import add_arguments as add_plot_arguments

    add_plot_arguments(g)

    g = p.add_argument_group("reading")
    g.add_argument(
        "--mu",
        metavar="LABEL",
        help="column holding mu(E) (default: mutrans, mu, xmu, mufluor, ... or ln(i0/itrans), "
        "ifluor/i0)",
    )
    g.add_argument("--energy", metavar="LABEL", help="column holding the energy in eV")
    g.add_argument(
        "--repair",
        action="store_true",
        help="sort unsorted energies and shift duplicated ones (as larch would) instead of "
        "refusing the file; every repair is reported",
    )
    g.add_argument(
        "--allow-short-k",
        action="store_true",
        help="run spectra whose k-range ends before the model's (chi = 0 beyond the data), "
        "with a warning, instead of refusing them",
    )

    g.add_argument(
        "--wavelength",
        type=float,
        metavar="Å",
        help="models on powder patterns (XRD): the wavelength the files were measured at, "
        "instead of the one in their header (default: the header's, else the model's)",
    )

    g = p.add_argument_group("background removal")
    g.add_argument(
        "--e0",
        default="auto",
        metavar="MODE",
        help="edge energy: 'auto' (default: files on one energy grid share E0 from larch's "
        "find_e0 on their mean, other files get find_e0 each), 'file' (find_e0 on every "
        "spectrum) or a value in eV",
    )
    g.add_argument("--rbkg", type=float, default=1.0, help="AUTOBK rbkg in Å (default 1.0)")
    g.add_argument(
        "--bkg-kweight", type=float, default=1.0, help="k-weight of the AUTOBK fit (default 1)"
    )

    g.add_argument(
        "--broaden",
        type=float,
        default=0.0,
        metavar="EV",
        help="models on mu(E) (XANES geometry): convolve the normalised mu(E) with a "
        "Lorentzian of this FWHM in eV first, e.g. to bring HERFD data to the lifetime "
        "broadening of the training spectra (default 0: none)",
    )

    g = p.add_argument_group("batches and live use")
    g.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=0,
        help="worker processes for batches (default: all cores)",
    )
    g.add_argument(
        "--watch",
        metavar="DIR",
        help="keep running and predict files as they appear in DIR (Ctrl-C stops)",
    )
    g.add_argument(
        "--pattern",
        action="append",
        metavar="GLOB",
        help="with --watch or a directory: only file names matching GLOB (repeatable)",
    )
    g.add_argument(
        "--existing", action="store_true", help="with --watch: also predict files already there"
    )
    g.add_argument(
        "--interval", type=float, default=0.5, help="with --watch: seconds between polls"
    )
    g.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="with --watch: seconds a file's size must stay constant before it is read",
    )


def _open_predictor(a: argparse.Namespace, warn, **options):
    """(predictor, metadata for the output, whether models are picked per file)."""
    from mlxas.predict.auto import AutoPredictor, model_meta
    from mlxas.predict.predictor import Predictor

    if a.model is not None:
        pred = Predictor(a.model, jobs=a.jobs or None, warn=warn, **options)
        if name := getattr(a, "bundled_name", None):
            print(f"mlxas: using bundled model {name} (id {pred.card.get('model_id')})",
                  file=sys.stderr)  # fmt: skip
        return pred, model_meta(pred, name), False

    def loaded(name: str, pred) -> None:
        print(f"mlxas: using bundled model {name} ({pred.spec.absorber} {pred.spec.edge}, "
              f"id {pred.card.get('model_id')})", file=sys.stderr)  # fmt: skip

    from mlxas.predict.bundled import bundled_dir, missing_folder

    if (missing := missing_folder(a.models)) is not None:
        raise SpectrumError("mlxas predict", f"no MODEL given and {missing}")
    auto = AutoPredictor(a.models, jobs=a.jobs or None, warn=warn, on_model=loaded, **options)
    if not auto.models:
        auto.close()
        raise SpectrumError(
            "mlxas predict", f"no MODEL given and no bundled models in {bundled_dir(a.models)}"
        )
    return auto, auto.meta, True


def _read_truth(a: argparse.Namespace, pred) -> dict | None:
    """The labels of ``--truth`` for the model's class targets (None without it)."""
    if a.truth_out and not a.truth:
        raise SpectrumError("--truth-out", "needs --truth")
    if not a.truth:
        return None
    if a.watch or not getattr(pred, "classes", None):
        why = "not with --watch" if a.watch else "the model has no class target"
        raise SpectrumError("--truth", why)
    from mlxas.predict.truth import TruthError, read_truth

    try:
        return read_truth(a.truth, pred.classes)
    except TruthError as err:
        raise SpectrumError(err.path, err.reason) from None


def _report_truth(a: argparse.Namespace, results, truth: dict, classes: dict) -> None:
    import json

    from mlxas.predict.truth import accuracy, format_accuracy

    report = accuracy(results, truth, classes)
    print(format_accuracy(report), file=sys.stderr)
    if a.truth_out:
        Path(a.truth_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.truth_out).write_text(json.dumps({"truth": a.truth, **report}, indent=1) + "\n")


def main(a: argparse.Namespace) -> int:
    from mlxas.predict.output import OutputFile, format_table
    from mlxas.predict.spec import Result
    from mlxas.spectra.background import BackgroundSettings

    if a.model is not None:
        model, a.bundled_name = model_argument(a.model, a.models)
        if model is None:  # the first positional is a spectrum file or folder
            a.files, a.model = [a.model, *a.files], None
        else:
            a.model = model
    if not a.files and not a.watch:
        raise SpectrumError("mlxas predict", "give FILE arguments or --watch DIR")
    e0 = e0_option(a.e0)
    check_numbers(a)
    if not a.broaden >= 0:
        raise SpectrumError("--broaden", f"{a.broaden}: a width in eV must be 0 or more")
    files, empty_dirs = expand(a.files, a.pattern)
    if a.files and not files and not a.watch:
        raise SpectrumError(", ".join(a.files), "no files to predict")
    if a.watch and not Path(a.watch).is_dir():
        raise FileNotFoundError(f"{a.watch}: not a directory")
    width = shutil.get_terminal_size((120, 20)).columns

    def warn(msg: str) -> None:
        print(f"mlxas: warning: {msg}", file=sys.stderr)

    pred, meta, auto = _open_predictor(
        a,
        warn,
        allow_short_k=a.allow_short_k,
        repair=a.repair,
        mu_label=a.mu,
        energy_label=a.energy,
        e0=e0,
        background=BackgroundSettings(rbkg=a.rbkg, kweight=a.bkg_kweight),
        **({"xanes_broaden": a.broaden} if a.broaden else {}),
        **({"wavelength": a.wavelength} if a.wavelength is not None else {}),
    )
    with pred:
        out = None
        if a.out:
            try:
                out = OutputFile(
                    a.out, a.format, pred.targets, meta, with_model=auto, classes=pred.classes
                )
            except ValueError as err:
                raise SpectrumError(a.out, str(err).split(": ", 1)[-1]) from None
        plots = None
        spec = getattr(pred, "spec", None)  # None: bundled models, picked per spectrum
        if a.plot and spec is not None and not spec.plots_supported:
            why = f"draws XAS spectra; not available for {spec.input_kind}s"
            raise SpectrumError("--plot", why)
        if a.plot:
            from mlxas.predict.live import plot_writer

            plots = plot_writer(a, pred, auto, warn)
        counts = {"ok": 0, "refused": 0}
        first = [True]

        def emit(results) -> None:
            for r in results:
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.status != "ok":
                    print(f"mlxas: refused {r.source}: {r.reason}", file=sys.stderr)
            if out is not None:
                out.write(results)
            if plots is not None and results:
                plots.update(results)
            if not a.quiet and results:
                print(format_table(results, header=first[0], width=width), flush=True)
                first[0] = False

        truth = _read_truth(a, pred)
        try:
            if files:
                t0 = time.perf_counter()
                results = pred.predict(files)
                results += [Result(d).refuse(why) for d, why in empty_dirs.items()]
                if len(results) == 1 and results[0].status != "ok" and not a.watch:
                    raise SpectrumError(results[0].source, results[0].reason)
                emit(results)
                dt = time.perf_counter() - t0
                if len(results) > 1:
                    print(
                        f"mlxas: {counts['ok']} predicted, {counts['refused']} refused, "
                        f"{len(files) + len(empty_dirs)} files in {dt:.2f} s",
                        file=sys.stderr,
                    )
                if truth is not None:
                    _report_truth(a, results, truth, pred.classes)
            if a.watch:
                from mlxas.predict.watch import Watcher, watch

                watcher = Watcher(
                    Path(a.watch),
                    patterns=a.pattern or ["*"],
                    settle=a.settle,
                    include_existing=a.existing,
                )
                # A watcher started in the background of a non-interactive shell (`cmd &`,
                # supervisor scripts) inherits an ignored SIGINT; it must still stop on
                # Ctrl-C or `kill -INT`, so take the signal back explicitly.
                signal.signal(signal.SIGINT, signal.default_int_handler)
                print(f"mlxas: watching {a.watch} (Ctrl-C to stop)", file=sys.stderr, flush=True)
                watch(watcher, pred.predict, emit, interval=a.interval)
                print(
                    f"mlxas: stopped; {counts['ok']} predicted, {counts['refused']} refused",
                    file=sys.stderr,
                )
                return 0
        finally:
            if out is not None:
                out.close()
    if counts["ok"] == 0:
        raise SpectrumError(
            "mlxas predict", f"nothing could be predicted ({counts['refused']} refused)"
        )
    return 1 if counts["refused"] else 0
