"""python -m train.calibrate --model models/NAME --data DATA: how well the model's
probabilities match how often it is right, and temperature scaling to make them match.

A model's softmax outputs are not calibrated by training: a face labelled "Happy 0.90" may
be right more or less than 90% of the time. This scores the model (an ensemble as predict
runs it: its members averaged with its own test-time augmentation) on PublicTest and
PrivateTest, fits one temperature T on PublicTest (p' = softmax(log p / T), the T with the
least negative log-likelihood; it never changes which label wins), and reports the expected
calibration error (ECE, 15 confidence bins) on PrivateTest with and without it, with a
reliability diagram, into --out (default out/calibration/<model>/): the model folder is an
input and stays untouched. With --write, the temperature goes into the model folder
(calibration.json), and predict applies it, the diagram (calibration.png) beside it, and the
model card (README.md) gets a Calibration section with these figures and this command
(calibrating again replaces it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ferlib import atomic, cli
from ferlib.classifier import tta_average
from ferlib.dataset import SPLIT_NAMES, DatasetError, load_splits
from ferlib.figures import save_png
from ferlib.model_folder import TTA_VIEWS, ModelError, calibrated, model_members, write_calibration
from train.ensemble import member_views
from train.ship import card_dataset

BINS = 15
SECTION = "## Calibration"


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Sum over confidence bins of |accuracy - mean confidence|, weighted by the bin's share."""
    confidence, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    bins = np.minimum((confidence * BINS).astype(int), BINS - 1)
    return float(
        sum(abs(right[bins == b].mean() - confidence[bins == b].mean()) * np.mean(bins == b) for b in np.unique(bins))
    )


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, None))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.25, 5] (steps of 0.01) with the least NLL on these faces."""
    grid = np.round(np.arange(0.25, 5.0001, 0.01), 2)
    return float(min(grid, key=lambda t: negative_log_likelihood(calibrated(probabilities, t), labels)))


def model_probabilities(model: Path, data: Path, splits: dict, backend: str) -> dict:
    """Probabilities of both splits of data (load_splits) as predict computes them."""
    folders, tta = model_members(model)
    per_member = []
    for folder in folders:
        views, _ = member_views(folder, data, splits, backend, TTA_VIEWS[tta])  # only the views the TTA uses
        per_member.append({key: tta_average(v, tta) for key, v in views.items()})
    return {key: np.mean([m[key] for m in per_member], axis=0) for key in SPLIT_NAMES}


def reliability_png(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="calibrated")
    for name, (probabilities, labels) in curves.items():
        confidence, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
        bins = np.minimum((confidence * BINS).astype(int), BINS - 1)
        used = np.unique(bins)
        axes.plot(
            [confidence[bins == b].mean() for b in used],
            [right[bins == b].mean() for b in used],
            marker="o",
            label=name,
        )
    axes.set_xlabel("confidence (the winning probability)")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    save_png(figure, path)


def calibration_section(report: dict, command: str) -> str:
    """The model card's account of a calibration: what was measured, by which command."""
    return (
        f"{SECTION}\n\nMeasured (`{command}`): expected calibration error on PrivateTest "
        f"{report['private_test_ece']:.4f} ({report['bins']} confidence bins). The temperature fitted on PublicTest, "
        f"{report['temperature']:g}, is in `calibration.json`, which predict applies (it never changes which label "
        f"wins): ECE {report['private_test_ece']:.4f} -> {report['private_test_ece_calibrated']:.4f}, negative "
        f"log-likelihood {report['private_test_nll']:.4f} -> {report['private_test_nll_calibrated']:.4f} "
        "([calibration.png](calibration.png)).\n"
    )


def with_section(card: str, section: str) -> str:
    """The card with section (a level-2 heading and its text) in place of the one under the same
    heading, or at the end where it has none: calibrating again leaves one, the latest."""
    heading = section.split("\n", 1)[0]
    lines = card.rstrip("\n").split("\n")
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = lines[:start] + lines[end:]
    return "\n".join(lines).rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m train.calibrate", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", type=Path, required=True, help="a model or ensemble folder")
    parser.add_argument("--data", type=Path, required=True, help="the dataset aligned as the model's faces were")
    parser.add_argument("--write", action="store_true", help="put the temperature into the model folder")
    parser.add_argument("--backend", choices=("opencv", "caffe"), default="opencv")
    parser.add_argument(
        "--out", type=Path, help="without --write: the report's folder (default: out/calibration/<model>)"
    )
    args = parser.parse_args(argv)
    if args.write and args.out:
        parser.error("--out: with --write the figures go into the model folder")
    out = args.model if args.write else args.out or Path("out/calibration") / args.model.resolve().name
    try:
        splits = load_splits(args.data)
        probabilities = model_probabilities(args.model, args.data, splits, args.backend)
    except (ModelError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    val, test = (splits[key]["labels"] for key in ("val", "test"))
    temperature = fit_temperature(probabilities["val"], val)
    fitted = calibrated(probabilities["test"], temperature)
    report = {
        "temperature": temperature,
        "fitted_on": "PublicTest",
        "private_test_ece": round(expected_calibration_error(probabilities["test"], test), 4),
        "private_test_ece_calibrated": round(expected_calibration_error(fitted, test), 4),
        "private_test_nll": round(negative_log_likelihood(probabilities["test"], test), 4),
        "private_test_nll_calibrated": round(negative_log_likelihood(fitted, test), 4),
        "bins": BINS,
    }
    reliability_png(
        {"as trained": (probabilities["test"], test), f"temperature {temperature:g}": (fitted, test)},
        f"{args.model.resolve().name}: PrivateTest reliability",
        out / "calibration.png",
    )
    wrote = ""
    if args.write:
        write_calibration(args.model, report)
        wrote = "; wrote calibration.json"
        card = args.model / "README.md"
        if card.is_file():
            backend = f" --backend {args.backend}" if args.backend != "opencv" else ""
            command = (
                f"python -m train.calibrate --model {args.model} --data {card_dataset(args.data)}{backend} --write"
            )
            atomic.write_text(card, with_section(card.read_text(), calibration_section(report, command)))
            wrote += " and the card's Calibration section"
    else:
        atomic.write_json(out / "calibration-report.json", report)
        wrote = f"; report in {out}"
    print(
        f"temperature {temperature:g} (fitted on PublicTest): PrivateTest ECE {report['private_test_ece']:.4f} -> "
        f"{report['private_test_ece_calibrated']:.4f}, NLL {report['private_test_nll']:.4f} -> "
        f"{report['private_test_nll_calibrated']:.4f}{wrote}"
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
