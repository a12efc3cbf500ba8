"""Accuracy of `predict --no-detect` on FER2013's PrivateTest (or, --split val, PublicTest)
face crops, both ways: the default (each crop padded, MTCNN, aligned, as the models were
trained and evaluated; the plain crop where no face is found) and --raw (the whole crop
resized; --raw-only measures this way alone). Reads the 48x48 crops
that make preprocess keeps in DATA/images/<split>/<label>/<row>.png.

    .venv/bin/python experiments/no_detect_accuracy.py --data data/fer2013 \\
        --model models/fer2013_default models/fer2013_ensemble --out out/no_detect_accuracy.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ferlib import atomic  # noqa: E402
from ferlib.cvio import decode_image  # noqa: E402
from predict import DEFAULT_MODEL, Recognizer  # noqa: E402

BATCH = 512


def split_crops(data: Path, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """A split's crops and labels, in row order."""
    files = sorted((data / "images" / split).glob("*/*.png"), key=lambda p: int(p.stem))
    if not files:
        raise SystemExit(f"error: {data}/images/{split}: no crops (run make preprocess without --no-images)")
    return [decode_image(p, 0) for p in files], np.array([int(p.parent.name) for p in files])


def accuracy(model: Path, crops: list[np.ndarray], labels: np.ndarray, raw: bool) -> dict:
    recognizer = Recognizer(model, detect=False, align_crops=not raw)
    faces = [face for i in range(0, len(crops), BATCH) for face in recognizer.crops(crops[i : i + BATCH])]
    predicted = np.array([face["label_id"] for face in faces])
    result = {"accuracy": round(float(np.mean(predicted == labels)), 4), "images": len(labels)}
    if not raw:
        aligned = np.array([face["aligned"] for face in faces])
        result["aligned"] = int(aligned.sum())
        result["accuracy_aligned"] = round(float(np.mean(predicted[aligned] == labels[aligned])), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/fer2013"))
    parser.add_argument("--model", type=Path, nargs="+", default=[DEFAULT_MODEL])
    parser.add_argument("--split", choices=("test", "val"), default="test", help="test: PrivateTest, val: PublicTest")
    parser.add_argument("--raw-only", action="store_true", help="only --raw (no MTCNN: minutes faster)")
    parser.add_argument("--out", type=Path, default=Path("out/no_detect_accuracy.json"))
    args = parser.parse_args()
    crops, labels = split_crops(args.data, args.split)
    modes = ("raw",) if args.raw_only else ("aligned", "raw")
    results = {
        model.name: {mode: accuracy(model, crops, labels, mode == "raw") for mode in modes} for model in args.model
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, results)
    print(f"| model | {' | '.join(f'--no-detect ({mode})' for mode in modes)} |\n|---|{'---|' * len(modes)}")
    for name, r in results.items():
        print(f"| {name} | {' | '.join(format(r[mode]['accuracy'], '.4f') for mode in modes)} |")


if __name__ == "__main__":
    main()
