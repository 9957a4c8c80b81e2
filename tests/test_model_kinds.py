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


def test_extra_inputs_are_stacked_as_channels():
    from mlxas.models.data import model_inputs
    from synthetic_exafs import SyntheticDataset

    ds = SyntheticDataset(n=40, seed=1)
    spec = ModelSpec.from_config(
        {"name": "c", "kind": "cnn1d", "input": "chi_k", "extra_inputs": ["ft_mag"]}
    )
    # chi(k) on the k grid and |FT| on the R grid: different lengths
    with pytest.raises(ModelConfigError, match="differ in shape"):
        model_inputs(ds, spec, "train")
    spec = ModelSpec.from_config(
        {"name": "c", "kind": "cnn1d", "input": "ft_re", "extra_inputs": ["ft_im", "ft_mag"]}
    )
    x = model_inputs(ds, spec, "train")
    n = len(ds.labels("cn", "train"))
    assert x.shape == (n, ds.features("ft_re").shape[1], 3)
    np.testing.assert_array_equal(x[..., 2], ds.features("ft_mag", "train"))


def test_balanced_weights_equalise_the_classes():
    from mlxas.models.training_data import SplitData

    codes = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2])  # 6, 2, 1 examples; class 3 absent
    split = SplitData(np.zeros((9, 2), np.float32), {"g": codes[:, None], "cn": np.ones((9, 1))})
    spec = ModelSpec.from_config({"name": "b", "kind": "mlp", "sample_weight": "balanced"})
    heads = {"g": Head(4, ("a", "b", "c", "d")), "cn": Head(1)}
    w = kind_class("mlp")().sample_weight(split, spec, heads)
    # each present class carries the same total weight, n / classes present = 3
    for c in (0, 1, 2):
        assert w["g"][codes == c].sum() == pytest.approx(3.0)
    np.testing.assert_array_equal(w["cn"], 1.0)
