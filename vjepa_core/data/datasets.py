"""Find labelled videos on disk and split them into train / val / test.

In: a folder (`root/<class>/*`, or pre-split `root/{train,val,test}/<class>/*`) or a CSV manifest
(`path,label[,split][,group]`). Out: `Splits`, three tuples of `VideoItem`, deterministic for a `split_seed`,
stratified per class and group-aware (a subject, camera or source video stays on one side). `videos_per_class`
thins only the training split, with a nested, class-balanced subset, so that every data size and strategy is
scored on the same val and test videos.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vjepa_core.data.decode import probe_video
from vjepa_core.errors import UserError, VideoDecodeError
from vjepa_core.progress import progress_bar

logger = logging.getLogger(__name__)

# What cameras, phones, screen recorders and datasets save; decord or PyAV read each (tests/unit/test_data_decode.py).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
                    ".mts", ".m2ts", ".vob")
SPLIT_NAMES = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}
FLIP_PAIRS_FILE = "flip_pairs.json"
# UCF-101 names clips v_<Class>_g<group>_c<clip>: clips of one group share actors and scenes.
_UCF_GROUP = re.compile(r"^v_.+_(g\d+)_c\d+$")


@dataclass(frozen=True)
class VideoItem:
    """One video file; `label` is None in sets read without labels (`vjepa_core.data.videosets`)."""

    path: str
    label: str | None = None
    group: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    root: str
    name: str
    items: tuple[VideoItem, ...]
    classes: tuple[str, ...]
    presplit: bool
    flip_pairs: dict[str, str]


@dataclass(frozen=True)
class Splits:
    classes: tuple[str, ...]
    train: tuple[VideoItem, ...]
    val: tuple[VideoItem, ...]
    test: tuple[VideoItem, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def label_index(self) -> dict[str, int]:
        """Class name -> integer label, in the sorted order of `classes`."""
        return {name: i for i, name in enumerate(self.classes)}

    def get(self, split: str) -> tuple[VideoItem, ...]:
        """The items of "train", "val" or "test"."""
        if split not in SPLIT_NAMES:
            raise UserError(f"unknown split {split!r} (choose from {', '.join(SPLIT_NAMES)})")
        return getattr(self, split)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """split -> class -> number of videos (0 included), for reports."""
        return {s: {c: sum(item.label == c for item in self.get(s)) for c in self.classes} for s in SPLIT_NAMES}


# ---- discovery ------------------------------------------------------------------------------

def discover_dataset(data: str | os.PathLike[str]) -> DatasetSource:
    """Read a folder-per-class, pre-split folder or CSV-manifest dataset: every item, its label, group and split."""
    path = Path(data).expanduser()
    if not path.exists():
        raise missing(str(data))
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UserError(f"{path}: expected a folder of class folders or a .csv manifest")
        items, root, name = manifest_items(path), path.parent, path.stem
    else:
        items, root, name = folder_items(path), path, path.resolve().name
    classes = tuple(sorted({item.label for item in items}))
    return DatasetSource(root=str(root), name=name, items=tuple(items), classes=classes,
                         presplit=any(item.split for item in items),
                         flip_pairs=_read_flip_pairs(root / FLIP_PAIRS_FILE, classes))


def folder_items(root: Path) -> list[VideoItem]:
    """The videos of `root/<class>/**` or `root/{train,val,test}/<class>/**`, labelled by their class folder."""
    subdirs = _subfolders(root)
    if not subdirs:
        raise UserError(f"{root}: no class folders (expected {root}/<class>/*.mp4 or {root}/train/<class>/...)")
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_ALIASES]
    if not any(SPLIT_ALIASES[d.name.lower()] == "train" for d in split_dirs):
        return _class_folder_items(root, split=None)
    others = [d.name for d in subdirs if d not in split_dirs]
    if others:
        raise UserError(f"{root}: mixes split folders ({', '.join(d.name for d in split_dirs)}) with other "
                        f"folders ({', '.join(others)}); use one layout")
    seen: dict[str, str] = {}
    items: list[VideoItem] = []
    for folder in split_dirs:
        split = SPLIT_ALIASES[folder.name.lower()]
        if split in seen:
            raise UserError(f"{root}: both {seen[split]} and {folder.name} hold the {split} split; keep one")
        seen[split] = folder.name
        items += _class_folder_items(folder, split=split)
    return items


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))


def _class_folder_items(folder: Path, *, split: str | None) -> list[VideoItem]:
    """Videos of `folder/<class>/**`; a class folder without videos is an error naming it."""
    class_dirs = _subfolders(folder)
    if not class_dirs:
        raise UserError(f"{folder}: no class folders with videos ({', '.join(VIDEO_EXTENSIONS)})")
    items = []
    for class_dir in class_dirs:
        # Hidden files are never the user's videos: macOS writes ._name.mp4 beside each file on a foreign disk.
        videos = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
                        and not any(part.startswith(".") for part in p.relative_to(class_dir).parts))
        if not videos:
            raise UserError(f"{class_dir}: class folder '{class_dir.name}' holds no videos "
                            f"({', '.join(VIDEO_EXTENSIONS)})")
        items += [VideoItem(absolute_path(p), class_dir.name, _ucf_group(p), split) for p in videos]
    return items


def missing(source: str) -> UserError:
    """The error for a path that names nothing on disk; a URL is told that videos are read from disk."""
    if "://" in source:
        return UserError(f"{source}: a URL; videos are read from disk: download it first, then pass its path")
    return UserError(f"{source}: no such file or folder")


def absolute_path(path: Path) -> str:
    """`path` made absolute without following links: a set of symlinks (the Hugging Face cache, git-annex, DVC)
    keeps the file names the user gave, which predictions, the warehouse and the dashboard show."""
    return os.path.abspath(path)


def _ucf_group(path: Path) -> str | None:
    match = _UCF_GROUP.match(path.stem)
    return match.group(1) if match else None


def manifest_items(csv_path: Path, *, labelled: bool = True) -> list[VideoItem]:
    """The rows of a CSV manifest `path,label[,split][,group]` (or separated by semicolons or tabs, as spreadsheets
    save it in many locales), paths relative to its folder.

    `labelled=False` reads a set of videos for commands that need no labels: only `path` is required,
    an empty label is None, and a listed file that is missing is left for the decoder to report.
    """
    columns = ("path", "label") if labelled else ("path",)
    with io.StringIO(read_user_text(csv_path), newline="") as handle:
        reader = csv.reader(handle, delimiter=_delimiter(handle.readline()))
        handle.seek(0)
        header = [name.strip().lower() for name in next(reader, [])]
        missing = [name for name in columns if name not in header]
        if missing:
            expected = "path,label[,split][,group]" if labelled else "path[,label][,split][,group]"
            raise UserError(f"{csv_path}: missing column(s) {', '.join(missing)}; the header must be {expected}")
        items = [_csv_item(csv_path, line, dict(zip(header, row, strict=False)), labelled=labelled)
                 for line, row in enumerate(reader, start=2) if any(cell.strip() for cell in row)]
    if not items:
        raise UserError(f"{csv_path}: the manifest lists no videos")
    duplicates = [path for path, count in Counter(item.path for item in items).items() if count > 1]
    if duplicates:
        raise UserError(f"{csv_path}: {duplicates[0]} is listed more than once")
    return items


# Byte-order marks, longest first: UTF-32's little-endian mark begins with UTF-16's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_user_text(path: Path) -> str:
    """A text file a user saved (manifest, list of videos): UTF-8, or any Unicode form with its byte-order mark, as
    spreadsheets save "CSV UTF-8" and "Unicode Text". Anything else is one line saying how to save it."""
    data = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        how = "save it as UTF-8" + (" (a spreadsheet's 'CSV UTF-8')" if path.suffix.lower() == ".csv" else "")
        raise UserError(f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); {how}") \
            from error


def _delimiter(header: str) -> str:
    """The manifest's separator, read off its header: a comma, or the semicolon or tab that spreadsheets save with
    in many locales."""
    return max(",;\t", key=header.count) if any(mark in header for mark in ";\t") else ","


def _csv_item(csv_path: Path, line: int, row: dict[str, str], *, labelled: bool) -> VideoItem:
    where = f"{csv_path}: line {line}"
    path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
    if not path or (labelled and not label):
        raise UserError(f"{where}: empty path or label" if labelled else f"{where}: empty path")
    full = Path(path).expanduser()
    full = full if full.is_absolute() else csv_path.parent / full
    if labelled and not full.is_file():
        raise UserError(f"{where}: video file not found: {full}")
    split = None
    if (row.get("split") or "").strip() or (labelled and "split" in row):
        value = (row.get("split") or "").strip().lower()
        if value not in SPLIT_ALIASES:
            raise UserError(f"{where}: unknown split value {value!r} (use train, val or test)")
        split = SPLIT_ALIASES[value]
    group = (row.get("group") or "").strip() or None
    return VideoItem(absolute_path(full), label or None, group, split)


def _read_flip_pairs(path: Path, classes: Sequence[str]) -> dict[str, str]:
    """{label: label when mirrored}, from an optional flip_pairs.json; labels must be classes."""
    if not path.is_file():
        return {}
    try:
        pairs = json.loads(path.read_bytes())  # bytes: json reads a BOM
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
        raise UserError(f'{path}: expected an object of class names, like {{"left": "right"}}')
    unknown = sorted({name for pair in pairs.items() for name in pair} - set(classes))
    if unknown:
        raise UserError(f"{path}: unknown class(es) {', '.join(unknown)} (classes: {', '.join(classes)})")
    return dict(pairs)


def label_names(items: Iterable[VideoItem]) -> list[str]:
    """The distinct labels of `items`, sorted; a set read without labels has none."""
    return sorted({item.label for item in items if item.label is not None})


# ---- checking -------------------------------------------------------------------------------

def check_videos(items: Iterable[VideoItem], *, decoder: str = "auto", progress: bool = False,
                 warn: bool = True) -> tuple[list[VideoItem], list[tuple[str, str]]]:
    """Probe every file: (items that decode, [(path, reason)] for those skipped, each logged as a
    warning unless the caller reports them itself: `warn=False`)."""
    items = list(items)
    good: list[VideoItem] = []
    skipped: list[tuple[str, str]] = []
    for item in progress_bar(items, desc="checking videos", unit="videos", enabled=progress):
        try:
            probe_video(item.path, decoder=decoder)
        except VideoDecodeError as error:
            reason = str(error).removeprefix(f"{item.path}: ")
            if warn:
                logger.warning("skipping %s: %s", item.path, reason)
            skipped.append((item.path, reason))
        else:
            good.append(item)
    return good, skipped


# ---- splitting ------------------------------------------------------------------------------

def make_splits(source: DatasetSource, *, val_fraction: float = 0.15, test_fraction: float = 0.15,
                split_seed: int = 0, videos_per_class: int | None = None,
                skipped: Sequence[tuple[str, str]] = ()) -> Splits:
    """Deterministic, stratified, group-aware train/val/test; `videos_per_class` thins train only."""
    _check_split_args(val_fraction, test_fraction, split_seed, videos_per_class)
    if len(source.classes) < 2:
        raise UserError(f"{source.root}: one class ({', '.join(source.classes)}); a classifier needs at least two "
                        "(a folder, or a label, per class)")
    if source.presplit:
        assigned = _given_splits(source, val_fraction=val_fraction, test_fraction=test_fraction, seed=split_seed)
    else:
        _check_class_sizes(source.items, source.classes)
        fractions = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
        assigned = assign_groups(source.items, fractions, seed=split_seed)
    train = assigned["train"]
    if videos_per_class is not None:
        train = training_subset(train, videos_per_class, seed=split_seed)
    order = {name: i for i, name in enumerate(source.classes)}

    def _sorted(items: Iterable[VideoItem]) -> tuple[VideoItem, ...]:
        return tuple(sorted(items, key=lambda item: (order[item.label], item.path)))

    return Splits(classes=source.classes, train=_sorted(train), val=_sorted(assigned["val"]),
                  test=_sorted(assigned["test"]), skipped=tuple(skipped))


def training_subset(train: Iterable[VideoItem], videos_per_class: int, *, seed: int) -> list[VideoItem]:
    """The first `videos_per_class` of each class's seeded permutation: nested as N grows."""
    by_class = _by_label(train)
    subset = []
    for label, items in sorted(by_class.items()):
        if len(items) < videos_per_class:
            raise UserError(f"class '{label}' has {len(items)} training videos, fewer than "
                            f"videos_per_class={videos_per_class}")
        # The permutation depends on the seed and the class name only, never on N: nested subsets.
        order = np.random.default_rng([seed, zlib.crc32(label.encode())]).permutation(len(items))
        subset += [items[i] for i in order[:videos_per_class]]
    return subset


