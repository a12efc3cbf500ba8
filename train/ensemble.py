"""python -m train.ensemble: average the class probabilities of several shipped models and
score the average on PublicTest and PrivateTest, then write it as a model folder.

Each member is a model folder together with the preprocessed dataset aligned as its own
training data was (`--member models/a=data/fer2013`): members trained on differently aligned
faces each see their own faces, as predict gives them. The members (every single model and
every group of two or more) and the test-time augmentation are chosen on PublicTest, so a
single model wins when no average beats it; PrivateTest is only reported. The ensemble
folder holds ensemble.json (the chosen members as relative paths, and the TTA), report.json,
confusion.png and a model card; predict and make demo take it like any model folder.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ferlib import atomic, cli
from ferlib.classifier import Classifier, tta_average
from ferlib.dataset import SPLIT_NAMES, DatasetError, dataset_template, load_split
from ferlib.model_folder import TTA_MODES, TTA_VIEWS, ModelError, ModelFiles, write_ensemble
from train import plots
from train.evaluate import headline, per_class_markdown, split_report, tta_table
from train.ship import LIMITS


def parse_member(text: str) -> tuple[Path, Path]:
    """'MODEL_DIR=DATA_DIR' -> (model folder, dataset folder)."""
    model, sep, data = text.partition("=")
    if not sep or not model or not data:
        raise argparse.ArgumentTypeError(f"expected MODEL_DIR=DATA_DIR, got {text!r}")
    return Path(model), Path(data)


def check_alignment(files: ModelFiles, folder: Path, data: Path) -> None:
    """Refuse a dataset aligned differently from the member's training data."""
    template = dataset_template(data)
    if template != files.alignment_template():
        raise ModelError(
            f"{folder} was trained on faces aligned with {files.template!r} (alignment.json), "
            f"but {data} holds faces aligned with {template!r}: pass the dataset made with its template"
        )


def member_views(folder: Path, data: Path, backend: str, count: int = 10) -> tuple[dict, dict, tuple[str, ...]]:
    """One member's probabilities of the first count views (all ten by default) on both splits,
    the splits themselves, and its labels."""
    splits = {key: load_split(data, key) for key in SPLIT_NAMES}
    files = ModelFiles.from_dir(folder)
    check_alignment(files, folder, data)
    classifier = Classifier(files, backend)
    views = {key: classifier.view_probabilities(split["faces"], count) for key, split in splits.items()}
    return views, splits, classifier.labels


def groups(count: int) -> list[tuple[int, ...]]:
    """Every group of one or more of count members, as index tuples."""
    return [group for size in range(1, count + 1) for group in itertools.combinations(range(count), size)]


