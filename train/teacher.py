"""python -m train.teacher: a model's (or an ensemble's) probabilities on every training face,
as soft targets for distillation (make train SOFT=<its LMDB>).

The faces are the dataset's own training faces in the training LMDB's order, so each member
must have been trained on faces aligned the same way (its alignment.json names the dataset's
template). Each member sees them with the model's test-time augmentation, the members'
probabilities are averaged, then over the records of each face (a dataset made with
--raw-view holds every face aligned and as its plain crop: both get one target, so the
unaligned view learns what the teacher sees in both), and --temperature T > 1 softens them
(p^(1/T), renormalised) to pass on more of what the teacher knows about the other classes.
Beside the LMDB's files, teacher.json says which teacher made them: its member models, each
with the sha256 of its weights, and the augmentation, so that a model card trained on them
can cite them and make them again (make ship) after the ensemble folder has moved on to
better members (a replaced caffemodel stays in git history under its sha256). The members
can be given directly: --model a --model b --tta mirror averages two models.

--votes fer2013new.csv is a teacher that no model of this project made: the FER+ crowd's ten
votes on each FER2013 training face (joined by csv row), over FER2013's seven classes. Its
targets make errors of their own, not a model's: the crowd's most-voted class is the
FER2013 label for only about two faces in three, so with SOFT_WEIGHT <= 0.5 the label keeps
at least half of each face's target and the votes spread the rest over the classes people
took the face for. Measured on fer_vgg they cost three points of FER2013 accuracy and made no
better ensemble member (docs/results.md, "Members that learn other targets").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ferlib import atomic, cli, ferplus
from ferlib.classes import FER2013
from ferlib.classifier import Classifier
from ferlib.dataset import DatasetError, check_classes, dataset_template, file_sha256, key_row
from ferlib.lmdb_io import read_lmdb, write_vectors
from ferlib.model_folder import TTA_MODES, TTA_VIEWS, ModelError, ModelFiles, is_ensemble, model_members
from train.progress import net_passes_bar
from train.votes import face_votes, read_crowd

TEACHER_FILE = "teacher.json"  # beside data.mdb: what made the targets (make ship cites it)
TEACHER_FOLDER = atomic.Kind("a teacher's targets (teacher.json)", lambda folder: (folder / TEACHER_FILE).is_file())


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T), renormalised: the softmax of the logits divided by T."""
    scaled = np.power(np.clip(probabilities, 1e-12, 1), 1 / temperature)
    return scaled / scaled.sum(axis=1, keepdims=True)


def per_face(keys: list[str], probabilities: np.ndarray) -> np.ndarray:
    """Each record's probabilities replaced by the mean over the records of its face (the
    records with one key_row); where every face has one record, the probabilities as they
    were, to the bit."""
    _, face = np.unique([key_row(key) for key in keys], return_inverse=True)
    sums = np.zeros((face.max() + 1, probabilities.shape[1]), dtype=probabilities.dtype)
    np.add.at(sums, face, probabilities)
    return (sums / np.bincount(face)[:, None])[face]


def teacher_members(models: list[Path], tta: str | None) -> tuple[list[Path], str]:
    """The model folders to average and their test-time augmentation: one model or ensemble
    folder with its own (or tta), or several model folders with tta (default none)."""
    if len(models) == 1:
        folders, own = model_members(models[0])
        return folders, tta or own
    for model in models:
        if is_ensemble(model):
            raise ModelError(f"{model}: an ensemble; give its members, or it alone")
    return list(models), tta or "none"


def teacher_targets(
    members: list[ModelFiles], tta: str, data: Path, temperature: float = 1.0
) -> tuple[list[str], np.ndarray, float]:
    """The LMDB keys, the (N, classes) soft targets and the teacher's accuracy on the training labels."""
    template = dataset_template(data)
    keys, faces, truth = read_lmdb(data / "train_lmdb")
    classifiers = []
    for files in members:  # every member checked before the first pass
        folder = files.deploy.parent
        if files.template != template:
            raise ModelError(f"{folder}: aligned with template {files.template!r}, the dataset with {template!r}")
        classifiers.append(Classifier(files))
        check_classes(classifiers[-1].labels, data, folder)
    total = len(members) * TTA_VIEWS[tta] * len(faces)
    with net_passes_bar(total) as bar:
        probabilities = [c.probabilities(faces[:, 0], tta=tta, progress=bar.update) for c in classifiers]
    averaged = soften(per_face(keys, np.mean(probabilities, axis=0)), temperature)
    return keys, averaged.astype(np.float32), float(np.mean(averaged.argmax(axis=1) == truth))


