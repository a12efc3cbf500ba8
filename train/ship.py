"""python -m train.ship: turn an evaluated run into a model folder with its model card.

Copies the PublicTest-selected snapshot that `make evaluate` chose, deploy.prototxt, the
training mean, the label names and the evaluation pictures into models/<name>/, and writes
README.md (the model card) from run.json, the data manifest and report.json, so that every
number on the card comes from those files. A run warm-started from a model folder keeps that
model's card too, as <start>.md, and the cards it kept of its own starts: the commands that
make each model of its descent, wherever (a runs folder, git history) those models lie now.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from google.protobuf import text_format

from ferlib import atomic, cli
from ferlib.classes import FER2013
from ferlib.dataset import read_manifest, split_names, template
from ferlib.faces import DEFAULT_TEMPLATE
from ferlib.model_folder import MODEL_FOLDER, ModelError, write_model
from train.caffe_log import parse
from train.evaluate import names, peak_on_test, peak_sentence, per_class_markdown, tta_markdown
from train.run import caffe_pb2, train_data_layer
from train.teacher import TEACHER_FILE


def training_seconds(log_text: str, gap: float = 600) -> float:
    """Time Caffe spent training, from its log: the sum of the steps between log lines,
    leaving out pauses longer than gap seconds (a stopped and resumed run)."""
    times = [t for _, t in parse(log_text).times]
    steps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    return sum(s for s in steps if 0 <= s <= gap)


def augmentation_steps(transform) -> list[str]:
    """The random augmentation of patch 0004's transform_param fields, in words."""
    steps = []
    if transform.rotate_degrees:
        steps.append(f"rotation by up to {transform.rotate_degrees:g} degrees")
    if transform.zoom_min != 1 or transform.zoom_max != 1:
        steps.append(f"zoom {transform.zoom_min:g}-{transform.zoom_max:g}")
    if transform.shift:
        steps.append(f"shift by up to {transform.shift:.0%} of each side")
    if transform.contrast:
        steps.append(f"contrast x {1 - transform.contrast:g}-{1 + transform.contrast:g}")
    if transform.brightness:
        steps.append(f"brightness +-{transform.brightness:g}")
    if transform.erase_probability:
        steps.append(
            f"random erasing ({transform.erase_probability:.0%} of images, "
            f"{transform.erase_area_min:.0%}-{transform.erase_area_max:.0%} of the face)"
        )
    return steps


def recipe(run: Path) -> dict:
    """What the card says about training, read from the run's own solver and nets: solver
    settings and how the learning rate falls, the training augmentation and the deploy input shape."""
    pb2 = caffe_pb2()
    solver = text_format.Parse((run / "solver.prototxt").read_text(), pb2.SolverParameter())
    net = text_format.Parse((run / "train_val.prototxt").read_text(), pb2.NetParameter())
    deploy = text_format.Parse((run / "deploy.prototxt").read_text(), pb2.NetParameter())
    transform = train_data_layer(net).transform_param
    shape = next(layer.input_param.shape[0].dim for layer in deploy.layer if layer.type == "Input")
    augment = [f"random {transform.crop_size}x{transform.crop_size} crops"] if transform.crop_size else []
    augment = (["mirror"] if transform.mirror else []) + augment + augmentation_steps(transform)
    augment += [
        f"mixup (each image and its target mixed with another's of the batch, the weight drawn from "
        f"Beta({layer.mixup_param.alpha:g}, {layer.mixup_param.alpha:g}))"
        for layer in net.layer
        if layer.type == "Mixup"
    ]
    if solver.lr_policy == "poly":
        falls = f"x (1 - iteration / {solver.max_iter})^{solver.power:g} (poly)"
    else:
        falls = f"x{solver.gamma:g} at iterations " + " and ".join(
            f"{step} ({100 * step / solver.max_iter:.0f}%)" for step in solver.stepvalue
        )
    return {
        "solver": f"SGD momentum {solver.momentum:g}, weight decay {solver.weight_decay:g}, "
        f"base_lr {solver.base_lr:g}, {falls}",
        "augment": " + ".join(augment) or "no augmentation",
        "input": "x".join(str(d) for d in shape),
        "crop": transform.crop_size,
    }


