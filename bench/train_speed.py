"""Training speed of every net in prototxt/: Caffe with the oneDNN engine, Caffe with the CAFFE
engine, and PyTorch on the same net (bench/torch_twin.py reads it from the prototxt), side by
side on this CPU.

    python bench/train_speed.py [--data data/fer2013] [--nets fer_vgg ...] [--threads 1 2]

Each figure is real SGD steps (forward, backward, momentum + weight-decay update) of batch 64
on one fixed random input, the median of RUNS runs of STEPS steps after WARMUP steps, in a
fresh process with the given thread count (thread pools are fixed when libraries load).
The engines run from one build: CAFFE_ENGINE=CAFFE makes the CAFFE engine the default. With
--data, Caffe is also timed on the real LMDB input (mirror + random crop + mean), as make
train runs it. The configurations are measured in turn, ROUNDS times, and every ratio is the
median of its per-round ratios (this shared machine drifts by more than the differences
measured). Also recorded, per net: each process's peak memory, the CPU model, its vector
instruction set, and the kernels oneDNN picked. Writes bench/results/train_speed.json, where
the nets not measured this time keep their rows (each with the machine it was measured on).
PyTorch is only needed here (make bench-train installs torch==2.13.0).
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

from bench import torch_twin  # noqa: E402

BATCH, STEPS, RUNS, WARMUP = 64, 10, 5, 5
ROUNDS = 3  # every configuration measured in turn, ROUNDS times: ratios are medians over rounds
NETS = tuple(sorted(path.parent.name for path in (ROOT / "prototxt").glob("*/train_val.prototxt")))


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


def peak_rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


def caffe_worker(net_name: str, data: Path | None) -> float:
    """Seconds per SGD step of a net in Caffe (fixed input, or the LMDB of data)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe
    from google.protobuf import text_format

    from train.run import write_net

    caffe.set_mode_cpu()
    tmp = Path(tempfile.mkdtemp())
    source = ROOT / f"prototxt/{net_name}/train_val.prototxt"
    if data is not None:
        write_net(source, tmp / "net.prototxt", data, 97)
    else:
        side = torch_twin.crop_size(net_name)
        fixed = (
            f'layer {{ name: "data" type: "Input" top: "data" top: "label" '
            f"input_param {{ shape {{ dim: {BATCH} dim: 1 dim: {side} dim: {side} }} shape {{ dim: {BATCH} }} }} }}"
        )
        net = text_format.Parse(source.read_text(), caffe.proto.caffe_pb2.NetParameter())
        layers = [layer for layer in net.layer if layer.type != "Data" and layer.name != "accuracy"]
        del net.layer[:]
        net.layer.extend(text_format.Parse(fixed, caffe.proto.caffe_pb2.NetParameter()).layer)
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


def torch_worker(twin: list[torch_twin.Layer], side: int) -> float:
    """Seconds per SGD step of the same net in PyTorch."""
    import torch
    from torch import nn

    net = torch_twin.build(twin)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images, labels = torch.randn(BATCH, 1, side, side) * 50, torch.randint(0, 7, (BATCH,))
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(net(images), labels).backward()
        optimizer.step()

    return median_step_seconds(step)


