"""Shared test helpers: synthetic LMDBs and the path of the caffe tool."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from ferlib.lmdb_io import write_lmdb

os.environ.setdefault("GLOG_minloglevel", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def synthetic_images(count: int, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two easy classes of uint8 images: label 0 bright on the left half, 1 on the right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = rng.integers(0, 60, (count, size, size)).astype(np.uint8)
    for image, label in zip(images, labels):
        image[:, (size // 2) * label : (size // 2) * (label + 1)] += 150
    return images, labels


@pytest.fixture
def synthetic_lmdb(tmp_path: Path) -> Path:
    """A 64-record LMDB of synthetic_images, keys in order."""
    images, labels = synthetic_images(64)
    path = tmp_path / "train_lmdb"
    write_lmdb(path, ((f"{i:08d}", image, label) for i, (image, label) in enumerate(zip(images, labels))))
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run that may include the Caffe tests needs the build: it fails at once rather than
    skipping the modules that importorskip pycaffe."""
    if "not caffe" not in (session.config.getoption("markexpr") or ""):
        try:
            import caffe  # noqa: F401
        except ImportError as error:
            raise pytest.UsageError(f"pycaffe is missing ({error}): run 'make install', or make test-fast") from error


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use pycaffe or the caffe tool are marked `caffe`: make test-fast leaves them
    out (-m "not caffe"), make test runs them after the build."""
    for item in items:
        if {"pycaffe", "caffe_tool"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.caffe)


@pytest.fixture(scope="session")
def pycaffe() -> object:
    """The built pycaffe module (make install links it into .venv)."""
    import caffe

    caffe.set_mode_cpu()
    return caffe


@pytest.fixture(scope="session")
def caffe_tool() -> str:
    """The caffe command-line tool that `make install` links into .venv/bin."""
    tool = Path(sys.executable).parent / "caffe"
    if not tool.exists():
        tool = shutil.which("caffe")
    assert tool, "the caffe tool is missing: run 'make install'"
    return str(tool)