LIMITS = """## Intended use and limits

For research on facial expressions and for labelling the faces in photos and videos, not for
decisions about people. It sees 48x48 gray faces and knows the classes in `labels.json`
(FER2013's seven, or FER+'s eight): posed and internet faces, mostly frontal, from FER2013's
collection, with its biases. MTCNN finds upright faces; on the benchmark photo it still found
the face turned 60 degrees one way and 65 the other (`make bench-faces`), and profile faces
are often missed. With `--no-detect` nothing checks that the picture is a face. Its
probabilities are not promised to be calibrated: `python -m train.calibrate` measures them.
"""


def share(subset: dict) -> str:
    """A subset's accuracy, or a dash for an empty subset (no accuracy to give)."""
    return f"{subset['accuracy']:.4f}" if subset.get("accuracy") is not None else "-"


def data_lines(manifest: dict, aligned_onto: str) -> list[str]:
    """The card's Data section: what the images were and how preprocess made them faces."""
    faces, counts, source = manifest["faces"], manifest["counts"], manifest["input"]
    plain = split_names(manifest)
    labels = ("train", *plain.values()) if "folder" in source else ("Training", *plain.values())
    classes = manifest.get("classes", FER2013)
    found = ", ".join(
        f"{label} {faces[split]['found']}/{counts[split]['total']}"
        for label, split in zip(labels, ("train", "val", "test"))
    )
    sizes = " / ".join(f"{counts[split]['total']} {label}" for label, split in zip(labels, ("train", "val", "test")))
    if "folder" not in source:
        both = (
            f" Training holds each of its {counts['train']['total'] // 2} faces twice (`--raw-view`): aligned, and as "
            "its plain crop (counted as not found), the view of `predict --no-detect --raw`. Mean of both views"
            if raw_view(manifest)
            else " Mean of the aligned training faces"
        )
        return [
            f"- FER2013 (`fer2013.csv`, sha256 `{source['csv_sha256']}`): {sizes} images, {len(classes)} classes "
            f"({manifest.get('labels', 'fer2013')} labels).",
            f"- `make preprocess`: MTCNN on each 48x48 crop padded by 25%, 5-point similarity alignment to 48x48 "
            f"{aligned_onto} (`alignment.json`); faces found: {found} (the others keep the plain crop).{both} "
            "subtracted.",
        ]
    split = manifest["split"]
    how = (
        "split by you (train/, val/, test/)"
        if split["fractions"] is None
        else f"split by preprocess ({'/'.join(f'{f:g}' for f in split['fractions'])}, stratified by class, seed "
        f"{split['seed']}"
        + (
            f", {split['subjects']} subjects kept whole by `--subject '{split['subject_regex']}'`"
            if split["subject_regex"]
            else ""
        )
        + ")"
    )
    mapped = f", folder names mapped by `{source['mapping']}`" if source.get("mapping") else ""
    return [
        f"- The folder `{source['folder']}` (file list sha256 `{source['listing_sha256']}`): {sizes} images, "
        f"{len(classes)} classes ({', '.join(classes)}{mapped}), {how}; {manifest['bad_files']['count']} files "
        "skipped: not images or unreadable (listed in the dataset's manifest.json).",
        f"- `make preprocess FOLDER=...`: MTCNN on each picture (crops of up to 128 pixels padded by 25% first), "
        f"5-point similarity alignment to 48x48 {aligned_onto} (`alignment.json`); faces found: {found} (the "
        "others: the centre square). Mean of the aligned training faces subtracted.",
    ]


def raw_view(manifest: dict) -> bool:
    """Whether preprocess put each training face in twice, aligned and plain (--raw-view)."""
    return bool(manifest.get("settings", {}).get("raw_view"))


