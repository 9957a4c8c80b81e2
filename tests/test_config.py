"""Config schema: defaults are filled in and errors name the offending key."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import ROOT, TINY_CONFIG
from mlxas.config import ConfigError, load_config, validate_config


def test_defaults_filled():
    cfg = validate_config(copy.deepcopy(TINY_CONFIG))
    assert cfg["edge"] == "K"
    assert cfg["features"]["k_grid"] == {"kmin": 0.05, "kmax": 20.0, "dk": 0.05}
    assert cfg["feff"]["engine"] == "feff8l"
    assert cfg["feff"]["chunk_size"] == 4  # given values are kept
    assert cfg["dataset"]["split"]["fractions"] == [0.7, 0.2, 0.1]
    # Training settings left null take the model kind's defaults at train time.
    assert cfg["models"][0]["batch_size"] is None
    assert cfg["models"][0]["epochs"] == 3
    from mlxas.models.registry import KIND_DEFAULTS, resolve_spec

    spec = resolve_spec(cfg["models"][0])
    assert spec["batch_size"] == KIND_DEFAULTS["mlp"]["batch_size"] == 32
    assert spec["epochs"] == 3


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"feff": {"chunk_size": "ten"}}, "feff.chunk_size"),
        ({"feff": {"engine": "feff99"}}, "feff.engine"),
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
