"""The results layout is written in one place: every file name of `mlxas.workflow.layout`
appears in no other module's code, nor in the rules; and the rules' outputs are the
layout's paths."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT, TINY_CONFIG
from mlxas.workflow import layout as layout_module
from mlxas.workflow.checks import check_config
from mlxas.workflow.layout import Layout

SRC = ROOT / "src" / "mlxas"
LAYOUT = Path(layout_module.__file__)
_FILE = re.compile(r"^\.?[\w-]+\.[A-Za-z0-9][\w.]*$")
_SPLIT = re.compile(r"[\s/'\"()`,:;{}<>\[\]]+")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                ids.add(id(value))
    return ids


def _code_strings(path: Path) -> list[str]:
    """String constants of a module's code (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
    ]


def _rule_strings(path: Path) -> list[str]:
    code = "\n".join(ln.split("#", 1)[0] for ln in path.read_text().splitlines())
    return re.findall(r'"([^"\n]*)"', code)


def layout_file_names() -> set[str]:
    return {s for s in _code_strings(LAYOUT) if _FILE.match(s)}


def test_the_layout_defines_the_output_names():
    names = layout_file_names()
    expected = {"dataset.h5", "inputs.parquet", "chunks.json", "structures.extxyz",
                "index.csv", "rejected.csv", "card.json", "model.keras", "ood.json",
                "metrics.json", "comparison.csv", "best.json", "trials.csv"}  # fmt: skip
    assert expected <= names


def test_every_output_name_is_written_in_one_place():
    names = layout_file_names()
    sources = [p for p in SRC.rglob("*.py") if p != LAYOUT]
    found = {}
    for path in sources:
        for text in _code_strings(path):
            for token in _SPLIT.split(text):
                if token in names:
                    found.setdefault(token, []).append(str(path.relative_to(ROOT)))
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        for text in _rule_strings(path):
            for token in _SPLIT.split(text):
                if token in names:
                    found.setdefault(token, []).append(str(path.relative_to(ROOT)))
    assert found == {}, f"results names written outside mlxas.workflow.layout: {found}"


def test_rules_declare_the_layout_paths():
    """The dry run of the tiny experiment plans exactly the layout's outputs."""
    exp = check_config(TINY_CONFIG)
    L = exp.layout
    assert Layout.for_experiment("tiny") == L
    final = set(exp.final_outputs())
    assert {str(L.dataset), str(L.latest), str(L.metrics)} <= final
    assert str(L.parity("cn")) in final and str(L.parity("r")) in final
    rules = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    # every output of every rule is a layout call, never a path written out
    outputs = re.findall(r"^\s+output:\n((?:\s{8}.*\n)+)", rules, re.M)
    assert outputs
    for block in outputs:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.endswith("report(") or line in (")", "),"):
                continue
            if line.startswith(("category=", "caption=", "subcategory=")):
                continue
            assert "L." in line or "EXP." in line, line