def preprocess_options(manifest: dict) -> str:
    """The ARGS= of the card's make preprocess line ("" for the defaults)."""
    aligned = template(manifest)
    options = {DEFAULT_TEMPLATE: [], None: ["--no-align"]}.get(aligned, ["--template", aligned])
    options += ["--raw-view"] if raw_view(manifest) else []
    if not options:
        return ""
    return f" ARGS={options[0]}" if len(options) == 1 else f' ARGS="{" ".join(options)}"'


def restore_hint(commands: list[str], own: set[str]) -> list[str]:
    """A line saying how to get back the shipped models the commands start from (weights,
    teacher members), for when they have left models/ (they stay in git history); own: the
    model's name and a start whose card it keeps, which have nothing to restore."""
    cited = sorted(set(re.findall(r"\bmodels/(\w+)/?", " ".join(commands))) - own)
    if not cited:
        return []
    names = ", ".join(f"`{n}`" for n in cited)
    return [f"A model these commands start from ({names}) that has left `models/` comes back: `make restore NAME=...`."]


def data_folder(manifest: dict) -> str:
    """The repository folder a card's make preprocess line makes a dataset in: FER2013's
    default stays data/fer2013; FER+ labels, another template, plain crops and both views get
    folders of their own (data/ferplus-arcface-rawview, data/fer2013-plain); an images folder
    keeps its name. Cards name datasets by it, not by the path on the machine that measured them."""
    source = manifest["input"]
    if "folder" in source:
        return f"data/{Path(source['folder']).name}"
    aligned = template(manifest)
    faces = "-plain" if aligned is None else ("" if aligned == DEFAULT_TEMPLATE else f"-{aligned}")
    labels = "ferplus" if source.get("ferplus") else "fer2013"
    return f"data/{labels}{faces}" + ("-rawview" if raw_view(manifest) else "")


def preprocess_manifest(folder: Path) -> dict | None:
    """A dataset folder's manifest when make preprocess made it (it names its input), else None."""
    manifest = read_manifest(folder)
    return manifest if manifest and "input" in manifest else None


def card_dataset(folder: Path) -> str:
    """How a card names a dataset it was measured on: data_folder where make preprocess made
    it, else the path as given."""
    manifest = preprocess_manifest(folder)
    return data_folder(manifest) if manifest else str(folder)


def preprocess_line(folder: Path) -> str | None:
    """The make preprocess line that makes the dataset again (into card_dataset), or None for
    a folder make preprocess did not make."""
    manifest = preprocess_manifest(folder)
    return reproduce_preprocess(manifest, preprocess_options(manifest))[0] if manifest else None


def reproduce_preprocess(manifest: dict, preprocess_args: str) -> tuple[str, str]:
    """The make preprocess line of the card, and the DATA= the other lines need."""
    source = manifest["input"]
    if "folder" not in source:
        folder = data_folder(manifest)
        data = "" if folder == "data/fer2013" else f" DATA={folder}"
        labels = " LABELS=ferplus" if source.get("ferplus") else ""
        return f"make preprocess FER2013=path/to/fer2013.csv.gz{labels}{data}{preprocess_args}", data
    split = manifest["split"]
    extra = [f"--map {source['mapping']}"] if source.get("mapping") else []
    if split["fractions"] not in (None, [0.8, 0.1, 0.1]):
        extra.append(f"--split {','.join(f'{f:g}' for f in split['fractions'])}")
    if split["subject_regex"]:
        extra.append(f"--subject '{split['subject_regex']}'")
    if split["fractions"] is not None and split["seed"] != 1:
        extra.append(f"--seed {split['seed']}")
    args = preprocess_args.removeprefix(' ARGS="').removeprefix(" ARGS=").removesuffix('"')
    extra += [args] if args else []
    data = f" DATA={data_folder(manifest)}"
    return f"make preprocess FOLDER={source['folder']}" + (f' ARGS="{" ".join(extra)}"' if extra else ""), data


