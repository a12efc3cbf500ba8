"""Convolution, max pooling and ReLU of both CPU engines (CAFFE: the batch-parallel layers of
scripts/caffe-patches/0002; DNNL: the oneDNN layers of 0003) compute what Caffe's layers
compute: outputs and gradients against NumPy references, and finite differences in the style
of Caffe's gradient checker, on random inputs with more images than threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from caffe_nets import finite_difference_check, one_layer_net, run
from numpy.lib.stride_tricks import sliding_window_view

RNG = np.random.default_rng(11)
caffe = pytest.importorskip("caffe")  # make test-fast runs without the build; conftest insists on it in make test
pytestmark = pytest.mark.caffe
ENGINES = ["CAFFE", "DNNL"]  # patch 0002's batch-parallel layers, and patch 0003's oneDNN ones


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("kernel", "stride", "pad", "num_output"), [(5, 1, 2, 8), (4, 1, 1, 6), (3, 2, 0, 5)])
def test_convolution_matches_numpy(
    tmp_path: Path, kernel: int, stride: int, pad: int, num_output: int, engine: str
) -> None:
    shape = (7, 3, 11, 11)  # 7 images: uneven over the threads
    net = one_layer_net(
        tmp_path,
        shape,
        f"""layer {{ name: "conv" type: "Convolution" bottom: "data" top: "out"
  convolution_param {{ num_output: {num_output} kernel_size: {kernel} stride: {stride} pad: {pad}
    weight_filler {{ type: "gaussian" std: 0.3 }} bias_filler {{ type: "gaussian" std: 0.3 }} engine: {engine} }} }}""",
    )
    x = RNG.normal(size=shape).astype(np.float32)
    top_diff = run(net, x)
    weight, bias = (p.data.astype(np.float64) for p in net.params["conv"])
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    expected = np.einsum("nchwij,ocij->nohw", windows, weight) + bias[None, :, None, None]
    assert np.allclose(net.blobs["out"].data, expected, rtol=1e-4, atol=1e-4)

    dtop = top_diff.astype(np.float64)
    assert np.allclose(net.params["conv"][0].diff, np.einsum("nohw,nchwij->ocij", dtop, windows), rtol=1e-4, atol=1e-3)
    assert np.allclose(net.params["conv"][1].diff, dtop.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-3)
    dx = np.zeros_like(padded)
    out_h, out_w = expected.shape[2:]
    for i in range(kernel):
        for j in range(kernel):
            dx[:, :, i : i + stride * out_h : stride, j : j + stride * out_w : stride] += np.einsum(
                "nohw,oc->nchw", dtop, weight[:, :, i, j]
            )
    dx = dx[:, :, pad : pad + shape[2], pad : pad + shape[3]]
    assert np.allclose(net.blobs["data"].diff, dx, rtol=1e-4, atol=1e-4)
    finite_difference_check(net, x, top_diff)


def max_pool_reference(x: np.ndarray, kernel: int, stride: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Caffe's max pooling (ceil rounding, windows clipped to the image): output and argmax."""
    n, c, h, w = x.shape
    out_h = int(np.ceil((h + 2 * pad - kernel) / stride)) + 1
    out_w = int(np.ceil((w + 2 * pad - kernel) / stride)) + 1
    if pad and (out_h - 1) * stride >= h + pad:
        out_h -= 1
    if pad and (out_w - 1) * stride >= w + pad:
        out_w -= 1
    out = np.empty((n, c, out_h, out_w), x.dtype)
    argmax = np.empty((n, c, out_h, out_w), int)
    for ph in range(out_h):
        for pw in range(out_w):
            h0, w0 = ph * stride - pad, pw * stride - pad
            h1, w1 = min(h0 + kernel, h), min(w0 + kernel, w)
            h0, w0 = max(h0, 0), max(w0, 0)
            window = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            best = window.argmax(axis=2)  # the first maximum, as Caffe keeps it
            out[:, :, ph, pw] = window.max(axis=2)
            argmax[:, :, ph, pw] = (h0 + best // (w1 - w0)) * w + w0 + best % (w1 - w0)
    return out, argmax


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("kernel", "stride", "pad"), [(3, 2, 0), (2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pooling_matches_numpy(tmp_path: Path, kernel: int, stride: int, pad: int, engine: str) -> None:
    shape = (5, 3, 10, 9)
    net = one_layer_net(
        tmp_path,
        shape,
        f"""layer {{ name: "pool" type: "Pooling" bottom: "data" top: "out"
  pooling_param {{ pool: MAX kernel_size: {kernel} stride: {stride} pad: {pad} engine: {engine} }} }}""",
    )
    # Distinct values 0.1 apart: no two inputs tie, and the finite-difference steps never
    # change which input a window picks (no kinks).
    x = ((RNG.permutation(np.prod(shape)) - np.prod(shape) / 2) * 0.1).reshape(shape).astype(np.float32)
    top_diff = run(net, x)
    expected, argmax = max_pool_reference(x, kernel, stride, pad)
    assert net.blobs["out"].data.shape == expected.shape
    assert np.array_equal(net.blobs["out"].data, expected)
    dx = np.zeros(shape, np.float64).reshape(shape[0], shape[1], -1)
    for index in np.ndindex(argmax.shape):
        dx[index[0], index[1], argmax[index]] += top_diff[index]
    assert np.allclose(net.blobs["data"].diff, dx.reshape(shape), atol=1e-6)
    finite_difference_check(net, x, top_diff)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_relu_matches_numpy(tmp_path: Path, slope: float, engine: str) -> None:
    shape = (9, 4, 130, 130)  # large enough to be split over threads
    net = one_layer_net(
        tmp_path,
        shape,
        f"""layer {{ name: "relu" type: "ReLU" bottom: "data" top: "out"
  relu_param {{ negative_slope: {slope} engine: {engine} }} }}""",
    )
    x = RNG.normal(size=shape).astype(np.float32)
    top_diff = run(net, x)
    assert np.array_equal(net.blobs["out"].data, np.where(x > 0, x, np.float32(slope) * x))
    assert np.allclose(net.blobs["data"].diff, np.where(x > 0, top_diff, np.float32(slope) * top_diff), atol=1e-7)


def test_the_build_is_openmp_with_openblas_openmp() -> None:
    """Loaded into this process: OpenMP's runtime and OpenBLAS's OpenMP variant, not its pthread one."""
    maps = Path("/proc/self/maps").read_text()
    assert "libgomp" in maps
    assert "openblas-openmp/libopenblas" in maps
    assert "openblas-pthread/libopenblas" not in maps
