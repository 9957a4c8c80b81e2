"""The registry of model kinds: names, defaults, heads (value and class) of every kind."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from mlxas.models.registry import (
    Head,
    ModelConfigError,
    ModelKind,
    build,
    kind_class,
    kind_names,
    register_kind,
)
from mlxas.models.spec import ModelSpec


def test_schema_lists_exactly_the_registered_kinds():
    from importlib.resources import files

    schema = yaml.safe_load(files("mlxas.schemas").joinpath("config.schema.yaml").read_text())
    enum = schema["properties"]["models"]["items"]["properties"]["kind"]["enum"]
    assert sorted(enum) == kind_names()


def test_unknown_kind_is_refused_naming_the_entry():
    with pytest.raises(ModelConfigError, match=r"models\.foo: unknown model kind 'resnet'"):
        ModelSpec.from_config({"name": "foo", "kind": "resnet"})


def test_a_second_class_under_a_taken_name_is_refused():
    class Other(ModelKind):
        name = "mlp"
        defaults = kind_class("mlp").defaults

    with pytest.raises(Exception, match="registered twice"):
        register_kind(Other)


def test_entry_defaults_come_from_the_kind_class():
    spec = ModelSpec.from_config({"name": "a", "kind": "npcnn", "params": {"dense": [8]}})
    assert spec.epochs == kind_class("npcnn").defaults["epochs"]
    assert spec.params["strides"] == [4, 2, 2, 2, 2]
    assert spec.params["dense"] == [8]
    assert spec.model_kind().name == "npcnn"


@pytest.mark.parametrize(
    "kind,shape",
    [("mlp", (40,)), ("cnn1d", (40,)), ("npcnn", (64,)), ("cnn_pool", (64,)), ("cnn2d", (8, 6))],
)
def test_class_heads_are_softmax_and_value_heads_linear(kind, shape):
    params = kind_class(kind).defaults["params"]
    heads = {"geometry": Head(3, ("tet", "sqp", "oct")), "cn": Head(1)}
    model = build(kind, shape, heads, params)
    x = np.random.default_rng(0).normal(size=(5, *shape)).astype(np.float32)
    probs, cn = (np.asarray(o) for o in model.predict_on_batch(x))
    assert probs.shape == (5, 3) and cn.shape == (5, 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(probs > 0)
    # a linear head is not confined to (0, 1): scaling the last layer scales its output
    assert model.get_layer("head_cn").get_config()["activation"] == "linear"


def test_paper_mlp_refuses_class_targets():
    assert "class" not in kind_class("paper_mlp").target_kinds