def assign_groups(items: Sequence[VideoItem], fractions: dict[str, float], *,
                  seed: int) -> dict[str, list[VideoItem]]:
    """Put whole groups into splits so each class gets about `fractions` of its videos in each.

    Items without a group are groups of one. Every split first gets one group per class (fewest
    groups first, smallest group first), then the rest go, largest first, to the split whose
    per-class quota they fill best. Seeded: same items and seed, same answer.
    """
    groups = _groups(items, seed)
    targets = _targets(items, fractions)
    counts: dict[str, Counter[str]] = {split: Counter() for split in fractions}
    chosen: dict[str, str] = {}

    def place(key: str, split: str) -> None:
        chosen[key] = split
        counts[split].update(item.label for item in groups[key])

    _cover_every_class(groups, counts, place, splits=list(fractions))
    for key in sorted((k for k in groups if k not in chosen), key=lambda k: -len(groups[k])):
        place(key, _best_split(Counter(item.label for item in groups[key]), counts, targets))
    _warn_uncovered(counts, targets)
    result: dict[str, list[VideoItem]] = {split: [] for split in SPLIT_NAMES}
    for key, split in chosen.items():
        result[split] += groups[key]
    return result


def _groups(items: Sequence[VideoItem], seed: int) -> dict[str, list[VideoItem]]:
    """Group key -> items, keys in a seeded random order (dicts keep insertion order)."""
    grouped: dict[str, list[VideoItem]] = defaultdict(list)
    for item in sorted(items, key=lambda item: item.path):
        grouped[f"group:{item.group}" if item.group is not None else f"video:{item.path}"].append(item)
    keys = sorted(grouped)
    order = np.random.default_rng([seed, 1]).permutation(len(keys))
    return {keys[i]: grouped[keys[i]] for i in order}


