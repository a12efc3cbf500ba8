"""python -m train.evaluate: score a run (its PublicTest-best snapshot) or a model folder on
PublicTest and PrivateTest, with per-class table, confusion matrix, learning curves and the
accuracy of the same weights with each test-time augmentation (none, mirror, ten crops)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ferlib import atomic, cli
from ferlib.classifier import Classifier, tta_average
from ferlib.dataset import SPLIT_NAMES, DatasetError, check_classes, classes, load_split, read_manifest, split_names
from ferlib.model_folder import TTA_MODES, ModelError, ModelFiles
from train import metrics, plots
from train.caffe_log import parse, snapshot_iteration
from train.progress import net_passes_bar


def split_report(probabilities: np.ndarray, split: dict, labels: tuple[str, ...]) -> tuple[dict, np.ndarray]:
    """Accuracy overall, by face found / not found, without copies of training images;
    per-class table; and the confusion matrix."""
    predicted = probabilities.argmax(axis=1)
    truth = split["labels"]
    counts = metrics.confusion_matrix(truth, predicted, len(labels))
    report = {
        "images": len(truth),
        "accuracy": metrics.accuracy(truth, predicted),
        "per_class": dict(zip(labels, metrics.per_class(counts))),
        "confusion": counts.tolist(),
    }
    if split["has_index"]:
        for name, mask in (
            ("face_found", split["found"]),
            ("face_not_found", ~split["found"]),
            ("not_copies_of_train", ~split["copies"]),
        ):
            report[name] = {"images": int(mask.sum()), "accuracy": metrics.accuracy(truth[mask], predicted[mask])}
    return report, counts


def split_views(classifier: Classifier, splits: dict[str, dict], count: int = 10, batch: int = 256) -> dict:
    """Each split's probabilities of the first count views (Classifier.view_probabilities)
    under one bar: ten views of both splits are 72,000 passes, minutes for a large net."""
    total = count * sum(len(split["faces"]) for split in splits.values())
    with net_passes_bar(total) as bar:
        return {
            key: classifier.view_probabilities(split["faces"], count, batch, progress=bar.update)
            for key, split in splits.items()
        }


def tta_table(
    views: dict[str, np.ndarray], splits: dict[str, dict], modes: tuple[str, ...] = TTA_MODES
) -> dict[str, dict[str, float]]:
    """Accuracy with each test-time augmentation (of modes) on each split (the TTA ablation),
    from the per-view probabilities of Classifier.view_probabilities."""
    return {
        mode: {
            key: metrics.accuracy(split["labels"], tta_average(views[key], mode).argmax(axis=1))
            for key, split in splits.items()
        }
        for mode in modes
    }


def names(report: dict) -> dict[str, str]:
    """The report's names of the val and test splits (FER2013's for reports that predate them)."""
    return report.get("split_names", SPLIT_NAMES)


def tta_markdown(report: dict) -> list[str]:
    """The report's TTA table as Markdown lines."""
    table, split = report["tta_table"], names(report)
    lines = [f"| TTA | {split['val']} | {split['test']} |", "|---|---|---|"]
    return lines + [f"| {mode} | {row['val']:.4f} | {row['test']:.4f} |" for mode, row in table.items()]


def per_class_markdown(split: dict) -> list[str]:
    """A split's per-class precision / recall / F1 table as Markdown lines."""
    lines = ["| class | precision | recall | F1 | images |", "|---|---|---|---|---|"]
    return lines + [
        f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |"
        for name, r in split["per_class"].items()
    ]


def headline(report: dict) -> str:
    """The one-line result: PublicTest and PrivateTest (val and test) accuracy."""
    splits, split = report["splits"], names(report)
    return f"{split['val']} {splits['val']['accuracy']:.4f}, {split['test']} {splits['test']['accuracy']:.4f}"


