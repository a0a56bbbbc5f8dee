"""Deconvnet projections of feature maps back to pixel space (Zeiler & Fergus 2014).

Layout follows Keras: activations are channels-last (H,W,C), kernels are HWIO
(kh,kw,Cin,Cout), and convolutions are stride-1 "valid" cross-correlations. The
network is conv1 (26,26,32) -> conv2 (24,24,64) -> pool (12,12,64) on 28x28x1
inputs; a projection reverses it with unpooling (switches), rectification and
transposed convolution with the layer's own weights, biases left out.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# The activations each projectable layer's projection needs (pool unpools with the switches of conv2).
PROJECTION_INPUTS = {"conv1": ["conv1"], "conv2": ["conv2"], "pool": ["pool", "conv2"]}
PROJECTABLE_LAYERS = tuple(PROJECTION_INPUTS)


def conv_transpose(maps: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Adjoint of a stride-1 valid cross-correlation, without bias.

    maps (...,H,W,Cout) and kernel (kh,kw,Cin,Cout) give (...,H+kh-1,W+kw-1,Cin);
    any leading batch axes pass through. Loops over the kh*kw kernel taps only:
    each tap scatters one matrix product into a shifted window of the output.
    """
    x = np.asarray(maps)
    k = np.asarray(kernel)
    if x.ndim < 3 or k.ndim != 4 or x.shape[-1] != k.shape[3]:
        raise ValueError(f"maps (...,H,W,Cout) and kernel (kh,kw,Cin,Cout) disagree: {x.shape}, {k.shape}")
    kh, kw, cin, _ = k.shape
    h, w = x.shape[-3:-1]
    out = np.zeros((*x.shape[:-3], h + kh - 1, w + kw - 1, cin), dtype=np.result_type(x, k, np.float32))
    for a in range(kh):
        for b in range(kw):
            out[..., a : a + h, b : b + w, :] += np.tensordot(x, k[a, b], axes=([-1], [1]))
    return out


def max_unpool(pooled: np.ndarray, pre_pool: np.ndarray, size: int = 2) -> np.ndarray:
    """Zeiler-Fergus unpooling: put each pooled value where its window's maximum was.

    pooled (...,h,w,C) and the pre-pool activations pre_pool (...,H,W,C) of the same
    forward pass, with h = H // size and w = W // size; returns pre_pool's shape.
    The "switch" of a window is the first maximum in row-major window order (as in
    Keras and ONNX MaxPool); every other position is zero. Trailing rows/columns
    that valid pooling ignored (odd sizes) stay zero.
    """
    p = np.asarray(pooled)
    x = np.asarray(pre_pool)
    if x.ndim < 3:
        raise ValueError(f"pre_pool must be (...,H,W,C), got shape {x.shape}")
    h, w = x.shape[-3] // size, x.shape[-2] // size
    if p.shape != (*x.shape[:-3], h, w, x.shape[-1]):
        raise ValueError(f"pooled {p.shape} is not a {size}x{size} valid pooling of pre_pool {x.shape}")
    out = np.zeros(x.shape, dtype=np.result_type(p, np.float32))
    taps = [(a, b) for a in range(size) for b in range(size)]  # row-major window order

    def tap(array: np.ndarray, a: int, b: int) -> np.ndarray:
        """The units at offset (a, b) of every window, a strided view (h, w) of the valid part."""
        return array[..., a : h * size : size, b : w * size : size, :]

    top = tap(x, *taps[0])
    for a, b in taps[1:]:
        top = np.maximum(top, tap(x, a, b))
    unclaimed = np.ones(top.shape, dtype=bool)
    for a, b in taps:  # each window's first unit equal to its maximum is its switch
        switch = unclaimed & (tap(x, a, b) == top)
        tap(out, a, b)[...] = np.where(switch, p, 0)
        unclaimed &= ~switch
    return out


