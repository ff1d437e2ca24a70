"""Classify a video with a saved checkpoint: the code behind `runner predict` and the demo.

`Predictor.classify(path)` decodes the evaluation views the run was scored with (its frames, stride, clips and
crops), averages their softmax, and returns the probabilities per label, the first view's frames
[T, 3, crop, crop] and where the time went. The model runs under an inference engine
(`vjepa_core.inference.engines`; $VJEPA_ENGINE, else `auto`), prepared once per weights and cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vjepa_core.data import eval_clip_indices, eval_views, probe_video, read_frames
from vjepa_core.inference.engines import default_engine, prepare_engine
from vjepa_core.models.device import resolve_device, resolve_precision
from vjepa_core.paths import checkpoint_results, engines_dir
from vjepa_core.store.checkpoint import LoadedCheckpoint, load_checkpoint


@dataclass
class Prediction:
    probs: dict[str, float]
    frames: torch.Tensor  # the first view as the model saw it, [T, 3, crop, crop], normalised
    timings_ms: dict[str, float] = field(default_factory=dict)

    def top(self, k: int) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda item: -item[1])[:k]

    def as_dict(self, k: int) -> dict:
        return {"top": [{"label": label, "prob": prob} for label, prob in self.top(k)],
                "timings_ms": self.timings_ms}


class Predictor:
    def __init__(self, loaded: LoadedCheckpoint, *, device: str = "auto", decoder: str = "auto",
                 engine: str | None = None, engine_cache: Path | None = None) -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        self.precision = resolve_precision(loaded.spec.precision, self.device)
        self.decoder = decoder
        self.model = loaded.model.to(self.device).eval()
        self.pre = loaded.manifest["preprocessing"]
        self.engine = prepare_engine(self.model, part="classifier", engine=engine or default_engine(),
                                     device=self.device, precision=self.precision, frames=self.pre["frames_per_clip"],
                                     crop=self.pre["crop_size"], cache_root=engine_cache,
                                     model_name=f"checkpoint {loaded.manifest['run_id']}")

    @classmethod
    def from_checkpoint(cls, path: Path, *, base_model: str | None = None, device: str = "auto",
                        decoder: str = "auto", engine: str | None = None, engine_cache: Path | None = None
                        ) -> Predictor:
        """`engine_cache` defaults to the engines folder of the results folder the checkpoint is in."""
        return cls(load_checkpoint(Path(path), base_model=base_model), device=device, decoder=decoder, engine=engine,
                   engine_cache=engine_cache or engines_dir(checkpoint_results(path)))

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    @torch.no_grad()
    def classify(self, video: Path | str) -> Prediction:
        start = time.perf_counter()
        info = probe_video(str(video), decoder=self.decoder)
        clips = eval_clip_indices(info.num_frames, self.pre["frames_per_clip"], self.pre["frame_stride"],
                                  self.pre["eval_clips"])
        frames = [read_frames(str(video), indices, decoder=self.decoder) for indices in clips]
        decoded = time.perf_counter()
        views = [view for clip in frames
                 for view in eval_views(clip, self.pre["crop_size"], num_crops=self.pre["eval_crops"])]
        batch = torch.stack(views)
        prepared = time.perf_counter()
        probs = self.probabilities(batch).mean(0)
        done = time.perf_counter()
        timings = {"decode": 1000 * (decoded - start), "preprocess": 1000 * (prepared - decoded),
                   "model": 1000 * (done - prepared)}
        return Prediction(label_probs(self.labels, probs), views[0], timings)

    @torch.no_grad()
    def probabilities(self, views: torch.Tensor) -> np.ndarray:
        """Softmax [B, labels] of preprocessed views [B, T, 3, crop, crop], under the prepared engine."""
        return torch.softmax(self.engine(views).float(), dim=1).cpu().numpy()


def label_probs(labels: list[str], probs: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probs, strict=True)}
