"""The demo's plain-Python core: list checkpoints, resolve names safely, load them cached, check videos, classify.

In: a checkpoints folder (`<results>/checkpoints`), optionally the warehouse (read only, for test accuracy), and
a video file. Out: `DemoService.classify(name, video)` -> `Classification`: {label: probability} for every
label, the frames the model saw as one uint8 image, and where the time went. The prediction is `runner
predict`'s own `Predictor.classify`, so both give the same probabilities; every bad input is a one-line
`DemoError`, and the service stays usable.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from demo.options import MB, DemoOptions
from vjepa_core.data import VIDEO_EXTENSIONS, VideoInfo, probe_video
from vjepa_core.errors import UserError
from vjepa_core.inference.predict import Predictor
from vjepa_core.models import load_run_model
from vjepa_core.paths import checkpoint_results, engines_dir
from vjepa_core.release.adapter import BASE_DIR
from vjepa_core.release.reading import RELEASE_FILE, adapter_base, read_json, read_release, release_manifest
from vjepa_core.spec import RunSpec
from vjepa_core.store.checkpoint import MANIFEST, WEIGHTS, LoadedCheckpoint, load_checkpoint, read_manifest
from vjepa_core.strategies import get_strategy

log = logging.getLogger(__name__)

# root/<run_id>/manifest.json is the runner's layout; one level more allows grouping folders.
MAX_DEPTH = 2
PICKLES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")  # weight files torch would unpickle


class DemoError(UserError):
    """Bad input to the demo; its message is one line, shown as is in the UI."""


@dataclass(frozen=True)
class Limits:
    """What the demo accepts: file size, duration and a minimum frame count."""

    max_bytes: int = int(DemoOptions.max_mb * MB)
    max_seconds: float = DemoOptions.max_seconds
    min_frames: int = 8

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_seconds <= 0 or self.min_frames < 1:
            raise UserError(f"demo limits must be positive (max MB, max seconds, min frames >= 1); got "
                            f"{self.max_bytes / MB:g} MB, {self.max_seconds:g} s, {self.min_frames} frames")


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint as the picker lists it. `name` is its folder relative to the checkpoints root."""

    name: str
    run_id: str
    strategy: str
    base_model: str
    labels: tuple[str, ...]
    test_acc: float | None
    date: datetime | None  # UTC: the warehouse's finished_at, else the manifest's created_at
    val_acc: float | None = None  # best validation accuracy: what the picker's default is chosen on

    def describe(self) -> str:
        acc = "-" if self.test_acc is None else f"{100 * self.test_acc:.1f}%"
        when = "-" if self.date is None else self.date.strftime("%Y-%m-%d %H:%M UTC")
        return (f"{self.strategy} · {self.base_model} · {len(self.labels)} classes · test acc {acc} · "
                f"{when} · {self.name}")


@dataclass
class Classification:
    checkpoint: str
    probs: dict[str, float]
    strip: np.ndarray  # uint8 [rows * crop, cols * crop, 3]: the first view's frames, row by row
    timings_ms: dict[str, float]
    video: VideoInfo

    def top(self, k: int) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda item: -item[1])[:k]


# ---- listing and resolving ----------------------------------------------------------------------

def list_checkpoints(root: Path, *, warehouse: Path | None = None) -> list[CheckpointInfo]:
    """Every readable checkpoint under `root`, newest first; warehouse values win over the manifest's."""
    root = Path(root)
    found = [info for folder in _checkpoint_folders(root) if (info := _read_info(root, folder)) is not None]
    rows = warehouse_rows(warehouse, [info.run_id for info in found])
    merged = [_with_row(info, rows.get(info.run_id)) for info in found]
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(merged, key=lambda info: (info.date or oldest, info.name), reverse=True)


def default_checkpoint(infos: Sequence[CheckpointInfo]) -> CheckpointInfo | None:
    """The picker's default: the best validation accuracy (chosen on validation, as `runner verdict` chooses),
    the newer of a tie; the newest where no validation accuracy is known. `infos` is newest first."""
    scored = [info for info in infos if info.val_acc is not None]
    if not scored:
        return infos[0] if infos else None
    return max(scored, key=lambda info: info.val_acc)  # the first of equals: the newer


