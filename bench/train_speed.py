"""Training speed of the reference net, Caffe against PyTorch on the same CPU.

    python bench/train_speed.py [--data data/fer2013]

Both run the reference FaceEmotionNet (prototxt/fer_reference) on one fixed random batch of
64 x 1x42x42:
real SGD steps (forward, backward, momentum + weight-decay update), after a warm-up, the
median of several timed runs, with 1 and 2 threads (each measurement in a fresh process,
since thread counts are fixed when the libraries load). With --data, Caffe is also timed
on the real LMDB input (mirror + random crop + mean), as make train runs it. Writes
bench/results/train_speed.json. PyTorch is only needed here: pip install torch==2.13.0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCH, STEPS, RUNS, WARMUP = 64, 20, 5, 5
# Fixed random input, set once through pycaffe, as PyTorch gets one fixed tensor.
FIXED_INPUT = """layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 64 dim: 1 dim: 42 dim: 42 } shape { dim: 64 } } }
"""


def median_step_seconds(step) -> float:
    """Median over RUNS of the mean time of one step in a run of STEPS, after WARMUP steps."""
    for _ in range(WARMUP):
        step()
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(STEPS):
            step()
        runs.append((time.perf_counter() - start) / STEPS)
    return statistics.median(runs)


def caffe_worker(data: Path | None) -> float:
    """Seconds per SGD step of the reference net in Caffe (fixed input, or the LMDB of data)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe
    from google.protobuf import text_format

    from train.run import write_net

    caffe.set_mode_cpu()
    tmp = Path(tempfile.mkdtemp())
    source = ROOT / "prototxt/fer_reference/train_val.prototxt"
    if data is not None:
        write_net(source, tmp / "net.prototxt", data, 97)
    else:
        net = text_format.Parse(source.read_text(), caffe.proto.caffe_pb2.NetParameter())
        layers = [layer for layer in net.layer if layer.type != "Data" and layer.name != "accuracy"]
        del net.layer[:]
        net.layer.extend(text_format.Parse(FIXED_INPUT, caffe.proto.caffe_pb2.NetParameter()).layer)
        net.layer.extend(layers)
        (tmp / "net.prototxt").write_text(text_format.MessageToString(net))
    (tmp / "solver.prototxt").write_text(
        f'net: "{tmp / "net.prototxt"}"\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\n'
        'lr_policy: "fixed"\nmax_iter: 100000\nsolver_mode: CPU\ntest_initialization: false\n'
    )
    solver = caffe.SGDSolver(str(tmp / "solver.prototxt"))
    if data is None:
        rng = np.random.default_rng(0)
        solver.net.blobs["data"].data[...] = rng.normal(0, 50, solver.net.blobs["data"].data.shape)
        solver.net.blobs["label"].data[...] = rng.integers(0, 7, BATCH)
    return median_step_seconds(lambda: solver.step(1))


def torch_worker() -> float:
    """Seconds per SGD step of the same net in PyTorch."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, kernel: int, pad: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, kernel, padding=pad),
            nn.BatchNorm2d(cout, affine=False),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        ]

    net = nn.Sequential(
        *block(1, 32, 5, 2),
        *block(32, 32, 4, 1),
        *block(32, 64, 5, 2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 2048),
        nn.ReLU(),
        nn.Dropout(0.4),
        nn.Linear(2048, 1024),
        nn.ReLU(),
        nn.Dropout(0.4),
        nn.Linear(1024, 7),
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images, labels = torch.randn(BATCH, 1, 42, 42) * 50, torch.full((BATCH,), 3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(net(images), labels).backward()
        optimizer.step()

    return median_step_seconds(step)


def caffe_build_folder() -> str:
    """The cached Caffe build that the project's .venv imports."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe

    return str(Path(caffe.__file__).resolve().parents[3])


def measure(kind: str, threads: int, data: Path | None = None, caffe_build: Path | None = None) -> float:
    """Run one worker in a fresh process with the given thread count (and another Caffe build's
    pycaffe first on the path, for a before/after comparison)."""
    env = {
        **os.environ,
        **({"PYTHONPATH": str(caffe_build / "src" / "python")} if caffe_build else {}),
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    command = [sys.executable, __file__, "--worker", kind, "--threads", str(threads)]
    if data is not None:
        command += ["--data", str(data)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a preprocessed dataset, to time Caffe on its real LMDB too")
    parser.add_argument(
        "--baseline", type=Path, help="another cached Caffe build (for example the unpatched one) to time as well"
    )
    parser.add_argument("--worker", choices=("caffe", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "torch":
            import torch

            torch.set_num_threads(args.threads)
        print(caffe_worker(args.data) if args.worker == "caffe" else torch_worker())
        return
    from bench.common import write_results

    results: dict = {
        "caffe_build": caffe_build_folder(),
        "baseline_build": str(args.baseline) if args.baseline else None,
        "net": "prototxt/fer_reference (FaceEmotionNet)",
        "batch": BATCH,
        "steps_per_run": STEPS,
        "runs": RUNS,
        "warmup_steps": WARMUP,
    }
    try:
        import torch

        results["torch"] = torch.__version__
    except ImportError:
        results["torch"] = None
    train_images = 28709
    for threads in (1, 2):
        caffe_s = measure("caffe", threads)
        row = {"caffe_ms_per_step": round(1000 * caffe_s, 1), "caffe_images_per_s": round(BATCH / caffe_s)}
        if results["torch"]:
            torch_s = measure("torch", threads)
            row.update(
                {
                    "torch_ms_per_step": round(1000 * torch_s, 1),
                    "torch_images_per_s": round(BATCH / torch_s),
                    "caffe_over_torch": round(torch_s / caffe_s, 2),
                }
            )
        if args.data is not None:
            lmdb_s = measure("caffe", threads, args.data)
            row["caffe_lmdb_images_per_s"] = round(BATCH / lmdb_s)
            row["projected_150_epochs_hours"] = round(150 * train_images / (BATCH / lmdb_s) / 3600, 2)
        if args.baseline is not None:
            baseline_s = measure("caffe", threads, caffe_build=args.baseline)
            row["baseline_caffe_images_per_s"] = round(BATCH / baseline_s)
            if results["torch"]:
                row["baseline_caffe_over_torch"] = round(torch_s / baseline_s, 2)
        results[f"threads_{threads}"] = row
        print(json.dumps({f"threads_{threads}": row}), file=sys.stderr)
    write_results("train_speed", results)


if __name__ == "__main__":
    main()