def _targets(items: Sequence[VideoItem], fractions: dict[str, float]) -> dict[str, Counter[str]]:
    """split -> class -> how many videos it should get: held-out splits at least one each."""
    sizes = Counter(item.label for item in items)
    targets: dict[str, Counter[str]] = {split: Counter() for split in fractions}
    for label, size in sizes.items():
        # Round half up (not to even), so 10 videos at 0.15 and 30 at 0.15 both round the same way.
        held_out = {split: max(1, int(fraction * size + 0.5)) for split, fraction in fractions.items()
                    if split != "train"}
        # Large fractions on a small class could leave train empty: shrink the biggest held-out share.
        while size - sum(held_out.values()) < 1 and max(held_out.values()) > 1:
            held_out[max(held_out, key=held_out.__getitem__)] -= 1
        for split, target in {**held_out, "train": size - sum(held_out.values())}.items():
            targets[split][label] = target
    return targets


def _cover_every_class(groups: dict[str, list[VideoItem]], counts: dict[str, Counter[str]],
                       place: Callable[[str, str], None], *, splits: list[str]) -> None:
    """Give each split one group per class, held-out splits first, rarest classes first."""
    free = dict(groups)
    by_label: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        for label in {item.label for item in members}:
            by_label[label].append(key)
    held_out_first = [s for s in splits if s != "train"] + ["train"]
    for split in held_out_first:
        for label in sorted(by_label, key=lambda name: (len(by_label[name]), name)):
            candidates = [k for k in by_label[label] if k in free]
            if counts[split][label] == 0 and candidates:
                key = min(candidates, key=lambda k: len(free[k]))  # stable: first in seeded order
                del free[key]
                place(key, split)


