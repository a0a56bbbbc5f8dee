"""Specification of transposed convolution, switch unpooling and deconvnet projections.

Every reference below is a plain loop written from the definitions, independent of
the vectorised code under test.
"""

import numpy as np
import pytest

from service.featuremaps.deconv import (
    PROJECTABLE_LAYERS,
    conv_transpose,
    deconv_conv1,
    deconv_conv2,
    deconv_pool,
    max_unpool,
    project,
)


def naive_correlate(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Keras valid cross-correlation: y[i,j,o] = sum_{a,b,c} x[i+a,j+b,c] w[a,b,c,o]."""
    kh, kw, _, cout = w.shape
    h, wd = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    y = np.zeros((h, wd, cout))
    for i in range(h):
        for j in range(wd):
            for o in range(cout):
                y[i, j, o] = np.sum(x[i : i + kh, j : j + kw, :] * w[..., o])
    return y


def naive_transpose_gather(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Adjoint written as a gather: x[p,q,c] = sum over y[p-a,q-b,o] w[a,b,c,o] in range."""
    kh, kw, cin, _ = w.shape
    h, wd = y.shape[:2]
    x = np.zeros((h + kh - 1, wd + kw - 1, cin))
    for p in range(x.shape[0]):
        for q in range(x.shape[1]):
            for a in range(kh):
                for b in range(kw):
                    if 0 <= p - a < h and 0 <= q - b < wd:
                        x[p, q] += w[a, b] @ y[p - a, q - b]
    return x


def naive_transpose_scatter(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Adjoint written as a scatter: every output pixel spreads its kernel-weighted value."""
    kh, kw, cin, _ = w.shape
    h, wd = y.shape[:2]
    x = np.zeros((h + kh - 1, wd + kw - 1, cin))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for b in range(kw):
                    for c in range(cin):
                        x[i + a, j + b, c] += np.dot(w[a, b, c], y[i, j])
    return x


def naive_max_pool(x: np.ndarray) -> np.ndarray:
    """2x2 valid max pooling."""
    h, w = x.shape[0] // 2, x.shape[1] // 2
    return np.array([[x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(0, 1)) for j in range(w)] for i in range(h)])


def naive_unpool(pooled: np.ndarray, pre_pool: np.ndarray) -> np.ndarray:
    """Place pooled[i,j,c] at the first strict maximum of its 2x2 window, scanned row by row."""
    out = np.zeros(pre_pool.shape)
    for i in range(pooled.shape[0]):
        for j in range(pooled.shape[1]):
            for c in range(pooled.shape[2]):
                best = (2 * i, 2 * j)
                for r in range(2 * i, 2 * i + 2):
                    for s in range(2 * j, 2 * j + 2):
                        if pre_pool[r, s, c] > pre_pool[best[0], best[1], c]:
                            best = (r, s)
                out[best[0], best[1], c] = pooled[i, j, c]
    return out


def only(maps: np.ndarray, k: int) -> np.ndarray:
    """Copy of maps with every channel but k zeroed."""
    kept = np.zeros(maps.shape)
    kept[..., k] = maps[..., k]
    return kept


def naive_deconv_conv1(conv1: np.ndarray, k: int, w1: np.ndarray) -> np.ndarray:
    return naive_transpose_gather(only(conv1, k), w1)[..., 0]


def naive_deconv_conv2(conv2: np.ndarray, k: int, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    return naive_transpose_gather(np.maximum(naive_transpose_gather(only(conv2, k), w2), 0), w1)[..., 0]


def naive_deconv_pool(pool: np.ndarray, conv2: np.ndarray, k: int, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    unpooled = naive_unpool(only(pool, k), conv2)
    return naive_transpose_gather(np.maximum(naive_transpose_gather(unpooled, w2), 0), w1)[..., 0]


@pytest.fixture(scope="module")
def net() -> dict[str, np.ndarray]:
    """Random float32 weights and one image's activations from a naive forward pass."""
    rng = np.random.default_rng(42)
    w1 = rng.normal(0, 0.5, (3, 3, 1, 32)).astype(np.float32)
    w2 = rng.normal(0, 0.1, (3, 3, 32, 64)).astype(np.float32)
    image = rng.random((28, 28, 1))
    conv1 = np.maximum(naive_correlate(image, w1) + rng.normal(0, 0.1, 32), 0)
    conv2 = np.maximum(naive_correlate(conv1, w2) + rng.normal(0, 0.1, 64), 0)
    pool = naive_max_pool(conv2)
    return {
        "w1": w1,
        "w2": w2,
        "conv1": conv1.astype(np.float32),
        "conv2": conv2.astype(np.float32),
        "pool": pool.astype(np.float32),
    }


def activations(net: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: net[name] for name in ("conv1", "conv2", "pool")}


# conv_transpose


def test_conv_transpose_is_the_adjoint_of_valid_cross_correlation():
    rng = np.random.default_rng(0)
    x, w, y = rng.normal(size=(9, 8, 3)), rng.normal(size=(3, 2, 3, 4)), rng.normal(size=(7, 7, 4))
    assert np.vdot(naive_correlate(x, w), y) == pytest.approx(np.vdot(x, conv_transpose(y, w)), rel=1e-10)


def test_conv_transpose_matches_a_naive_gather_loop():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(6, 5, 4)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    out = conv_transpose(y, w)
    assert out.shape == (8, 7, 2)
    assert np.abs(out - naive_transpose_gather(y, w)).max() <= 1e-5


def test_conv_transpose_matches_a_naive_scatter_loop():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(5, 6, 3)).astype(np.float32)
    w = rng.normal(size=(2, 3, 4, 3)).astype(np.float32)
    assert np.abs(conv_transpose(y, w) - naive_transpose_scatter(y, w)).max() <= 1e-5


def test_conv_transpose_of_a_batch_equals_each_item_on_its_own():
    rng = np.random.default_rng(3)
    batch = rng.normal(size=(4, 6, 6, 5)).astype(np.float32)
    w = rng.normal(size=(3, 3, 2, 5)).astype(np.float32)
    np.testing.assert_allclose(conv_transpose(batch, w), np.stack([conv_transpose(y, w) for y in batch]), atol=1e-6)


def test_conv_transpose_keeps_float32():
    assert conv_transpose(np.ones((4, 4, 2), np.float32), np.ones((3, 3, 1, 2), np.float32)).dtype == np.float32


def test_conv_transpose_rejects_mismatched_channels():
    with pytest.raises(ValueError):
        conv_transpose(np.ones((4, 4, 3)), np.ones((3, 3, 1, 2)))


# max_unpool


def test_max_unpool_puts_each_pooled_value_where_its_window_maximum_was():
    pre_pool = np.array([[1, 5, 0, 2], [3, 2, 7, 1], [0, 0, 4, 6], [9, 1, 5, 4]], dtype=np.float32)[..., None]
    pooled = np.array([[10, 20], [30, 40]], dtype=np.float32)[..., None]
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[0, 1], expected[1, 2], expected[3, 0], expected[2, 3] = 10, 20, 30, 40
    np.testing.assert_array_equal(max_unpool(pooled, pre_pool)[..., 0], expected)


def test_max_unpool_breaks_ties_at_the_first_maximum_in_row_major_order():
    pre_pool = np.array([[3, 3, 0, 8], [3, 3, 8, 0]], dtype=np.float32)[..., None]
    out = max_unpool(np.array([[[1.0], [2.0]]]), pre_pool)[..., 0]
    np.testing.assert_array_equal(out, [[1, 0, 0, 2], [0, 0, 0, 0]])


def test_max_unpool_uses_each_channels_own_switches():
    rng = np.random.default_rng(4)
    pre_pool = rng.random((6, 8, 5)).astype(np.float32)
    pooled = rng.random((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(max_unpool(pooled, pre_pool), naive_unpool(pooled, pre_pool))


def test_max_unpool_leaves_the_rows_and_columns_valid_pooling_ignored_at_zero():
    rng = np.random.default_rng(5)
    pre_pool = rng.random((5, 7, 2)).astype(np.float32)
    pooled = naive_max_pool(pre_pool)
    out = max_unpool(pooled, pre_pool)
    assert out.shape == (5, 7, 2)
    assert not out[4].any() and not out[:, 6].any()
    np.testing.assert_array_equal(out[:4, :6], naive_unpool(pooled, pre_pool[:4, :6]))


def test_max_unpool_of_a_batch_equals_each_item_on_its_own():
    rng = np.random.default_rng(6)
    pre_pool = rng.random((3, 4, 6, 2)).astype(np.float32)
    pooled = rng.random((3, 2, 3, 2)).astype(np.float32)
    expected = np.stack([max_unpool(p, x) for p, x in zip(pooled, pre_pool)])
    np.testing.assert_array_equal(max_unpool(pooled, pre_pool), expected)


def test_max_unpool_rejects_a_pooled_shape_that_does_not_fit():
    with pytest.raises(ValueError):
        max_unpool(np.ones((3, 3, 1)), np.ones((4, 4, 1)))


# projections


@pytest.mark.parametrize("k", [0, 13, 31])
def test_deconv_conv1_matches_a_naive_transposed_convolution_of_map_k_alone(net, k):
    out = deconv_conv1(net["conv1"], k, net["w1"])
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.abs(out - naive_deconv_conv1(net["conv1"], k, net["w1"])).max() <= 1e-4


@pytest.mark.parametrize("k", [0, 29, 63])
def test_deconv_conv2_matches_a_naive_transpose_relu_transpose_of_map_k_alone(net, k):
    out = deconv_conv2(net["conv2"], k, net["w1"], net["w2"])
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.abs(out - naive_deconv_conv2(net["conv2"], k, net["w1"], net["w2"])).max() <= 1e-4


@pytest.mark.parametrize("k", [1, 40, 63])
def test_deconv_pool_matches_naive_unpooling_then_the_conv2_path(net, k):
    out = deconv_pool(net["pool"], net["conv2"], k, net["w1"], net["w2"])
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.abs(out - naive_deconv_pool(net["pool"], net["conv2"], k, net["w1"], net["w2"])).max() <= 1e-4


def test_the_relu_between_the_two_transposed_convolutions_matters(net):
    linear = naive_transpose_gather(naive_transpose_gather(only(net["conv2"], 5), net["w2"]), net["w1"])[..., 0]
    assert np.abs(deconv_conv2(net["conv2"], 5, net["w1"], net["w2"]) - linear).max() > 1e-3


@pytest.mark.parametrize("layer", PROJECTABLE_LAYERS)
def test_projecting_all_filters_at_once_equals_projecting_each_filter(net, layer):
    single = {
        "conv1": lambda k: deconv_conv1(net["conv1"], k, net["w1"]),
        "conv2": lambda k: deconv_conv2(net["conv2"], k, net["w1"], net["w2"]),
        "pool": lambda k: deconv_pool(net["pool"], net["conv2"], k, net["w1"], net["w2"]),
    }[layer]
    grid = project(layer, activations(net), net["w1"], net["w2"])
    channels = net[layer].shape[-1]
    assert grid.shape == (channels, 28, 28)
    np.testing.assert_allclose(grid, np.stack([single(k) for k in range(channels)]), atol=1e-5)


def test_project_returns_the_requested_filters_in_the_requested_order(net):
    grid = project("conv2", activations(net), net["w1"], net["w2"], filters=[7, 2])
    np.testing.assert_allclose(grid[0], deconv_conv2(net["conv2"], 7, net["w1"], net["w2"]), atol=1e-6)
    np.testing.assert_allclose(grid[1], deconv_conv2(net["conv2"], 2, net["w1"], net["w2"]), atol=1e-6)


@pytest.mark.parametrize("layer", PROJECTABLE_LAYERS)
def test_a_projection_ignores_every_other_feature_map(net, layer):
    noisy = {name: maps.copy() for name, maps in activations(net).items()}
    rng = np.random.default_rng(7)
    for name in (layer, "conv2") if layer == "pool" else (layer,):
        others = np.arange(noisy[name].shape[-1]) != 3
        noisy[name][..., others] = rng.random(noisy[name][..., others].shape)
    np.testing.assert_array_equal(
        project(layer, noisy, net["w1"], net["w2"], filters=[3]),
        project(layer, activations(net), net["w1"], net["w2"], filters=[3]),
    )


def test_unknown_layer_raises_value_error_naming_the_projectable_layers(net):
    with pytest.raises(ValueError) as err:
        project("dense", activations(net), net["w1"], net["w2"])
    assert all(layer in str(err.value) for layer in PROJECTABLE_LAYERS)


@pytest.mark.parametrize("filters", [[64], [-1]])
def test_a_filter_index_outside_the_layer_raises_value_error(net, filters):
    with pytest.raises(ValueError):
        project("conv2", activations(net), net["w1"], net["w2"], filters=filters)


def test_projecting_pool_without_the_conv2_switches_raises_value_error(net):
    with pytest.raises(ValueError, match="conv2"):
        project("pool", {"pool": net["pool"]}, net["w1"], net["w2"])


def test_projecting_conv2_without_its_weights_raises_value_error(net):
    with pytest.raises(ValueError, match="w2"):
        project("conv2", activations(net), net["w1"])
