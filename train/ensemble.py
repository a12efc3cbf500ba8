"""python -m train.ensemble: average the class probabilities of several shipped models and
score the average on PublicTest and PrivateTest, then write it as a model folder.

Each member is a model folder together with the preprocessed dataset aligned as its own
training data was (`--member models/a=data/fer2013`): members trained on differently aligned
faces each see their own faces, as predict gives them. The members (every single model and
every group of two or more) and the test-time augmentation are chosen on PublicTest, so a
single model wins when no average beats it; PrivateTest is only reported.

Users run a model on two paths: photos go through its own protocol (pad, detect, align), and
face crops may go through `predict --no-detect --raw` untouched. With `--raw DATA_DIR` (the
same images preprocessed with `--no-align`) every candidate is also scored on the plain
crops, and is ranked by the mean of its PublicTest accuracy on the two paths. With
`--max-passes N` only candidates that run the nets at most N times per face (members x TTA
views) compete, and with `--max-mflops M` only those that spend at most M million operations
per face (each member's count x TTA views; a fer_vgg13 pass costs as much as six fer_vgg
passes): the video target holds only for so much. `--max-members 1` chooses the best single
model and its TTA; `--single NAME` writes that choice too, beside the ensemble, from the same
scores (scoring is the minutes of the work). The ensemble
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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ferlib import atomic, cli
from ferlib.classifier import Classifier, face_mflops, tta_average
from ferlib.dataset import SPLIT_NAMES, DatasetError, check_classes, dataset_template, load_splits
from ferlib.model_folder import MODEL_FOLDER, TTA_MODES, TTA_VIEWS, ModelError, ModelFiles, write_ensemble
from train import plots
from train.evaluate import headline, per_class_markdown, split_report, split_views, tta_table
from train.ship import LIMITS, card_dataset, preprocess_line, restore_hint


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


def check_plain(data: Path) -> None:
    """Refuse a raw-crop dataset whose faces were aligned: the raw path never aligns."""
    template = dataset_template(data)
    if template is not None:
        raise DatasetError(
            f"{data} holds faces aligned with {template!r}; --raw needs the plain crops "
            "(make preprocess ARGS=--no-align)"
        )


def member_views(
    folder: Path, data: Path, splits: dict, backend: str, count: int = 10, aligned: bool = True
) -> tuple[dict, tuple[str, ...]]:
    """One member's probabilities of the first count views (all ten by default) on both splits
    of data (loaded once by the caller, however many members score them), and its labels;
    aligned=False for the plain crops of --raw."""
    files = ModelFiles.from_dir(folder)
    if aligned:
        check_alignment(files, folder, data)
    classifier = Classifier(files, backend)
    check_classes(classifier.labels, data, folder)
    return split_views(classifier, splits, count), classifier.labels


def groups(count: int) -> list[tuple[int, ...]]:
    """Every group of one or more of count members, as index tuples."""
    return [group for size in range(1, count + 1) for group in itertools.combinations(range(count), size)]


def all_member_views(
    members: list[tuple[Path, Path]], backend: str, count: int, raw: Path | None = None
) -> tuple[list[dict], dict, tuple[str, ...]]:
    """Every member's first count views on its own dataset (or, with raw, all on those plain
    crops), the splits and the shared labels; ModelError when the members disagree on classes
    or images."""
    views, labels, splits, loaded = [], None, None, {}
    path = "plain crops" if raw else "aligned faces"
    for folder, data in tqdm(members, desc=f"scoring members ({path})", unit=" models", file=sys.stderr):
        data = raw or data
        if data not in loaded:
            loaded[data] = load_splits(data)
        member_splits = loaded[data]
        member, member_labels = member_views(folder, data, member_splits, backend, count, aligned=raw is None)
        if splits is None:
            splits, labels = member_splits, member_labels
        if member_labels != labels:
            raise ModelError(
                f"{folder} has the classes {', '.join(member_labels)}, {members[0][0]} has {', '.join(labels)}: "
                "the members of an ensemble must share their class names"
            )
        check_same_images(member_splits, splits, data, raw or members[0][1])
        views.append(member)
    return views, splits, labels


def check_same_images(splits: dict, reference: dict, data: Path, reference_data: Path) -> None:
    """Refuse a dataset whose test splits hold other images (keys or labels) than the reference's."""
    for key, split in splits.items():
        if split["keys"] != reference[key]["keys"] or not np.array_equal(split["labels"], reference[key]["labels"]):
            raise ModelError(f"{data}: its {SPLIT_NAMES[key]} images differ from those of {reference_data}")


