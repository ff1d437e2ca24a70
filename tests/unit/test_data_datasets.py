"""datasets: the three layouts, clear one-line errors, checking files, and the split contract."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest

from vjepa_core.data import DatasetSource, Splits, VideoItem, check_videos, discover_dataset, make_splits
from vjepa_core.data.synthetic import SYNTHETIC_CLASSES
from vjepa_core.errors import UserError


def _source(per_class: dict[str, int], *, groups: int | None = None) -> DatasetSource:
    """An in-memory dataset; with `groups`, video i of every class belongs to subject i % groups."""
    items = tuple(
        VideoItem(f"/videos/{label}/{i:03d}.mp4", label, f"subject{i % groups}" if groups else None)
        for label, count in per_class.items() for i in range(count)
    )
    return DatasetSource(root="/videos", name="memory", items=items, classes=tuple(sorted(per_class)),
                         presplit=False, flip_pairs={})


def _paths(items: tuple[VideoItem, ...]) -> set[str]:
    return {item.path for item in items}


def _copy_videos(source: Path, target: Path, label: str, count: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for video in sorted((source / label).iterdir())[:count]:
        shutil.copy(video, target / video.name)


# ---- discovery ------------------------------------------------------------------------------

def test_folder_per_class(synthetic_small: Path) -> None:
    source = discover_dataset(synthetic_small)
    assert source.classes == tuple(sorted(SYNTHETIC_CLASSES))
    assert len(source.items) == 24 and not source.presplit
    assert Counter(item.label for item in source.items) == {label: 4 for label in SYNTHETIC_CLASSES}
    assert all(Path(item.path).is_absolute() and Path(item.path).parent.name == item.label for item in source.items)
    assert source.flip_pairs == {"left": "right", "right": "left"}
    assert source.name == "synthetic" and source.root == str(synthetic_small)


def test_presplit_layout_keeps_its_splits(synthetic_small: Path, tmp_path: Path) -> None:
    root = tmp_path / "ucf"
    for split_folder, count in (("train", 2), ("validation", 1), ("test", 1)):
        for label in ("up", "down"):
            _copy_videos(synthetic_small, root / split_folder / label, label, count)
    source = discover_dataset(root)
    assert source.presplit and source.classes == ("down", "up") and source.flip_pairs == {}
    assert Counter(item.split for item in source.items) == {"train": 4, "val": 2, "test": 2}
    splits = make_splits(source, split_seed=3)
    for split in ("train", "val", "test"):
        assert all(item.split == split for item in splits.get(split))
        assert len(splits.get(split)) == {"train": 4, "val": 2, "test": 2}[split]


def test_presplit_without_val_draws_val_from_train(tmp_path: Path) -> None:
    items = tuple(VideoItem(f"/v/{split}/{label}/{i}.mp4", label, None, split)
                  for split, count in (("train", 10), ("test", 3)) for label in ("a", "b") for i in range(count))
    source = DatasetSource("/v", "v", items, ("a", "b"), True, {})
    splits = make_splits(source, val_fraction=0.2)
    assert _paths(splits.test) == {item.path for item in items if item.split == "test"}
    assert Counter(item.label for item in splits.val) == {"a": 2, "b": 2}
    assert Counter(item.label for item in splits.train) == {"a": 8, "b": 8}
    assert not _paths(splits.val) & _paths(splits.train)


def test_csv_manifest_with_relative_and_absolute_paths(synthetic_small: Path, tmp_path: Path) -> None:
    _copy_videos(synthetic_small, tmp_path / "clips", "up", 4)
    names = sorted(p.name for p in (tmp_path / "clips").iterdir())
    rows = [f"clips/{names[0]},up,train,s1", f"{tmp_path / 'clips' / names[1]},up,train,s2",
            f"clips/{names[2]},down,Validation,s3", f"clips/{names[3]},down,test,"]
    manifest = tmp_path / "my_set.csv"
    manifest.write_text("path,label,split,group\n" + "\n".join(rows) + "\n")
    source = discover_dataset(manifest)
    assert source.name == "my_set" and source.root == str(tmp_path) and source.presplit
    assert [(Path(i.path).name, i.label, i.split, i.group) for i in source.items] == [
        (names[0], "up", "train", "s1"), (names[1], "up", "train", "s2"),
        (names[2], "down", "val", "s3"), (names[3], "down", "test", None)]


def test_csv_without_split_column_is_split_by_us(synthetic_small: Path, tmp_path: Path) -> None:
    rows = [f"{p},{p.parent.name}" for p in sorted(synthetic_small.glob("*/*.*")) if p.parent.name in ("up", "left")]
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    source = discover_dataset(manifest)
    assert not source.presplit and source.classes == ("left", "up") and len(source.items) == 8


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_spreadsheets_manifest_with_semicolons_or_tabs_reads_as_with_commas(synthetic_small: Path, tmp_path: Path,
                                                                               separator: str) -> None:
    videos = sorted(synthetic_small.glob("*/*.mp4"))
    rows = [["path", "label", "split", "group"]] + [[str(p), p.parent.name, "train", f"g,{i}"]
                                                    for i, p in enumerate(videos)]
    comma, spreadsheet = tmp_path / "comma.csv", tmp_path / "excel.csv"
    with comma.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with spreadsheet.open("w", newline="", encoding="utf-8-sig") as handle:  # a BOM and CRLF, as Excel saves
        csv.writer(handle, delimiter=separator).writerows(rows)
    items = discover_dataset(spreadsheet).items
    assert items == discover_dataset(comma).items and len(items) == len(videos) and items[1].group == "g,1"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_manifest_saved_as_unicode_text_reads_as_utf8(synthetic_small: Path, tmp_path: Path,
                                                        encoding: str) -> None:
    # Excel's "Unicode Text": UTF-16 with its byte-order mark, tab-separated; a class name beyond ASCII
    videos = sorted(synthetic_small.glob("*/*.mp4"))
    rows = [f"{p}\t{'café' if p.parent.name == 'up' else p.parent.name}" for p in videos]
    text = "path\tlabel\r\n" + "\r\n".join(rows) + "\r\n"
    utf8, unicode_text = tmp_path / "utf8.csv", tmp_path / "unicode.csv"
    utf8.write_text(text, encoding="utf-8")
    unicode_text.write_bytes(text.encode(encoding))
    source = discover_dataset(unicode_text)
    assert source.items == discover_dataset(utf8).items and "café" in source.classes


def test_a_manifest_in_a_legacy_code_page_is_one_line_saying_how_to_save_it(synthetic_small: Path,
                                                                             tmp_path: Path) -> None:
    manifest = tmp_path / "windows.csv"  # Excel's plain "CSV" on Windows: cp1252
    manifest.write_bytes(f"path,label\n{next(synthetic_small.glob('up/*.mp4'))},café\n".encode("cp1252"))
    with pytest.raises(UserError) as caught:
        discover_dataset(manifest)
    offset = manifest.read_bytes().index(b"\xe9")
    assert str(caught.value) == (f"{manifest}: not UTF-8 text (byte 0xe9 at offset {offset}); "
                                 "save it as UTF-8 (a spreadsheet's 'CSV UTF-8')")


@pytest.mark.parametrize(("content", "message"), [
    ("file,label\nx.mp4,up\n", "missing column(s) path"),
    ("path,label,split\n{video},up,holdout\n", "line 2: unknown split value 'holdout'"),
    ("path,label\n{video},up\ngone.mp4,up\n", "line 3: video file not found"),
    ("path,label\n{video},\n", "line 2: empty path or label"),
    ("path,label\n", "lists no videos"),
    ("path,label\n{video},up\n{video},down\n", "listed more than once"),
])
def test_csv_errors_name_the_file_and_line(synthetic_small: Path, tmp_path: Path, content: str,
                                           message: str) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text(content.format(video=next(synthetic_small.glob("up/*.mp4"))))
    with pytest.raises(UserError) as caught:
        discover_dataset(manifest)
    assert str(caught.value).startswith(f"{manifest}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_folder_errors(synthetic_small: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file or folder"):
        discover_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: no class folders"):
        discover_dataset(tmp_path / "empty")
    _copy_videos(synthetic_small, tmp_path / "set" / "up", "up", 1)
    (tmp_path / "set" / "down").mkdir()
    (tmp_path / "set" / "down" / "readme.txt").write_text("no videos here")
    with pytest.raises(UserError, match=r"class folder 'down' holds no videos"):
        discover_dataset(tmp_path / "set")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="expected a folder of class folders or a .csv manifest"):
        discover_dataset(tmp_path / "notes.txt")


def test_hidden_files_are_not_videos_of_a_class(synthetic_small: Path, tmp_path: Path) -> None:
    for label in ("up", "down"):
        _copy_videos(synthetic_small, tmp_path / "set" / label, label, 3)
    first = sorted((tmp_path / "set" / "up").iterdir())[0]
    (first.parent / f"._{first.name}").write_bytes(b"\x00\x05\x16\x07Mac OS X")  # macOS on an exFAT disk
    (first.parent / ".thumbnails").mkdir()
    shutil.copy(first, first.parent / ".thumbnails" / first.name)
    items = discover_dataset(tmp_path / "set").items
    assert len(items) == 6 and not any("/." in item.path for item in items)


def test_videos_that_are_links_keep_their_names(synthetic_small: Path, tmp_path: Path) -> None:
    """As in the Hugging Face cache (snapshots/<rev>/up/clip.mp4 -> blobs/<hash>), git-annex or DVC."""
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for label in ("up", "down"):
        (tmp_path / "snapshot" / label).mkdir(parents=True)
        for index, video in enumerate(sorted((synthetic_small / label).iterdir())[:3]):
            blob = blobs / f"{label}{index:040d}"
            shutil.copy(video, blob)
            (tmp_path / "snapshot" / label / video.name).symlink_to(blob)
    links = sorted(str(link) for link in (tmp_path / "snapshot").glob("*/*"))
    items = discover_dataset(tmp_path / "snapshot").items
    assert sorted(item.path for item in items) == links and all(Path(item.path).is_symlink() for item in items)


def test_one_class_is_refused_before_training(synthetic_small: Path, tmp_path: Path) -> None:
    _copy_videos(synthetic_small, tmp_path / "set" / "up", "up", 4)
    source = discover_dataset(tmp_path / "set")
    with pytest.raises(UserError, match=r"set: one class \(up\); a classifier needs at least two"):
        make_splits(source)


def test_mixed_split_and_class_folders_are_refused(synthetic_small: Path, tmp_path: Path) -> None:
    _copy_videos(synthetic_small, tmp_path / "set" / "train" / "up", "up", 1)
    _copy_videos(synthetic_small, tmp_path / "set" / "down", "down", 1)
    with pytest.raises(UserError, match=r"mixes split folders \(train\) with other folders \(down\)"):
        discover_dataset(tmp_path / "set")


def test_flip_pairs_must_name_classes(synthetic_small: Path, tmp_path: Path) -> None:
    for label in ("left", "right"):
        _copy_videos(synthetic_small, tmp_path / "set" / label, label, 1)
    (tmp_path / "set" / "flip_pairs.json").write_text(json.dumps({"left": "rihgt"}))
    with pytest.raises(UserError, match=r"flip_pairs.json: unknown class\(es\) rihgt"):
        discover_dataset(tmp_path / "set")


def test_ucf101_file_names_give_groups(synthetic_small: Path, tmp_path: Path) -> None:
    video = next(synthetic_small.glob("up/*.avi"))
    for name in ("v_Jump_g01_c01.avi", "v_Jump_g01_c02.avi", "v_Jump_g02_c01.avi", "other.avi"):
        (tmp_path / "set" / "Jump").mkdir(parents=True, exist_ok=True)
        shutil.copy(video, tmp_path / "set" / "Jump" / name)
    groups = [item.group for item in discover_dataset(tmp_path / "set").items]
    assert groups == [None, "g01", "g01", "g02"]  # sorted by path: other.avi first


# ---- checking -------------------------------------------------------------------------------

def test_check_videos_skips_broken_files(synthetic_small: Path, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "set"
    shutil.copytree(synthetic_small, root)
    (root / "up" / "zero.mp4").write_bytes(b"")
    data = (root / "down" / "down_000.mp4").read_bytes()
    (root / "down" / "cut.mp4").write_bytes(data[: len(data) // 3])
    source = discover_dataset(root)
    with caplog.at_level(logging.WARNING, logger="vjepa_core.data.datasets"):
        good, skipped = check_videos(source.items, progress=True)
    assert len(good) == 24
    assert dict(skipped).keys() == {str(root / "up" / "zero.mp4"), str(root / "down" / "cut.mp4")}
    assert dict(skipped)[str(root / "up" / "zero.mp4")] == "empty file (0 bytes)"
    assert sum("skipping" in record.message for record in caplog.records) == 2


def test_check_videos_with_an_unknown_decoder_is_a_user_error(synthetic_small: Path) -> None:
    with pytest.raises(UserError, match="unknown decoder"):
        check_videos(discover_dataset(synthetic_small).items[:1], decoder="gstreamer")


# ---- splits ---------------------------------------------------------------------------------

def test_splits_are_deterministic_stratified_and_complete() -> None:
    source = _source({"a": 20, "b": 20, "c": 40})
    splits = make_splits(source, split_seed=0)
    assert splits == make_splits(source, split_seed=0)
    assert splits.train != make_splits(source, split_seed=1).train
    counts = splits.class_counts()
    assert counts["val"] == counts["test"] == {"a": 3, "b": 3, "c": 6}
    assert counts["train"] == {"a": 14, "b": 14, "c": 28}
    parts = [_paths(splits.train), _paths(splits.val), _paths(splits.test)]
    assert sum(map(len, parts)) == 80 and set.union(*parts) == _paths(source.items)
    assert splits.label_index == {"a": 0, "b": 1, "c": 2}


def test_small_classes_still_get_one_video_per_split() -> None:
    splits = make_splits(_source({"a": 3, "b": 4, "c": 50}))
    for split in ("train", "val", "test"):
        assert all(n >= 1 for n in splits.class_counts()[split].values())


def test_a_class_too_small_to_split_is_named() -> None:
    with pytest.raises(UserError, match=r"class 'tiny' has 2 video\(s\); at least 3 are needed"):
        make_splits(_source({"big": 30, "tiny": 2}))


def test_groups_never_cross_splits() -> None:
    source = _source({"a": 40, "b": 40, "c": 40}, groups=10)
    splits = make_splits(source, split_seed=4)
    groups = [{item.group for item in splits.get(s)} for s in ("train", "val", "test")]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert all(n >= 1 for split in splits.class_counts().values() for n in split.values())
    assert len(splits.train) + len(splits.val) + len(splits.test) == 120
    assert 0.6 <= len(splits.train) / 120 <= 0.8


def test_too_few_groups_is_named() -> None:
    with pytest.raises(UserError, match=r"class 'a' has 2 group\(s\)"):
        make_splits(_source({"a": 10, "b": 10}, groups=2))


def test_videos_per_class_thins_train_only_with_nested_subsets() -> None:
    source = _source({"a": 30, "b": 30, "c": 30})
    full = make_splits(source, split_seed=2)
    small, large = (make_splits(source, split_seed=2, videos_per_class=n) for n in (8, 16))
    assert Counter(item.label for item in small.train) == {"a": 8, "b": 8, "c": 8}
    assert Counter(item.label for item in large.train) == {"a": 16, "b": 16, "c": 16}
    assert _paths(small.train) < _paths(large.train) < _paths(full.train)
    assert small.val == large.val == full.val and small.test == large.test == full.test
    assert make_splits(source, split_seed=2, videos_per_class=8) == small


def test_videos_per_class_larger_than_a_class_is_named() -> None:
    with pytest.raises(UserError, match=r"class 'b' has 6 training videos, fewer than videos_per_class=9"):
        make_splits(_source({"a": 30, "b": 10}), videos_per_class=9)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum below 1"),
    ({"test_fraction": 0.0}, "val_fraction and test_fraction"),
    ({"videos_per_class": 0}, "videos_per_class must be at least 1"),
    ({"split_seed": -1}, "split_seed"),
])
def test_bad_split_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_splits(_source({"a": 10}), **kwargs)


def test_skipped_files_are_carried_and_a_class_can_vanish() -> None:
    source = _source({"a": 10, "b": 10})
    splits = make_splits(source, skipped=[("/videos/x.mp4", "empty file (0 bytes)")])
    assert isinstance(splits, Splits) and splits.skipped == (("/videos/x.mp4", "empty file (0 bytes)"),)
    only_a = DatasetSource(source.root, source.name, tuple(i for i in source.items if i.label == "a"),
                           source.classes, False, {})
    with pytest.raises(UserError, match=r"class 'b' has 0 video\(s\)"):
        make_splits(only_a)


def test_presplit_class_without_training_videos_is_refused() -> None:
    items = (VideoItem("/v/1.mp4", "a", None, "train"), VideoItem("/v/2.mp4", "b", None, "test"))
    with pytest.raises(UserError, match=r"class\(es\) b have no videos in the train split"):
        make_splits(DatasetSource("/v", "v", items, ("a", "b"), True, {}))


def test_split_name_lookup() -> None:
    splits = make_splits(_source({"a": 5, "b": 5}))
    assert splits.get("val") == splits.val
    with pytest.raises(UserError, match="unknown split 'dev'"):
        splits.get("dev")