def _best_split(group: Counter[str], counts: dict[str, Counter[str]], targets: dict[str, Counter[str]]) -> str:
    """The split this group's videos fill best: most quota filled minus overflow, then largest gap."""

    def score(split: str) -> tuple[float, float]:
        gaps = {label: targets[split][label] - counts[split][label] for label in group}
        filled = sum(min(n, max(0, gaps[label])) for label, n in group.items())
        relative = sum(max(0, gaps[label]) / max(1, targets[split][label]) for label in group)
        return filled - (sum(group.values()) - filled), relative

    return max(counts, key=score)


def _warn_uncovered(counts: dict[str, Counter[str]], targets: dict[str, Counter[str]]) -> None:
    for split, target in targets.items():
        for label in sorted(target):
            if counts[split][label] == 0:
                logger.warning("class '%s' has no videos in the %s split (its groups ran out)", label, split)


def _given_splits(source: DatasetSource, *, val_fraction: float, test_fraction: float,
                  seed: int) -> dict[str, list[VideoItem]]:
    """Keep the dataset's own splits; carve a missing val (or test) out of train, group-aware."""
    given = {split: [item for item in source.items if item.split == split] for split in SPLIT_NAMES}
    no_train = [c for c in source.classes if not any(item.label == c for item in given["train"])]
    if no_train:
        raise UserError(f"{source.root}: class(es) {', '.join(no_train)} have no videos in the train split")
    missing = {"val": val_fraction, "test": test_fraction}
    missing = {split: fraction for split, fraction in missing.items() if not given[split]}
    if missing:
        logger.info("%s has no %s split; drawing it from train", source.root, " or ".join(missing))
        _check_class_sizes(given["train"], source.classes, needed=1 + len(missing))
        carved = assign_groups(given["train"], {"train": 1 - sum(missing.values()), **missing}, seed=seed)
        given.update({split: carved[split] for split in ("train", *missing)})
    _warn_shared_groups(given)
    return given


