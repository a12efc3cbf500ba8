"""Both views as test-time augmentation: a model trained on both views (--raw-view: each
training face aligned and as its plain crop) sees each test image both ways too, and its
probabilities on the aligned face and on the plain crop are averaged, with and without mirror.
Where MTCNN found no face the aligned dataset keeps the plain crop, so the two views agree.
PublicTest is what would choose; PrivateTest is reported.

    .venv/bin/python experiments/views_tta.py --model models/fer2013_vgg13_half_siblings \\
        --data data/fer2013-rawview --crops data/fer2013-plain
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ferlib.classifier import tta_average  # noqa: E402
from ferlib.model_folder import TTA_VIEWS  # noqa: E402
from train.ensemble import all_member_views, check_same_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models/fer2013_vgg13_half_siblings"))
    parser.add_argument("--data", type=Path, default=Path("data/fer2013-rawview"), help="both views, aligned")
    parser.add_argument("--crops", type=Path, default=Path("data/fer2013-plain"), help="the same images, plain crops")
    args = parser.parse_args()
    member = [(args.model, args.data)]
    (aligned,), splits, _ = all_member_views(member, "opencv", 2)
    (plain,), plain_splits, _ = all_member_views(member, "opencv", 2, args.crops)
    check_same_images(plain_splits, splits, args.crops, args.data)  # image for image, or the mean means nothing
    print("| TTA | passes | PublicTest | PrivateTest |\n|---|---|---|---|")
    for name, views, mode in (
        ("aligned, none", [aligned], "none"),
        ("aligned, mirror", [aligned], "mirror"),
        ("plain crop, mirror", [plain], "mirror"),
        ("both views", [aligned, plain], "none"),
        ("both views, mirror", [aligned, plain], "mirror"),
    ):
        passes = len(views) * TTA_VIEWS[mode]
        val, test = (
            np.mean(np.mean([tta_average(v[key], mode) for v in views], axis=0).argmax(axis=1) == splits[key]["labels"])
            for key in ("val", "test")
        )
        print(f"| {name} | {passes} | {val:.4f} | {test:.4f} |")


if __name__ == "__main__":
    main()
