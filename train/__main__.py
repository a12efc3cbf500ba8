"""python -m train: train a net of prototxt/ on the preprocessed FER2013 LMDBs with Caffe."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from ferlib import cli
from ferlib.runs import SOFT_WEIGHT, run_name
from train.run import TrainError, train
from train.schedule import POLICIES

EPILOG = """\
The run folder RUNS/RUN holds the exact solver.prototxt and train_val.prototxt used (data
paths, max_iter, stepvalue at 60% and 85% for multistep, test_iter covering the validation
set exactly, all computed from the LMDB sizes and --epochs), deploy.prototxt, caffe.log,
snapshots/ and run.json. Ctrl-C (or kill) makes Caffe write a snapshot and stop; the same
command resumes from the newest .solverstate. Long runs: nohup make train ... > train.log 2>&1 &
"""


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
        prog="python -m train", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--net",
        default="fer_reference",
        help="a net: a folder name in prototxt/ or a path to such a folder (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=cli.number(0.01, 100_000), default=150, help="epochs of training (default: 150)"
    )
    parser.add_argument(
        "--data", type=Path, default=Path("data/fer2013"), help="preprocessed dataset folder (default: %(default)s)"
    )
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of run folders (default: %(default)s)")
    parser.add_argument(
        "--run",
        help="run name (default: <net>-e<epochs>, + -aug-, -soft-, -mixup, -from-, -lr, -poly, -seed parts for the "
        "options given)",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        help="start from this .caffemodel (e.g. a shipped model's) instead of random weights: the whole "
        "schedule runs again from it, a warm restart; a model folder's alignment.json must match the data",
    )
    parser.add_argument(
        "--seed",
        type=cli.number(0, 2**31 - 1, int),
        help="the solver's random seed (weight init, crops, mirrors, dropout; default: the net's solver.prototxt)",
    )
    parser.add_argument(
        "--base-lr",
        type=cli.number(1e-8, 10),
        help="the solver's base learning rate (default: the net's solver.prototxt, 0.01); fine-tuning "
        "from --weights usually wants a tenth of it",
    )
    parser.add_argument(
        "--lr-policy",
        choices=POLICIES,
        default="multistep",
        help="how the learning rate falls: multistep divides it by 10 at 60%% and 85%% of training (the "
        "reference's), poly takes it down in a straight line to 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--augment",
        help="augment the training images: a name in prototxt/augment/ (e.g. fer) or a file of Caffe "
        "transform_param fields (rotate_degrees, zoom_min/max, shift, contrast, brightness, erase_*), merged "
        "into the net's TRAIN data layer (default: the net's own crop and mirror only)",
    )
    parser.add_argument(
        "--soft",
        type=Path,
        help="also train on soft targets: an LMDB of one probability vector per training image, in the "
        "training LMDB's order (a name in --data, e.g. train_targets_lmdb: FER+'s vote distributions, "
        "or a path, e.g. a teacher's probabilities from python -m train.teacher)",
    )
    parser.add_argument(
        "--soft-weight",
        type=cli.number(0, 1),
        default=SOFT_WEIGHT,
        help="with --soft: the loss is W x cross-entropy with the soft targets + (1 - W) x the hard labels' "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--mixup",
        type=cli.number(0.01, 100),
        metavar="ALPHA",
        help="train on mixed examples (mixup): each training image and its target become a weighted mean of "
        "theirs and another image's of the batch, the weight drawn from Beta(ALPHA, ALPHA), e.g. 0.2; "
        "with --soft the target mixes soft targets and labels (default: off)",
    )
    parser.add_argument(
        "--caffe",
        default=str(Path(sys.executable).parent / "caffe"),
        help="the caffe tool (default: the one make install links into .venv/bin)",
    )
    args = parser.parse_args(argv)
    if not shutil.which(args.caffe):
        print(f"error: no caffe tool at {args.caffe}: run 'make install'", file=sys.stderr)
        return 2
    run = args.run or run_name(
        args.net,
        args.epochs,
        args.weights,
        args.seed,
        args.augment,
        args.soft,
        args.soft_weight,
        args.base_lr,
        args.lr_policy,
        args.mixup,
    )
    try:
        info = train(
            args.net,
            args.data,
            args.runs,
            run,
            args.epochs,
            args.caffe,
            args.weights,
            args.seed,
            args.augment,
            args.base_lr,
            args.soft,
            args.soft_weight,
            args.lr_policy,
            args.mixup,
        )
    except TrainError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    final = info.get("final", {})
    print(
        f"{args.runs / run}: {info.get('status')} at iteration {final.get('iteration')}, "
        f"val accuracy {final.get('val_accuracy')}, best {final.get('best_val_accuracy')} "
        f"at iteration {final.get('best_val_iteration')}"
    )
    return {"done": 0, "stopped": 130}.get(info.get("status"), 1)


if __name__ == "__main__":
    cli.run(main)
