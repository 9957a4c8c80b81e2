"""Content hashes and the code version that makes Snakemake rerun changed stages."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

from mlxas import provenance
from mlxas.provenance import code_version, hash_json, structure_hash


def test_structure_hash_is_content_based():
    pos = np.array([[0.0, 0.0, 0.0], [1.8, 0.0, 0.0]])
    h = structure_hash(["Cu", "Cu"], pos)
    assert h == structure_hash(["Cu", "Cu"], pos + 1e-6)  # below the rounding
    assert h != structure_hash(["Cu", "Cu"], pos + np.array([[0, 0, 0], [0.01, 0, 0]]))
    assert h != structure_hash(["Cu", "Ni"], pos)
    assert structure_hash(["Cu"], np.array([[-0.0, 0.0, 0.0]])) == structure_hash(
        ["Cu"], np.zeros((1, 3))
    )


def test_hash_json_ignores_key_order():
    assert hash_json({"a": 1, "b": [1, 2]}) == hash_json({"b": [1, 2], "a": 1})
    assert hash_json({"a": 1}) != hash_json({"a": 2})


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    pkg = tmp_path / "fakepkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "stage_a.py").write_text("from fakepkg.helpers import f\n")
    (pkg / "stage_b.py").write_text("import numpy\n\ndef g():\n    from .sub import deep\n")
    (pkg / "helpers.py").write_text("def f():\n    return 1\n")
    (pkg / "sub" / "deep.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield pkg
    for name in [m for m in sys.modules if m.startswith("fakepkg")]:
        del sys.modules[name]


def test_code_version_follows_imports(fake_package):
    a, b = code_version("fakepkg.stage_a"), code_version("fakepkg.stage_b")
    code_version.cache_clear()
    # A change in a module stage_a imports changes stage_a's version only.
    (fake_package / "helpers.py").write_text("def f():\n    return 2\n")
    assert code_version("fakepkg.stage_a") != a
    assert code_version("fakepkg.stage_b") == b
    code_version.cache_clear()
    # A relative import inside a function counts too.
    (fake_package / "sub" / "deep.py").write_text("X = 2\n")
    assert code_version("fakepkg.stage_b") != b
    code_version.cache_clear()


def test_code_version_of_missing_module_is_an_error():
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        provenance.code_version("mlxas.no_such_module")


def test_code_version_hashes_declared_data_files(fake_package):
    (fake_package / "tables").mkdir()
    (fake_package / "tables" / "t.yaml").write_text("a: 1\n")
    (fake_package / "helpers.py").write_text(
        '__data_files__ = ("tables/*.yaml",)\n\ndef f():\n    return 1\n'
    )
    a, b = code_version("fakepkg.stage_a"), code_version("fakepkg.stage_b")
    code_version.cache_clear()
    # Editing the table is a change of what stage_a runs (it imports helpers), not of stage_b.
    (fake_package / "tables" / "t.yaml").write_text("a: 2\n")
    assert code_version("fakepkg.stage_a") != a
    assert code_version("fakepkg.stage_b") == b
    code_version.cache_clear()
    # A pattern that matches nothing fails loudly, naming the module and the pattern.
    (fake_package / "tables" / "t.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"helpers\.py.*tables/\*\.yaml"):
        code_version("fakepkg.stage_a")
    code_version.cache_clear()


def test_package_data_read_by_stages_is_declared():
    """The prototype table and the FEFF templates are part of their stages' versions."""
    from pathlib import Path

    import mlxas.feff.cards
    import mlxas.xanes.prototypes

    protos = provenance._data_files(Path(mlxas.xanes.prototypes.__file__))
    assert [p.name for p in protos] == ["prototypes.yaml"]
    templates = {p.name for p in provenance._data_files(Path(mlxas.feff.cards.__file__))}
    assert {f"{e}.yaml" for e in mlxas.feff.cards.engine_names()} == templates