def _check_class_sizes(items: Sequence[VideoItem], classes: Sequence[str], *, needed: int = 3) -> None:
    """A class needs one video (or group) per split; say which class falls short and by how much."""
    by_class = _by_label(items)
    for label in classes:
        members = by_class.get(label, [])
        units = {item.group if item.group is not None else item.path for item in members}
        if len(units) < needed:
            what = "group(s)" if any(item.group is not None for item in members) else "video(s)"
            raise UserError(f"class '{label}' has {len(units)} {what}; at least {needed} are needed to give "
                            "train, val and test one each")


def _warn_shared_groups(splits: dict[str, list[VideoItem]]) -> None:
    seen: dict[str, str] = {}
    for split, items in splits.items():
        for group in sorted({item.group for item in items if item.group is not None}):
            if seen.setdefault(group, split) != split:
                logger.warning("group '%s' is in both the %s and %s splits given", group, seen[group], split)


def _check_split_args(val_fraction: float, test_fraction: float, split_seed: int,
                      videos_per_class: int | None) -> None:
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UserError(f"val_fraction and test_fraction must be in (0, 1) with a sum below 1; "
                        f"got {val_fraction} and {test_fraction}")
    if split_seed < 0:
        raise UserError(f"split_seed must be >= 0, got {split_seed}")
    if videos_per_class is not None and videos_per_class < 1:
        raise UserError(f"videos_per_class must be at least 1, got {videos_per_class}")


def _by_label(items: Iterable[VideoItem]) -> dict[str, list[VideoItem]]:
    grouped: dict[str, list[VideoItem]] = defaultdict(list)
    for item in sorted(items, key=lambda item: item.path):
        grouped[item.label].append(item)
    return grouped