def soft_targets_lines(soft: dict, data: Path, data_arg: str = "") -> tuple[str, str, str]:
    """For a run on soft targets: its make arguments (SOFT=, SOFT_WEIGHT=), the card's line on
    the loss, and, when python -m train.teacher made the targets (its teacher.json, beside the
    LMDB's files: models' probabilities or the FER+ crowd's votes), the command that makes
    them again, else ''. Like the card's other lines, the commands use the repository's own
    folders (data_arg: the card's DATA=, runs/<name>), not the paths of the machine that
    trained."""
    path = Path(soft["path"])
    made_by = path / TEACHER_FILE
    teacher = json.loads(made_by.read_text()) if made_by.exists() else None
    if path.parent == data:  # FER+'s train_targets_lmdb: a name inside the dataset folder
        name = path.name
    else:
        name = f"runs/{path.name}" if teacher else soft["path"]
    line = (
        f"- Loss: {soft['weight']:g} x cross-entropy with the soft targets `{name}` (sha256 `{soft['sha256']}`, one "
        f"probability vector per training image) + {1 - soft['weight']:g} x the hard labels' (softmax loss)."
    )
    command = ""
    if teacher:
        if "votes" in teacher:
            given = " --votes path/to/fer2013new.csv"
            line += (
                f" The targets are the FER+ crowd's votes on each training face (`{teacher['votes']['file']}` "
                f"sha256 `{teacher['votes']['sha256']}`) over FER2013's seven classes, temperature "
                f"{teacher['temperature']:g}; their most-voted class is the label for {teacher['agreement']:.4f} "
                "of the training faces."
            )
        else:
            tta = f" --tta {teacher['tta']}" if teacher["tta"] != "none" else ""
            given = "".join(f" --model {member['folder']}" for member in teacher["members"]) + tta
            members = ", ".join(
                f"`{m['folder']}` (`{m['weights']}` sha256 `{m['sha256']}`)" for m in teacher["members"]
            )
            line += (
                f" The targets are a teacher's probabilities on the training faces: the average of {members}, "
                f"TTA {teacher['tta']}, temperature {teacher['temperature']:g}; it agrees with "
                f"{teacher['agreement']:.4f} of the training labels."
            )
        on_data = f" --data {data_arg.removeprefix(' DATA=')}" if data_arg else ""
        command = (
            f".venv/bin/python -m train.teacher{given}{on_data} --out {name} --temperature {teacher['temperature']:g}"
        )
    return f" SOFT={name} SOFT_WEIGHT={soft['weight']:g}", line, command


def lineage(folder: Path) -> dict[str, Path]:
    """The cards a model made from the model folder keeps (a warm start, a soup's member), by the
    name each lies under beside it: the folder's own card as <folder>.md and the cards it keeps
    of the models it descends from; empty when it has no card. An experiment ships each step of
    a chain into its runs folder, which git keeps no copy of, so each step carries the cards of
    all before it, and the model shipped from the last says how to make every step."""
    card, own = folder / "README.md", folder / f"{folder.name}.md"
    if not card.is_file():
        return {}
    if own.exists():
        raise ModelError(f"{own}: a card named like the folder's own, which a model made from it keeps under that name")
    return {own.name: card} | {path.name: path for path in sorted(folder.glob("*.md")) if path != card}


def keep_cards(cards: dict[str, Path], folder: Path) -> None:
    """Copy cards (see lineage) into folder under their names; ModelError when two different
    cards would lie under one name (two models of one name in one model's descent)."""
    for name, path in cards.items():
        if (folder / name).is_file() and (folder / name).read_bytes() != path.read_bytes():
            raise ModelError(f"{path}: another card named {name} is kept in {folder} already")
        shutil.copy(path, folder / name)


