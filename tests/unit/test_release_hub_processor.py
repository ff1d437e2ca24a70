"""The released folder's own video processor (Hub remote code): it imports no vjepa-lab code, samples the
evaluation's clips (`eval_clip_indices`) and turns them into the evaluation's pixels (`eval_views`); without
`trust_remote_code` transformers loads the built-in processor from the same folder, silently.

The pipeline on the run's test videos, against `runner predict`: tests/integration/test_release_cli.py.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoVideoProcessor, VJEPA2VideoProcessor
from transformers.utils import VIDEO_PROCESSOR_NAME
from transformers.video_utils import VideoMetadata

from vjepa_core.data import eval_clip_indices, eval_views
from vjepa_core.release.hub_processor import PROCESSOR_CLASS, PROCESSOR_CODE, processor_source, write_video_processor

PRE = {"crop_size": 64, "frames_per_clip": 4, "frame_stride": 3, "mean": [0.485, 0.456, 0.406],
       "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("processor")
    write_video_processor(folder, PRE)
    return folder


def test_the_code_imports_only_transformers_numpy_and_the_standard_library() -> None:
    tree = ast.parse(processor_source())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} == {"__future__", "typing", "numpy", "transformers"}


def test_the_config_names_the_class_and_the_clip(folder: Path) -> None:
    config = json.loads((folder / VIDEO_PROCESSOR_NAME).read_text())
    assert config["auto_map"] == {"AutoVideoProcessor": f"{Path(PROCESSOR_CODE).stem}.{PROCESSOR_CLASS}"}
    assert (config["frames_per_clip"], config["frame_stride"], config["num_frames"]) == (4, 3, 4)
    assert config["video_processor_type"] == "VJEPA2VideoProcessor"
    assert (folder / PROCESSOR_CODE).read_text() == processor_source()


def test_without_trust_remote_code_the_builtin_processor_loads_without_asking(folder: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_prompt(*_: object) -> str:
        raise AssertionError("transformers asked whether to run the folder's code")

    monkeypatch.setattr("builtins.input", no_prompt)
    assert type(AutoVideoProcessor.from_pretrained(folder)) is VJEPA2VideoProcessor
    assert type(AutoVideoProcessor.from_pretrained(folder, trust_remote_code=False)) is VJEPA2VideoProcessor


def test_the_remote_processor_samples_the_evaluations_clip(folder: Path) -> None:
    processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert type(processor).__name__ == PROCESSOR_CLASS
    module = type(processor).__module__
    for length in (1, 5, 10, 11, 40, 97):
        indices = processor.sample_frames(VideoMetadata(total_num_frames=length), num_frames=4)
        assert indices.tolist() == eval_clip_indices(length, 4, 3)[0].tolist(), length
        for clips in (1, 2, 3):
            assert processor.evaluation_clips(length, clips) == [c.tolist() for c in eval_clip_indices(length, 4, 3,
                                                                                                         clips)]
    with pytest.raises(ValueError, match="fps"):
        processor.sample_frames(VideoMetadata(total_num_frames=40, fps=12.0), fps=2)
    assert module.startswith("transformers_modules.")


def test_the_remote_processor_gives_the_evaluations_pixels(folder: Path) -> None:
    """Frames of a whole video in, with the pipeline's arguments: the evaluation's clip, resized, cropped and
    normalised as `eval_views` does it (bit for bit)."""
    processor = AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
    video = torch.randint(0, 256, (23, 72, 96, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ours = processor(video, num_frames=4, do_sample_frames=True, return_tensors="pt")["pixel_values_videos"]
    (clip,) = eval_clip_indices(23, 4, 3)
    (expected,) = eval_views(video.numpy()[clip], PRE["crop_size"])
    assert ours.shape == (1, 4, 3, 64, 64)
    assert torch.equal(ours[0], expected)


def test_saved_again_it_still_loads_both_ways(folder: Path, tmp_path: Path) -> None:
    AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True).save_pretrained(tmp_path)
    config = json.loads((tmp_path / VIDEO_PROCESSOR_NAME).read_text())
    assert config["video_processor_type"] == "VJEPA2VideoProcessor" and "auto_map" in config
    assert (config["frames_per_clip"], config["frame_stride"]) == (4, 3)
    assert type(AutoVideoProcessor.from_pretrained(tmp_path)) is VJEPA2VideoProcessor
    again = AutoVideoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
    assert again.sample_frames(VideoMetadata(total_num_frames=40)).tolist() == [15, 18, 21, 24]
