"""Config schema and layering: defaults are filled in and errors name the offending key."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import ROOT, TINY_CONFIG
from mlxas.errors import ConfigError
from mlxas.workflow.checks import check_config, load_experiment


def validate_config(raw: dict, source: str = "config") -> dict:
    return dict(check_config(raw, source).config)


def load_config(path) -> dict:
    return dict(load_experiment([path]).config)


def test_defaults_filled():
    exp = check_config(copy.deepcopy(TINY_CONFIG))
    cfg = exp.config
    assert cfg["edge"] == "K"
    assert cfg["features"]["k_grid"] == {"kmin": 0.05, "kmax": 20.0, "dk": 0.05}
    assert cfg["simulation"]["engine"] == exp.engine.name == "feff8l"
    assert cfg["simulation"]["chunk_size"] == exp.simulation.chunk_size == 4  # given, kept
    assert cfg["dataset"]["split"]["fractions"] == [0.7, 0.2, 0.1]
    # Training settings left null take the model kind's defaults, resolved once.
    assert cfg["models"][0]["batch_size"] is None
    assert cfg["models"][0]["epochs"] == 3
    from mlxas.models.registry import KIND_DEFAULTS

    spec = exp.models["mlp"]
    assert spec.batch_size == KIND_DEFAULTS["mlp"]["batch_size"] == 32
    assert spec.epochs == 3


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"simulation": {"chunk_size": "ten"}}, "simulation.chunk_size"),
        ({"edge": "M5"}, "edge"),
        ({"features": {"k_grid": {"dk": -1}}}, "features.k_grid.dk"),
        ({"models": [{"name": "m", "kind": "transformer"}]}, "models.0.kind"),
        ({"bogus_key": 1}, "<top level>"),
    ],
)
def test_errors_name_the_key(patch, key):
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg.update(patch)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, source="my.yaml")
    assert f"'{key}'" in str(err.value) and str(err.value).startswith("my.yaml")


def test_structure_kind_specific_keys_are_checked():
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["structures"][0]["shape"] = "dodecahedron"
    with pytest.raises(ConfigError, match=r"structures\.0\.shape"):
        validate_config(cfg)
    cfg = copy.deepcopy(TINY_CONFIG)
    del cfg["structures"][0]["sizes"]
    with pytest.raises(ConfigError, match="sizes"):
        validate_config(cfg)


def test_duplicate_source_names_refused():
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["structures"][1]["name"] = "octa"
    with pytest.raises(ConfigError, match="duplicate source name"):
        validate_config(cfg)


def test_shipped_configs_are_valid():
    paths = [
        ROOT / "config" / "config.yaml",
        *sorted((ROOT / "config" / "experiments").glob("*.yaml")),
    ]
    for path in paths:
        load_config(path)


def test_unreadable_config_names_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("experiment: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_default_experiment_is_selected_not_merged(tmp_path, monkeypatch):
    """Without a file the default experiment is read; with one, the default is ignored."""
    (tmp_path / "config").mkdir()
    default = {**TINY_CONFIG, "experiment": "the_default", "edge": "L3", "absorber": "Au"}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(default))
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump(TINY_CONFIG))
    monkeypatch.chdir(tmp_path)
    assert load_experiment([]).name == "the_default"
    exp = load_experiment([own])
    # Nothing of the default file reaches another experiment: edge falls back to the
    # schema's default K, not the default experiment's L3.
    assert exp.name == "tiny" and exp.edge == "K" and exp.absorber == "Cu"


def test_several_files_merge_like_snakemake(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(TINY_CONFIG))
    over = tmp_path / "over.yaml"
    over.write_text(yaml.safe_dump({"feff": {"cards": {"RPATH": 5.0}}, "models": [
        {"name": "other", "kind": "mlp"}]}))  # fmt: skip
    exp = load_experiment([base, over])
    # Mappings merge key by key, lists are replaced whole.
    assert exp.engine.settings.cards["RPATH"] == 5.0 and exp.engine.settings.cards["NLEGS"] == 4
    assert list(exp.models) == ["other"]
    assert exp.source == f"{base} + {over}"
