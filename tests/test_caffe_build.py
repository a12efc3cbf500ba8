"""The Caffe build: pycaffe imports in CPU mode, a tiny net trains with both the caffe tool
and pycaffe's solver, snapshots resume, and the build script's second run is a no-op."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

caffe = pytest.importorskip("caffe")  # make test-fast runs without the build; conftest insists on it in make test
pytestmark = pytest.mark.caffe

ROOT = Path(__file__).resolve().parent.parent
LOGGING = {**os.environ, "GLOG_minloglevel": "0"}  # the caffe tool's log is what these tests read

TINY_NET = """name: "tiny"
layer {{ name: "data" type: "Data" top: "data" top: "label"
  transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{source}" batch_size: 16 backend: LMDB }} }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param {{ num_output: 4 kernel_size: 3 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
layer {{ name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
  inner_product_param {{ num_output: 2 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
"""

TINY_SOLVER = """net: "{net}"
base_lr: 0.05
momentum: 0.9
lr_policy: "fixed"
max_iter: {max_iter}
display: 1
snapshot: 20
snapshot_prefix: "{prefix}"
solver_mode: CPU
random_seed: 1
"""


def write_tiny(tmp_path: Path, lmdb_path: Path, max_iter: int) -> Path:
    """Write the tiny net and its solver; returns the solver path."""
    net = tmp_path / "net.prototxt"
    net.write_text(TINY_NET.format(source=lmdb_path))
    solver = tmp_path / "solver.prototxt"
    solver.write_text(TINY_SOLVER.format(net=net, max_iter=max_iter, prefix=tmp_path / "snap"))
    return solver


def test_pycaffe_imports_and_is_a_cpu_only_build(caffe_tool: str) -> None:
    caffe.set_mode_cpu()
    query = subprocess.run([caffe_tool, "device_query", "-gpu", "0"], capture_output=True, text=True)
    assert query.returncode != 0
    assert "CPU-only" in query.stderr


def test_caffe_tool_trains_and_resumes_from_a_snapshot(tmp_path: Path, synthetic_lmdb: Path, caffe_tool: str) -> None:
    solver = write_tiny(tmp_path, synthetic_lmdb, max_iter=40)
    first = subprocess.run(
        [caffe_tool, "train", f"-solver={solver}"], capture_output=True, text=True, check=True, env=LOGGING
    )
    losses = [float(v) for v in re.findall(r"Iteration \d+ .*?loss = ([\d.e+-]+)", first.stderr)]
    assert len(losses) >= 30
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert (tmp_path / "snap_iter_20.solverstate").exists()
    assert (tmp_path / "snap_iter_40.caffemodel").exists()

    # Resume from iteration 20 with a longer schedule: Caffe restores the iteration count.
    solver.write_text(solver.read_text().replace("max_iter: 40", "max_iter: 50"))
    snapshot = tmp_path / "snap_iter_20.solverstate"
    resumed = subprocess.run(
        [caffe_tool, "train", f"-solver={solver}", f"-snapshot={snapshot}"],
        capture_output=True,
        text=True,
        check=True,
        env=LOGGING,
    )
    iterations = [int(v) for v in re.findall(r"Iteration (\d+) \(.*\), loss", resumed.stderr)]
    assert "Resuming from" in resumed.stderr
    assert iterations[0] == 20
    assert iterations[-1] >= 49
    assert (tmp_path / "snap_iter_50.caffemodel").exists()


def test_pycaffe_solver_trains(tmp_path: Path, synthetic_lmdb: Path) -> None:
    caffe.set_mode_cpu()
    solver = caffe.SGDSolver(str(write_tiny(tmp_path, synthetic_lmdb, max_iter=40)))
    losses = []
    for _ in range(40):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert solver.iter == 40


def test_build_script_second_run_is_a_no_op() -> None:
    script = ROOT / "scripts" / "build_caffe.sh"
    key = subprocess.run([script, "--key", sys.executable], capture_output=True, text=True, check=True)
    prefix = key.stdout.strip()
    log = Path(prefix + ".log")
    before = log.stat().st_mtime_ns
    run = subprocess.run([script, sys.executable], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == prefix
    assert "building" not in run.stderr
    assert (Path(prefix) / ".complete").exists()
    assert log.stat().st_mtime_ns == before
