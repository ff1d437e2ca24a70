"""A set of videos, named the ways people keep them, for commands that need no labels (predict, embed, pretrain).

A source is a folder (a labelled layout keeps its labels; else every video under it), a glob, a list file (one
path per line), a CSV manifest with a `path` column, or a video file. `find_videos(sources)` -> `VideoSet`
(each file once, in the sources' order) without decoding; `check_video_set` probes each file and keeps the
decodable ones, the others skipped with their reason. A source that names nothing is a `UserError`; a listed
file that does not decode is a skipped video, counted in the command's summary and exit code.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vjepa_core.data.datasets import (
    VIDEO_EXTENSIONS,
    VideoItem,
    absolute_path,
    check_videos,
    folder_items,
    manifest_items,
    missing,
    read_user_text,
)
from vjepa_core.errors import UserError

logger = logging.getLogger(__name__)

LIST_SUFFIXES = (".txt", ".lst", ".list")
MANIFEST_SUFFIX = ".csv"
EXIT_OK, EXIT_PARTIAL, EXIT_UNUSABLE = 0, 1, 2
_GLOB_CHARACTERS = frozenset("*?[")

Source = str | os.PathLike[str]


@dataclass(frozen=True)
class SourceRead:
    """How one source was read: what it was, how many videos it named and how many labels they have."""

    source: str
    layout: str  # "class folders", "pre-split folders", "folder", "glob", "list file", "manifest", "file"
    videos: int
    classes: int = 0


@dataclass(frozen=True)
class VideoSet:
    items: tuple[VideoItem, ...]
    reads: tuple[SourceRead, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (path, reason) of the files that do not decode

    @property
    def name(self) -> str:
        """A short name: the folder, list or manifest name of a single source, else the first and a count."""
        names = [_source_name(read.source) for read in self.reads]
        return names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"

    @property
    def subject(self) -> str | None:
        """What messages about the whole set name: its source when there is one, else nothing."""
        return self.name if len(self.reads) == 1 else None

    @property
    def labelled(self) -> bool:
        """True when every video has a label (a labelled layout or a manifest with labels)."""
        return bool(self.items) and all(item.label is not None for item in self.items)

    def describe(self) -> str:
        """One line: '24 videos: synthetic (class folders, 6 classes)', or for several sources each one's count."""
        parts = []
        for read in self.reads:
            detail = read.layout + (f", {read.classes} classes" if read.classes else "")
            if len(self.reads) > 1:
                detail += f", {read.videos} video{'s' * (read.videos != 1)}"
            parts.append(f"{read.source} ({detail})")
        total = len(self.items) + len(self.skipped)
        return f"{total} video{'s' * (total != 1)}: {'; '.join(parts)}"


class NoDecodableVideos(UserError):
    """A video set in which no file decodes."""


def read_video_set(sources: Source | Sequence[Source], *, decoder: str = "auto", progress: bool = False) -> VideoSet:
    """`find_videos`, then `check_video_set`: the decodable videos and the skipped files, or one error."""
    return check_video_set(find_videos(sources), decoder=decoder, progress=progress)


def find_videos(sources: Source | Sequence[Source]) -> VideoSet:
    """Every video the sources name, each file once, without decoding any. Folders and globs pick the files named
    like videos (`VIDEO_EXTENSIONS`), hidden ones left out; a file named directly or in a list is taken whatever
    its name. Labels, splits and groups are kept where the layout has them."""
    sources = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    if not sources:
        raise UserError("no videos given (a folder, a glob, a list file, a CSV manifest or video files)")
    items: dict[str, VideoItem] = {}
    reads = []
    for source in sources:
        layout, found = _read_source(os.fspath(source))
        classes = len({item.label for item in found if item.label is not None})
        reads.append(SourceRead(os.fspath(source), layout, len(found), classes))
        for item in found:
            items.setdefault(os.path.realpath(item.path), item)
    repeated = sum(read.videos for read in reads) - len(items)
    if repeated:
        logger.info("%d video(s) named more than once: each is read once", repeated)
    return VideoSet(items=tuple(items.values()), reads=tuple(reads))


def check_video_set(videos: VideoSet, *, decoder: str = "auto", progress: bool = False) -> VideoSet:
    """Probe every file (`check_videos`): keep those that decode, record the others (in `skipped`, not logged:
    the caller reports them); none decodes -> `NoDecodableVideos`."""
    good, skipped = check_videos(videos.items, decoder=decoder, progress=progress, warn=False)
    if not good:
        raise NoDecodableVideos(nothing_usable(skipped, what=videos.subject))
    return dataclasses.replace(videos, items=tuple(good), skipped=(*videos.skipped, *skipped))


