"""Sets of videos in the layouts people keep them, with real bad files among them, through the real commands.

`runner embed` and `runner pretrain` over a flat folder, nested folders, a glob, a list file and a CSV
manifest without labels; `runner predict` over a folder holding a zero-byte file, a text file named .mp4
and an audio-only mp4 among good videos. Every good video is used, each bad file is one warning line and
counted in the summary, the exit code is 1 (0 with nothing skipped, 2 with nothing usable).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runner.cli import app
from tests.support import NOT_READABLE, TrainedRuns, write_bad_videos
from vjepa_core.data.datasets import VideoItem
from vjepa_core.pretrain.loop import data_fingerprint
from vjepa_core.store.warehouse import Warehouse

CLI = CliRunner()
GOOD = ("up_000.mp4", "up_001.avi", "down_000.mp4", "down_001.avi", "left_000.mp4", "right_001.avi",
        "wave_000.mp4", "still_001.avi")


def invoke(*args: str | Path) -> object:
    return CLI.invoke(app, [str(a) for a in args])


@dataclass(frozen=True)
class Layout:
    source: str  # what the command is given
    good: frozenset[str]  # resolved paths of the videos it must use
    bad: dict[str, str]  # resolved path -> reason
    labels: frozenset[str | None]


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> dict[str, Layout]:
    """Eight good synthetic videos in five layouts, each with one real bad file."""
    root = tmp_path_factory.mktemp("footage")
    originals = {name: synthetic_small / name.split("_")[0] / name for name in GOOD}
    clips = root / "clips"
    for i, (name, path) in enumerate(originals.items()):  # five loose files, three a folder down
        target = clips / "day2" if i >= 5 else clips
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    flat = {str(p.resolve()) for p in clips.rglob("*.*")}
    bad_flat = write_bad_videos(clips, originals["up_000.mp4"], names=("notes.mp4",))

    nested = root / "nested"
    for i, (name, path) in enumerate(originals.items()):
        day = nested / ("cam1/2024-05-01" if i % 2 else "cam2/2024-05-02")
        day.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, day / name)
    bad_nested = write_bad_videos(nested / "cam2" / "2024-05-02", originals["up_000.mp4"], names=("empty.mp4",))

    lists = root / "lists"
    lists.mkdir()
    relative = sorted(p.relative_to(root) for p in clips.rglob("*_*.*"))
    (lists / "pick.txt").write_text("# the good takes\n\n" + "".join(f"../{p}\n" for p in relative)
                                    + "../clips/gone.mp4\n")
    manifest = root / "manifest.csv"
    bad_csv = write_bad_videos(root / "other", originals["up_000.mp4"], names=("sound.mp4",))
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "camera"])
        writer.writerows([[p, "a"] for p in relative] + [["other/sound.mp4", "b"]])
    return {
        "flat folder": Layout(str(clips), frozenset(flat), bad_flat, frozenset({None})),
        "nested folders": Layout(str(nested), frozenset(str(p.resolve()) for p in nested.rglob("*_*.*")),
                                 bad_nested, frozenset({"cam1", "cam2"})),
        "glob": Layout(str(clips / "**" / "*.mp4"), frozenset(p for p in flat if p.endswith(".mp4")), bad_flat,
                       frozenset({None})),
        "list file": Layout(str(lists / "pick.txt"), frozenset(flat),
                            {str((clips / "gone.mp4").resolve()): "no such file"}, frozenset({None})),
        "CSV manifest": Layout(str(manifest), frozenset(flat), bad_csv, frozenset({None})),
    }


LAYOUTS = ("flat folder", "nested folders", "glob", "list file", "CSV manifest")


def _one_bad_file_is_warned_and_counted(result: object, layout: Layout, verb: str) -> None:
    assert result.exit_code == 1, result.output
    ((path, reason),) = layout.bad.items()
    assert result.stderr.count("warning: skipped") == 1 and f"warning: skipped {path}: {reason}" in result.stderr
    assert f"{len(layout.good)} {verb}, 1 skipped: {reason}" in result.stderr.splitlines()


# ---- embed ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embed_places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("embed-sets")
    return root / "w.duckdb", root / "results"


@pytest.mark.parametrize("name", LAYOUTS)
def test_embed_takes_every_layout_and_records_the_skipped_file(footage: dict[str, Layout], name: str,
                                                               embed_places: tuple[Path, Path]) -> None:
    layout, (warehouse, results) = footage[name], embed_places
    result = invoke("embed", layout.source, "--model", "tiny", "--frames-per-clip", "8", "--warehouse", warehouse,
                    "--results", results, "-q")
    _one_bad_file_is_warned_and_counted(result, layout, "embedded")
    assert f"embedded {len(layout.good)} videos: {len(layout.good)} vectors (one per video)" in result.stdout
    store = Warehouse(warehouse)
    fingerprint = store.embeddings()["model_fingerprint"].unique().item()  # one model, one set, every layout
    rows = store.embeddings(fingerprint).query("video in @layout.good")
    assert set(rows["video"]) == layout.good and set(rows["label"].replace({float("nan"): None})) == layout.labels
    skips = store.embedding_skips().query("video in @layout.bad")
    assert dict(zip(skips["video"], skips["reason"], strict=True)) == layout.bad
    assert set(skips["model_fingerprint"]) == {fingerprint}


def test_embed_with_nothing_skipped_exits_0(footage: dict[str, Layout], embed_places: tuple[Path, Path]) -> None:
    warehouse, results = embed_places
    day2 = Path(footage["flat folder"].source) / "day2"
    result = invoke("embed", day2, "--model", "tiny", "--frames-per-clip", "8", "--warehouse", warehouse,
                    "--results", results, "-q")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "3 embedded" and "warning" not in result.stderr


# ---- pretrain ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pretrain_places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pretrain-sets")
    return root / "w.duckdb", root / "results"


@pytest.mark.parametrize("name", LAYOUTS)
def test_pretrain_takes_every_layout_and_records_the_skipped_file(footage: dict[str, Layout], name: str,
                                                                  pretrain_places: tuple[Path, Path]) -> None:
    layout, (warehouse, results) = footage[name], pretrain_places
    result = invoke("pretrain", "--data", layout.source, "--model", "tiny", "--epochs", "1", "--batch-size", "4",
                    "--frames-per-clip", "8", "--warehouse", warehouse, "--results", results, "--quiet")
    _one_bad_file_is_warned_and_counted(result, layout, "used")
    run = Warehouse(warehouse).pretrain_table("pretrain_runs").query("dataset == @layout.source").iloc[0]
    assert run["status"] == "success" and run["num_videos"] == len(layout.good) and run["videos_skipped"] == 1
    assert [(s["path"], s["reason"]) for s in json.loads(run["skipped_videos"])] == list(layout.bad.items())
    # The same videos are the same data, whichever layout named them.
    assert run["data_fingerprint"] == data_fingerprint([VideoItem(path) for path in layout.good])


# ---- predict ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> tuple[Path, list[str], dict[str, str]]:
    """Four good videos and three bad files (zero bytes, text named .mp4, audio only) in one folder."""
    folder = tmp_path_factory.mktemp("predict") / "mixed"
    folder.mkdir()
    good = [str(Path(shutil.copy(synthetic_small / name.split("_")[0] / name, folder / name)).resolve())
            for name in GOOD[:4]]
    bad = write_bad_videos(folder, synthetic_small / "up" / "up_000.mp4", names=("empty.mp4", "notes.mp4", "sound.mp4"))
    return folder, good, bad


@pytest.fixture(scope="module")
def checkpoint(trained_runs: TrainedRuns) -> Path:
    return trained_runs.results / "checkpoints" / trained_runs.run_ids[0]


SUMMARY = f"4 classified, 3 skipped: 1 empty file (0 bytes), 1 {NOT_READABLE}, 1 no video stream"


def test_predict_classifies_every_good_video_of_a_folder_with_bad_files(checkpoint: Path, mixed: tuple,
                                                                        tmp_path: Path) -> None:
    folder, good, bad = mixed
    result = invoke("predict", checkpoint, folder, "--out", tmp_path / "rows.json")
    assert result.exit_code == 1, result.output
    assert [line for line in result.stdout.splitlines() if not line.startswith(" ")] == sorted(good)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped {path}: {reason}" for path, reason in sorted(bad.items())]
    assert SUMMARY in result.stderr.splitlines()
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {row["video"]: row["error"] for row in rows} == {**dict.fromkeys(good), **bad}
    assert all(row["label_1"] and row["prob_1"] > 0 for row in rows if row["video"] in good)

    as_json = [json.loads(line) for line in invoke("predict", checkpoint, folder, "--json").stdout.splitlines()]
    assert {row["video"]: row.get("error") for row in as_json} == {**dict.fromkeys(good), **bad}
    as_csv = list(csv.DictReader(io.StringIO(invoke("predict", checkpoint, folder, "--csv", "-k", "2").stdout)))
    assert list(as_csv[0]) == ["video", "label_1", "prob_1", "label_2", "prob_2", "error"]
    assert {row["video"]: row["error"] for row in as_csv} == {**dict.fromkeys(good, ""), **bad}


def test_predict_takes_globs_list_files_and_windows(checkpoint: Path, mixed: tuple, tmp_path: Path) -> None:
    folder, good, bad = mixed
    globbed = invoke("predict", checkpoint, f"{folder}/*.avi", "--json")
    assert globbed.exit_code == 0 and [json.loads(line)["video"] for line in globbed.stdout.splitlines()] == \
        sorted(p for p in good if p.endswith(".avi"))
    listing = tmp_path / "pick.txt"
    listing.write_text(f"# two\n{good[0]}\n{os.path.relpath(good[1], tmp_path)}\n")  # relative to the list
    listed = invoke("predict", checkpoint, listing, "--json")
    assert listed.exit_code == 0 and [json.loads(line)["video"] for line in listed.stdout.splitlines()] == good[:2]
    windows = invoke("predict", checkpoint, folder, "--window", "2", "--stride", "1", "--json",
                     "--out", tmp_path / "w.csv")
    assert windows.exit_code == 1, windows.output
    assert SUMMARY in windows.stderr.splitlines()
    with (tmp_path / "w.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert {row["video"] for row in table if not row["error"]} == set(good)
    assert {row["video"]: row["error"] for row in table if row["error"]} == bad


def test_predict_exit_2_when_nothing_is_usable(checkpoint: Path, mixed: tuple, tmp_path: Path) -> None:
    folder, _, bad = mixed
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    for path in bad:
        shutil.copy(path, only_bad)
    result = invoke("predict", checkpoint, only_bad, "--out", tmp_path / "rows.csv")
    assert result.exit_code == 2, result.output
    # Probed before any is classified: the one error line is all the command says.
    assert result.stderr.splitlines() == [f"error: only-bad: none of the 3 videos could be decoded "
                                          f"(1 empty file (0 bytes), 1 {NOT_READABLE}, 1 no video stream)"]
    assert not (tmp_path / "rows.csv").exists()
    nothing = invoke("predict", checkpoint, f"{folder}/*.mov")
    assert nothing.exit_code == 2 and nothing.stderr.startswith(f"error: {folder}/*.mov: no video files match")


@pytest.mark.parametrize("command", ["predict", "embed", "pretrain"])
def test_help_documents_the_layouts_and_exit_codes(command: str) -> None:
    text = " ".join(invoke(command, "--help").output.split())
    assert "Exit codes: 0 every video" in text and "1 some skipped" in text and "2 bad usage" in text
    assert "glob" in text and "list file" in text
