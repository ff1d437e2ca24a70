"""videosets: every layout names the same videos in a stable order; bad files are skipped with their cause."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from tests.support import NOT_READABLE, write_bad_videos
from vjepa_core.data.datasets import discover_dataset
from vjepa_core.data.videosets import (
    NoDecodableVideos,
    check_video_set,
    exit_code,
    find_videos,
    nothing_usable,
    read_video_set,
    summary_line,
)
from vjepa_core.errors import UserError


def _flat_copy(synthetic: Path, target: Path) -> list[Path]:
    """The synthetic videos side by side in `target`, plus two in a sub-folder: what unsorted footage looks like."""
    target.mkdir(parents=True)
    copied = []
    for i, video in enumerate(sorted(synthetic.glob("*/*.*"))):
        if video.suffix in (".mp4", ".avi"):
            where = target / "day2" if i >= 22 else target
            where.mkdir(exist_ok=True)
            copied.append(Path(shutil.copy(video, where / video.name)).resolve())
    return copied


def _paths(videos: object) -> list[str]:
    return [item.path for item in videos.items]  # type: ignore[attr-defined]


# ---- layouts ------------------------------------------------------------------------------------

def test_flat_folder_is_read_recursively_in_path_order(synthetic_small: Path, tmp_path: Path) -> None:
    copied = _flat_copy(synthetic_small, tmp_path / "clips")
    (tmp_path / "clips" / "notes.txt").write_text("not a video")
    (tmp_path / "clips" / ".hidden").mkdir()
    shutil.copy(copied[0], tmp_path / "clips" / ".hidden" / "x.mp4")
    shutil.copy(copied[0], tmp_path / "clips" / "._resource_fork.mp4")
    videos = find_videos(tmp_path / "clips")
    assert _paths(videos) == sorted(map(str, copied), key=lambda p: Path(p).relative_to(tmp_path / "clips").parts)
    assert len(videos.items) == 24 and {item.label for item in videos.items} == {None}
    assert [(r.layout, r.videos) for r in videos.reads] == [("folder", 24)]
    assert videos.name == "clips" and not videos.labelled
    assert videos.describe() == f"24 videos: {tmp_path / 'clips'} (folder)"


def test_class_folders_keep_their_labels(synthetic_small: Path) -> None:
    videos = find_videos(str(synthetic_small))
    assert len(videos.items) == 24 and videos.labelled
    assert {item.label for item in videos.items} == {"up", "down", "left", "right", "wave", "still"}
    assert all(Path(item.path).parent.name == item.label for item in videos.items)
    assert videos.describe() == f"24 videos: {synthetic_small} (class folders, 6 classes)"


def test_presplit_folders_keep_labels_and_splits(synthetic_small: Path, tmp_path: Path) -> None:
    for split, label in (("train", "up"), ("val", "up"), ("test", "down")):
        shutil.copytree(synthetic_small / label, tmp_path / "set" / split / label)
    videos = find_videos(tmp_path / "set")
    assert videos.reads[0].layout == "pre-split folders"
    assert sorted({(item.split, item.label) for item in videos.items}) == [("test", "down"), ("train", "up"),
                                                                          ("val", "up")]


def test_sub_folders_that_are_not_classes_are_read_as_one_folder(synthetic_small: Path, tmp_path: Path) -> None:
    """A sub-folder without videos makes it no class layout: every video under the folder still counts."""
    shutil.copytree(synthetic_small / "up", tmp_path / "clips" / "2024-05-01")
    (tmp_path / "clips" / "exports").mkdir()
    (tmp_path / "clips" / "exports" / "edit.txt").write_text("cut list")
    videos = find_videos(tmp_path / "clips")
    assert videos.reads[0].layout == "folder" and len(videos.items) == 4
    assert {item.label for item in videos.items} == {None}


def test_globs_pick_video_files_and_cross_folders_with_double_star(synthetic_small: Path, tmp_path: Path) -> None:
    _flat_copy(synthetic_small, tmp_path / "clips")
    mp4s = find_videos(str(tmp_path / "clips" / "**" / "*.mp4"))
    assert len(mp4s.items) == 12 and all(p.endswith(".mp4") for p in _paths(mp4s))
    assert any("/day2/" in p for p in _paths(mp4s)) and _paths(mp4s) == sorted(_paths(mp4s))
    top = find_videos(str(tmp_path / "clips" / "*"))  # one level, video files only (day2/ is a folder)
    assert len(top.items) == 22 and top.reads[0].layout == "glob"
    assert top.name == str(tmp_path / "clips" / "*")
    with pytest.raises(UserError, match=r"\*\.mov: no video files match"):
        find_videos(str(tmp_path / "clips" / "*.mov"))


def test_list_file_paths_are_relative_to_the_list(synthetic_small: Path, tmp_path: Path) -> None:
    clips = _flat_copy(synthetic_small, tmp_path / "clips")
    listing = tmp_path / "lists" / "pick.txt"
    listing.parent.mkdir()
    listing.write_text(f"# picked by hand\n\n../clips/{clips[3].name}\n   ../clips/{clips[1].name}  \n"
                       f"{clips[0]}\n# {clips[2]}\n../clips/gone.mp4\n")
    videos = find_videos(listing)
    assert _paths(videos) == [str(clips[3]), str(clips[1]), str(clips[0]), str(tmp_path / "clips" / "gone.mp4")]
    assert videos.reads[0].layout == "list file" and videos.name == "pick"
    checked = check_video_set(videos)
    assert len(checked.items) == 3 and checked.skipped == ((str(tmp_path / "clips" / "gone.mp4"), "no such file"),)
    listing.write_text("# nothing yet\n\n")
    with pytest.raises(UserError, match=r"pick\.txt: the list names no videos"):
        find_videos(listing)
    listing.write_bytes(f"../clips/{clips[0].name}\n".encode("utf-16"))  # Notepad's "Unicode"
    assert _paths(find_videos(listing)) == [str(clips[0])]
    listing.write_bytes(b"../clips/\xe9t\xe9.mp4\n")  # Latin-1
    with pytest.raises(UserError, match=r"pick\.txt: not UTF-8 text \(byte 0xe9 at offset 9\); save it as UTF-8$"):
        find_videos(listing)


def test_csv_manifest_needs_only_a_path_column(synthetic_small: Path, tmp_path: Path) -> None:
    clips = _flat_copy(synthetic_small, tmp_path / "clips")
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,camera\n" + "".join(f"clips/{p.name},cam{i % 2}\n" for i, p in enumerate(clips[:5])))
    videos = find_videos(manifest)
    assert _paths(videos) == [str(p) for p in clips[:5]] and not videos.labelled
    assert videos.reads[0].layout == "manifest" and videos.name == "clips"
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("path,label,split\n" f"{clips[0]},up,train\n" f"{clips[1]},,\n" "clips/missing.avi,up,\n")
    rows = find_videos(labelled).items
    assert [(r.label, r.split) for r in rows] == [("up", "train"), (None, None), ("up", None)]
    assert check_video_set(find_videos(labelled)).skipped == ((str(tmp_path / "clips" / "missing.avi"),
                                                                "no such file"),)
    (tmp_path / "bad.csv").write_text("file,label\nx.mp4,up\n")
    with pytest.raises(UserError, match=r"bad\.csv: missing column\(s\) path; the header must be path\[,label\]"):
        find_videos(tmp_path / "bad.csv")


def test_several_sources_keep_their_order_and_name_each_file_once(synthetic_small: Path, tmp_path: Path) -> None:
    up = sorted(str(p.resolve()) for p in (synthetic_small / "up").iterdir())
    videos = find_videos([str(synthetic_small / "up" / "*.avi"), synthetic_small / "up", up[0]])
    assert _paths(videos) == [p for p in up if p.endswith(".avi")] + [p for p in up if p.endswith(".mp4")]
    assert [(r.layout, r.videos) for r in videos.reads] == [("glob", 2), ("folder", 4), ("file", 1)]
    assert videos.name == "*.avi+2" or videos.name.endswith("*.avi+2")


@pytest.mark.parametrize("source", ["missing-folder", "missing.mp4", "empty-folder"])
def test_a_source_that_names_nothing_is_a_user_error(tmp_path: Path, source: str) -> None:
    (tmp_path / "empty-folder").mkdir()
    with pytest.raises(UserError, match=f"{source}: no (such file or folder|video files under it)") as caught:
        find_videos(tmp_path / source)
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="no videos given"):
        find_videos([])


def test_a_url_is_told_that_videos_are_read_from_disk() -> None:
    url = "https://example.com/videos/clip.mp4"
    with pytest.raises(UserError, match=r"^https://example\.com/videos/clip\.mp4: a URL; videos are read from disk"):
        find_videos(url)
    with pytest.raises(UserError, match=r"^https://example\.com/videos/clip\.mp4: a URL"):
        discover_dataset(url)


# ---- bad files ----------------------------------------------------------------------------------

def test_bad_files_are_skipped_with_their_cause(synthetic_small: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    good = _flat_copy(synthetic_small, tmp_path / "clips")
    bad = write_bad_videos(tmp_path / "clips" / "broken", good[0])
    with caplog.at_level(logging.WARNING, logger="vjepa_core.data.datasets"):
        videos = read_video_set(tmp_path / "clips")
    assert _paths(videos) == [str(p) for p in sorted(good, key=lambda p: p.relative_to(tmp_path / "clips").parts)]
    assert dict(videos.skipped) == bad
    assert videos.describe() == f"28 videos: {tmp_path / 'clips'} (folder)"
    assert not caplog.records  # the caller reports them: one line per file, not two
    assert summary_line(len(videos.items), videos.skipped, verb="embedded") == (
        f"24 embedded, 4 skipped: 2 {NOT_READABLE}, 1 empty file (0 bytes), 1 no video stream")
    assert exit_code(len(videos.items), videos.skipped) == 1


def test_nothing_decodable_is_one_line(synthetic_small: Path, tmp_path: Path) -> None:
    bad = write_bad_videos(tmp_path / "bad", next(synthetic_small.glob("up/*.mp4")))
    with pytest.raises(NoDecodableVideos) as caught:
        read_video_set(tmp_path / "bad")
    assert str(caught.value) == (f"bad: none of the 4 videos could be decoded (2 {NOT_READABLE}, "
                                 "1 empty file (0 bytes), 1 no video stream)")
    sound = next(path for path, reason in bad.items() if reason == "no video stream")
    with pytest.raises(NoDecodableVideos, match=f"^{sound}: no video stream$"):
        read_video_set(sound)  # one file: its own error, as runner predict has always said it


def test_summary_and_exit_codes() -> None:
    too_short = [(f"{i}.mp4", "window of 5 s is longer than the video") for i in range(3)]
    assert nothing_usable(too_short, what="clips", verb="embedded") == (
        "clips: none of the 3 videos could be embedded: window of 5 s is longer than the video")
    assert summary_line(20, [], verb="classified") == "20 classified"
    assert summary_line(19, [("a.mp4", "no video stream")], verb="classified") == (
        "19 classified, 1 skipped: no video stream")
    assert summary_line(18, [("a.mp4", "no video stream")] * 2, verb="used") == "18 used, 2 skipped: no video stream"
    assert [exit_code(3, []), exit_code(3, [("a", "x")]), exit_code(0, [("a", "x")]), exit_code(0, [])] == [0, 1, 2, 2]


def test_paths_are_absolute_whatever_the_working_folder(synthetic_small: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _flat_copy(synthetic_small, tmp_path / "clips")
    monkeypatch.chdir(tmp_path)
    for source in ("clips", "clips/*.mp4", "./clips/"):
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in _paths(find_videos(source)))
    here = find_videos(".")  # one sub-folder of videos and nothing loose: a (one-)class layout
    assert here.reads[0].layout == "class folders" and here.name == tmp_path.name
    assert {item.label for item in here.items} == {"clips"}


def test_links_keep_their_names_in_every_layout(synthetic_small: Path, tmp_path: Path) -> None:
    blobs = _flat_copy(synthetic_small, tmp_path / "blobs")  # a store of contents, as the Hugging Face cache keeps
    (tmp_path / "clips").mkdir()
    for blob in blobs[:3]:
        (tmp_path / "clips" / f"clip-{blob.name}").symlink_to(blob)
    listing = tmp_path / "pick.txt"
    listing.write_text("".join(f"clips/clip-{blob.name}\n" for blob in blobs[:3]))
    links = [str(tmp_path / "clips" / f"clip-{blob.name}") for blob in blobs[:3]]
    for source in (tmp_path / "clips", str(tmp_path / "clips" / "*.*"), listing, Path(links[0])):
        assert _paths(find_videos(source)) == (links if source != Path(links[0]) else links[:1])
