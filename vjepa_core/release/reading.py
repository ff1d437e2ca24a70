"""A released folder opened as a checkpoint, so that `runner predict` and `runner embed` take what `runner release`
wrote (merged or adapter form, here or downloaded from the Hub) as they take `results/checkpoints/<run_id>`.

The model is the folder's weights in vjepa-lab's own classes (no code from the folder runs; safetensors only),
computed in fp32; the labels come from its config and the evaluation preprocessing (frames, stride, clips, crops,
resize, normalisation) from `release.json` and the video processor's config, so a video is seen as the run
scored it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from vjepa_core.errors import CheckpointError, UserError
from vjepa_core.models.loading import load_config, model_class, quiet_transformers
from vjepa_core.release.adapter import BASE_DIR, load_adapter_form
from vjepa_core.store.checkpoint import MANIFEST, LoadedCheckpoint, load_checkpoint, read_manifest

RELEASE_FILE = "release.json"
RELEASE_FORMAT = "vjepa-lab release"
PROCESSOR_FILE = "video_preprocessor_config.json"
SPACE_MODEL_DIR = "model"  # where a released Space keeps its model (`release.space.MODEL_DIR`)
EVALUATION_KEYS = ("frames_per_clip", "frame_stride", "eval_clips", "eval_crops", "crop_size", "resize_shortest_edge")


def open_checkpoint(folder: Path, *, base_model: str | None = None) -> LoadedCheckpoint:
    """A checkpoint folder, or a release folder (`release.json`, no `manifest.json`), or a released Space."""
    release = release_folder(Path(folder))
    if release is None:
        return load_checkpoint(Path(folder), base_model=base_model)  # or says what the folder lacks
    return read_release(release, base_model=base_model)


def checkpoint_manifest(folder: Path) -> dict[str, Any]:
    """What a command reads of a checkpoint or release before loading its model: run id, preprocessing, labels."""
    release = release_folder(Path(folder))
    return read_manifest(Path(folder)) if release is None else release_manifest(release)


def release_folder(folder: Path) -> Path | None:
    """The release in `folder` (itself, or a Space's model/), or None for a checkpoint or anything else."""
    if (folder / MANIFEST).is_file():
        return None
    return next((model for model in (folder, folder / SPACE_MODEL_DIR) if (model / RELEASE_FILE).is_file()), None)


def read_release(folder: Path, *, base_model: str | None = None) -> LoadedCheckpoint:
    """The released model with what predicting needs of a checkpoint's manifest. `base_model` is the adapter
    form's base (default: the one the release names, or bundles in `base/`)."""
    manifest = release_manifest(folder)
    model = _load_model(folder, form=manifest["release"].get("form"), base_model=base_model).float().eval()
    return LoadedCheckpoint(folder, manifest, model)


def release_manifest(folder: Path) -> dict[str, Any]:
    """A checkpoint manifest's run id, labels and preprocessing, read from a release's files."""
    record = read_json(folder / RELEASE_FILE)
    if record.get("format") != RELEASE_FORMAT or not isinstance(record.get("evaluation"), dict):
        raise CheckpointError(f"{folder / RELEASE_FILE} is not a vjepa-lab release's record")
    processor, config = read_json(folder / PROCESSOR_FILE), read_json(folder / "config.json")
    missing = [key for key in EVALUATION_KEYS if key not in record["evaluation"]]
    if missing or "image_mean" not in processor or "image_std" not in processor or "id2label" not in config:
        raise CheckpointError(f"{folder}: release.json, {PROCESSOR_FILE} or config.json lacks "
                              f"{', '.join(missing) or 'image_mean/image_std or id2label'}")
    try:
        labels = [str(label) for _, label in sorted((int(i), label) for i, label in dict(config["id2label"]).items())]
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{folder / 'config.json'}: id2label is not a map of class numbers to names") from error
    preprocessing = {**{key: record["evaluation"][key] for key in EVALUATION_KEYS},
                     "mean": list(processor["image_mean"]), "std": list(processor["image_std"])}
    return {"run_id": str(record.get("run_id", folder.name)), "labels": labels, "preprocessing": preprocessing,
            "spec": {}, "base_model": str(folder), "release": record}


def _load_model(folder: Path, *, form: Any, base_model: str | None) -> Any:
    """The model in vjepa-lab's own classes: no code from the folder runs, and no pickle is read."""
    base = (base_model or adapter_base(folder)) if form == "adapter" else None
    try:
        if base is not None:
            return load_adapter_form(folder, base, remote_code=False)
        config = load_config(str(folder))
        with quiet_transformers():
            return model_class(config).from_pretrained(folder, config=config, use_safetensors=True)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        raise CheckpointError(f"{folder}: transformers cannot load the released model ({error})") from error


def adapter_base(folder: Path) -> str:
    """The base model an adapter-only release names: bundled beside it, or as PEFT recorded it."""
    if (folder / BASE_DIR).is_dir():
        return str(folder / BASE_DIR)
    name = read_json(folder / "adapter_config.json").get("base_model_name_or_path")
    if not name:
        raise CheckpointError(f"{folder}: adapter_config.json names no base model; pass it with --model")
    return str(name)


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({getattr(error, 'msg', error)})") from error
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return value