def card(
    name: str, run: Path, info: dict, manifest: dict, report: dict, seconds: float, start_card: bool = False
) -> str:
    """The model card, in Markdown; start_card: the card of the weights it started from is
    beside it (lineage)."""
    schedule, val, test = info["schedule"], report["splits"]["val"], report["splits"]["test"]
    val_name, test_name = names(report).values()
    how = recipe(run)
    peak = peak_on_test(report.get("candidates", []))
    evaluate_args = " ".join(
        ([f"--tta {report['tta']}"] if report["tta"] != "none" else []) + (["--test-curve"] if peak else [])
    )
    evaluate_args = f' ARGS="{evaluate_args}"' if evaluate_args else ""
    aligned = template(manifest)
    preprocess_args = preprocess_options(manifest)
    aligned_onto = f"onto the `{aligned}` template" if aligned else "skipped (`--no-align`: plain crops)"
    start = info.get("weights")
    start_path, start_name = "", ""
    if start:  # a start whose card is kept is named where that card's make ship puts it
        start_name = Path(start["path"]).parent.name
        start_path = f"models/{start_name}/{Path(start['path']).name}" if start_card else start["path"]
    weights = f" WEIGHTS={start_path}" if start else ""
    seeded = info["run"].endswith(f"-seed{info.get('seed')}")  # make train SEED=n names its run so (ferlib.runs)
    weights += f" SEED={info['seed']}" if seeded else ""
    weights += f" AUGMENT={info['augment']['name']}" if info.get("augment") else ""
    weights += f" LR={info['base_lr']:g}" if info.get("base_lr") else ""
    weights += f" MIXUP={info['mixup']:g}" if info.get("mixup") else ""
    weights += f" LR_POLICY={schedule['policy']}" if schedule.get("policy", "multistep") != "multistep" else ""
    preprocess_line, data = reproduce_preprocess(manifest, preprocess_args)
    soft = info.get("soft")
    soft_args, loss_line, teacher_command = (
        soft_targets_lines(soft, Path(info["data"]["dir"]), data) if soft else ("", "", "")
    )
    weights += soft_args
    weights = data + weights
    dataset = (
        ("FER2013 with the FER+ labels" if manifest["input"].get("ferplus") else "FER2013")
        if "folder" not in manifest["input"]
        else f"the folder dataset `{Path(manifest['input']['folder']).name}`"
    )
    commands = [
        preprocess_line,
        *([teacher_command] if teacher_command else []),
        f"make train NET={info['net']} EPOCHS={schedule['epochs']:g}{weights}",
        f"make evaluate NET={info['net']} EPOCHS={schedule['epochs']:g}{weights}{evaluate_args}",
        f"make ship NET={info['net']} EPOCHS={schedule['epochs']:g}{weights} NAME={name}",
    ]
    fresh = info.get("fresh_layers") or []
    started = (
        f", fine-tuned from the weights `{start_path}`"
        + (
            f" (`{', '.join(fresh)}` started afresh for these {len(manifest.get('classes', FER2013))} classes)"
            if fresh
            else " (a warm start)"
        )
        + "."
        if start
        else "."
    )
    lines = [
        f"# {name}",
        "",
        f"A Caffe `{info['net']}` (prototxt/{info['net']}/) trained on {dataset} by this project's `make train`"
        + started,
        "",
        "| | |",
        "|---|---|",
        f"| {test_name} accuracy (all {test['images']} images) | **{test['accuracy']:.4f}** |",
        f"| {val_name} accuracy (used to select the snapshot) | {val['accuracy']:.4f} |",
        f"| {test_name}, faces MTCNN found ({test['face_found']['images']}) | {share(test['face_found'])} |",
        f"| {test_name}, no face found: unaligned crop ({test['face_not_found']['images']}) | "
        f"{share(test['face_not_found'])} |",
        f"| {test_name} without the {test['images'] - test['not_copies_of_train']['images']} pixel copies of "
        f"training images ({test['not_copies_of_train']['images']}) | {share(test['not_copies_of_train'])} |",
        f"| selected | {report['selection']} |",
        f"| test-time augmentation | {report['tta']} |",
        "",
        "## Data",
        *data_lines(manifest, aligned_onto),
        "",
        "## Training",
        f"- {schedule['epochs']:g} epochs = {schedule['max_iter']} iterations of batch {schedule['batch_size']}; "
        f"{how['solver']}; "
        f"{how['augment']} of the 48x48 faces.",
        *(
            [
                f"- Initialised from `{start_path}` (sha256 `{start['sha256']}`, "
                + (
                    f"its own card, kept beside this one as `{start_name}.md`, says how to make it"
                    if start_card
                    else "its own card says how it was trained"
                )
                + ") instead of random weights"
                + (f", except `{', '.join(fresh)}`" if fresh else "")
                + "; the schedule above ran in full from there."
                + (
                    " Those weights are the model this one replaced under the same name: its caffemodel and card "
                    "stay in git history (`git log -- models/" + name + "`; the sha256 above names the version)."
                    if Path(start["path"]).parent.name == name
                    else ""
                )
            ]
            if start
            else []
        ),
        *([loss_line] if loss_line else []),
        f"- Caffe time spent training: {timedelta(seconds=round(seconds))} (from caffe.log, pauses left out) "
        f"on the machine described in the README; {info['versions']['caffe']}.",
        "",
        "## Reproduce",
        "```sh",
        *commands,
        "```",
        *restore_hint(commands, {name, start_name} if start_card else {name}),
        "",
        f"## {test_name} per class",
        "",
        *per_class_markdown(test),
    ]
    if report.get("tta_table"):
        lines += ["", "## Test-time augmentation", "", *tta_markdown(report)]
        lines.append("\n`python -m predict --tta mirror` (or `ten`) averages over those views.")
    lines += ["", "![confusion matrix](confusion.png)", "", "![learning curves](curves.png)", ""]
    if peak:
        lines += [peak_sentence(peak, test["accuracy"]), "", "![every snapshot](snapshots.png)", ""]
    lines += [
        f"Files: `deploy.prototxt` (input {how['input']}: the centre {how['crop']}x{how['crop']} crop of an aligned "
        "48x48 face minus `mean.npy`), the `.caffemodel`, `labels.json`, `alignment.json` (the template predict "
        "aligns faces with), `report.json` (the full evaluation).",
        "",
        LIMITS,
    ]
    return "\n".join(lines)


