"""``mlxas --help``: a plain description of mlxas and an accurate line per user command."""

from __future__ import annotations

import subprocess

import pytest

from conftest import VENV_BIN


def test_top_level_help_is_plain_and_names_predicts_inputs():
    out = subprocess.run(
        [str(VENV_BIN / "mlxas"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    description = out.split("\n\n")[1]
    assert "``" not in out and ":mod:" not in out  # no RST markup in a terminal
    assert "X-ray absorption spectra" in description and "diffraction" in description
    predict = " ".join(out.split("\n    predict", 1)[1].split("\n    models", 1)[0].split())
    for what in ("CN and R", "XANES", "XDI, .prj, columns", "powder XRD patterns", ".xye"):
        assert what in predict, predict


def test_predict_help_description_is_wrapped():
    out = subprocess.run(
        [str(VENV_BIN / "mlxas"), "predict", "--help"], capture_output=True, text=True, check=True
    ).stdout
    description = out.split("\n\n")[1]
    assert "powder XRD patterns" in " ".join(description.split())
    assert max(len(line) for line in description.splitlines()) <= 79


def test_serve_help_names_a_bundled_model_that_exists():
    from mlxas.predict.bundled import REPO_ROOT, list_models

    out = subprocess.run(
        [str(VENV_BIN / "mlxas"), "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    example = " ".join(out.split()).split("a bundled name such as ", 1)[1].split(",")[0]
    assert example in {m.name for m in list_models(REPO_ROOT / "models")}, example


@pytest.mark.parametrize(
    "args", [["predict", "--nosuch", "x.xdi"], ["predict", "m.json", "x.xdi", "--nosuch"],
             ["models", "list", "--nosuch"]]
)  # fmt: skip
def test_unknown_option_shows_the_commands_usage(args):
    """argparse would hand the unknown option to the top level and print its usage."""
    run = subprocess.run([str(VENV_BIN / "mlxas"), *args], capture_output=True, text=True)
    assert run.returncode == 2
    command = " ".join(a for a in args[:2] if not a.startswith("-") and "." not in a)
    assert run.stderr.startswith(f"usage: mlxas {command} "), run.stderr
    assert f"mlxas {command}: error: unrecognized arguments: --nosuch" in run.stderr