def select_snapshot(
    run: Path, mean: Path, val: dict, tta: str, backend: str, test: dict | None = None
) -> tuple[Path, list[dict]]:
    """The run's snapshot with the best PublicTest accuracy (the later one on a tie); with test,
    each snapshot's PrivateTest accuracy is recorded too, and never used to choose."""
    snapshots = sorted((run / "snapshots").glob("*.caffemodel"), key=snapshot_iteration)
    if not snapshots:
        raise ModelError(f"{run}: no snapshots/*.caffemodel yet")
    candidates = []
    for weights in tqdm(snapshots, desc="scoring each snapshot", unit=" snapshots", file=sys.stderr):
        classifier = Classifier(ModelFiles(run / "deploy.prototxt", weights, mean, classes(mean.parent)), backend)
        candidate = {"snapshot": weights.name, "iteration": snapshot_iteration(weights)}
        for key, split in (("val", val), ("test", test)):
            if split is not None:
                predicted = classifier.probabilities(split["faces"], tta=tta).argmax(axis=1)
                candidate[f"{key}_accuracy"] = metrics.accuracy(split["labels"], predicted)
        candidates.append(candidate)
    best = max(range(len(candidates)), key=lambda i: (candidates[i]["val_accuracy"], candidates[i]["iteration"]))
    return snapshots[best], candidates


def peak_on_test(candidates: list[dict]) -> dict | None:
    """The snapshot a 'highest test accuracy' would report: the best on PrivateTest itself."""
    scored = [c for c in candidates if "test_accuracy" in c]
    return max(scored, key=lambda c: (c["test_accuracy"], c["iteration"])) if scored else None


def peak_sentence(peak: dict, selected: float) -> str:
    """What picking the snapshot on the test set would claim, beside the honest number."""
    return (
        f'Picking the snapshot on PrivateTest itself, as a "highest test accuracy" does, would report '
        f"{peak['test_accuracy']:.4f} (iteration {peak['iteration']}); the PublicTest-selected snapshot scores "
        f"{selected:.4f} on PrivateTest, {100 * (peak['test_accuracy'] - selected):.1f} points less."
    )


