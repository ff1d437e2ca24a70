"""The released folder's video processor, shipped as Hub remote code, so that frames are sampled as the run was
evaluated: `video_preprocessor_config.json` (`VJEPA2VideoProcessor`'s settings plus the clip's frames, stride
and `auto_map`) beside `hub_code/`'s file. With `trust_remote_code=True` transformers builds that processor;
without, the built-in one from the same config, with no prompt, so plain `pipeline(..., model=FOLDER)` works.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from transformers.utils import VIDEO_PROCESSOR_NAME

from vjepa_core.release.model import video_processor

PROCESSOR_CODE = "video_processing_vjepa_lab.py"
PROCESSOR_CLASS = "VJepaLabVideoProcessor"
AUTO_MAP = {"AutoVideoProcessor": f"{Path(PROCESSOR_CODE).stem}.{PROCESSOR_CLASS}"}


def processor_source() -> str:
    return resources.files("vjepa_core.release").joinpath("hub_code", PROCESSOR_CODE).read_text()


def write_video_processor(folder: Path, preprocessing: dict[str, Any]) -> None:
    """The processor's config (with the evaluation's clip and the `auto_map`) and its code, in `folder`."""
    video_processor(preprocessing).save_pretrained(folder)
    config_file = folder / VIDEO_PROCESSOR_NAME
    settings = json.loads(config_file.read_text())
    settings.update(frames_per_clip=int(preprocessing["frames_per_clip"]),
                    frame_stride=int(preprocessing["frame_stride"]), auto_map=AUTO_MAP)
    config_file.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    (folder / PROCESSOR_CODE).write_text(processor_source())
