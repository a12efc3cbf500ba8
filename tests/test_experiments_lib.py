"""experiments/lib.sh, the steps the experiment scripts share: `made` (and `as_member`, built on it) must let a
chain of runs, run again after an interruption, skip only what it finished, without hiding a step that fails from
`set -e`; `promote` and `ship_default` turn measured models into the default and leave in models/ only what it uses."""

import json
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "experiments" / "lib.sh"


def run_with_lib(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source {LIB}; {script}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_made_skips_a_folder_with_its_report(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "report.json").write_text("{}")
    result = run_with_lib("made model || echo step ran", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "model: made already, kept\n"


def test_made_runs_the_step_when_the_folder_is_missing_or_unfinished(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()  # a folder without report.json is not a finished model
    result = run_with_lib("made missing || echo first ran; made half || echo second ran; echo end", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "first ran\nsecond ran\nend\n"


def test_a_step_that_fails_after_made_still_stops_the_script(tmp_path: Path) -> None:
    helper = "step() { false; echo step went on; }"
    result = run_with_lib(f"{helper}; made missing || step; echo end", tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""


def test_as_member_measures_candidates_beside_the_defaults_two_members(tmp_path: Path) -> None:
    for name in ("fer2013_vgg_rawview_seed2", "fer2013_vgg_rawview_distill"):
        (tmp_path / "models" / name).mkdir(parents=True)  # else restored from git history first
    stand_in = 'make() { echo "make $*"; }; RUNS=r DATA=d CROPS=c'
    # the last names models/s and r/a twice: each is one candidate
    script = f"{stand_in}; as_member e a b; MAX_MFLOPS=3500 MAX_MEMBERS=1 as_member wide a; "
    script += "as_member s a models/s models/s r/a"
    result = run_with_lib(script, tmp_path)
    assert result.returncode == 0, result.stderr
    members = "MEMBERS=models/fer2013_vgg_rawview_seed2=d models/fer2013_vgg_rawview_distill=d"
    assert result.stdout.splitlines() == [
        f"make ensemble {members} r/a=d r/b=d  ENSEMBLE=e MODELS=r ARGS=--raw c --max-passes 4 --max-mflops 552",
        f"make ensemble {members} r/a=d  ENSEMBLE=wide MODELS=r ARGS=--raw c --max-passes 4 --max-mflops 3500 "
        "--max-members 1",
        f"make ensemble {members} r/a=d models/s=d  ENSEMBLE=s MODELS=r ARGS=--raw c --max-passes 4 --max-mflops 552",
    ]


def test_as_member_keeps_an_ensemble_already_made(tmp_path: Path) -> None:
    (tmp_path / "runs" / "ens").mkdir(parents=True)
    (tmp_path / "runs" / "ens" / "report.json").write_text("{}")
    result = run_with_lib('make() { echo "make $*"; }; RUNS=runs DATA=d CROPS=c; as_member ens a', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "runs/ens: made already, kept\n"


def test_seed_suffix_keeps_the_first_seeds_names(tmp_path: Path) -> None:
    result = run_with_lib('echo "[$(seed_suffix 1)] [$(seed_suffix 2)] [$(seed_suffix 13)]"', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[] [_seed2] [_seed13]\n"


def test_model_folder_prefers_the_shipped_copy_and_falls_back_to_the_run(tmp_path: Path) -> None:
    shipped = tmp_path / "models" / "a"
    shipped.mkdir(parents=True)
    (shipped / "a.caffemodel").write_bytes(b"weights")
    (tmp_path / "models" / "b").mkdir()  # a folder without its weights (a card left behind) is not the model
    result = run_with_lib('RUNS=runs; echo "$(model_folder a) $(model_folder b) $(model_folder c)"', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "models/a runs/b runs/c\n"


def test_promote_and_ship_soup_ship_a_measured_model_into_models_once(tmp_path: Path) -> None:
    import sys

    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").symlink_to(sys.executable)
    (tmp_path / "r/m").mkdir(parents=True)
    (tmp_path / "r/m/report.json").write_text('{"model": "/far/runs/net-e10-seed2/snapshots/net_iter_9.caffemodel"}')
    (tmp_path / "models/kept").mkdir(parents=True)
    (tmp_path / "models/kept/report.json").write_text("{}")
    script = 'make() { echo "make $*"; }; RUNS=r; promote m; promote kept; ship_soup s; ship_soup kept'
    result = run_with_lib(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "make ship RUNS=r RUN=net-e10-seed2 NAME=m MODELS=models",  # the run its report chose
        "models/kept: made already, kept",
        "make ship-soup SOUP_DIR=r/s MODELS=models",  # a soup: its folder as it is
        "models/kept: made already, kept",
    ]


def ship_default_in(tmp_path: Path, ensemble_members: list[str]) -> subprocess.CompletedProcess:
    """ship_default a b c with make and python stood in, the default's choice b and the ensemble's ensemble_members."""
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").write_text('#!/bin/sh\necho "python $*"\n')
    (tmp_path / ".venv/bin/python").chmod(0o755)
    for name in ("a", "b", "c", "fer2013_default", "fer2013_ensemble"):
        (tmp_path / "models" / name).mkdir(parents=True)
    for name in ("a", "c"):  # out of git history (make restore): c, used again, is shipped again
        (tmp_path / "models" / name / "RESTORED").write_text("not shipped now")
    chosen = {"fer2013_default": ["../b"], "fer2013_ensemble": ensemble_members}
    for name, members in chosen.items():  # as write_ensemble writes it: one member a line
        (tmp_path / "models" / name / "ensemble.json").write_text(json.dumps({"members": members}, indent=1))
    return run_with_lib('make() { echo "make $*"; }; DATA=d CROPS=c; ship_default a b c', tmp_path)


def test_ship_default_makes_one_model_the_default_and_keeps_what_it_and_the_ensemble_use(tmp_path: Path) -> None:
    result = ship_default_in(tmp_path, ["../b", "../c"])
    assert result.returncode == 0, result.stderr
    members, budget = "MEMBERS=models/a=d models/b=d models/c=d ", "ARGS=--raw c --max-passes 4 --max-mflops 552"
    assert result.stdout.splitlines() == [
        f"make ensemble {members} ENSEMBLE=fer2013_ensemble MODELS=models {budget} --single fer2013_default",
        "python -m train.calibrate --model models/fer2013_default --data d --write",
        "python -m train.calibrate --model models/fer2013_ensemble --data d --write",
        "python experiments/no_detect_accuracy.py --data c --model models/fer2013_default "
        "--out out/no_detect_accuracy.json",
    ]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["b", "c", "fer2013_default", "fer2013_ensemble"]
    assert not (tmp_path / "models/c/RESTORED").exists()


def test_ship_default_drops_an_ensemble_of_one_model(tmp_path: Path) -> None:
    result = ship_default_in(tmp_path, ["../c"])  # no group did better than a model alone: the default is enough
    assert result.returncode == 0, result.stderr
    assert "models/fer2013_ensemble --data" not in result.stdout
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["b", "fer2013_default"]


def test_seeded_inputs_names_a_seed_and_keeps_the_inputs_given(tmp_path: Path) -> None:
    for marker in ("d/manifest.json", "c/manifest.json", "t/teacher.json"):
        (tmp_path / marker).parent.mkdir()
        (tmp_path / marker).write_text("{}")
    given = 'make() { echo "make $*"; }; DATA=d CROPS=c TEACHER=t'
    show = 'echo "$SEED [$suffix] $DATA $CROPS $TEACHER"'
    result = run_with_lib(f"{given}; seeded_inputs; {show}; SEED=2; seeded_inputs; {show}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1 [] d c t", "2 [_seed2] d c t"]  # nothing made: all three were there


def test_half_width_augmented_trains_the_recipe_from_the_shipped_start_and_keeps_a_made_run(tmp_path: Path) -> None:
    """The settings are what name a run (make train resumes it by them), so they stay those the augmented runs in
    $RUNS were made with; the start is the copy in models/ when shipped there."""
    shipped = tmp_path / "models" / "start"
    shipped.mkdir(parents=True)
    (shipped / "start.caffemodel").write_bytes(b"weights")
    (tmp_path / "r/kept").mkdir(parents=True)
    (tmp_path / "r/kept/report.json").write_text("{}")
    stand_in = 'make() { echo "make $1 $2 $3 $4 $5 $6"; }; RUNS=r DATA=d TEACHER=t'
    result = run_with_lib(f"{stand_in}; half_width_augmented new start 7; half_width_augmented kept other 9", tmp_path)
    assert result.returncode == 0, result.stderr
    recipe = "NET=fer_vgg13_half EPOCHS=16 SEED=7 AUGMENT=fer WEIGHTS=models/start/start.caffemodel"
    assert result.stdout.splitlines() == [f"make {step} {recipe}" for step in ("train", "evaluate", "ship")] + [
        "r/kept: made already, kept"
    ]


def test_siblings_names_the_restart_first_and_keeps_the_names_made(tmp_path: Path) -> None:
    result = run_with_lib('siblings 3 _seed2; siblings 2 ""; siblings 1 x', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "fer2013_vgg13_half_augment2_seed2",
        "fer2013_vgg13_half_augment2b_seed2",
        "fer2013_vgg13_half_augment2c_seed2",
        "fer2013_vgg13_half_augment2",
        "fer2013_vgg13_half_augment2b",
        "fer2013_vgg13_half_augment2x",
    ]