def markdown(report: dict) -> str:
    """report.md: headline, the two splits, per-class table for PrivateTest."""
    test, val, split_name = report["splits"]["test"], report["splits"]["val"], names(report)
    lines = [
        f"# Evaluation of {report['model']}",
        "",
        f"**{split_name['test']} accuracy {test['accuracy']:.4f}** on all {test['images']} images "
        f"({report['selection']}; TTA: {report['tta']}; backend: {report['backend']}).",
        "",
        "| split | images | accuracy | face found | face not found | not a copy of a training image |",
        "|---|---|---|---|---|---|",
    ]
    for key, split in (("val", val), ("test", test)):
        cells = [
            f"{split[k]['accuracy']:.4f} ({split[k]['images']})" if split.get(k) and split[k]["images"] else "-"
            for k in ("face_found", "face_not_found", "not_copies_of_train")
        ]
        lines.append(f"| {split_name[key]} | {split['images']} | {split['accuracy']:.4f} | " + " | ".join(cells) + " |")
    lines += ["", f"{split_name['test']} per class:", "", *per_class_markdown(test)]
    lines += ["", "Test-time augmentation, the same weights:", "", *tta_markdown(report)]
    lines += ["", "![confusion matrix](confusion.png)", ""]
    if report.get("curves"):
        lines += ["![learning curves](curves.png)", ""]
    peak = peak_on_test(report.get("candidates", []))
    if peak:
        lines += [peak_sentence(peak, test["accuracy"]), "", "![every snapshot](snapshots.png)", ""]
    if report.get("candidates"):
        columns = ("val_accuracy", "test_accuracy") if peak else ("val_accuracy",)
        lines += [
            f"Every snapshot scored (the selection uses only {split_name['val']}):",
            "",
            "| iteration | " + " | ".join(f"{split_name[c.split('_')[0]]} accuracy" for c in columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        lines += [
            f"| {c['iteration']} | " + " | ".join(f"{c[k]:.4f}" for k in columns) + " |" for c in report["candidates"]
        ]
    return "\n".join(lines) + "\n"


def evaluate(
    data: Path,
    out: Path,
    tta: str,
    backend: str,
    run: Path | None = None,
    model: Path | None = None,
    test_curve: bool = False,
) -> dict:
    """Write report.json, report.md, confusion.png (and curves.png for a run, snapshots.png
    with test_curve) into out."""
    val, test = load_split(data, "val"), load_split(data, "test")
    split_name = split_names(read_manifest(data))
    candidates = []
    if run is not None:
        weights, candidates = select_snapshot(
            run, data / "mean.npy", val, tta, backend, test=test if test_curve else None
        )
        files = ModelFiles(run / "deploy.prototxt", weights, data / "mean.npy", classes(data))
        selection = f"snapshot {weights.name}, the best of {len(candidates)} on {split_name['val']}"
    else:
        files = ModelFiles.from_dir(model)
        selection = f"model {model}"
    classifier = Classifier(files, backend)
    check_classes(classifier.labels, data, model or run)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"val": val, "test": test}
    views = split_views(classifier, splits)
    reports, counts = {}, {}
    for key, split in splits.items():
        reports[key], counts[key] = split_report(tta_average(views[key], tta), split, classifier.labels)
    report = {
        "model": str(files.weights),
        "selection": selection,
        "tta": tta,
        "backend": backend,
        "data": str(data),
        "splits": reports,
        "split_names": split_name,
        "tta_table": tta_table(views, splits),
        "candidates": candidates,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    plots.confusion_png(
        counts["test"],
        classifier.labels,
        f"{split_name['test']}, accuracy {reports['test']['accuracy']:.4f} ({files.weights.name})",
        out / "confusion.png",
    )
    peak = peak_on_test(candidates)
    if peak:
        plots.snapshots_png(
            candidates,
            next(c for c in candidates if c["snapshot"] == files.weights.name),
            peak,
            f"{run.name}: every snapshot on both splits (selected on {split_name['val']})",
            out / "snapshots.png",
        )
    log_path = run / "caffe.log" if run is not None else None
    if log_path is not None and log_path.exists():
        info = json.loads((run / "run.json").read_text())
        plots.curves_png(
            parse(log_path.read_text()),
            info["schedule"]["epoch_iters"],
            f"{run.name}: learning curves",
            out / "curves.png",
        )
        report["curves"] = "curves.png"
    atomic.write_json(out / "report.json", report)
    atomic.write_text(out / "report.md", markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m train.evaluate", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a run folder: picks its best snapshot on PublicTest")
    source.add_argument("--model", type=Path, help="a model folder (deploy.prototxt, .caffemodel, mean.npy)")
    parser.add_argument("--data", type=Path, help="preprocessed dataset (default: the run's, else data/fer2013)")
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: mirror, or ten crops (default: %(default)s)",
    )
    parser.add_argument(
        "--test-curve",
        action="store_true",
        help="with --run: score every snapshot on PrivateTest too (snapshots.png), to show what picking "
        "the peak on the test set would claim; the selection still uses PublicTest only",
    )
    parser.add_argument("--backend", choices=("opencv", "caffe"), default="opencv")
    parser.add_argument(
        "--out",
        type=Path,
        help="report folder (default: <run>/eval, which make ship reads; for a model folder, an input left "
        "untouched, out/eval/<model>); eval-<tta> with --tta",
    )
    args = parser.parse_args(argv)
    if args.test_curve and args.run is None:
        parser.error("--test-curve scores a run's snapshots: give --run")
    data = args.data
    if data is None and args.run is not None and (args.run / "run.json").exists():
        data = Path(json.loads((args.run / "run.json").read_text())["data"]["dir"])
    data = data or Path("data/fer2013")
    report_folder = "eval" if args.tta == "none" else f"eval-{args.tta}"
    out = args.out or (
        args.run / report_folder if args.run else Path("out") / report_folder / args.model.resolve().name
    )
    try:
        report = evaluate(data, out, args.tta, args.backend, run=args.run, model=args.model, test_curve=args.test_curve)
    except (ModelError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{headline(report)} ({report['selection']}); report in {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