def vote_targets(votes: Path, data: Path) -> tuple[list[str], np.ndarray, float]:
    """The LMDB keys, each training face's FER+ votes over FER2013's classes (its label,
    one-hot, where the crowd gave those classes no vote) and how often the crowd's most-voted
    class is the label."""
    crowd = read_crowd(votes, data)
    keys, _, truth = read_lmdb(data / "train_lmdb")
    targets = face_votes(crowd, keys, "Training", votes, data)
    unvoted = ~targets.any(axis=1)
    targets[unvoted] = np.eye(len(FER2013), dtype=np.float32)[truth[unvoted]]
    return keys, targets, float(np.mean(targets.argmax(axis=1) == truth))


def member_record(files: ModelFiles) -> dict[str, str]:
    """A member as teacher.json records it: its folder (relative to here when inside), its
    caffemodel's name and sha256."""
    folder = files.deploy.parent
    shown = os.path.relpath(folder) if folder.resolve().is_relative_to(Path.cwd()) else str(folder)
    return {"folder": shown, "weights": files.weights.name, "sha256": file_sha256(files.weights)}


def vote_record(votes: Path) -> dict[str, str]:
    """The votes file as teacher.json records it: its name and sha256 (FER+'s fer2013new.csv)."""
    return {"file": votes.name, "sha256": file_sha256(votes)}


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
        prog="python -m train.teacher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    teacher = parser.add_mutually_exclusive_group(required=True)
    teacher.add_argument(
        "--model",
        type=Path,
        action="append",
        help="the teacher: a model or ensemble folder; more than once: models to average",
    )
    teacher.add_argument("--votes", type=Path, help="the teacher: the FER+ crowd's votes, fer2013new.csv")
    parser.add_argument(
        "--tta", choices=TTA_MODES, help="test-time augmentation of every member (default: the ensemble's own, or none)"
    )
    parser.add_argument("--data", type=Path, default=Path("data/fer2013"), help="dataset (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="the LMDB folder to write, e.g. runs/teacher_lmdb")
    parser.add_argument(
        "--temperature", type=cli.number(0.1, 100), default=1.0, help="soften the targets, T > 1 (default: 1)"
    )
    args = parser.parse_args(argv)
    if args.votes and args.tta:
        parser.error("--tta: the crowd's votes see no pictures; give it with --model")
    atomic.check_replaceable(args.out, TEACHER_FOLDER)  # before minutes of net passes, as replacing_folder will
    try:
        if args.votes:
            keys, targets, accuracy = vote_targets(args.votes, args.data)
            if args.temperature != 1:  # soften() would also lift the crowd's zeros off zero
                targets = soften(targets, args.temperature).astype(np.float32)
            source = {"votes": vote_record(args.votes)}
        else:
            folders, tta = teacher_members(args.model, args.tta)
            members = [ModelFiles.from_dir(folder) for folder in folders]
            keys, targets, accuracy = teacher_targets(members, tta, args.data, args.temperature)
            source = {"members": [member_record(files) for files in members], "tta": tta}
    except (ModelError, DatasetError, ferplus.NotFerPlusError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    given = f"--votes {args.votes}" if args.votes else " ".join(f"--model {model}" for model in args.model)
    made = {
        "command": f"python -m train.teacher {given}{f' --tta {args.tta}' if args.tta else ''} --data {args.data} "
        f"--out {args.out} --temperature {args.temperature:g}",
        **source,
        "temperature": args.temperature,
        "agreement": accuracy,
    }
    with atomic.replacing_folder(args.out, TEACHER_FOLDER) as tmp:
        write_vectors(tmp, zip(keys, targets))
        (tmp / TEACHER_FILE).write_text(json.dumps(made, indent=1) + "\n")
    print(
        f"wrote {args.out}: {len(keys)} targets of {targets.shape[1]} classes (T={args.temperature:g}); "
        f"the teacher agrees with {accuracy:.4f} of the training labels"
    )
    return 0


if __name__ == "__main__":
    cli.run(main)