def group_averages(views: list[dict], count: int) -> dict[tuple[int, ...], dict[str, np.ndarray]]:
    """Each group's mean of its members' views, per split."""
    return {
        group: {key: np.mean([views[i][key] for i in group], axis=0) for key in SPLIT_NAMES} for group in groups(count)
    }


def mflops_per_face(costs: Sequence[float], tta: str) -> float:
    """What members of these costs (MFLOPs per view) spend on one face under this TTA."""
    return sum(costs) * TTA_VIEWS[tta]


@dataclass(frozen=True)
class Budget:
    """What a candidate may cost per face: net passes (members x TTA views), millions of
    operations (the sum of its members' face_mflops x TTA views) and members (one: the best
    single model with its TTA, what a default that must be one model is chosen by); None: no
    limit. Passes suffice among nets of one size; operations compare nets of different sizes."""

    passes: int | None = None
    mflops: float | None = None
    members: int | None = None

    def allows(self, costs: Sequence[float], tta: str) -> bool:
        """Whether members of these costs (MFLOPs per view) under this TTA fit."""
        return (
            (self.passes is None or len(costs) * TTA_VIEWS[tta] <= self.passes)
            and (self.mflops is None or mflops_per_face(costs, tta) <= self.mflops)
            and (self.members is None or len(costs) <= self.members)
        )

    def __str__(self) -> str:
        limits = [f"{self.passes} net passes"] if self.passes is not None else []
        limits += [f"{self.mflops:g} MFLOPs"] if self.mflops is not None else []
        parts = [f"at most {self.members} member{'s' * (self.members > 1)}"] if self.members is not None else []
        parts += [f"at most {' and '.join(limits)} per face"] if limits else []
        return ", ".join(parts) or "no limit"


@dataclass(frozen=True)
class PathScores:
    """What the members scored on one path: the test splits, each group's mean of its members'
    views per split (averages) and each group's accuracy with every TTA scored (tables); data is
    the one dataset every member saw (the plain crops), None where each saw its own."""

    splits: dict
    averages: dict
    tables: dict
    data: Path | None = None


def score_path(
    members: list[tuple[Path, Path]], backend: str, count: int, modes: tuple[str, ...], raw: Path | None = None
) -> tuple[PathScores, tuple[str, ...]]:
    """Every group's scores on the aligned faces (or, with raw, on those plain crops), and the labels."""
    views, splits, labels = all_member_views(members, backend, count, raw)
    averages = group_averages(views, len(members))
    tables = {group: tta_table(average, splits, modes) for group, average in averages.items()}
    return PathScores(splits, averages, tables, raw), labels


@dataclass(frozen=True)
class Scores:
    """Every candidate's probabilities, scored once: on the aligned faces and, when asked, on
    the plain crops (raw), with what each member costs per view and the TTA modes scored."""

    members: list[tuple[Path, Path]]
    backend: str
    costs: list[float]
    modes: tuple[str, ...]
    labels: tuple[str, ...]
    aligned: PathScores
    raw: PathScores | None = None


def score_candidates(
    members: list[tuple[Path, Path]], backend: str = "opencv", raw: Path | None = None, budget: Budget = Budget()
) -> Scores:
    """Score every member and group of members with each TTA the budget could allow (also on
    raw's plain crops when given): the minutes of work that every choice among them shares."""
    costs = [face_mflops(ModelFiles.from_dir(folder)) for folder, _ in members]
    modes = tuple(mode for mode in TTA_MODES if budget.allows([min(costs)], mode))
    if not modes:
        raise ModelError(
            f"no candidate fits {budget}: the cheapest, one member without TTA, "
            f"takes 1 pass and {min(costs):.4g} MFLOPs"
        )
    if raw is not None:
        check_plain(raw)
    count = max(TTA_VIEWS[mode] for mode in modes)  # no views that no allowed TTA uses
    aligned, labels = score_path(members, backend, count, modes)
    if raw is None:
        return Scores(members, backend, costs, modes, labels, aligned)
    plain, _ = score_path(members, backend, count, modes, raw)
    check_same_images(plain.splits, aligned.splits, raw, members[0][1])
    return Scores(members, backend, costs, modes, labels, aligned, plain)


