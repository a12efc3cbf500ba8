"""python -m preprocess FER2013_CSV [--out DIR]: everything training needs from the Kaggle file;
python -m preprocess --folder DIR --out DIR: the same from a folder of your own labelled faces."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from ferlib import cli
from ferlib.faces import DEFAULT_TEMPLATE, TEMPLATES
from ferlib.ferplus import NotFerPlusError
from preprocess.build import DataError, Settings, build
from preprocess.fer_csv import NotFer2013Error
from preprocess.folder import FolderOptions, build_folder

EPILOG = """\
steps: read and validate the csv (bad rows are reported with their line number and skipped),
write images/<split>/<label>/<row>.png, detect and align every face with MTCNN (a face not
found keeps the plain image, and is counted), write aligned/..., one LMDB per split
(train_lmdb shuffled with --seed, val_lmdb = PublicTest and test_lmdb = PrivateTest in csv
order), mean.binaryproto + mean.npy of the training faces, index.csv (every LMDB key, its csv
row, label, whether a face was found, its view: aligned, or raw with --raw-view or --no-align)
and manifest.json (checksums, counts, timings).

--folder DIR instead of the csv: DIR/<class>/<images> (this tool splits: stratified by
class, seeded with --seed, --split fractions, grouped by --subject) or DIR/train/<class>/...,
DIR/val/..., DIR/test/... (your split). Folder names are the classes (FER2013's seven, in
FER2013's order, when they are named so); --map maps them onto FER2013's classes. Photos get
MTCNN on the whole picture; crops up to 128 pixels are aligned like FER2013's crops. Files
that are not readable images are reported by name and skipped. files.csv lists the file of
every row.

The output is built beside --out and swapped into place when complete, so --out always holds
the old dataset or the new one. --out must be a new or empty folder or a dataset this tool
made (its manifest.json): nothing else is ever replaced, with or without --force. A rerun
with the same input and settings does nothing unless --force (or the dataset's files no
longer match its manifest). Exit status: 0 done or up to date, 2 bad input, option or
output (a full disk included), 130 interrupted (the old dataset, if any, is left as it was).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.Parser(
        prog="python -m preprocess",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("csv", type=Path, nargs="?", help="the Kaggle fer2013.csv, plain or .csv.gz")
    parser.add_argument(
        "--folder", type=Path, help="a folder of your own labelled faces instead of the csv (see below)"
    )
    parser.add_argument(
        "--map",
        type=Path,
        help="with --folder: a JSON file mapping class folder names onto FER2013 classes or null "
        '(leave out), e.g. {"anger": "Angry", "contempt": null}',
    )
    parser.add_argument(
        "--split",
        type=fractions,
        default=(0.8, 0.1, 0.1),
        help="with --folder and no train/ val/ test/: train,val,test fractions (default: 0.8,0.1,0.1)",
    )
    parser.add_argument(
        "--subject",
        metavar="REGEX",
        help="with --folder: the subject id in a file name (its first group), so that one person's images "
        r"stay in one split, e.g. '^(S\d+)_' for CK+",
    )
    parser.add_argument(
        "--out", type=Path, help="output folder (default: data/fer2013, or data/<folder name> with --folder)"
    )
    parser.add_argument(
        "--size",
        type=cli.number(12, 1024, int),
        default=48,
        help="side of the aligned faces in pixels, 12-1024 (default: %(default)s)",
    )
    parser.add_argument(
        "--no-align",
        dest="align",
        action="store_false",
        help="skip detection and alignment: LMDBs of the plain images (for ablations)",
    )
    parser.add_argument(
        "--raw-view",
        action="store_true",
        help="training also holds every face's plain crop, resized, as a second record with its label: nets "
        "learn unaligned faces too (what predict --no-detect --raw sees); twice the training records",
    )
    parser.add_argument(
        "--template",
        choices=TEMPLATES,
        default=DEFAULT_TEMPLATE,
        help="where alignment puts the eyes, nose and mouth: fer2013 (FER2013's own framing) or arcface "
        "(smaller, lower faces; the template of models shipped before fer2013) (default: %(default)s)",
    )
    parser.add_argument(
        "--no-images",
        dest="images",
        action="store_false",
        help="do not write the PNG folders images/ and aligned/ (faster, smaller)",
    )
    parser.add_argument(
        "--min-face",
        type=cli.number(12, 72),
        default=20.0,
        help="MTCNN's smallest face, in pixels of the padded 72x72 crop, 12-72 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=cli.number(0, 2**32 - 1, int), default=1, help="seed of the training-set shuffle (default: 1)"
    )
    parser.add_argument(
        "--workers", type=cli.number(1, 64, int), default=2, help="processes for detection, 1-64 (default: 2)"
    )
    parser.add_argument(
        "--ferplus",
        type=Path,
        metavar="FER2013NEW_CSV",
        help="label with FER+'s majority vote from fer2013new.csv (8 classes, contempt included; "
        "rows without a majority, 'unknown' or 'not a face' are left out)",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild even when the output is up to date (it still replaces only a dataset this tool made)",
    )
    return parser.parse_args(argv)


def fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> three fractions that sum to 1."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0 or abs(sum(values) - 1) > 1e-6:
        raise argparse.ArgumentTypeError(
            f"expected three positive fractions that sum to 1, e.g. 0.8,0.1,0.1; got {text!r}"
        )
    return values


def settings_of(args: argparse.Namespace) -> Settings:
    """The image settings the options give (the same for the csv and --folder)."""
    return Settings(
        size=args.size,
        align=args.align,
        template=args.template,
        seed=args.seed,
        images=args.images,
        min_face_size=args.min_face,
        raw_view=args.raw_view,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if (args.csv is None) == (args.folder is None):
        print("error: give the FER2013 csv or --folder DIR (one of them)", file=sys.stderr)
        return 2
    if args.out is None:
        args.out = Path("data") / (args.folder.resolve().name if args.folder is not None else "fer2013")
    if args.folder is not None:
        return main_folder(args)
    for path, expected in ((args.csv, "the Kaggle fer2013.csv or .csv.gz"), (args.ferplus, "FER+'s fer2013new.csv")):
        if path is not None and not path.is_file():
            what = "a folder" if path.is_dir() else "no such file"
            print(f"error: {path}: {what} (expected {expected})", file=sys.stderr)
            return 2
    if args.raw_view and not args.align:
        print("error: --raw-view with --no-align: the plain crops are then the only view", file=sys.stderr)
        return 2
    settings = settings_of(args)
    return run_build(
        lambda: build(
            args.csv,
            args.out,
            settings,
            workers=args.workers,
            strict=args.strict,
            force=args.force,
            ferplus_csv=args.ferplus,
        ),
        args.out,
        args.csv,
        ("counts", "faces"),
        "bad_rows",
    )


def main_folder(args: argparse.Namespace) -> int:
    """--folder: a dataset of the user's own labelled faces."""
    if args.ferplus is not None:
        print("error: --ferplus: FER+ labels belong to the FER2013 csv, not to --folder", file=sys.stderr)
        return 2
    if args.raw_view:
        print("error: --raw-view: the plain view belongs to the FER2013 csv's crops, not to --folder", file=sys.stderr)
        return 2
    settings = settings_of(args)
    options = FolderOptions(mapping=args.map, fractions=args.split, subject=args.subject)
    return run_build(
        lambda: build_folder(args.folder, args.out, settings, options, force=args.force),
        args.out,
        args.folder,
        ("classes", "counts", "faces"),
        "bad_files",
    )


def run_build(
    build_dataset: Callable[[], dict | None], out: Path, source: Path, keys: tuple[str, ...], bad: str
) -> int:
    """Build a dataset (csv or folder) and report it: its summary, "up to date", or one error line."""
    try:
        manifest = build_dataset()
    except (NotFer2013Error, NotFerPlusError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: {out} was not changed", file=sys.stderr)
        return cli.INTERRUPTED
    if manifest is None:
        print(f"{out} is up to date with {source} and these settings (use --force to rebuild)")
        return 0
    summary = {key: manifest[key] for key in keys}
    summary[bad] = manifest[bad]["count"]
    summary["total_s"] = manifest["timings"]["total_s"]
    print(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
