"""The augmentation fields of transform_param (scripts/caffe-patches/0004): each step against
an OpenCV/NumPy reference of what its documentation says, the random draws within their
ranges and spread over them, TEST phase untouched, reproducible under the seed, encoded
datums like raw ones, bad values refused at set-up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest

from ferlib import caffe_proto
from ferlib.lmdb_io import write_lmdb

caffe = pytest.importorskip("caffe")  # make test-fast runs without the build; conftest insists on it in make test
pytestmark = pytest.mark.caffe
SIZE = 32
BATCH = 24


def smooth_images(count: int, low: int = 60, high: int = 190, channels: int = 1, seed: int = 3) -> np.ndarray:
    """Blurred noise with strong gradients everywhere, so that a warp is identifiable."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(count, channels, SIZE, SIZE)).astype(np.float32)
    blurred = np.stack([[cv2.GaussianBlur(plane, (0, 0), 2.5) for plane in image] for image in noise])
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (low + (high - low) * blurred).round().astype(np.uint8)


def data_net(tmp_path: Path, images: np.ndarray, transform: str, phase: str = "TRAIN", seed: int = 5) -> np.ndarray:
    """One batch of a Data layer over an LMDB of images with the given transform_param."""
    source = tmp_path / f"lmdb{len(list(tmp_path.glob('lmdb*')))}"
    write_lmdb(source, ((f"{i:08d}", image, i) for i, image in enumerate(images)))
    return run_data_layer(tmp_path, source, transform, phase, seed)


def run_data_layer(tmp_path: Path, source: Path, transform: str, phase: str = "TRAIN", seed: int = 5) -> np.ndarray:
    net_file = tmp_path / f"net{len(list(tmp_path.glob('net*')))}.prototxt"
    net_file.write_text(
        f'layer {{ name: "data" type: "Data" top: "data" top: "label" transform_param {{ {transform} }}\n'
        f'  data_param {{ source: "{source}" batch_size: {BATCH} backend: LMDB }} }}\n'
    )
    caffe.set_mode_cpu()
    caffe.set_random_seed(seed)
    net = caffe.Net(str(net_file), getattr(caffe, phase))
    net.forward()
    return net.blobs["data"].data.copy()


