"""Compare training runs on one figure: PublicTest accuracy and training loss against epochs,
each run's curve as far as its caffe.log goes. This shows whether a change (another net, a
schedule, other targets) is ahead of its control at equal epochs while both still train,
which the final PublicTest figure of `make evaluate` only says when both have ended.

    python -m train.compare runs/fer_vgg13-e16-seed1 runs/fer_vgg-e16-seed1 --out compare.png

Prints one line per run: epochs done, the last and the best PublicTest accuracy so far.
Exit status: 0 done; 2 a folder that is not a run (no run.json or caffe.log); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ferlib import cli  # noqa: E402
from ferlib.figures import save_png  # noqa: E402
from train.caffe_log import CaffeLog, parse  # noqa: E402
from train.plots import running_mean  # noqa: E402

SMOOTH = 20  # training-loss log points per plotted mean (fewer at the start of a run)


class NotARunError(Exception):
    """A folder without the run.json and caffe.log that make train writes."""


def read_run(folder: Path) -> tuple[CaffeLog, int]:
    """A run's log so far and its iterations per epoch (from run.json's schedule)."""
    try:
        info = json.loads((folder / "run.json").read_text())
        log = parse((folder / "caffe.log").read_text(errors="replace"))
        return log, int(info["schedule"]["epoch_iters"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NotARunError(f"{folder}: not a training run (expected run.json and caffe.log from make train)") from error


def compare_png(runs: dict[str, tuple[CaffeLog, int]], path: Path) -> None:
    """Two panels against epochs: PublicTest accuracy (points), training loss (smoothed)."""
    figure, (acc_axes, loss_axes) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for index, (name, (log, epoch_iters)) in enumerate(runs.items()):
        color = f"C{index}"  # one colour per run in both panels
        if tested := log.accuracies():
            iterations, values = np.array(tested).T
            acc_axes.plot(
                iterations / epoch_iters, values, "o-", ms=2, color=color, label=f"{name} (best {values.max():.4f})"
            )
        if trained := [(i, loss) for i, loss in log.losses() if i > 0]:  # 0: the initial weights' loss
            iterations, losses = np.array(trained).T
            loss_axes.plot(iterations / epoch_iters, running_mean(losses, SMOOTH), lw=1.2, color=color, label=name)
    acc_axes.set_ylabel("PublicTest accuracy")
    loss_axes.set_ylabel(f"training loss (mean of the last {SMOOTH} log points)")
    loss_axes.set_xlabel("epoch")
    for axes in (acc_axes, loss_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    figure.tight_layout()
    save_png(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m train.compare", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (runs/<run>/ as make train writes them)")
    parser.add_argument("--out", type=Path, required=True, help="the figure to write (PNG)")
    args = parser.parse_args(argv)
    try:
        names = [folder.resolve().name for folder in args.runs]
        unique = len(set(names)) == len(names)  # else runs of one name in several RUNS folders: their paths
        runs = {name if unique else str(folder): read_run(folder) for name, folder in zip(names, args.runs)}
    except NotARunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        compare_png(runs, args.out)
    except OSError as error:
        print(f"error: --out {args.out}: cannot write it ({error.strerror or error})", file=sys.stderr)
        return 2
    for name, (log, epoch_iters) in runs.items():
        done = f"{name}: {log.last_iteration() / epoch_iters:.1f} epochs"
        if tested := log.accuracies():
            at, best = max(tested, key=lambda test: test[1])
            print(f"{done}, PublicTest last {tested[-1][1]:.4f}, best {best:.4f} at epoch {at / epoch_iters:.1f}")
        else:
            print(f"{done}, no test pass yet")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