def choose(scores: Scores, budget: Budget) -> tuple[tuple[int, ...], str]:
    """The best group and TTA on PublicTest (see score; fewer members, then fewer views, on a
    tie) among those the budget allows."""
    aligned, raw = scores.aligned.tables, scores.raw.tables if scores.raw else None

    def ranked(choice: tuple[tuple[int, ...], str]) -> tuple[float, int, int]:
        group, mode = choice
        return rank(len(group), mode, aligned[group][mode], raw[group][mode] if raw else None)

    return min(
        (
            (group, mode)
            for group in aligned
            for mode in scores.modes
            if budget.allows([scores.costs[i] for i in group], mode)
        ),
        key=ranked,
    )


def write_choice(scores: Scores, target: Path, budget: Budget) -> dict:
    """Write the ensemble folder of the budget's best choice (see choose); returns its report."""
    group, tta = choose(scores, budget)
    members, labels, aligned, raw = scores.members, scores.labels, scores.aligned, scores.raw
    reports, counts = {}, {}
    for key, split in aligned.splits.items():
        reports[key], counts[key] = split_report(tta_average(aligned.averages[group][key], tta), split, labels)
    names = [os.path.relpath(folder.resolve(), target.resolve()) for folder, _ in members]
    chosen = [names[i] for i in group]
    rule = "PublicTest" if raw is None else "the mean of PublicTest aligned and PublicTest raw crops"
    limit = "" if budget == Budget() else f", among those of {budget}"
    report = {
        "members": chosen,
        "candidates": names,
        "data": [str(data) for _, data in members],
        "tta": tta,
        "selection": f"{len(group)} of {len(members)} members and TTA {tta}, the best on {rule}{limit}",
        "max_passes": budget.passes,
        "max_mflops": budget.mflops,
        "max_members": budget.members,
        "mflops": dict(zip(names, scores.costs)),
        "mflops_per_face": mflops_per_face([scores.costs[i] for i in group], tta),
        "backend": scores.backend,
        "splits": reports,
        "tta_table": aligned.tables[group],
        "group_tta_tables": [
            {
                "members": [names[i] for i in g],
                "tta_table": t,
                **({"raw_tta_table": raw.tables[g]} if raw is not None else {}),
            }
            for g, t in aligned.tables.items()
        ],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if raw is not None:
        report["raw_data"] = str(raw.data)
        report["raw_tta_table"] = raw.tables[group]
        report["raw_splits"] = {
            key: split_report(tta_average(raw.averages[group][key], tta), split, labels)[0]
            for key, split in raw.splits.items()
        }
    # built beside target, so member paths relative to it still hold
    with atomic.replacing_folder(target, MODEL_FOLDER) as folder:
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


def ensemble(
    members: list[tuple[Path, Path]],
    target: Path,
    backend: str = "opencv",
    raw: Path | None = None,
    budget: Budget = Budget(),
    single: Path | None = None,
) -> list[dict]:
    """Score every candidate once (score_candidates), write the folder of the best the budget
    allows to target and, with single, that of the best single model with its TTA within the
    same budget (what a default that must be one model is, beside an ensemble by name) to
    single; returns their reports, target's first."""
    targets = {target: budget} | ({single: replace(budget, members=1)} if single else {})
    for folder in targets:  # before minutes of scoring, as replacing_folder will
        atomic.check_replaceable(folder, MODEL_FOLDER)
    scores = score_candidates(members, backend, raw, budget)
    return [write_choice(scores, folder, limits) for folder, limits in targets.items()]


TOP = 10  # candidates listed on the card


def score(row: dict, raw_row: dict | None = None) -> float:
    """What a candidate is chosen by: its PublicTest accuracy, or with raw crops scored, the
    mean of its PublicTest accuracy on both paths (each path users take weighs the same)."""
    return row["val"] if raw_row is None else (row["val"] + raw_row["val"]) / 2


def rank(members: int, tta: str, row: dict, raw_row: dict | None = None) -> tuple[float, int, int]:
    """How candidates are ordered, best first: score, then fewer members, then fewer views
    (PrivateTest plays no part)."""
    return -score(row, raw_row), members, TTA_VIEWS[tta]


def ranked(group_tables: list[dict]) -> list[tuple[list[str], str, dict, dict | None]]:
    """(members, TTA, row, raw row or None) of every candidate in report.json's
    group_tta_tables, best first."""
    rows = [
        (group["members"], mode, row, group.get("raw_tta_table", {}).get(mode))
        for group in group_tables
        for mode, row in group["tta_table"].items()
    ]
    return sorted(rows, key=lambda r: rank(len(r[0]), r[1], r[2], r[3]))


def card(name: str, report: dict, members: list[tuple[Path, Path]]) -> str:
    """The ensemble's model card, in Markdown."""
    test, val = report["splits"]["test"], report["splits"]["val"]
    tta, raw = report["tta"], report.get("raw_splits")
    lines = [
        f"# {name}",
        "",
        f"The average of the class probabilities of {len(report['members'])} Caffe models shipped by this "
        f"project ({', '.join(f'`{m}`' for m in report['members'])}); each member classifies the face aligned "
        "with its own training template (`alignment.json`)."
        if len(report["members"]) > 1
        else f"The Caffe model `{report['members'][0]}` shipped by this project"
        + (
            ", the best single model: averages of several were not candidates (`--max-members 1`)."
            if report.get("max_members") == 1
            else "; no average of several models beat it."
        ),
        f"Members and test-time augmentation (`{tta}`) were chosen among every single model and every group of "
        f"{', '.join(f'`{m}`' for m in report['candidates'])}: {report['selection']}.",
        "",
        "| | |",
        "|---|---|",
        f"| PrivateTest accuracy (all {test['images']} images) | **{test['accuracy']:.4f}** |",
        f"| PublicTest accuracy (used to choose members and TTA) | {val['accuracy']:.4f} |",
        f"| net passes per face (members x TTA views) | {len(report['members']) * TTA_VIEWS[tta]} |",
        f"| million operations per face | {report['mflops_per_face']:.4g} |",
    ]
    if raw:
        lines += [
            f"| PrivateTest, plain crops as `predict --no-detect --raw` sees them | {raw['test']['accuracy']:.4f} |",
            f"| PublicTest, plain crops (used to choose, with the aligned path) | {raw['val']['accuracy']:.4f} |",
        ]
    for key, what in (
        ("face_found", "faces MTCNN found"),
        ("face_not_found", "no face found: unaligned crop"),
        ("not_copies_of_train", "without pixel copies of training images"),
    ):
        if key in test:
            lines.append(f"| PrivateTest, {what} ({test[key]['images']}) | {test[key]['accuracy']:.4f} |")
    lines += ["", *candidates_markdown(report)]
    member_args = " ".join(f"--member {folder}={card_dataset(data)}" for folder, data in members)
    options = (f" --raw {card_dataset(Path(report['raw_data']))}" if raw else "") + (
        f" --max-passes {report['max_passes']}" if report.get("max_passes") else ""
    )
    options += f" --max-mflops {report['max_mflops']:g}" if report.get("max_mflops") else ""
    options += f" --max-members {report['max_members']}" if report.get("max_members") else ""
    command = f"python -m train.ensemble {member_args}{options} --name {name}"
    lines += [
        "",
        "## Reproduce",
        "```sh",
        *preprocess_lines([data for _, data in members] + ([Path(report["raw_data"])] if raw else [])),
        command,
        f"python -m predict photo.jpg --model models/{name}   # TTA {tta}, from ensemble.json",
        "```",
        *restore_hint([command], {name}),  # candidates the choice left out leave models/
        "",
        *closing_sections(test),
    ]
    return "\n".join(lines)


def preprocess_lines(datasets: list[Path]) -> list[str]:
    """The make preprocess lines that make a card's datasets again, each once; a dataset
    without a preprocess manifest gets a comment instead (its card names it as given)."""
    lines = [preprocess_line(data) or f"# {data}: not made by make preprocess" for data in datasets]
    return list(dict.fromkeys(lines))


def closing_sections(test: dict) -> list[str]:
    """The last sections of a card made of shipped models: PrivateTest per class, the
    confusion matrix, intended use and limits."""
    return [
        "## PrivateTest per class",
        "",
        *per_class_markdown(test),
        "",
        "![confusion matrix](confusion.png)",
        "",
        LIMITS,
    ]


def candidates_markdown(report: dict) -> list[str]:
    """The best candidates that were allowed to compete, as a Markdown table, the chosen one in bold."""
    budget, costs = Budget(report["max_passes"], report["max_mflops"], report.get("max_members")), report["mflops"]
    rows = [row for row in ranked(report["group_tta_tables"]) if budget.allows([costs[m] for m in row[0]], row[1])]
    lines = [f"## The {min(TOP, len(rows))} best of {len(rows)} candidates", ""]
    if report.get("raw_splits"):
        lines += [
            "| models | TTA | MFLOPs per face | PublicTest | PrivateTest | raw PublicTest | raw PrivateTest |",
            "|---|---|---|---|---|---|---|",
        ]
    else:
        lines += ["| models | TTA | MFLOPs per face | PublicTest | PrivateTest |", "|---|---|---|---|---|"]
    for models, mode, row, raw_row in rows[:TOP]:
        cost = mflops_per_face([costs[m] for m in models], mode)
        cells = f"{' + '.join(models)} | {mode} | {cost:.4g} | {row['val']:.4f} | {row['test']:.4f}"
        if raw_row is not None:
            cells += f" | {raw_row['val']:.4f} | {raw_row['test']:.4f}"
        chosen = models == report["members"] and mode == report["tta"]
        lines.append(f"| **{cells.replace(' | ', '** | **')}** |" if chosen else f"| {cells} |")
    return lines + ["", "Every candidate (each single model and group with each TTA) is in `report.json`."]


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
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
    parser.add_argument("--name", type=cli.model_name, required=True, help="ensemble name, the folder under --models")
    parser.add_argument("--models", type=Path, default=Path("models"), help="default: %(default)s")
    parser.add_argument(
        "--raw",
        type=Path,
        metavar="DATA_DIR",
        help="the same images as plain crops (make preprocess ARGS=--no-align): choose by the mean of "
        "PublicTest on the aligned and the raw path",
    )
    parser.add_argument(
        "--max-passes",
        type=cli.number(1, kind=int),
        metavar="N",
        help="only candidates that run the nets at most N times per face (members x TTA views); "
        "the video target allows about 4 fer_vgg passes (two members with mirror)",
    )
    parser.add_argument(
        "--max-mflops",
        type=cli.number(0),
        metavar="M",
        help="only candidates that spend at most M million operations per face (each member's count at its "
        "crop size x TTA views; the card lists each candidate's): compares nets of different sizes, "
        "where passes do not",
    )
    parser.add_argument(
        "--max-members",
        type=cli.number(1, kind=int),
        metavar="N",
        help="only candidates of at most N members: 1 chooses the best single model and its TTA",
    )
    parser.add_argument(
        "--single",
        type=cli.model_name,
        metavar="NAME",
        help="also write the best single model and its TTA within the same limits to --models/NAME, from the "
        "same scores (a default that must be one model, beside the ensemble by --name)",
    )
    parser.add_argument("--backend", choices=("opencv", "caffe"), default="opencv")
    args = parser.parse_args(argv)
    if len(args.member) < 2:
        parser.error("an ensemble needs two or more --member")
    if args.single == args.name:
        parser.error(f"--single {args.single}: name another folder than --name's")
    try:
        budget = Budget(args.max_passes, args.max_mflops, args.max_members)
        single = args.models / args.single if args.single else None
        reports = ensemble(args.member, args.models / args.name, args.backend, args.raw, budget, single)
    except (ModelError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for report, name in zip(reports, (args.name, args.single)):
        print(
            f"{len(report['members'])} of {len(args.member)}, TTA {report['tta']}: {headline(report)}; "
            f"wrote {args.models / name}"
        )
    return 0


if __name__ == "__main__":
    cli.run(main)
