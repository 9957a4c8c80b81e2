"""Numpy convolutions (mlxas.models.numpy_layers) against Keras' own layers on random
weights, and the batch shared among threads by NumpyModel against one pass at a time."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mlxas.models import numpy_layers
from mlxas.models.numpy_layers import layer_forward
from mlxas.models.numpy_net import NumpyModel, blas_threads

#: (length, channels, filters, kernel, stride): the npcnn layers (kernel > stride, odd and
#: even lengths) and kernels shorter than or equal to their stride.
CONV1D = [
    (1401, 1, 16, 16, 4),
    (351, 16, 32, 9, 2),
    (44, 64, 8, 5, 2),
    (23, 3, 4, 2, 3),
    (20, 2, 5, 4, 4),
    (17, 4, 6, 3, 1),
]
#: (shape, channels, filters, kernel, strides): cnn2d's 3x3 stride 1 and strided ones.
CONV2D = [
    ((15, 11), 1, 3, (3, 3), (1, 1)),
    ((15, 11), 3, 4, (3, 3), (2, 2)),
    ((16, 9), 2, 5, (4, 2), (3, 1)),
]


def _check_layer(layer, x: np.ndarray, activation: str, use_bias: bool) -> None:
    """layer_forward of ``layer``'s config and weights gives what Keras' layer gives."""
    want = keras.ops.convert_to_numpy(layer(x))  # builds the layer: random weights
    if use_bias:  # Keras starts biases at zero: random ones, so that a wrong bias shows
        kernel = layer.get_weights()[0]
        bias = np.random.default_rng(3).normal(0, 0.5, layer.filters).astype(np.float32)
        layer.set_weights([kernel, bias])
        want = keras.ops.convert_to_numpy(layer(x))
    cls = type(layer).__name__
    fwd = layer_forward(cls, layer.get_config(), layer.get_weights(), f"test/{cls}")
    got = fwd([x])
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if activation == "relu":
        assert (want == 0).any() and (want > 0).any()  # the activation was exercised


def _check_conv(cls, x, filters, kernel, strides, padding, variants) -> None:
    """Keras layer ``cls`` against numpy for each (activation, use_bias) of ``variants``."""
    for activation, use_bias in variants:
        layer = cls(
            filters, kernel, strides=strides, padding=padding, activation=activation,
            use_bias=use_bias,
        )  # fmt: skip
        _check_layer(layer, x, activation, use_bias)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("length", "channels", "filters", "kernel", "stride"), CONV1D)
def test_conv1d_matches_keras(padding, length, channels, filters, kernel, stride):
    keras.utils.set_random_seed(length + kernel)
    x = np.random.default_rng(1).normal(0, 1, (5, length, channels)).astype(np.float32)
    variants = (("relu", True), ("linear", False), ("tanh", True))
    _check_conv(keras.layers.Conv1D, x, filters, kernel, stride, padding, variants)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(("shape", "channels", "filters", "kernel", "strides"), CONV2D)
def test_conv2d_matches_keras(padding, shape, channels, filters, kernel, strides):
    keras.utils.set_random_seed(sum(shape))
    x = np.random.default_rng(2).normal(0, 1, (4, *shape, channels)).astype(np.float32)
    variants = (("relu", True), ("linear", False))
    _check_conv(keras.layers.Conv2D, x, filters, kernel, strides, padding, variants)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_in_blocks_of_rows_matches_keras(monkeypatch, padding):
    """Batches larger than one unfolded block: blocks of 3 rows over 10 (the last one
    short), each written to its own rows of the output."""
    keras.utils.set_random_seed(4)
    length, channels, kernel, stride = 40, 3, 5, 2
    # the unfolded bytes of one row: output points x kernel x channels x 4 bytes
    out = -(-length // stride) if padding == "same" else (length - kernel) // stride + 1
    monkeypatch.setattr(numpy_layers, "UNFOLD_BYTES", 3 * out * kernel * channels * 4)
    x = np.random.default_rng(5).normal(0, 1, (10, length, channels)).astype(np.float32)
    layer = keras.layers.Conv1D(4, kernel, strides=stride, padding=padding, activation="relu")
    _check_layer(layer, x, "relu", True)


def test_dense_relu_matches_keras():
    keras.utils.set_random_seed(6)
    layer = keras.layers.Dense(7, activation="relu")
    layer.build((None, 5))
    layer.set_weights([layer.get_weights()[0], np.linspace(-1, 1, 7).astype(np.float32)])
    x = np.random.default_rng(7).normal(0, 1, (9, 5)).astype(np.float32)
    want = keras.ops.convert_to_numpy(layer(x))
    before = x.copy()
    got = layer_forward("Dense", layer.get_config(), layer.get_weights(), "test/Dense")([x])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, before)  # the in-place activation left the input alone


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    """A strided 1D CNN with two heads (the npcnn layout, small), random weights."""
    keras.utils.set_random_seed(8)
    inp = keras.Input((101,))
    x = keras.layers.Reshape((101, 1))(inp)
    x = keras.layers.Conv1D(4, 8, strides=4, padding="same", activation="relu")(x)
    x = keras.layers.Conv1D(6, 5, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(x))
    heads = [keras.layers.Dense(n, activation="softmax")(x) for n in (3, 5)]
    model = keras.Model(inp, keras.layers.Concatenate()(heads))
    path = tmp_path_factory.mktemp("small_cnn") / "m.keras"
    model.save(path)
    return model, path


@pytest.mark.parametrize("n", [0, 1, 31, 33, 300, 1000])
def test_threads_give_the_same_outputs(small_cnn, n):
    model, path = small_cnn
    x = np.random.default_rng(n).normal(0, 1, (n, 101)).astype(np.float32)
    numpy_model = NumpyModel.from_file(path)
    numpy_model.rows = 64  # several passes per thread for the larger batches
    outs = {}
    for threads in (1, 2, 3):
        numpy_model.threads = threads
        outs[threads] = numpy_model.predict_on_batch(x)
    assert outs[1].shape == (n, 8) and outs[1].dtype == np.float32
    # Rows are computed independently, so a row must not depend on how the batch was
    # shared out; but BLAS picks its kernel (and so the order of a dot product's sums)
    # by the block's row count, so 16 rows and 31 rows may round a row's float32 sums
    # differently in the last bit (seen on a CI run: 5.96e-08 absolute at most).  A row
    # read from another row, or left out, is off by far more.
    np.testing.assert_allclose(outs[2], outs[1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(outs[3], outs[1], rtol=1e-6, atol=1e-7)
    if n:
        want = np.asarray(model.predict_on_batch(x))
        np.testing.assert_allclose(outs[1], want, rtol=1e-5, atol=1e-6)


def test_threads_follow_the_blas_limit_and_restore_it(small_cnn):
    _, path = small_cnn
    with threadpool_limits(1, user_api="blas"):
        assert blas_threads() == 1
    with threadpool_limits(2, user_api="blas"):
        assert blas_threads() == min(2, len(os.sched_getaffinity(0)))
        before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        numpy_model = NumpyModel.from_file(path)
        numpy_model.threads = 2
        graph, seen = numpy_model.graph, []

        def watched(xs):
            seen.append(blas_threads())
            return graph(xs)

        numpy_model.graph = watched
        numpy_model.predict_on_batch(np.zeros((200, 101), np.float32))
        assert len(seen) == 2 and set(seen) == {1}  # each pass on one BLAS thread
        after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert after == before  # and the limit is back
