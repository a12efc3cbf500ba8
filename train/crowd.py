"""python -m train.crowd --model models/NAME --data DATA: where a model's errors fall against
the FER+ crowd, on PublicTest and PrivateTest.

FER2013 gives each image one label; FER+ (Barsoum et al., 2016) asked ten people again
(fer2013new.csv, joined by csv row). The faces split three ways: the crowd agrees (the
label holds the most votes among FER2013's seven classes, ties included), the crowd disputes
(another class holds more), and no vote at all for the seven (contempt, unknown or not a
face). A model scored on FER2013's labels cannot be right on a disputed face without
learning the dispute, so the split says how much of the way to a target lies on faces the
crowd agrees on, and how often the model gives the crowd's class on the disputed ones. The
model runs as predict runs it (an ensemble's members averaged, with its test-time
augmentation); the table goes to standard output, the figures to --out as JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ferlib import atomic, cli, ferplus
from ferlib.dataset import SPLIT_NAMES, DatasetError, load_splits
from ferlib.model_folder import ModelError
from train.calibrate import model_probabilities
from train.votes import face_votes, read_crowd

GROUPS = ("agrees", "disputes", "gives no FER2013 class")


def crowd_groups(seven: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face's group (an index into GROUPS) and the crowd's class (-1 where it gave none)."""
    voted = seven.any(axis=1)
    agrees = seven[np.arange(len(labels)), labels] == seven.max(axis=1)
    return np.where(~voted, 2, np.where(agrees, 0, 1)), np.where(voted, seven.argmax(axis=1), -1)


def split_table(probabilities: np.ndarray, labels: np.ndarray, seven: np.ndarray) -> dict:
    """Accuracy on all faces and per group; on the disputed faces also how often the model
    gives the crowd's class instead."""
    group, chosen = crowd_groups(seven, labels)
    predicted = probabilities.argmax(axis=1)
    right = predicted == labels
    table = {"images": len(labels), "accuracy": round(float(right.mean()), 4)}
    for index, name in enumerate(GROUPS):
        where = group == index
        accuracy = round(float(right[where].mean()), 4) if where.any() else None
        table[name] = {"images": int(where.sum()), "accuracy": accuracy}
    disputed = group == GROUPS.index("disputes")
    table["disputes"]["crowds_class"] = (
        round(float(np.mean(predicted[disputed] == chosen[disputed])), 4) if disputed.any() else None
    )
    return table


def markdown(tables: dict[str, dict]) -> str:
    """The tables side by side: accuracy (faces) per row, one column per split."""
    lines = ["| faces | " + " | ".join(tables) + " |", "|---|" + "---|" * len(tables)]
    lines.append("| all | " + " | ".join(f"{t['accuracy']:.4f} ({t['images']})" for t in tables.values()) + " |")
    for name in GROUPS:
        cells = (
            f"{t[name]['accuracy']:.4f} ({t[name]['images']})" if t[name]["images"] else "-" for t in tables.values()
        )
        lines.append(f"| the crowd {name} | " + " | ".join(cells) + " |")
    cells = (f"{t['disputes']['crowds_class']:.4f}" if t["disputes"]["images"] else "-" for t in tables.values())
    lines.append("| ... disputed faces given the crowd's class instead | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
        prog="python -m train.crowd", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="a model or ensemble folder")
    parser.add_argument("--data", type=Path, required=True, help="the dataset aligned as the model's faces were")
    parser.add_argument(
        "--votes",
        type=Path,
        default=Path("../shared/data/fer2013new.csv"),
        help="FER+'s fer2013new.csv (default: %(default)s)",
    )
    parser.add_argument("--backend", choices=("opencv", "caffe"), default="opencv")
    parser.add_argument("--out", type=Path, help="the JSON report (default: out/crowd/<model>.json)")
    args = parser.parse_args(argv)
    out = args.out or Path("out/crowd") / f"{args.model.resolve().name}.json"
    try:
        crowd = read_crowd(args.votes, args.data)
        splits = load_splits(args.data)
        votes = {
            key: face_votes(crowd, splits[key]["keys"], name, args.votes, args.data)
            for key, name in SPLIT_NAMES.items()
        }
        # the net passes come last: every check above refuses before their progress bar starts
        probabilities = model_probabilities(args.model, args.data, splits, args.backend)
        tables = {
            name: split_table(probabilities[key], splits[key]["labels"], votes[key])
            for key, name in SPLIT_NAMES.items()
        }
    except (ModelError, DatasetError, ferplus.NotFerPlusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    command = f"python -m train.crowd --model {args.model} --data {args.data} --votes {args.votes}"
    atomic.write_json(out, {"command": command, "model": str(args.model), "data": str(args.data), "splits": tables})
    print(markdown(tables), end="")
    return 0


if __name__ == "__main__":
    cli.run(main)