def ensemble(members: list[tuple[Path, Path]], target: Path, backend: str = "opencv") -> dict:
    """Score every member and group of members with each TTA, keep the best on PublicTest
    (fewer members, then fewer views, on a tie) and write the ensemble folder; returns the report."""
    views, labels, splits = [], None, None
    for folder, data in members:
        print(f"scoring {folder} on {data} ...", file=sys.stderr)
        member, member_splits, member_labels = member_views(folder, data, backend)
        if splits is None:
            splits, labels = member_splits, member_labels
        if member_labels != labels:
            raise ModelError(
                f"{folder} has the classes {', '.join(member_labels)}, {members[0][0]} has {', '.join(labels)}: "
                "the members of an ensemble must share their class names"
            )
        for key, split in member_splits.items():
            if split["keys"] != splits[key]["keys"] or not np.array_equal(split["labels"], splits[key]["labels"]):
                raise ModelError(f"{data}: its {SPLIT_NAMES[key]} images differ from those of {members[0][1]}")
        views.append(member)
    names = [os.path.relpath(folder.resolve(), target.resolve()) for folder, _ in members]
    averages = {
        group: {key: np.mean([views[i][key] for i in group], axis=0) for key in SPLIT_NAMES}
        for group in groups(len(members))
    }
    tables = {group: tta_table(average, splits) for group, average in averages.items()}
    group, tta = min(
        ((group, mode) for group in tables for mode in TTA_MODES),
        key=lambda choice: rank(tables[choice[0]][choice[1]]["val"], len(choice[0]), choice[1]),
    )
    reports, counts = {}, {}
    for key, split in splits.items():
        reports[key], counts[key] = split_report(tta_average(averages[group][key], tta), split, labels)
    chosen = [names[i] for i in group]
    report = {
        "members": chosen,
        "candidates": names,
        "data": [str(data) for _, data in members],
        "tta": tta,
        "selection": f"{len(group)} of {len(members)} members and TTA {tta}, the best on PublicTest",
        "backend": backend,
        "splits": reports,
        "tta_table": tables[group],
        "group_tta_tables": [{"members": [names[i] for i in g], "tta_table": t} for g, t in tables.items()],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic.replacing_folder(target) as folder:  # beside target, so member paths relative to it still hold
        write_ensemble(folder, chosen, tta)
        plots.confusion_png(
            counts["test"],
            labels,
            f"PrivateTest, accuracy {reports['test']['accuracy']:.4f} (ensemble of {len(group)}, TTA {tta})",
            folder / "confusion.png",
        )
        (folder / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        (folder / "README.md").write_text(card(target.name, report, members))
    return report


TOP = 10  # candidates listed on the card


def rank(public_test: float, members: int, tta: str) -> tuple[float, int, int]:
    """How candidates are ordered, best first: PublicTest accuracy, then fewer members, then
    fewer views (PrivateTest plays no part)."""
    return -public_test, members, TTA_VIEWS[tta]


def ranked(group_tables: list[dict]) -> list[tuple[list[str], str, dict]]:
    """(members, TTA, row) of every candidate in report.json's group_tta_tables, best first."""
    rows = [(group["members"], mode, row) for group in group_tables for mode, row in group["tta_table"].items()]
    return sorted(rows, key=lambda r: rank(r[2]["val"], len(r[0]), r[1]))


def card(name: str, report: dict, members: list[tuple[Path, Path]]) -> str:
    """The ensemble's model card, in Markdown."""
    test, val = report["splits"]["test"], report["splits"]["val"]
    tta = report["tta"]
    lines = [
        f"# {name}",
        "",
        f"The average of the class probabilities of {len(report['members'])} Caffe models shipped by this "
        f"project ({', '.join(f'`{m}`' for m in report['members'])}); each member classifies the face aligned "
        "with its own training template (`alignment.json`)."
        if len(report["members"]) > 1
        else f"The Caffe model `{report['members'][0]}` shipped by this project; "
        "no average of several models beat it on PublicTest.",
        f"Members and test-time augmentation (`{tta}`) were chosen on PublicTest among every single model "
        f"and every group of {', '.join(f'`{m}`' for m in report['candidates'])}.",
        "",
        "| | |",
        "|---|---|",
        f"| PrivateTest accuracy (all {test['images']} images) | **{test['accuracy']:.4f}** |",
        f"| PublicTest accuracy (used to choose members and TTA) | {val['accuracy']:.4f} |",
    ]
    for key, what in (
        ("face_found", "faces MTCNN found"),
        ("face_not_found", "no face found: unaligned crop"),
        ("not_copies_of_train", "without pixel copies of training images"),
    ):
        if key in test:
            lines.append(f"| PrivateTest, {what} ({test[key]['images']}) | {test[key]['accuracy']:.4f} |")
    rows = ranked(report["group_tta_tables"])
    lines += ["", f"## The {min(TOP, len(rows))} best of {len(rows)} candidates on PublicTest", ""]
    lines += ["| models | TTA | PublicTest | PrivateTest |", "|---|---|---|---|"]
    for models, mode, row in rows[:TOP]:
        cells = f"{' + '.join(models)} | {mode} | {row['val']:.4f} | {row['test']:.4f}"
        chosen = models == report["members"] and mode == tta
        lines.append(f"| **{cells.replace(' | ', '** | **')}** |" if chosen else f"| {cells} |")
    lines += ["", "Every candidate (each single model and group with each TTA) is in `report.json`."]
    member_args = " ".join(f"--member {folder}={data}" for folder, data in members)
    lines += [
        "",
        "## Reproduce",
        "```sh",
        f"python -m train.ensemble {member_args} --name {name}",
        f"python -m predict photo.jpg --model models/{name}   # TTA {tta}, from ensemble.json",
        "```",
        "Each member's dataset is `make preprocess` with the template in the member's `alignment.json` "
        '(`ARGS="--template arcface"` for arcface).',
        "",
        "## PrivateTest per class",
        "",
        *per_class_markdown(test),
        "",
        "![confusion matrix](confusion.png)",
        "",
        LIMITS,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.ensemble", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--member",
        type=parse_member,
        action="append",
        required=True,
        metavar="MODEL_DIR=DATA_DIR",
        help="a model folder and the dataset aligned with its template; give two or more",
    )
    parser.add_argument("--name", required=True, help="ensemble name, the folder under --models")
    parser.add_argument("--models", type=Path, default=Path("models"), help="default: %(default)s")
    parser.add_argument("--backend", choices=("opencv", "caffe"), default="opencv")
    args = parser.parse_args(argv)
    if len(args.member) < 2:
        parser.error("an ensemble needs two or more --member")
    try:
        report = ensemble(args.member, args.models / args.name, args.backend)
    except (ModelError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"ensemble, TTA {report['tta']}: {headline(report)}; wrote {args.models / args.name}")
    return 0


if __name__ == "__main__":
    cli.run(main)
