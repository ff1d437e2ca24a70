"""Classify a video with a saved checkpoint: the code behind `runner predict` and the demo.

`Predictor.classify(path)` decodes the evaluation views the run was scored with (its frames, stride, clips and
crops), averages their softmax, and returns the probabilities per label, the first view's frames
[T, 3, crop, crop] and where the time went. The model runs under an inference engine
(`vjepa_core.inference.engines`; $VJEPA_ENGINE, else `auto`), checked against fp32 on the run's validation views
when `warehouse` knows the run (else on probe clips), prepared once per weights and cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vjepa_core.inference.engines import ENGINES, default_engine
from vjepa_core.inference.engines.prepare import prepare_engine
from vjepa_core.inference.views import clip_views, decoded_clips, validation_evidence
from vjepa_core.models.device import resolve_device, resolve_precision
from vjepa_core.paths import checkpoint_results, engines_dir
from vjepa_core.release.reading import open_checkpoint
from vjepa_core.store.checkpoint import LoadedCheckpoint


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
                 engine: str | None = None, engine_cache: Path | None = None, warehouse: Path | None = None,
                 progress: bool = True) -> None:
        self.loaded = loaded
        self.device = resolve_device(device)
        self.precision = resolve_precision(loaded.spec.precision, self.device)
        self.decoder = decoder
        self.model = loaded.model.to(self.device).eval()
        self.pre = loaded.manifest["preprocessing"]
        engine = engine or default_engine()
        run_id = loaded.manifest["run_id"]
        # An eager engine is the model itself: nothing to check against (and the views are decoded only for a check).
        evidence = (None if engine in ENGINES and ENGINES[engine].eager else
                    validation_evidence(run_id, warehouse, self.pre, decoder=decoder))
        self.engine = prepare_engine(self.model, part="classifier", engine=engine, device=self.device,
                                     precision=self.precision, frames=self.pre["frames_per_clip"],
                                     crop=self.pre["crop_size"], cache_root=engine_cache,
                                     model_name=f"checkpoint {run_id}", evidence=evidence, progress=progress)

    @classmethod
    def from_checkpoint(cls, path: Path, *, base_model: str | None = None, device: str = "auto",
                        decoder: str = "auto", engine: str | None = None, engine_cache: Path | None = None,
                        warehouse: Path | None = None, progress: bool = True) -> Predictor:
        """A checkpoint or a release folder (`release.reading.open_checkpoint`). `engine_cache` defaults to the
        engines folder of the results folder the checkpoint is in."""
        return cls(open_checkpoint(Path(path), base_model=base_model), device=device, decoder=decoder, engine=engine,
                   engine_cache=engine_cache or engines_dir(checkpoint_results(path)), warehouse=warehouse,
                   progress=progress)

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    @torch.no_grad()
    def classify(self, video: Path | str) -> Prediction:
        start = time.perf_counter()
        frames = decoded_clips(video, self.pre, decoder=self.decoder)
        decoded = time.perf_counter()
        views = clip_views(frames, self.pre)
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
