"""python -m train.soup: one model whose weights are the average of several models fine-tuned
from the same weights (a "model soup", Wortsman et al. 2022), the members chosen greedily on
PublicTest.

Models fine-tuned from one starting point (students warm-started from one model, with other
seeds or targets) can stay close enough in weight space that the average of their weights
answers about as well as the average of their answers (docs/results.md measures it), and it
runs once per face where an ensemble runs every member. Models trained from different
starting points do not average (their units need not be in the same order): the greedy
choice then leaves them out.

The choice, as in the paper: the candidates in order of their own PublicTest accuracy (centre
crop; with --raw, the mean of PublicTest on the aligned and the plain-crop path, as make
ensemble chooses); the best starts the soup and each next one joins if the soup with it
scores at least as well. BatchNorm's statistics are averaged as the weights are. PrivateTest
is only reported. The folder is a single model with its card, for predict and make ensemble.

    python -m train.soup --member models/a --member models/b --data data/fer2013-rawview --name fer2013_vgg_soup
    python -m train.soup --ship runs/fer2013_vgg_soup   # one made into runs/, shipped into models/

Exit status: 0 done; 2 bad input (a folder that is not a single model, members of different
nets, classes, alignment or mean, a dataset that is missing or holds other faces); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ferlib import atomic, cli
from ferlib.classifier import Classifier
from ferlib.dataset import DatasetError, check_classes, load_splits
from ferlib.model_folder import MODEL_FOLDER, ModelError, ModelFiles, write_model
from train import plots
from train.ensemble import check_alignment, check_plain, check_same_images, closing_sections, preprocess_lines, score
from train.evaluate import headline, split_report, split_views, tta_markdown, tta_table
from train.ship import card_dataset, keep_cards, lineage

Params = dict[str, list[np.ndarray]]  # layer name -> its blobs


def _caffe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe

    caffe.set_mode_cpu()
    return caffe


def read_params(files: ModelFiles) -> Params:
    """A model's learned blobs by layer; BatchNorm's running sums divided by their count
    (Caffe keeps sum-like mean and variance with a scale factor), so that they average."""
    caffe = _caffe()
    net = caffe.Net(str(files.deploy), caffe.TEST, weights=str(files.weights))
    params = {}
    for name, blobs in net.params.items():
        arrays = [blob.data.copy() for blob in blobs]
        if net.layer_dict[name].type == "BatchNorm":
            factor = float(arrays[2][0]) or 1.0  # Caffe reads a 0 factor as 1
            arrays = [arrays[0] / factor, arrays[1] / factor, np.ones_like(arrays[2])]
        params[name] = arrays
    return params


def average(members: list[Params]) -> Params:
    return {
        name: [np.mean([m[name][i] for m in members], axis=0) for i in range(len(blobs))]
        for name, blobs in members[0].items()
    }


def write_params(deploy: Path, params: Params, path: Path) -> None:
    caffe = _caffe()
    net = caffe.Net(str(deploy), caffe.TEST)
    for name, arrays in params.items():
        for blob, array in zip(net.params[name], arrays):
            blob.data[...] = array
    net.save(str(path))


def check_members(folders: list[Path], backend: str) -> list[Classifier]:
    """The members, loaded; ModelError unless each is a readable single model with one output
    per class (checked before Caffe reads it) and all share their classes, alignment and
    training mean (check_same_net compares the nets)."""
    classifiers = [Classifier(ModelFiles.from_dir(folder), backend) for folder in folders]
    files = [classifier.files for classifier in classifiers]
    first, first_mean = files[0], np.load(files[0].mean)
    for folder, member in zip(folders[1:], files[1:]):
        for what, mine, theirs in (
            ("classes", ", ".join(member.labels), ", ".join(first.labels)),
            ("alignment template", member.alignment_template(), first.alignment_template()),
        ):
            if mine != theirs:
                raise ModelError(
                    f"{folder} has the {what} {mine}, {folders[0]} has {theirs}: a soup's members share them"
                )
        if not np.array_equal(np.load(member.mean), first_mean):
            raise ModelError(f"{folder}: its training mean differs from {folders[0]}'s: trained on other data")
    return classifiers


def check_same_net(folder: Path, params: Params, reference: Params, reference_folder: Path) -> None:
    shapes = {name: [a.shape for a in arrays] for name, arrays in params.items()}
    if shapes != {name: [a.shape for a in arrays] for name, arrays in reference.items()}:
        raise ModelError(f"{folder}: another net than {reference_folder} (its layers or their shapes differ)")


class Scorer:
    """PublicTest accuracy (centre crop) of a model, on the aligned faces and, with raw, the
    plain crops: the number the greedy choice goes by (train.ensemble.score)."""

    def __init__(self, files: ModelFiles, val: dict, raw_val: dict | None, backend: str, scratch: Path):
        self.files, self.val, self.raw_val, self.backend, self.scratch = files, val, raw_val, backend, scratch

    def classifier(self, params: Params) -> Classifier:
        """The model these weights make, written to the scratch folder (OpenCV reads files)."""
        weights = self.scratch / "candidate.caffemodel"
        write_params(self.files.deploy, params, weights)
        f = self.files
        return Classifier(ModelFiles(f.deploy, weights, f.mean, f.labels, f.template, True), self.backend)

    def __call__(self, classifier: Classifier) -> tuple[float, dict]:
        row = {"val": accuracy(classifier, self.val)}
        raw_row = {"val": accuracy(classifier, self.raw_val)} if self.raw_val is not None else None
        return score(row, raw_row), {"val": row["val"], **({"raw_val": raw_row["val"]} if raw_row else {})}


def accuracy(classifier: Classifier, split: dict) -> float:
    return float((classifier.probabilities(split["faces"]).argmax(axis=1) == split["labels"]).mean())


def greedy(
    folders: list[Path], classifiers: list[Classifier], members: list[Params], scorer: Scorer
) -> tuple[list[int], list[dict]]:
    """Indices of the chosen members and every step of the choice (who, alone, the soup with it, kept)."""
    bar = tqdm(total=2 * len(folders) - 1, desc="greedy soup", unit=" scores", file=sys.stderr)
    alone = []
    for classifier in classifiers:
        alone.append(scorer(classifier))
        bar.update()
    order = sorted(range(len(members)), key=lambda i: -alone[i][0])  # stable: the first given wins a tie
    chosen, best = [order[0]], alone[order[0]][0]
    steps = [{"member": str(folders[order[0]]), "alone": alone[order[0]][1], "soup": alone[order[0]][1], "kept": True}]
    for i in order[1:]:
        value, row = scorer(scorer.classifier(average([members[j] for j in [*chosen, i]])))
        kept = value >= best
        if kept:
            chosen, best = [*chosen, i], value
        steps.append({"member": str(folders[i]), "alone": alone[i][1], "soup": row, "kept": kept})
        bar.update()
    bar.close()
    return chosen, steps


def soup(
    folders: list[Path],
    data: Path,
    target: Path,
    raw: Path | None = None,
    backend: str = "opencv",
    uniform: bool = False,
) -> dict:
    """Choose the members (all of them with uniform), average their weights, score the soup on
    both splits with each TTA, and write it to target as a model folder; returns the report."""
    classifiers = check_members(folders, backend)
    atomic.check_replaceable(target, MODEL_FOLDER)  # before minutes of scoring, as replacing_folder will
    files = [classifier.files for classifier in classifiers]
    for folder, member in zip(folders, files):
        check_alignment(member, folder, data)
    for dataset in (data, raw) if raw is not None else (data,):
        check_classes(files[0].labels, dataset, folders[0])  # the members share them (check_members)
    if raw is not None:
        check_plain(raw)
    splits = load_splits(data)
    raw_splits = load_splits(raw) if raw is not None else {}
    if raw is not None:
        check_same_images(raw_splits, splits, raw, data)
    members = [read_params(member) for member in files]
    for folder, params in zip(folders[1:], members[1:]):
        check_same_net(folder, params, members[0], folders[0])
    with tempfile.TemporaryDirectory() as scratch:
        scorer = Scorer(files[0], splits["val"], raw_splits.get("val"), backend, Path(scratch))
        if uniform:
            chosen, steps = list(range(len(folders))), []
        else:
            chosen, steps = greedy(folders, classifiers, members, scorer)
        params = average([members[i] for i in chosen])
        classifier = scorer.classifier(params)
        views = split_views(classifier, splits)
        reports, counts = {}, {}
        for key, split in splits.items():
            reports[key], counts[key] = split_report(views[key][0], split, files[0].labels)
        report = {
            "members": [str(folders[i]) for i in chosen],
            "candidates": [str(folder) for folder in folders],
            "data": str(data),
            "selection": "all the candidates (--uniform)"
            if uniform
            else "greedy on PublicTest" + (" (the mean of the aligned and the plain-crop path)" if raw else ""),
            "steps": steps,
            "backend": backend,
            "splits": reports,
            "tta_table": tta_table(views, splits),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if raw is not None:
            raw_views = split_views(classifier, raw_splits)
            report["raw_data"] = str(raw)
            report["raw_splits"] = {
                key: split_report(raw_views[key][0], split, files[0].labels)[0] for key, split in raw_splits.items()
            }
            report["raw_tta_table"] = tta_table(raw_views, raw_splits)
        with atomic.replacing_folder(target, MODEL_FOLDER) as folder:
            first = files[0]
            write_model(
                folder, target.name, classifier.files.weights, first.deploy, first.mean, first.labels, first.template
            )
            plots.confusion_png(
                counts["test"],
                first.labels,
                f"PrivateTest, accuracy {reports['test']['accuracy']:.4f} (soup of {len(chosen)}, centre crop)",
                folder / "confusion.png",
            )
            (folder / "report.json").write_text(json.dumps(report, indent=1) + "\n")
            kept = keep_member_cards(folders, folder)
            (folder / "README.md").write_text(card(target.name, report, folders, uniform, kept))
    return report


def keep_member_cards(folders: list[Path], folder: Path) -> list[str]:
    """Copy into folder the cards of the members that have one (see lineage: <member>.md and
    those it kept of its starts), wherever they lie: a member an experiment shipped into its runs
    folder has no copy in git, and a model later started from the soup keeps the soup's cards in
    turn; returns those members' names."""
    kept = []
    for member in folders:
        if cards := lineage(member):
            keep_cards(cards, folder)
            kept.append(member.name)
    return kept


