"""The benchmarks' results: bench/train_speed.py keeps the rows of nets it does not measure and refuses
a results file that is not its own before measuring anything; every file names the CPU's vector
instruction set, since the machines of these sessions differ by it; side-by-side video rates
alternate their two runs and compare medians."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import vector_isa
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


@pytest.mark.parametrize(
    ("flags", "isa"),
    [("fpu sse2 avx avx2 fma avx512f avx512bw", "AVX-512"), ("fpu sse2 avx avx2 fma", "AVX2"), ("fpu sse2", "SSE")],
)
def test_the_vector_instruction_set_is_the_widest_flag_of_the_first_processor(flags: str, isa: str) -> None:
    cpuinfo = f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert vector_isa(cpuinfo) == isa


def test_side_by_side_alternates_the_two_runs_and_gives_the_ratio_of_their_medians(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import predict_speed

    asked = []
    rates = iter([30.0, 10.0, 20.0, None, 40.0, 20.0])  # a run that printed no rate is left out

    def run(clip: Path, model: Path, out: Path, options: list[str]) -> tuple[float | None, float]:
        asked.append((model.name, options))
        return next(rates), 100.0

    monkeypatch.setattr(predict_speed, "predict_video", run)
    got, ratio = predict_speed.side_by_side(
        tmp_path / "c.avi", tmp_path / "o.mp4", (Path("a"), []), (Path("b"), ["-x"]), 3
    )
    assert asked == [("a", []), ("b", ["-x"])] * 3
    assert got == ([30.0, 20.0, 40.0], [10.0, None, 20.0]) and ratio == 30.0 / 15.0