def _isolated_conv_transpose(maps: np.ndarray, filters: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Batch of conv_transpose results, item f keeping only channel filters[f] of maps.

    Equals building the (F,H,W,C) batch with a diagonal mask and calling
    conv_transpose, without the C-fold wasted work on zeros: a transposed
    convolution is a full cross-correlation with the kernel rotated by 180 degrees,
    so with one channel per item it is one batched product of each map's
    zero-padded kh x kw windows with that filter's rotated kernel slice.
    """
    if maps.ndim != 3 or kernel.ndim != 4 or maps.shape[-1] != kernel.shape[3]:
        raise ValueError(f"maps (H,W,C) and kernel (kh,kw,Cin,C) disagree: {maps.shape}, {kernel.shape}")
    kh, kw, cin, _ = kernel.shape
    x = np.moveaxis(maps[..., filters], -1, 0)
    padded = np.pad(x, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))
    f, h, w = windows.shape[:3]
    rotated = np.moveaxis(kernel[::-1, ::-1][..., filters], -1, 0).reshape(f, kh * kw, cin)
    return (windows.reshape(f, h * w, kh * kw) @ rotated).reshape(f, h, w, cin)


def _filter_indices(filters: Sequence[int] | None, count: int) -> np.ndarray:
    """Validate filter indices against a layer with `count` filters; None means all."""
    if filters is None:
        return np.arange(count)
    idx = np.asarray(filters, dtype=np.intp).reshape(-1)
    bad = idx[(idx < 0) | (idx >= count)]
    if bad.size:
        raise ValueError(f"filter index {int(bad[0])} out of range for a layer with {count} filters")
    return idx


def _activation(activations: Mapping[str, np.ndarray], name: str, layer: str) -> np.ndarray:
    """Fetch one layer's activations, explaining which ones a projection needs."""
    if name not in activations:
        raise ValueError(f"projecting {layer!r} needs the {name!r} activations")
    return np.asarray(activations[name])


def project(
    layer: str,
    activations: Mapping[str, np.ndarray],
    w1: np.ndarray,
    w2: np.ndarray | None = None,
    filters: Sequence[int] | None = None,
) -> np.ndarray:
    """Project feature maps of `layer` to pixel space, one image per selected filter.

    For each filter k only map k is kept and walked back to the input: conv1 via
    conv_transpose(w1); conv2 via conv_transpose(w2), ReLU, conv_transpose(w1);
    pool first unpools with the switches from the conv2 activations. `activations`
    maps layer names to one image's maps ("conv1", "conv2", "pool"); `filters`
    defaults to all. Returns (len(filters), 28, 28), all filters in one pass (the
    input is grayscale, so its single channel axis is dropped).
    """
    if layer not in PROJECTABLE_LAYERS:
        raise ValueError(f"cannot project layer {layer!r}; choose one of {', '.join(PROJECTABLE_LAYERS)}")
    maps = _activation(activations, layer, layer)
    idx = _filter_indices(filters, maps.shape[-1])
    w1 = np.asarray(w1)
    if layer == "conv1":
        return _isolated_conv_transpose(maps, idx, w1)[..., 0]
    if w2 is None:
        raise ValueError(f"projecting {layer!r} needs the conv2 weights w2")
    if layer == "pool":
        maps = max_unpool(maps, _activation(activations, "conv2", layer))
    below = np.maximum(_isolated_conv_transpose(maps, idx, np.asarray(w2)), 0)
    return conv_transpose(below, w1)[..., 0]


def deconv_conv1(conv1_maps: np.ndarray, k: int, w1: np.ndarray) -> np.ndarray:
    """Project conv1 feature map k (26,26,32) to a (28,28) input-space image."""
    return project("conv1", {"conv1": conv1_maps}, w1, filters=[k])[0]


def deconv_conv2(conv2_maps: np.ndarray, k: int, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Project conv2 feature map k (24,24,64) to a (28,28) input-space image."""
    return project("conv2", {"conv2": conv2_maps}, w1, w2, filters=[k])[0]


def deconv_pool(pool_maps: np.ndarray, conv2_maps: np.ndarray, k: int, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Project pooled map k (12,12,64) to (28,28), unpooling with conv2's switches."""
    return project("pool", {"pool": pool_maps, "conv2": conv2_maps}, w1, w2, filters=[k])[0]
