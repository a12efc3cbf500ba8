"""bench/train_speed.py keeps the rows of nets it does not measure, and refuses a results file
that is not its own before measuring anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.train_speed import earlier_rows


def test_earlier_rows_are_kept_and_a_missing_file_starts_empty(tmp_path: Path) -> None:
    assert earlier_rows(tmp_path / "train_speed.json") == {}
    path = tmp_path / "train_speed.json"
    path.write_text(json.dumps({"nets": {"fer_vgg": {"vector_isa": "AVX2"}}}))
    assert earlier_rows(path) == {"fer_vgg": {"vector_isa": "AVX2"}}


@pytest.mark.parametrize("text", ["{not json", '{"rows": {}}', "[1, 2]", '{"nets": 3}'])
def test_a_results_file_that_is_not_the_benchmarks_stops_it_with_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "train_speed.json"
    path.write_text(text)
    with pytest.raises(SystemExit) as stop:
        earlier_rows(path)
    assert str(stop.value).startswith(f"{path}: not this benchmark's results") and "\n" not in str(stop.value)