def ship(run: Path, name: str, models: Path) -> Path:
    """Write models/<name>/ from an evaluated run; returns the folder."""
    evaluation = run / "eval"
    report_path = evaluation / "report.json"
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path}: evaluate the run first (make evaluate)")
    report = json.loads(report_path.read_text())
    info = json.loads((run / "run.json").read_text())
    data = Path(info["data"]["dir"])
    manifest = read_manifest(data) or {}
    seconds = training_seconds((run / "caffe.log").read_text())
    target = models / name
    with atomic.replacing_folder(target, MODEL_FOLDER) as folder:  # the old model stays whole until the new one is
        labels = tuple(manifest.get("classes", FER2013))
        write_model(
            folder, name, Path(report["model"]), run / "deploy.prototxt", data / "mean.npy", labels, template(manifest)
        )
        every_snapshot = ("snapshots.png",) if peak_on_test(report.get("candidates", [])) else ()
        for picture in ("confusion.png", "curves.png", "report.json", *every_snapshot):
            shutil.copy(evaluation / picture, folder / picture)
        start = Path(info["weights"]["path"]).parent if info.get("weights") else None
        # not the card of a model this one replaces under its name: git history keeps that one
        cards = lineage(start) if start is not None and start.name != name else {}
        keep_cards(cards, folder)
        (folder / "README.md").write_text(card(name, run, info, manifest, report, seconds, bool(cards)))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
        prog="python -m train.ship", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="an evaluated run folder")
    parser.add_argument("--name", type=cli.model_name, required=True, help="model name, the folder under --models")
    parser.add_argument("--models", type=Path, default=Path("models"), help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        target = ship(args.run, args.name, args.models)
    except (FileNotFoundError, KeyError, ValueError, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    cli.run(main)