def ship(source: Path, models: Path) -> Path:
    """Ship a soup made elsewhere (into an experiment's runs folder) into models under its own
    name, as `--models models` would have made it, without its minutes of scoring: its files
    copied, the cards of its candidates kept beside it, and its card written again to name them
    where their cards put them; returns the new folder. A soup's report
    has no greedy steps only when it took every member (--uniform)."""
    ModelFiles.from_dir(source)  # a model folder: ModelError otherwise
    if source.resolve().parent == models.resolve():
        raise ModelError(f"{source} lies in {models} already: nothing to ship")
    if not (source / "report.json").is_file() or "steps" not in (
        report := json.loads((source / "report.json").read_text())
    ):
        raise ModelError(f"{source}: not a soup made by python -m train.soup (no report.json)")
    folders = [Path(candidate) for candidate in report["candidates"]]
    target = models / source.name
    with atomic.replacing_folder(target, MODEL_FOLDER) as folder:
        shutil.copytree(source, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
        kept = keep_member_cards(folders, folder)
        (folder / "README.md").write_text(card(target.name, report, folders, not report["steps"], kept))
    return target


def member_path(folder: Path, kept: Sequence[str]) -> str:
    """How the card's command names a member: where its own card's make ship puts it when that card is kept."""
    return f"models/{folder.name}" if folder.name in kept else str(folder)


def card(name: str, report: dict, folders: list[Path], uniform: bool, kept: Sequence[str] = ()) -> str:
    """The soup's model card, in Markdown; kept: the members whose cards lie beside it (lineage),
    named where their own cards' make ship puts them."""
    test, val, raw = report["splits"]["test"], report["splits"]["val"], report.get("raw_splits")

    def shown(member: str) -> str:  # named as the card's command names it
        return f"`{member_path(Path(member), kept)}`"

    members = ", ".join(shown(m) for m in report["members"])
    lines = [
        f"# {name}",
        "",
        f"One Caffe model whose weights are the average of {len(report['members'])} models shipped by this "
        f"project ({members}), BatchNorm statistics averaged alike; it runs once per face. Chosen from "
        f"{', '.join(shown(c) for c in report['candidates'])}: {report['selection']}.",
        "",
        "| | |",
        "|---|---|",
        f"| PrivateTest accuracy (all {test['images']} images, centre crop) | **{test['accuracy']:.4f}** |",
        f"| PublicTest accuracy{'' if uniform else ' (used to choose the members)'} | {val['accuracy']:.4f} |",
    ]
    if raw:
        lines += [
            f"| PrivateTest, plain crops as `predict --no-detect --raw` sees them | {raw['test']['accuracy']:.4f} |",
            f"| PublicTest, plain crops{'' if uniform else ' (used to choose, with the aligned path)'} | "
            f"{raw['val']['accuracy']:.4f} |",
        ]
    for key, what in (
        ("face_found", "faces MTCNN found"),
        ("not_copies_of_train", "without pixel copies of training images"),
    ):
        if key in test:
            lines.append(f"| PrivateTest, {what} ({test[key]['images']}) | {test[key]['accuracy']:.4f} |")
    if not uniform:  # --uniform takes every member: PublicTest chose nothing
        raw_cells = " | PublicTest raw: alone | with the soup" if raw else ""
        lines += ["", "## The greedy choice", "", f"| member | PublicTest: alone | with the soup{raw_cells} | kept |"]
        lines.append("|---|---|---|" + ("---|---|" if raw else "") + "---|")
        for step in report["steps"]:
            cells = f"{step['alone']['val']:.4f} | {step['soup']['val']:.4f}"
            if raw:
                cells += f" | {step['alone']['raw_val']:.4f} | {step['soup']['raw_val']:.4f}"
            lines.append(f"| {shown(step['member'])} | {cells} | {'yes' if step['kept'] else 'no'} |")
    lines += ["", "## Test-time augmentation", "", *tta_markdown(report)]
    options = (f" --raw {card_dataset(Path(report['raw_data']))}" if raw else "") + (" --uniform" if uniform else "")
    lines += [
        "",
        "## Reproduce",
        "```sh",
        *preprocess_lines([Path(report["data"])] + ([Path(report["raw_data"])] if raw else [])),
        f"python -m train.soup {' '.join(f'--member {member_path(folder, kept)}' for folder in folders)} "
        f"--data {card_dataset(Path(report['data']))}{options} --name {name}",
        "```",
        *(
            [
                f"Each member's card lies beside this one ({', '.join(f'`{member}.md`' for member in kept)}): "
                "its commands make the member in `models/`."
            ]
            if kept
            else []
        ),
        "",
        *closing_sections(test),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m train.soup", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--member", type=Path, action="append", metavar="MODEL_DIR",
                        help="a single model folder fine-tuned from the others' weights; two or more")  # fmt: skip
    parser.add_argument(
        "--data", type=Path, help="the dataset the members were trained on (aligned as they were); with --member"
    )
    parser.add_argument("--ship", type=Path, metavar="SOUP_DIR",
                        help="instead of making a soup, ship one made into another --models (an experiment's "
                        "runs) into --models, its card naming its members there; no scoring")  # fmt: skip
    parser.add_argument("--name", type=cli.model_name, help="the soup's name, the folder under --models; with --member")
    parser.add_argument("--models", type=Path, default=Path("models"), help="default: %(default)s")
    parser.add_argument("--raw", type=Path, metavar="DATA_DIR",
                        help="the same images as plain crops (make preprocess ARGS=--no-align): choose by the mean "
                        "of PublicTest on the aligned and the raw path")  # fmt: skip
    parser.add_argument("--uniform", action="store_true", help="average every member, no choice")
    parser.add_argument("--backend", choices=("opencv", "caffe"), default="opencv", help="what scores the candidates")
    args = parser.parse_args(argv)
    if args.ship:
        if args.member or args.name:
            parser.error("--ship ships a soup made already: give it without --member and --name")
        try:
            print(f"shipped {args.ship} into {ship(args.ship, args.models)}")
        except ModelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if len(args.member or []) < 2 or not args.data or not args.name:
        parser.error("a soup needs two or more --member, --data and --name (or --ship SOUP_DIR)")
    try:
        report = soup(args.member, args.data, args.models / args.name, args.raw, args.backend, args.uniform)
    except (ModelError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"soup of {len(report['members'])} of {len(args.member)}: {headline(report)}; wrote {args.models / args.name}"
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