# ---- reporting -------------------------------------------------------------------------------

def summary_line(done: int, skipped: Sequence[tuple[str, str]], *, verb: str) -> str:
    """'19 classified, 1 skipped: no video stream'; several causes are counted, the commonest first."""
    line = f"{done} {verb}"
    if not skipped:
        return line
    causes = Counter(reason for _, reason in skipped).most_common()
    if len(causes) == 1:
        return f"{line}, {len(skipped)} skipped: {causes[0][0]}"
    return f"{line}, {len(skipped)} skipped: " + ", ".join(f"{count} {reason}" for reason, count in causes)


def exit_code(done: int, skipped: Sequence[tuple[str, str]]) -> int:
    """0 when every video was used, 1 when some were skipped, 2 when none was usable."""
    if not done:
        return EXIT_UNUSABLE
    return EXIT_PARTIAL if skipped else EXIT_OK


def nothing_usable(skipped: Sequence[tuple[str, str]], *, what: str | None = None, verb: str = "decoded") -> str:
    """The one line for a set in which no video could be used: a single file's own error, else the cause
    (or each cause's count), after `what`, the set's name, when it has one."""
    if len(skipped) == 1:
        path, reason = skipped[0]
        return f"{path}: {reason}"
    causes = Counter(reason for _, reason in skipped).most_common()
    line = f"{what + ': ' if what else ''}none of the {len(skipped)} videos could be {verb}"
    if len(causes) == 1:
        return f"{line}: {causes[0][0]}"
    return f"{line} ({', '.join(f'{count} {reason}' for reason, count in causes)})"


# ---- sources ---------------------------------------------------------------------------------

def _read_source(source: str) -> tuple[str, list[VideoItem]]:
    """(layout, items) of one source; a source that names no video is a UserError."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _folder(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == MANIFEST_SUFFIX:
            return "manifest", manifest_items(path, labelled=False)
        if suffix in LIST_SUFFIXES:
            return "list file", _list_file(path)
        return "file", [VideoItem(absolute_path(path))]
    if _GLOB_CHARACTERS & set(source):
        return "glob", _glob(os.path.expanduser(source))
    raise missing(source)


def _folder(root: Path) -> tuple[str, list[VideoItem]]:
    """A labelled layout when the folder is one and holds no loose videos; else every video under it."""
    if not _videos_in(root, recursive=False):
        try:
            items = folder_items(root)
        except UserError as error:  # not a labelled layout: read as a plain folder
            logger.debug("%s: read as a plain folder (%s)", root, error)
        else:
            return ("pre-split folders" if any(item.split for item in items) else "class folders"), items
    videos = _videos_in(root, recursive=True)
    if not videos:
        raise UserError(f"{root}: no video files under it ({', '.join(VIDEO_EXTENSIONS)})")
    return "folder", [VideoItem(absolute_path(path)) for path in videos]


def _videos_in(root: Path, *, recursive: bool) -> list[Path]:
    """Video files in `root` (and its sub-folders), not hidden, sorted by their path under `root`."""
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(path for path in found if _is_video_name(path) and path.is_file()
                  and not any(part.startswith(".") for part in path.relative_to(root).parts))


def _glob(pattern: str) -> list[VideoItem]:
    matches = sorted(glob.glob(pattern, recursive=True))
    videos = [Path(match) for match in matches if _is_video_name(Path(match)) and os.path.isfile(match)]
    if not videos:
        seen = f" ({len(matches)} other file(s) or folder(s))" if matches else ""
        raise UserError(f"{pattern}: no video files match{seen}; videos end in {', '.join(VIDEO_EXTENSIONS)}")
    return [VideoItem(absolute_path(path)) for path in videos]


def _list_file(path: Path) -> list[VideoItem]:
    lines = read_user_text(path).splitlines()
    entries = [line.strip() for line in lines]
    entries = [entry for entry in entries if entry and not entry.startswith("#")]
    if not entries:
        raise UserError(f"{path}: the list names no videos (one path per line; # starts a comment)")
    folder = path.parent
    return [VideoItem(absolute_path(folder / Path(entry).expanduser())) for entry in entries]


def _is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _source_name(source: str) -> str:
    """'clips' for clips/, 'train' for train.csv or train.txt; a glob keeps its pattern."""
    if _GLOB_CHARACTERS & set(source) and not os.path.exists(source):
        return source
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve().name
    return path.stem if path.suffix.lower() in (MANIFEST_SUFFIX, *LIST_SUFFIXES) else path.name or source
