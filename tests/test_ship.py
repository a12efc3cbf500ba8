"""make ship: the model card (its figures, the commands that remake the model and its
inputs), and a killed ship that leaves the old model whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ferlib.model_folder import ModelError
from train.evaluate import evaluate
from train.run import ROOT, train
from train_files import make_dataset, make_tiny_net


def shippable_dataset(folder: Path) -> Path:
    """A tiny dataset whose manifest and index hold what a model card reads (counts, faces
    found, the template; every test face found, none a copy)."""
    data = make_dataset(folder)
    manifest = json.loads((data / "manifest.json").read_text())
    manifest.update(
        counts={s: {"total": n} for s, n in (("train", 64), ("val", 30), ("test", 30))},
        faces={s: {"found": 15} for s in ("train", "val", "test")},
        settings={"align": True, "template": "fer2013"},
    )
    (data / "manifest.json").write_text(json.dumps(manifest))
    index = ["split,key,row,label,face_found,copy_of_train"]
    index += [f"{s},{i:08d}_{i:05d},{i},0,1,0" for s in ("val", "test") for i in range(30)]
    (data / "index.csv").write_text("\n".join(index) + "\n")
    return data


def test_shipping_an_evaluated_run_writes_a_model_card(tmp_path: Path, caffe_tool: str) -> None:
    from train.ship import ship, training_seconds

    data = make_dataset(tmp_path / "data")
    index = ["split,key,row,label,face_found,copy_of_train"]
    for split in ("val", "test"):
        index += [f"{split},{i:08d}_{i:05d},{i},0,{i % 2},{int(i < 3)}" for i in range(30)]
    (data / "index.csv").write_text("\n".join(index) + "\n")
    manifest = {
        "input": {"csv_sha256": "abc"},
        "counts": {s: {"total": n} for s, n in (("train", 64), ("val", 30), ("test", 30))},
        "faces": {s: {"found": 15} for s in ("train", "val", "test")},
        "settings": {"align": True, "template": "arcface"},
    }
    (data / "manifest.json").write_text(json.dumps(manifest))
    net = make_tiny_net(tmp_path / "tiny")
    train(str(net), data, tmp_path / "runs", "r", epochs=12, caffe=caffe_tool)
    evaluate(data, tmp_path / "runs/r/eval", "none", "opencv", run=tmp_path / "runs/r", test_curve=True)
    peaked = ship(tmp_path / "runs/r", "tiny_model", tmp_path / "models")
    assert (peaked / "snapshots.png").exists()
    peaked_card = (peaked / "README.md").read_text()
    assert "Picking the snapshot on PrivateTest itself" in peaked_card
    assert 'make evaluate NET=tiny EPOCHS=12 DATA=data/fer2013-arcface ARGS="--test-curve"\n' in peaked_card
    # evaluated again without --test-curve: the older snapshots.png in eval/ is not shipped
    report = evaluate(data, tmp_path / "runs/r/eval", "none", "opencv", run=tmp_path / "runs/r")
    model = ship(tmp_path / "runs/r", "tiny_model", tmp_path / "models")
    names = {p.name for p in model.iterdir()}
    assert names == {
        "tiny_model.caffemodel",
        "deploy.prototxt",
        "mean.npy",
        "labels.json",
        "alignment.json",
        "README.md",
        "confusion.png",
        "curves.png",
        "report.json",
    }
    text = (model / "README.md").read_text()
    assert f"**{report['splits']['test']['accuracy']:.4f}**" in text
    assert "make train NET=tiny EPOCHS=12" in text
    assert "make evaluate NET=tiny EPOCHS=12 DATA=data/fer2013-arcface\n" in text and "--test-curve" not in text
    # arcface faces get a folder of their own, not the default faces' data/fer2013
    assert 'make preprocess FER2013=path/to/fer2013.csv.gz DATA=data/fer2013-arcface ARGS="--template arcface"' in text
    assert json.loads((model / "alignment.json").read_text())["template"] == "arcface"
    assert f"| ten | {report['tta_table']['ten']['val']:.4f} |" in text
    assert "random 6x6 crops of the 48x48 faces" in text and "no augmentation" not in text
    assert "mirror" not in text.split("## Training")[1].split("##")[0]
    assert 0 < training_seconds((tmp_path / "runs/r/caffe.log").read_text()) < 600
    (tmp_path / "models/notes").mkdir()  # a folder of the user's where the name points
    (tmp_path / "models/notes/todo.txt").write_text("mine")
    shutil.copytree(ROOT / "prototxt/fer_vgg", tmp_path / "nets/fer_vgg")  # a net's folder has a deploy.prototxt
    for models, name in ((tmp_path / "models", "notes"), (tmp_path / "nets", "fer_vgg"), (tmp_path, "data")):
        before = sorted(p.name for p in (models / name).iterdir())
        with pytest.raises(FileExistsError, match="a folder that is not a model folder"):
            ship(tmp_path / "runs/r", name, models)
        assert sorted(p.name for p in (models / name).iterdir()) == before


def test_killed_ship_runs_leave_the_old_model_whole(tmp_path: Path, caffe_tool: str) -> None:
    import random

    from hostile import command, tree

    data = shippable_dataset(tmp_path / "data")
    train(str(make_tiny_net(tmp_path / "tiny")), data, tmp_path / "runs", "r", epochs=4, caffe=caffe_tool)
    evaluate(data, tmp_path / "runs/r/eval", "none", "opencv", run=tmp_path / "runs/r")
    args = ["train.ship", "--run", str(tmp_path / "runs/r"), "--name", "tiny", "--models", str(tmp_path / "models")]
    started = time.time()
    assert command(*args).wait(60) == 0
    duration = time.time() - started
    shipped = tree(tmp_path / "models" / "tiny")
    for seed in range(10):
        process = command(*args, stdout=subprocess.DEVNULL)
        time.sleep(random.Random(seed).uniform(0.5 * duration, 1.1 * duration))
        process.kill()
        process.wait(60)
        assert tree(tmp_path / "models" / "tiny") == shipped  # the whole old model (or the identical new one)
    assert command(*args).wait(60) == 0
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["tiny"]  # leftovers swept


def test_a_card_trained_on_both_views_says_so_and_remakes_them() -> None:
    """A dataset made with --raw-view: the card's make preprocess line asks for it (in a
    folder of its own), and its Data section says each face is there twice."""
    from train.ship import data_lines, preprocess_options, reproduce_preprocess

    counts = {s: {"total": n} for s, n in (("train", 64), ("val", 30), ("test", 30))}
    manifest = {
        "input": {"csv_sha256": "abc"},
        "counts": counts,
        "faces": {s: {"found": 15} for s in counts},
        "settings": {"align": True, "template": "fer2013", "raw_view": True},
    }
    assert preprocess_options(manifest) == " ARGS=--raw-view"
    line, data = reproduce_preprocess(manifest, preprocess_options(manifest))
    assert line == "make preprocess FER2013=path/to/fer2013.csv.gz DATA=data/fer2013-rawview ARGS=--raw-view"
    assert data == " DATA=data/fer2013-rawview"  # the make train / evaluate / ship lines use it too
    assert "each of its 32 faces twice (`--raw-view`)" in " ".join(data_lines(manifest, "onto the template"))
    arcface = {**manifest, "settings": {**manifest["settings"], "template": "arcface"}}
    assert preprocess_options(arcface) == ' ARGS="--template arcface --raw-view"'
    assert reproduce_preprocess(arcface, "")[1] == " DATA=data/fer2013-arcface-rawview"  # not the fer2013 faces' folder
    one_view = {**manifest, "settings": {"align": True, "template": "fer2013", "raw_view": False}}
    assert preprocess_options(one_view) == "" and reproduce_preprocess(one_view, "")[1] == ""
    assert "twice" not in " ".join(data_lines(one_view, "onto the template"))
    ferplus = {**manifest, "input": {"csv_sha256": "abc", "ferplus": "fer2013new.csv"}}
    assert reproduce_preprocess(ferplus, " ARGS=--raw-view")[1] == " DATA=data/ferplus-rawview"
    plain = {**manifest, "settings": {"align": False, "raw_view": False}}  # plain crops do not overwrite data/fer2013
    line = "make preprocess FER2013=path/to/fer2013.csv.gz DATA=data/fer2013-plain ARGS=--no-align"
    assert reproduce_preprocess(plain, preprocess_options(plain)) == (line, " DATA=data/fer2013-plain")


def test_a_card_says_how_to_get_back_the_models_it_started_from() -> None:
    from train.ship import restore_hint

    commands = [
        "python -m train.teacher --model models/fer2013_vgg_warm --model models/fer2013_reference150 --out t",
        "make train NET=fer_vgg EPOCHS=10 WEIGHTS=models/fer2013_vgg_warm/fer2013_vgg_warm.caffemodel SOFT=t",
    ]
    (hint,) = restore_hint(commands, {"fer2013_vgg_rawview"})
    assert "(`fer2013_reference150`, `fer2013_vgg_warm`)" in hint and "`make restore NAME=...`" in hint
    # a model trained on from itself under its own name, or from weights outside models/: nothing to restore
    assert restore_hint(["make train WEIGHTS=models/ferplus_vgg/ferplus_vgg.caffemodel"], {"ferplus_vgg"}) == []
    assert restore_hint(["make train WEIGHTS=/tmp/x.caffemodel"], {"x"}) == []
    # a start whose card the model keeps: its commands make it, git history may have none
    assert restore_hint(["make train WEIGHTS=models/step/step.caffemodel"], {"x", "step"}) == []


def test_the_cards_a_model_keeps_are_those_of_its_descent_one_per_name(tmp_path: Path) -> None:
    from train.ship import keep_cards, lineage

    start, kept = tmp_path / "runs/start", tmp_path / "model"
    assert lineage(start) == {}  # not a model folder with a card
    start.mkdir(parents=True)
    kept.mkdir()
    (start / "README.md").write_text("# start\n")
    (start / "first.md").write_text("# first\n")
    assert lineage(start) == {"start.md": start / "README.md", "first.md": start / "first.md"}
    keep_cards(lineage(start), kept)
    keep_cards(lineage(start), kept)  # a sibling of one start keeps the same cards again
    assert (kept / "start.md").read_text() == "# start\n" and (kept / "first.md").read_text() == "# first\n"
    (start / "first.md").write_text("# another first\n")
    with pytest.raises(ModelError, match=f"{start / 'first.md'}: another card named first.md is kept in"):
        keep_cards(lineage(start), kept)
    assert (kept / "first.md").read_text() == "# first\n"
    (start / "start.md").write_text("# an older start of that name\n")
    with pytest.raises(ModelError, match="start.md: a card named like the folder's own"):
        lineage(start)


def test_a_model_keeps_the_cards_of_every_model_it_descends_from(tmp_path: Path, caffe_tool: str) -> None:
    """An experiment ships each step of a chain into its runs folder (git keeps no copy) and
    trains on from it: each step keeps its start's card as <start>.md with the cards that start
    kept, so the model shipped into models/ from the last step says how to make every step, and
    names each start's weights where that start's card's make ship puts them."""
    from train.ship import ship

    data = shippable_dataset(tmp_path / "data")
    net = make_tiny_net(tmp_path / "tiny")
    runs = tmp_path / "runs"

    def trained(run: str, weights: Path | None = None) -> Path:
        train(str(net), data, runs, run, epochs=2, caffe=caffe_tool, weights=weights)
        evaluate(data, runs / run / "eval", "none", "opencv", run=runs / run)
        return runs / run

    step = ship(trained("first"), "step", runs)
    assert sorted(path.name for path in step.glob("*.md")) == ["README.md"]  # from random weights
    step2 = ship(trained("second", step / "step.caffemodel"), "step2", runs)  # beside its start
    assert (step2 / "step.md").read_text() == (step / "README.md").read_text()
    model = ship(trained("third", step2 / "step2.caffemodel"), "final", tmp_path / "models")
    assert (model / "step2.md").read_text() == (step2 / "README.md").read_text()
    assert (model / "step.md").read_text() == (step / "README.md").read_text()
    assert "WEIGHTS=models/step/step.caffemodel" in (model / "step2.md").read_text()
    text = (model / "README.md").read_text()
    assert "WEIGHTS=models/step2/step2.caffemodel" in text and str(tmp_path) not in text
    assert "kept beside this one as `step2.md`" in text and "make restore" not in text
    # trained on from itself and shipped under its own name: git history keeps the card it replaces
    again = ship(trained("fourth", model / "final.caffemodel"), "final", tmp_path / "models")
    assert sorted(path.name for path in again.glob("*.md")) == ["README.md"]
    assert "the model this one replaced under the same name" in (again / "README.md").read_text()
