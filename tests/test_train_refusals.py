"""What the training stage's commands refuse, each with one line and status 2: a model whose
classes are not the dataset's (class index 3 would mean another class, and every figure would
be wrong without an error), a model name that is not one folder, an option that makes no
sense, and an output folder in the place of one the project did not write."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fer_files import crowd_csv, fer2013_dataset
from ferlib.classes import FER2013
from hostile import call, command, one_error_line
from tiny_models import face_model
from train import calibrate, crowd, ensemble, evaluate, teacher

OTHER_CLASSES = [f"class {i}" for i in range(7)]


def commands(
    model: Path, other: Path, data: Path, out: Path
) -> dict[str, tuple[Callable[[list[str]], int], list[str]]]:
    votes = crowd_csv(
        out / "new.csv",
        [(usage, [10] + [0] * 9) for usage in ["Training"] * 10 + ["PublicTest"] * 10 + ["PrivateTest"] * 10],
    )
    return {
        "evaluate": (evaluate.main, ["--model", str(model), "--data", str(data), "--out", str(out / "eval")]),
        "ensemble": (
            ensemble.main,
            [*("--member", f"{model}={data}", "--member", f"{other}={data}"), *("--name", "e", "--models", str(out))],
        ),
        "calibrate": (calibrate.main, ["--model", str(model), "--data", str(data), "--out", str(out / "cal")]),
        "crowd": (
            crowd.main,
            ["--model", str(model), "--data", str(data), "--votes", str(votes), "--out", str(out / "c.json")],
        ),
        "teacher": (teacher.main, ["--model", str(model), "--data", str(data), "--out", str(out / "teacher")]),
    }


@pytest.mark.parametrize("which", ["evaluate", "ensemble", "calibrate", "crowd", "teacher"])
def test_a_model_of_other_classes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture, which: str) -> None:
    data = fer2013_dataset(tmp_path / "data", 10)
    models = [face_model(tmp_path / "model"), face_model(tmp_path / "other", seed=6)]
    for model in models:
        (model / "labels.json").write_text(json.dumps(OTHER_CLASSES))
    out = tmp_path / "out"
    out.mkdir()
    main, argv = commands(*models, data, out)[which]
    assert call(main, argv) == 2
    error = one_error_line(capsys.readouterr().err)
    assert f"{models[0]} has the classes class 0, class 1" in error and f"{data} holds Angry, Disgust" in error
    assert sorted(p.name for p in out.iterdir()) == ["new.csv"]  # nothing written
    for model in models:  # the same models with the dataset's classes
        (model / "labels.json").write_text(json.dumps(list(FER2013)))
    assert call(main, argv) == 0


@pytest.mark.parametrize(
    "module, argv",
    [
        ("train", ["--epochs", "0"]),
        ("train.evaluate", []),
        ("train.ensemble", ["--member", "models/a", "--name", "e"]),
        ("train.ship", ["--run", "runs/x"]),
        ("train.crowd", ["--model", "m"]),
    ],
)
def test_a_bad_option_gets_one_line(module: str, argv: list[str], capsys: pytest.CaptureFixture) -> None:
    main = importlib.import_module(module if module != "train" else "train.__main__").main
    assert call(main, argv) == 2
    error = one_error_line(capsys.readouterr().err)
    assert error.endswith(f"(python -m {module} --help: usage)")


NAMED = {  # each command's arguments but the model's name
    "train.ship": ["--run", "runs/r", "--name"],
    "train.ensemble": ["--member", "models/a=data/a", "--member", "models/b=data/b", "--name"],
    "train.soup": ["--member", "models/a", "--member", "models/b", "--data", "data/a", "--name"],
}


@pytest.mark.parametrize("module", NAMED)
@pytest.mark.parametrize("name", ["../x", "a b", "", ".hidden", "a/b"])
def test_a_name_that_is_not_one_folder_is_refused(module: str, name: str, capsys: pytest.CaptureFixture) -> None:
    """A model's name becomes one folder under --models: ../x would write beside them, a space
    would break the make commands its card gives."""
    main = importlib.import_module(module).main
    assert call(main, [*NAMED[module], name]) == 2
    assert "expected a folder name of letters, digits" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("module", ["train.teacher", "train.ensemble"])
def test_a_users_folder_in_the_outputs_place_is_left_alone(tmp_path: Path, module: str) -> None:
    """Refused before any net pass (minutes on real data), with the folder as it was."""
    data = fer2013_dataset(tmp_path / "data", 10)
    models = [face_model(tmp_path / "model"), face_model(tmp_path / "other", seed=6)]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    argv = {
        "train.teacher": ["--model", str(models[0]), "--data", str(data), "--out", str(mine)],
        "train.ensemble": [
            *("--member", f"{models[0]}={data}", "--member", f"{models[1]}={data}"),
            *("--name", "mine", "--models", str(tmp_path)),
        ],
    }[module]
    process = command(module, *argv)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    error = one_error_line(err.decode())
    assert error.startswith(f"error: {mine}: a folder that is not a") and "passes" not in err.decode()
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "precious"
