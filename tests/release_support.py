"""Runs to release, made fast: a real checkpoint (`save_checkpoint`) of a tiny model whose trainable weights
were moved off their start (a stand-in for training), and warehouse rows written by the real `Warehouse`,
scored by the real `split_report` from chosen test predictions.

`make_run(root, strategy, ...)` -> `FakeRun` (warehouse, results, run id, spec, labels);
`add_matrix_run(run, ...)`: another run of the same matrix (rows only, no checkpoint) for the card's table;
`write_rows(warehouse, spec, ...)`: a run's rows alone; `release(run, out, **options)`: `release_run` on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vjepa_core.analysis.metrics import split_report
from vjepa_core.models import base_fingerprint, count_parameters, describe_model, load_run_model
from vjepa_core.release.writer import ReleaseReport, ReleaseRequest, release_run
from vjepa_core.spec import RunSpec
from vjepa_core.store.checkpoint import save_checkpoint
from vjepa_core.store.warehouse import RunRecord, Warehouse
from vjepa_core.strategies import get_strategy
from vjepa_core.training.experiment import preprocessing

LABELS = ["up", "down", "still"]
TEST_VIDEOS = 12  # 4 per class
MATRIX = "release-matrix"


@dataclass(frozen=True)
class FakeRun:
    warehouse: Path
    results: Path
    run_id: str
    spec: RunSpec
    labels: list[str]

    @property
    def checkpoint(self) -> Path:
        return self.results / "checkpoints" / self.run_id


def make_run(root: Path, strategy: str, *, model: str = "tiny", correct: int = 9, val_acc: float = 0.7,
             videos: list[Path] | None = None, **changes: Any) -> FakeRun:
    """A successful run of `strategy` with a checkpoint and its rows; `correct` of the 12 test videos right."""
    spec = fake_spec(root, strategy, model=model, **changes)
    results, warehouse = root / "results", root / "vjepa.duckdb"
    network = load_run_model(spec, LABELS)
    fingerprint = base_fingerprint(network)
    network = get_strategy(strategy).adapt(network, spec)
    generator = torch.Generator().manual_seed(spec.seed)
    with torch.no_grad():  # stand-in for training: every trainable weight moves
        for param in network.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    folder = results / "checkpoints" / spec.run_id
    save_checkpoint(folder, network, spec=spec, labels=LABELS, base_fp=fingerprint,
                    preprocessing=preprocessing(spec, network.config.crop_size), metrics={})
    trainable, total = count_parameters(network)
    write_rows(warehouse, spec, correct=correct, val_acc=val_acc, checkpoint=folder, videos=videos,
               params=(trainable, total))
    return FakeRun(warehouse, results, spec.run_id, spec, list(LABELS))


def fake_spec(root: Path, strategy: str, *, model: str = "tiny", **changes: Any) -> RunSpec:
    return RunSpec.from_dict({"strategy": strategy, "model": model, "data": str(root / "data"), "frames_per_clip": 4,
                              "lora_rank": 4, **changes})


def add_matrix_run(run: FakeRun, *, correct: int, val_acc: float, **changes: Any) -> str:
    """Rows (no checkpoint) of another run in `run`'s matrix: its spec is `run.spec` with `changes`."""
    spec = run.spec.replace(**changes)
    write_rows(run.warehouse, spec, correct=correct, val_acc=val_acc)
    return spec.run_id


def write_rows(warehouse: Path, spec: RunSpec, *, correct: int, val_acc: float, checkpoint: Path | None = None,
               videos: list[Path] | None = None, params: tuple[int, int] = (100, 1000),
               matrix: str | None = MATRIX) -> None:
    """The run's rows, its test split scored by `split_report` with the first `correct` videos right."""
    truth = np.arange(TEST_VIDEOS) % len(LABELS)
    guess = np.where(np.arange(TEST_VIDEOS) < correct, truth, (truth + 1) % len(LABELS))
    probs = np.full((TEST_VIDEOS, len(LABELS)), 0.1)
    probs[np.arange(TEST_VIDEOS), guess] = 0.8
    names = [str(videos[i]) if videos else f"/data/{LABELS[t]}/{LABELS[t]}_{i:03d}.mp4" for i, t in enumerate(truth)]
    report = split_report("test", probs, truth, classes=LABELS, videos=names, loss=0.5)
    start = datetime(2026, 1, 5, 9, 0, 0)
    run = {"run_id": spec.run_id, "matrix_id": matrix, "strategy": spec.strategy, "model": describe_model(spec.model),
           "dataset": "data", "dataset_path": spec.data, "num_classes": len(LABELS),
           "videos_per_class": spec.videos_per_class, "frames_per_clip": spec.frames_per_clip,
           "frame_stride": spec.frame_stride, "epochs": spec.epochs, "lr": spec.lr, "seed": spec.seed,
           "trainable_params": params[0], "total_params": params[1], "status": "success", "started_at": start,
           "finished_at": start + timedelta(seconds=42), "train_seconds": 42.0, "precision": "fp32",
           "device": "cpu", "git_sha": "0123456789abcdef", "spec": spec.to_dict(),
           "versions": {"torch": torch.__version__}, "checkpoint_path": str(checkpoint) if checkpoint else None,
           "test_acc": report.summary["accuracy"], "test_macro_f1": report.summary["macro_f1"],
           "best_val_acc": val_acc, "best_epoch": 3, "num_train": 30, "num_val": 9, "num_test": TEST_VIDEOS}
    Warehouse(warehouse).write_run(RunRecord(run=run, class_metrics=report.class_metrics,
                                             confusion=report.confusion, predictions=report.predictions))


def release(run: FakeRun, out: Path, **options: Any) -> ReleaseReport:
    """`release_run` of `run` into `out` (the code of `runner release`)."""
    return release_run(ReleaseRequest(run.run_id, out, run.warehouse, **options))