def _checkpoint_folders(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    real_root = root.resolve()
    pattern_depths = ["", *("/".join(["*"] * depth) for depth in range(1, MAX_DEPTH + 1))]
    for pattern in pattern_depths:
        marks = (mark for name in (MANIFEST, RELEASE_FILE) for mark in root.glob(f"{pattern}/{name}".lstrip("/")))
        for mark in sorted(marks):
            # A symlink may point anywhere; list only what would also load. A release beside a manifest is not one.
            if mark.resolve().is_relative_to(real_root) and _mark(mark.parent) == mark:
                yield mark.parent


def _mark(folder: Path) -> Path | None:
    """The file that makes `folder` a checkpoint: its manifest, or the `release.json` of a released folder."""
    return next((folder / name for name in (MANIFEST, RELEASE_FILE) if (folder / name).is_file()), None)


def _read_info(root: Path, folder: Path) -> CheckpointInfo | None:
    try:
        if _mark(folder) == folder / RELEASE_FILE:
            return _release_info(root, folder)
        manifest = read_manifest(folder)
        return CheckpointInfo(
            name=folder.relative_to(root).as_posix(), run_id=str(manifest["run_id"]),
            strategy=str(manifest["strategy"]), base_model=str(manifest["base_model"]),
            labels=tuple(manifest["labels"]), test_acc=(manifest.get("metrics") or {}).get("test_acc"),
            date=_local_to_utc(manifest.get("created_at")),
            val_acc=(manifest.get("metrics") or {}).get("best_val_acc"))
    except (UserError, KeyError, TypeError) as exc:
        log.warning("skipping checkpoint %s: %s", folder, exc)
        return None


def _release_info(root: Path, folder: Path) -> CheckpointInfo:
    """A folder `runner release` wrote, as the picker lists it: its run, form and labels; the warehouse adds the
    run's test accuracy."""
    manifest = release_manifest(folder)
    record, model_type = manifest["release"], read_json(folder / "config.json").get("model_type", "-")
    return CheckpointInfo(name=folder.relative_to(root).as_posix(), run_id=manifest["run_id"],
                          strategy=f"release ({record.get('form', 'merged')})", base_model=str(model_type),
                          labels=tuple(manifest["labels"]), test_acc=None,
                          date=_local_to_utc(record.get("released_at")))


def _local_to_utc(stamp: str | None) -> datetime | None:
    try:
        # The manifest's time is naive local time; astimezone() reads a naive datetime as local.
        return datetime.fromisoformat(stamp).astimezone(timezone.utc) if stamp else None
    except (TypeError, ValueError):
        return None


def warehouse_rows(warehouse: Path | None, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{run_id: {test_acc, val_acc, finished_at (aware UTC)}} from the warehouse; {} when it cannot be read."""
    wanted = list(run_ids)
    if warehouse is None or not wanted or not Path(warehouse).is_file():
        return {}
    import duckdb

    from vjepa_core.store.warehouse import read_connection

    sql = "SELECT run_id, test_acc, best_val_acc, finished_at FROM runs WHERE list_contains(?::VARCHAR[], run_id)"
    try:
        with read_connection(warehouse) as conn:
            rows = conn.execute(sql, [wanted]).fetchall()
    except (UserError, duckdb.Error) as exc:  # the demo works without the warehouse: it only adds columns
        log.warning("warehouse %s not read: %s", warehouse, exc)
        return {}
    # The warehouse stores naive UTC.
    return {run_id: {"test_acc": acc, "val_acc": val, "finished_at": None if done is None else
                     done.replace(tzinfo=timezone.utc)} for run_id, acc, val, done in rows}


def _with_row(info: CheckpointInfo, row: dict[str, Any] | None) -> CheckpointInfo:
    if not row:
        return info
    acc = row["test_acc"] if row["test_acc"] is not None else info.test_acc
    val = row["val_acc"] if row["val_acc"] is not None else info.val_acc
    return CheckpointInfo(info.name, info.run_id, info.strategy, info.base_model, info.labels, acc,
                          row["finished_at"] or info.date, val)


def resolve_checkpoint(root: Path, name: str) -> Path:
    """The folder of checkpoint `name` (relative to `root`), refusing anything that leaves `root`."""
    name = (name or "").strip()
    if not name:
        raise DemoError("pick a checkpoint first")
    relative = Path(name)
    if relative.is_absolute() or name.startswith(("/", "\\", "~")) or ".." in relative.parts or "\\" in name:
        raise DemoError(f"checkpoint {name!r}: give a name inside the checkpoints folder, not a path out of it")
    real_root = Path(root).resolve()
    folder = (Path(root) / relative).resolve()
    if not folder.is_relative_to(real_root):
        raise DemoError(f"checkpoint {name!r} points outside the checkpoints folder")
    if _mark(folder) is None:
        raise DemoError(f"no checkpoint named {name!r} in the checkpoints folder")
    return folder


# ---- loading ------------------------------------------------------------------------------------

class CheckpointCache:
    """Loaded checkpoints, the most recent `max_loaded` of them, over one base model per kind.

    A base model is loaded once per (base_model, seed, random_init, labels): the seed initialises the
    parts the base does not ship (the classifier, a missing pooler) and the labels set the classifier's
    shape. Each checkpoint is built on a deep copy, because `load_checkpoint(base=...)` injects LoRA
    into the module it is given, in place. `base_loads` counts real base-model loads.
    """

    def __init__(self, root: Path, *, device: str = "auto", decoder: str = "auto", engine: str | None = None,
                 max_loaded: int = 4, warehouse: Path | None = None) -> None:
        self.root = Path(root)
        self.device, self.decoder, self.engine, self.max_loaded = device, decoder, engine, max_loaded
        self.warehouse = warehouse  # where a checkpoint's engine finds its run's validation videos
        self.base_loads = 0
        self._bases: dict[tuple[Any, ...], torch.nn.Module] = {}
        self._predictors: OrderedDict[tuple[Path, int], Predictor] = OrderedDict()
        # Gradio runs the UI and API events on separate worker threads.
        self._lock = threading.Lock()

    def get(self, name: str) -> tuple[Predictor, bool]:
        """(predictor, whether this call loaded it)."""
        folder = resolve_checkpoint(self.root, name)
        # The mtime makes a checkpoint re-trained in place (runner run --force) load again.
        key = (folder, (_mark(folder) or folder / MANIFEST).stat().st_mtime_ns)
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key], False
            predictor = self._load(name, folder)
            self._predictors[key] = predictor
            while len(self._predictors) > self.max_loaded:
                self._predictors.popitem(last=False)
            return predictor, True

    def _load(self, name: str, folder: Path) -> Predictor:
        try:
            if _mark(folder) == folder / RELEASE_FILE:
                loaded = self._load_release(folder)
            else:
                manifest = read_manifest(folder)
                check_safetensors_only(folder, manifest["base_model"])
                loaded = load_checkpoint(folder, base=copy.deepcopy(self._base(manifest)))
            return Predictor(loaded, device=self.device, decoder=self.decoder, engine=self.engine,
                             engine_cache=engines_dir(checkpoint_results(folder)), warehouse=self.warehouse)
        except UserError as exc:  # named as the page lists it, not by its place on the server
            reason = _one_line(exc.reason).replace(str(folder), name)
            raise DemoError(f"checkpoint {name!r} cannot be loaded: {reason}") from exc
        except Exception as exc:  # a damaged file must not take the demo down: report it, keep serving
            log.exception("loading checkpoint %s failed", folder)
            raise DemoError(f"checkpoint {name!r} cannot be loaded: {type(exc).__name__}: {_one_line(exc)}") from exc

    @staticmethod
    def _load_release(folder: Path) -> LoadedCheckpoint:
        """A released folder (merged or adapter-only, with a bundled base): safetensors weights only."""
        base = Path(adapter_base(folder)) if (folder / "adapter_config.json").is_file() else None
        if base is not None and not base.is_dir():
            raise DemoError(f"{folder.name}: an adapter-only release whose base model is not in {BASE_DIR}/ "
                            "or a folder on this machine (the demo loads no model from the Hub)")
        for weights in (folder, *([base] if base else [])):
            pickles = [path for path in weights.iterdir() if path.suffix in PICKLES]
            if pickles or not any(weights.glob("*.safetensors")):
                raise DemoError(f"{weights.name}: the demo loads safetensors weights only, and no pickles")
        return read_release(folder)

    def _base(self, manifest: dict[str, Any]) -> torch.nn.Module:
        spec = RunSpec.from_dict(manifest["spec"])
        random_init = get_strategy(spec.strategy).random_init
        labels = tuple(manifest["labels"])
        key = (manifest["base_model"], spec.seed, random_init, labels, spec.feature_layers, spec.pooler_layers)
        if key not in self._bases:
            self._bases[key] = load_run_model(spec, list(labels), name=manifest["base_model"])
            self.base_loads += 1
        return self._bases[key]


def check_safetensors_only(folder: Path, base_model: str) -> None:
    """Refuse weights that would be unpickled: the checkpoint, and a local base-model folder, must be safetensors."""
    if not (folder / WEIGHTS).is_file():
        raise DemoError(f"{folder.name}: {WEIGHTS} is missing (the demo loads safetensors weights only)")
    base = Path(base_model).expanduser()
    if base.is_dir() and not any(base.glob("*.safetensors")):
        raise DemoError(f"base model folder {base_model} has no .safetensors weights (the demo loads no pickles)")


def _one_line(exc: BaseException | str) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# ---- videos -------------------------------------------------------------------------------------

def validate_video(path: str | os.PathLike[str], limits: Limits) -> VideoInfo:
    """Probe `path` within `limits`; cheap checks (type, size) before any decoding."""
    path = Path(path)
    shown = path.name
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DemoError(f"{shown}: not a video file (accepted: {', '.join(s[1:] for s in VIDEO_EXTENSIONS)})")
    if not path.is_file():
        raise DemoError(f"{shown}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise DemoError(f"{shown}: empty file (0 bytes)")
    if size > limits.max_bytes:
        raise DemoError(f"{shown} is {size / MB:.1f} MB; the limit is {limits.max_bytes / MB:g} MB")
    try:
        info = probe_video(path)
    except UserError as exc:
        # The user knows the file by its name, not by the server-side path the decoder's message starts with.
        raise DemoError(f"{shown}: {_one_line(exc.reason)}") from exc
    if info.num_frames < limits.min_frames:
        raise DemoError(f"{shown} is too short: {info.num_frames} frame(s); at least {limits.min_frames} needed")
    seconds = info.num_frames / info.fps if info.fps > 0 else 0.0
    if seconds > limits.max_seconds:
        raise DemoError(f"{shown} is {seconds:.1f} s long; the limit is {limits.max_seconds:g} s")
    return info


def frame_strip(frames: torch.Tensor, *, mean: Iterable[float], std: Iterable[float], columns: int = 8) -> np.ndarray:
    """Normalised frames [T, 3, H, W] -> uint8 RGB image [rows * H, cols * W, 3], frames left to right, then down.

    Slots past the last frame (when T is not a multiple of the columns) stay black.
    """
    count, _, height, width = frames.shape
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
    pixels = (frames.detach().float().cpu() * std_t + mean_t).clamp(0, 1).mul(255).round().to(torch.uint8)
    cols = max(1, min(columns, count))
    rows = -(-count // cols)
    grid = torch.zeros(rows * cols, 3, height, width, dtype=torch.uint8)
    grid[:count] = pixels
    tiled = grid.view(rows, cols, 3, height, width).permute(0, 3, 1, 4, 2)  # rows, H, cols, W, 3
    return tiled.reshape(rows * height, cols * width, 3).numpy()


# ---- the service --------------------------------------------------------------------------------

@dataclass
class DemoService:
    """What the Gradio app calls: the checkpoints folder, the warehouse, the limits and the model cache."""

    root: Path
    warehouse: Path | None = None
    limits: Limits = field(default_factory=Limits)
    device: str = "auto"
    decoder: str = "auto"
    engine: str | None = None  # how the model runs (runner predict --engine; None: $VJEPA_ENGINE, else auto)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.cache = CheckpointCache(self.root, device=self.device, decoder=self.decoder, engine=self.engine,
                                     warehouse=self.warehouse)

    def checkpoints(self) -> list[CheckpointInfo]:
        return list_checkpoints(self.root, warehouse=self.warehouse)

    def classify(self, name: str, video: str | os.PathLike[str] | None) -> Classification:
        resolve_checkpoint(self.root, name)  # a bad name is reported before any decoding
        if not video:
            raise DemoError("upload a video, record one with the webcam, or pick an example clip first")
        info = validate_video(video, self.limits)
        start = time.perf_counter()
        predictor, loaded_now = self.cache.get(name)
        load_ms = 1000 * (time.perf_counter() - start)
        try:
            prediction = predictor.classify(video)
        except UserError as exc:  # a file that probes but breaks further in
            raise DemoError(f"{Path(video).name}: {_one_line(exc.reason)}") from exc
        timings = {**prediction.timings_ms, **({"load": load_ms} if loaded_now else {})}
        strip = frame_strip(prediction.frames, mean=predictor.pre["mean"], std=predictor.pre["std"])
        return Classification(name, prediction.probs, strip, timings, info)


def make_examples(folder: Path, *, seed: int = 2026) -> list[Path]:
    """One small synthetic clip per motion class (mp4, 96x128, 40 frames), written once into `folder`."""
    from vjepa_core.data import make_synthetic

    out = make_synthetic(folder, videos_per_class=1, height=96, width=128, num_frames=40, formats=("mp4",),
                         seed=seed)
    return sorted(out.glob("*/*.mp4"))