def measure(kind: str, net: str, threads: int, data: Path | None = None, env: dict | None = None) -> dict:
    """One worker in a fresh process: images/s and peak memory."""
    environment = {
        **os.environ,
        **(env or {}),
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    command = [sys.executable, __file__, "--worker", kind, "--net", net, "--threads", str(threads)]
    if data is not None:
        command += ["--data", str(data)]
    if kind == "torch":  # the twin as records: reading the prototxt would load Caffe into the process
        command += ["--twin", torch_twin.to_json(torch_twin.layers(net)), "--side", str(torch_twin.crop_size(net))]
    out = subprocess.run(command, env=environment, capture_output=True, text=True, check=True).stdout
    seconds, rss = (float(v) for v in out.strip().splitlines()[-1].split())
    return {
        "images_per_s": round(BATCH / seconds, 1),
        "ms_per_step": round(1000 * seconds, 1),
        "peak_rss_mb": round(rss),
    }


def rounds(net: str, threads: int, data: Path | None, with_torch: bool) -> dict:
    """ROUNDS rounds of every configuration one after the other; each ratio is the median of
    its per-round ratios, since this shared machine drifts between rounds by more than the
    differences measured (the first round's figures are kept as the row's examples)."""
    configurations = {"dnnl": {}, "caffe_engine": {"env": {"CAFFE_ENGINE": "CAFFE"}}}
    if with_torch:
        configurations["torch"] = {"kind": "torch"}
    if data is not None:
        configurations["dnnl_lmdb"] = {"data": data}
    measured = [
        {
            name: measure(how.get("kind", "caffe"), net, threads, how.get("data"), how.get("env"))
            for name, how in configurations.items()
        }
        for _ in range(ROUNDS)
    ]
    row = dict(measured[0])
    for name in configurations:
        row[f"{name}_images_per_s_rounds"] = [m[name]["images_per_s"] for m in measured]

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(m[a]["images_per_s"] / m[b]["images_per_s"] for m in measured), 2)

    row["dnnl_over_caffe_engine"] = ratio("dnnl", "caffe_engine")
    if with_torch:
        row["dnnl_over_torch"] = ratio("dnnl", "torch")
        row["caffe_engine_over_torch"] = ratio("caffe_engine", "torch")
    if data is not None:
        row["lmdb_over_fixed"] = ratio("dnnl_lmdb", "dnnl")
    return row


def onednn_kernels(net: str) -> list[str]:
    """The implementations oneDNN picks for the net's convolutions (ONEDNN_VERBOSE)."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "OMP_NUM_THREADS": "1", "GLOG_minloglevel": "2"}
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['x'];"
        f"from bench.train_speed import caffe_worker, median_step_seconds; import bench.train_speed as b;"
        f"b.WARMUP, b.RUNS, b.STEPS = 1, 1, 1; caffe_worker({net!r}, None)"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout
    return sorted({line.split(",")[4] for line in out.splitlines() if ",exec,cpu,convolution," in line})


def earlier_rows(path: Path) -> dict:
    """The rows of the nets measured before, kept beside this run's; a file that is not this
    benchmark's results stops the run before it measures for half an hour."""
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text())["nets"])
    except (ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"{path}: not this benchmark's results ({error!r}); move it aside") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a preprocessed dataset, to time Caffe on its real LMDB too")
    parser.add_argument("--nets", nargs="+", choices=NETS, default=list(NETS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--worker", choices=("caffe", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--net", choices=NETS, help=argparse.SUPPRESS)
    parser.add_argument("--twin", type=torch_twin.from_json, help=argparse.SUPPRESS)
    parser.add_argument("--side", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "torch":
            import torch

            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        seconds = caffe_worker(args.net, args.data) if args.worker == "caffe" else torch_worker(args.twin, args.side)
        print(seconds, peak_rss_mb())
        return
    from bench.common import RESULTS, machine, vector_isa, write_results

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    results: dict = {
        "batch": BATCH,
        "steps_per_run": STEPS,
        "runs": RUNS,
        "warmup_steps": WARMUP,
        "rounds": ROUNDS,
        "nets": earlier_rows(RESULTS / "train_speed.json"),
    }
    isa = vector_isa()
    print(f"CPU vector instruction set: {isa}", file=sys.stderr)
    for net in args.nets:
        rows = {"machine": machine(), "vector_isa": isa, "torch": torch_version}
        rows["onednn_convolutions"] = onednn_kernels(net)
        for threads in args.threads:
            row = rounds(net, threads, args.data, torch_version is not None)
            rows[f"threads_{threads}"] = row
            print(json.dumps({net: {f"threads_{threads}": row}}), file=sys.stderr)
        results["nets"][net] = rows
    write_results("train_speed", results)


if __name__ == "__main__":
    main()
