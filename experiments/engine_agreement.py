"""Compare the training runs of experiments/engine_agreement.sh: the oneDNN and CAFFE engines
with one seed, and the CAFFE engine with another seed as the yardstick of run-to-run noise.

The engines agree when the gap between them (training loss averaged per epoch, PublicTest
accuracy at each epoch) stays within the gap between two seeds of one engine: identical
seeds make the engines start and sample alike, but float rounding differs and grows through
training, so no closer agreement than that of honest reruns can be asked of them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ferlib import atomic  # noqa: E402
from train import plots  # noqa: E402
from train.caffe_log import parse  # noqa: E402


def curves(run: Path) -> dict:
    """Training loss averaged per epoch, PublicTest accuracy per epoch, images/s."""
    log = parse((run / "caffe.log").read_text())
    epoch = json.loads((run / "run.json").read_text())["schedule"]["epoch_iters"]
    iterations, losses = np.array(log.losses()).T
    epochs = (iterations // epoch).astype(int)
    by_epoch = [float(losses[epochs == e].mean()) for e in np.unique(epochs)]
    accuracy = [accuracy for _, accuracy in log.accuracies()]
    speed = round((log.iterations_per_second() or 0) * 64, 1)
    return {"loss_by_epoch": by_epoch, "val_accuracy": accuracy, "train": log.losses(), "images_per_s": speed}


def largest_gap(a: dict, b: dict, key: str) -> float:
    return float(np.max(np.abs(np.subtract(a[key], b[key]))))


def main() -> None:
    names = ("dnnl_seed1", "caffe_seed1", "caffe_seed2")
    runs = dict(zip(names, (curves(Path(p)) for p in sys.argv[1:4])))
    dnnl, caffe, reseeded = runs.values()
    result = {
        "runs": sys.argv[1:4],
        "engines_loss_gap": largest_gap(dnnl, caffe, "loss_by_epoch"),
        "seeds_loss_gap": largest_gap(caffe, reseeded, "loss_by_epoch"),
        "engines_accuracy_gap": largest_gap(dnnl, caffe, "val_accuracy"),
        "seeds_accuracy_gap": largest_gap(caffe, reseeded, "val_accuracy"),
        **{name: {k: v for k, v in run.items() if k != "train"} for name, run in runs.items()},
    }
    result["agree"] = result["engines_loss_gap"] <= max(result["seeds_loss_gap"], 0.02) and result[
        "engines_accuracy_gap"
    ] <= max(result["seeds_accuracy_gap"], 0.01)
    atomic.write_json(ROOT / "bench/results/engine_agreement.json", result)
    labels = ("oneDNN engine, seed 1", "CAFFE engine, seed 1", "CAFFE engine, seed 2")
    plots.loss_curves_png(
        {label: run["train"] for label, run in zip(labels, runs.values())},
        "fer_reference, 3 epochs: training loss by engine and seed",
        ROOT / "docs/engine_agreement.png",
    )
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