def warp(image: np.ndarray, angle: float = 0.0, zoom: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """What the documentation says the warp does, with OpenCV: about the centre, borders reflected."""
    matrix = cv2.getRotationMatrix2D(((SIZE - 1) / 2, (SIZE - 1) / 2), angle, zoom)
    matrix[:, 2] += (dx, dy)
    planes = [
        cv2.warpAffine(
            p.astype(np.float32), matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        for p in image
    ]
    return np.stack(planes)


def fit(output: np.ndarray, model: Callable[[float], np.ndarray], low: float, high: float) -> tuple[float, float]:
    """The parameter in [low - margin, high + margin] whose model is closest to output (a
    grid, then ternary search), and the mean pixel difference left. (The largest can be a
    fraction of a grey level: OpenCV rounds warped coordinates to 1/32 pixel, so a parameter
    a hair away from Caffe's moves the odd pixel across a rounding boundary.)"""
    margin = 0.25 * (high - low)
    grid = np.linspace(low - margin, high + margin, 241)
    errors = [np.abs(model(v) - output).mean() for v in grid]
    best = int(np.argmin(errors))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    for _ in range(40):
        m1, m2 = a + (b - a) / 3, b - (b - a) / 3
        if np.abs(model(m1) - output).mean() < np.abs(model(m2) - output).mean():
            b = m2
        else:
            a = m1
    value = (a + b) / 2
    return value, float(np.abs(model(value) - output).mean())


@pytest.mark.parametrize(
    ("transform", "low", "high", "model"),
    [
        ("rotate_degrees: 20", -20, 20, lambda image, v: warp(image, angle=v)),
        ("zoom_min: 0.8 zoom_max: 1.25", 0.8, 1.25, lambda image, v: warp(image, zoom=v)),
    ],
    ids=["rotation", "zoom"],
)
def test_warp_matches_opencv_and_covers_its_range(
    tmp_path: Path, transform: str, low: float, high: float, model
) -> None:
    images = smooth_images(BATCH)
    out = data_net(tmp_path, images, transform)
    values = []
    for image, output in zip(images, out):
        value, error = fit(output, lambda v, image=image: model(image, v), low, high)
        assert error < 0.02, f"no {transform} warp reproduces the output (mean error {error:.4f})"
        assert low - 1e-3 <= value <= high + 1e-3
        values.append(value)
    spread = high - low
    assert min(values) < low + 0.25 * spread and max(values) > high - 0.25 * spread, values


def test_shift_matches_opencv_on_each_axis(tmp_path: Path) -> None:
    images = smooth_images(BATCH)
    out = data_net(tmp_path, images, "shift: 0.125")
    limit = 0.125 * SIZE
    shifts = []
    grid = np.linspace(-limit, limit, 17)
    for image, output in zip(images, out):
        errors = {(x, y): np.abs(warp(image, dx=x, dy=y) - output).mean() for x in grid for y in grid}
        dx, dy = min(errors, key=errors.get)
        for _ in range(3):  # coordinate descent from the nearest grid point
            dx, _ = fit(output, lambda v, image=image, dy=dy: warp(image, dx=v, dy=dy), dx - 1, dx + 1)
            dy, error = fit(output, lambda v, image=image, dx=dx: warp(image, dx=dx, dy=v), dy - 1, dy + 1)
        assert error < 0.02, f"no shift reproduces the output (mean error {error:.4f})"
        assert abs(dx) <= limit + 1e-3 and abs(dy) <= limit + 1e-3
        shifts.append((dx, dy))
    shifts = np.array(shifts)
    assert (shifts.min(axis=0) < -limit / 2).all() and (shifts.max(axis=0) > limit / 2).all()


def test_contrast_and_brightness_are_one_affine_map_about_the_mean(tmp_path: Path) -> None:
    images = smooth_images(BATCH, channels=3)
    out = data_net(tmp_path, images, "contrast: 0.3 brightness: 20")
    gains = []
    for image, output in zip(images.astype(np.float64), out):
        mean = image.mean()
        gain, intercept = np.polyfit((image - mean).ravel(), output.ravel(), 1)
        offset = intercept - mean
        assert np.abs((image - mean) * gain + mean + offset - output).max() < 1e-3
        assert 0.7 - 1e-6 <= gain <= 1.3 + 1e-6 and abs(offset) <= 20 + 1e-4
        gains.append(gain)
    assert min(gains) < 0.9 and max(gains) > 1.1


def test_brightness_clips_uint8_images(tmp_path: Path) -> None:
    out = data_net(tmp_path, smooth_images(BATCH, low=150, high=250), "brightness: 120")
    assert out.max() == 255 and out.min() >= 0
    assert (out == 255).any(axis=(1, 2, 3)).sum() > 0


@pytest.mark.parametrize("mean", ["mean_value: 40", "mean_file"])
def test_erasing_sets_one_rectangle_to_the_mean(tmp_path: Path, mean: str) -> None:
    images = smooth_images(BATCH)
    mean_image = np.full((1, SIZE, SIZE), 40.0, np.float32)
    if mean == "mean_file":
        mean_image += np.linspace(0, 10, SIZE, dtype=np.float32)[None, None, :]
        (tmp_path / "mean.binaryproto").write_bytes(caffe_proto.blob_proto(mean_image))
        mean = f'mean_file: "{tmp_path / "mean.binaryproto"}"'
    out = data_net(
        tmp_path, images, f"{mean} erase_probability: 1 erase_area_min: 0.1 erase_area_max: 0.2 erase_aspect: 2"
    )
    for image, output in zip(images, out):
        erased = output[0] == 0
        assert np.allclose(output[0][~erased], (image[0] - mean_image[0])[~erased])
        rows, cols = np.nonzero(erased)
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert erased.sum() == height * width, "the erased pixels are not one rectangle"
        assert 0.1 * SIZE * SIZE - 2 * SIZE <= height * width <= 0.2 * SIZE * SIZE + 2 * SIZE
        assert 1 / 2 - 0.15 <= height / width <= 2 + 0.15


def test_erase_probability_is_the_fraction_of_erased_images(tmp_path: Path) -> None:
    images = smooth_images(BATCH, seed=4)
    erased = 0
    for seed in range(4):
        out = data_net(tmp_path, images, "mean_value: 40 erase_probability: 0.5", seed=seed)
        erased += int(((out == 0).sum(axis=(1, 2, 3)) > 0).sum())
    assert 0.3 * 4 * BATCH <= erased <= 0.7 * 4 * BATCH


EVERYTHING = (
    "mirror: true crop_size: 28 mean_value: 100 rotate_degrees: 15 zoom_min: 0.9 zoom_max: 1.1 shift: 0.1 "
    "contrast: 0.2 brightness: 10 erase_probability: 0.5"
)


def test_the_test_phase_ignores_augmentation(tmp_path: Path) -> None:
    images = smooth_images(BATCH, channels=3)
    out = data_net(tmp_path, images, EVERYTHING, phase="TEST")
    centre = images[:, :, 2:30, 2:30].astype(np.float32) - 100
    for output, expected in zip(out, centre):  # Caffe mirrors at random in both phases
        assert np.array_equal(output, expected) or np.array_equal(output, expected[:, :, ::-1])


def test_the_seed_decides_the_draws(tmp_path: Path) -> None:
    images = smooth_images(BATCH)
    first, again, other = (data_net(tmp_path, images, EVERYTHING, seed=s) for s in (7, 7, 8))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert first.shape == (BATCH, 1, 28, 28)


def test_encoded_datums_are_augmented_like_raw_ones(tmp_path: Path) -> None:
    images = smooth_images(BATCH, channels=3)
    raw = data_net(tmp_path, images, EVERYTHING)
    encoded = tmp_path / "encoded_lmdb"
    with lmdb.open(str(encoded), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for i, image in enumerate(images):
            datum = caffe.proto.caffe_pb2.Datum(channels=3, height=SIZE, width=SIZE, label=i, encoded=True)
            datum.data = cv2.imencode(".png", image.transpose(1, 2, 0))[1].tobytes()
            txn.put(f"{i:08d}".encode(), datum.SerializeToString())
    assert np.array_equal(run_data_layer(tmp_path, encoded, EVERYTHING), raw)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        ("zoom_min: 1.2 zoom_max: 1.1", "zoom_min must be <= zoom_max"),
        ("shift: 1.5", "shift must be in [0, 1)"),
        ("rotate_degrees: -3", "rotate_degrees must be >= 0"),
        ("erase_area_min: 0.5 erase_area_max: 0.2", "erase_area_min <= erase_area_max"),
        ("contrast: 2", "contrast must be in [0, 1]"),
    ],
)
def test_bad_values_are_refused_at_set_up(tmp_path: Path, transform: str, message: str) -> None:
    source = tmp_path / "lmdb"
    write_lmdb(source, ((f"{i:08d}", image, 0) for i, image in enumerate(smooth_images(4))))
    script = (
        "import sys, caffe; sys.path.insert(0, sys.argv[1]); from test_caffe_augment import run_data_layer; "
        "from pathlib import Path; run_data_layer(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path), str(source), transform],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr
