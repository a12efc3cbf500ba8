"""experiments/lib.sh, the steps the experiment scripts share: `made` must let a chain of runs,
run again after an interruption, skip only what it finished, without hiding a step that fails from `set -e`."""

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
