"""Video data: discovery and splits, decoding, clip sampling, transforms, the synthetic set.

Video files -> `discover_dataset` / `check_videos` / `make_splits` -> `VideoItem`s per split;
a clip is `read_frames(item.path, train_clip_indices(...))` (uint8 [T, H, W, 3]) and then
`TrainAugment` or `eval_views` (float32 [T, 3, crop, crop], the layout of `pixel_values_videos`).
"""

from vjepa_core.data.datasets import (
    SPLIT_NAMES,
    VIDEO_EXTENSIONS,
    DatasetSource,
    Splits,
    VideoItem,
    check_videos,
    discover_dataset,
    make_splits,
)
from vjepa_core.data.decode import VideoInfo, available_decoders, probe_video, read_frames
from vjepa_core.data.sampling import clip_span, eval_clip_indices, train_clip_indices
from vjepa_core.data.synthetic import SYNTHETIC_CLASSES, make_synthetic, resolve_data, synthetic_dir
from vjepa_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, TrainAugment, eval_views, resize_size

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPLIT_NAMES",
    "SYNTHETIC_CLASSES",
    "VIDEO_EXTENSIONS",
    "DatasetSource",
    "Splits",
    "TrainAugment",
    "VideoInfo",
    "VideoItem",
    "available_decoders",
    "check_videos",
    "clip_span",
    "discover_dataset",
    "eval_clip_indices",
    "eval_views",
    "make_splits",
    "make_synthetic",
    "probe_video",
    "read_frames",
    "resize_size",
    "resolve_data",
    "synthetic_dir",
    "train_clip_indices",
]
