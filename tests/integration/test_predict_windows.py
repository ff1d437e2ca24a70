"""`runner predict --window`: one row per window of an untrimmed video, in every output form, and bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner

from runner.cli import app
from tests.support import TrainedRuns
from vjepa_core.data.synthetic import write_long_video
from vjepa_core.inference.engines.check import PROB_TOLERANCE

CLI = CliRunner()


def invoke(*args: str | Path) -> object:
    return CLI.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "match.mp4"
    write_long_video(path, seconds=8, fps=12, height=96, width=128, segment_seconds=2)
    return path


@pytest.fixture(scope="module")
def checkpoint(trained_runs: TrainedRuns) -> Path:
    return trained_runs.results / "checkpoints" / trained_runs.run_ids[2]  # pooler_head, seed 0


def test_windows_as_text_json_csv_and_files(checkpoint: Path, long_video: Path, tmp_path: Path) -> None:
    text = invoke("predict", checkpoint, long_video, "--window", "3", "--stride", "1", "--out", tmp_path / "w.csv")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"{long_video}: 8.0 s (96 frames at 12 fps, 128x96): 6 windows of 3 s every 1 s"
    assert [line.split("s ")[0].split() for line in lines[1:]] == [
        [f"{s:.2f}", "-", f"{s + 3:.2f}"] for s in range(6)]
    assert "6 windows in" in text.stderr and "peak RSS" in text.stderr and "wrote 6 rows" in text.stderr

    as_json = invoke("predict", checkpoint, long_video, "--window", "3", "--stride", "1", "--json", "-k", "2")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [(float(s), float(s + 3)) for s in range(6)]
    for row in rows:
        assert len(row["top"]) == 2 and sum(row["probs"].values()) == pytest.approx(1.0)
        assert row["top"][0]["prob"] == max(row["probs"].values())

    as_csv = invoke("predict", checkpoint, long_video, "--window", "3", "--stride", "1", "--csv")
    printed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    with (tmp_path / "w.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert printed == written and len(written) == 6
    for row, expected in zip(written, rows, strict=True):
        assert row["label_1"] == expected["top"][0]["label"]
        assert float(row["prob_1"]) == pytest.approx(expected["top"][0]["prob"], abs=1e-6)


def test_stride_defaults_to_half_the_window_and_the_tail_is_covered(checkpoint: Path, long_video: Path) -> None:
    result = invoke("predict", checkpoint, long_video, "--window", "3", "--json")
    spans = [(row["start"], row["end"]) for row in map(json.loads, result.stdout.splitlines())]
    assert spans == [(0.0, 3.0), (1.5, 4.5), (3.0, 6.0), (4.5, 7.5), (5.0, 8.0)]


def test_a_window_as_long_as_the_video_is_plain_predict(checkpoint: Path, long_video: Path) -> None:
    whole = json.loads(invoke("predict", checkpoint, long_video, "--json", "-k", "6").stdout)
    (window,) = [json.loads(line) for line in
                 invoke("predict", checkpoint, long_video, "--window", "8", "--json", "-k", "6").stdout.splitlines()]
    assert {t["label"]: t["prob"] for t in window["top"]} == pytest.approx(
        {t["label"]: t["prob"] for t in whole["top"]}, abs=1e-6)


def test_the_default_engine_gives_fp32_s_top1_on_every_window(checkpoint: Path, long_video: Path) -> None:
    def rows(engine: str) -> tuple[list[dict], str]:
        """The rows, and the engine that ran them as the summary line names it."""
        result = invoke("predict", checkpoint, long_video, "--window", "2", "--stride", "1", "--json", "-k", "6",
                        "--engine", engine)
        assert result.exit_code == 0, result.output
        (ran,) = re.findall(r"7 windows in .* engine ([\w-]+)\)", result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()], ran

    (default, ran), (fp32, _) = rows("auto"), rows("fp32")
    assert ran not in ("fp32", "auto")  # an int8 engine ran, not fp32 compared with itself
    assert len(default) == len(fp32) == 7
    for auto_row, fp32_row in zip(default, fp32, strict=True):
        assert (auto_row["start"], auto_row["top"][0]["label"]) == (fp32_row["start"], fp32_row["top"][0]["label"])
        assert auto_row["probs"] == pytest.approx(fp32_row["probs"], abs=PROB_TOLERANCE)


def _no_frames(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["--window", "9"], "window of 9 s is longer than the video (8.00 s, 96 frames)"),
    (["--window", "3", "--stride", "0"], "stride must be > 0 seconds, got 0"),
    (["--window", "3", "--stride", "-1"], "stride must be > 0 seconds, got -1"),
    (["--stride", "1"], "--stride needs --window"),
    (["--window", "3", "--model", "small"], "checkpoint: trained on base model 'tiny'"),
    (["--window", "3", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["--window", "3", "--csv", "--json"], "choose one of --json and --csv"),
    (["--window", "3", "NOFRAMES"], "no.mp4: "),  # the only video has no frames: nothing usable
    (["--window", "3", "--engine", "int4"], "--engine: unknown 'int4' (choose from auto, fp32"),
    (["--engine", "openvino"], "openvino-int8); did you mean openvino-int8?"),
    (["--window", "3", "--out", "table.xlsx"], "table.xlsx: write the table as .csv or .json"),
    (["--out", "."], ". is a folder: name the file to write, e.g. predictions.csv"),
])
def test_bad_input_is_one_line_and_exit_2(checkpoint: Path, long_video: Path, tmp_path: Path, args: list[str],
                                          message: str) -> None:
    videos = [long_video]
    if "NOFRAMES" in args:
        args = [a for a in args if a != "NOFRAMES"]
        videos = [_no_frames(tmp_path / "no.mp4")]
    result = invoke("predict", checkpoint, *videos, "--out", tmp_path / "rows.json", *args)  # a later --out wins
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "rows.json").exists()  # nothing half-written
    assert result.stdout == ""  # every video is checked before any is classified


def test_a_bad_video_among_good_ones_is_skipped_with_its_reason(checkpoint: Path, long_video: Path,
                                                                tmp_path: Path) -> None:
    """Planned before any is classified: the bad file is one warning line, the good one is classified (exit 1)."""
    bad = _no_frames(tmp_path / "no.mp4")
    result = invoke("predict", checkpoint, bad, long_video, "--window", "3", "--json", "--out", tmp_path / "rows.json")
    assert result.exit_code == 1, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: skipped {bad}: ")
    reason = warnings[0].removeprefix(f"warning: skipped {bad}: ")
    assert f"1 classified, 1 skipped: {reason}" in result.stderr.splitlines()
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed[0] == {"video": str(bad), "error": reason}
    assert [row["start"] for row in printed[1:]] == [0.0, 1.5, 3.0, 4.5, 5.0]
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [row["video"] for row in rows] == [str(bad)] + [str(long_video)] * 5
    assert rows[0]["error"] == reason and all(row["error"] is None for row in rows[1:])
