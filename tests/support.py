"""What several test files share besides fixtures (those live in conftest.py): run sets, helpers, checks.

Run sets (built by the real runner; conftest's session fixtures call these once):
- `SYNTHETIC_SMALL`: the parameters of the `synthetic_small` video set.
- `train_fixture_runs(root, data) -> TrainedRuns`: TRAINED_STRATEGIES x TRAINED_SEEDS on `data`, tiny
  preset, 2 epochs each, plus one failed run, in `root/vjepa.duckdb` and `root/results`.
- `add_dashboard_variety(root, base, data) -> TrainedRuns`: `base`'s warehouse copied, plus DASHBOARD_VARIETY
  (1-epoch runs varying data size, frames, lr and LoRA rank) under DASHBOARD_MATRIX, still marked running,
  and `runner embed`'s vectors of `data`.

Warehouse rows: `make_record(run_id, ...)`, a successful run's `RunRecord` with made-up numbers;
`snapshot(warehouse)`, every run table as a DataFrame.

Files: `leftovers(folder)`, the temporary files an atomic write left below `folder`.

Processes: `dead_pid()`, the pid of a process that ran and was reaped (as after kill -9);
`plant_claim(store, run_id, **columns)`, a `claims` row as another process would have left it.

Checks: `said_once(message)`, no part of an error message repeats.

Scored runs (for verdicts; written with the real Warehouse API, no training): `write_scored_run(store,
strategy, val=, correct=, ...)` writes a run row and its test predictions (`right(range(38))`: right on those
of the VIDEOS test videos), or a failed run with `error=`. Independent statistics to check ours against:
`statsmodels_mcnemar(first, second)` (exact, from the 2x2 table) and `hand_holm(p_values)` (the step-down
written from its definition).

Bad videos: `write_bad_videos(folder, good)` writes real broken files (zero bytes, text named .mp4,
audio only, a video cut in half) and returns each one's path -> the reason the probe gives (`BAD_VIDEOS`).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.store import atomic, schema
from vjepa_core.store.warehouse import RunRecord, Warehouse

SYNTHETIC_SMALL = {"videos_per_class": 4, "height": 96, "width": 128, "num_frames": 40, "fps": 12, "seed": 0}


def said_once(message: str) -> bool:
    """No part of an error message (between ': ' and parentheses) repeats: causes wrapped, not restated."""
    parts = [part.strip() for part in re.split(r": |\(|\)", message) if part.strip()]
    return len(parts) == len(set(parts))


@dataclass(frozen=True)
class TrainedRuns:
    """A warehouse and results folder filled by the real runner (`runner.orchestration.execute.execute_one`)."""

    warehouse: Path
    results: Path
    run_ids: tuple[str, ...]
    matrix_id: str


TRAINED_STRATEGIES = ("head", "pooler_head", "lora")
TRAINED_SEEDS = (0, 1)


def train_fixture_runs(root: Path, data: Path) -> TrainedRuns:
    """3 strategies x 2 seeds on `data` with the tiny preset, 2 epochs each, plus one failed run."""
    from runner.orchestration.execute import execute_one
    from vjepa_core.spec import ExecOptions, RunSpec

    warehouse, results = root / "vjepa.duckdb", root / "results"
    options = ExecOptions(progress=False, matrix_id="fixture-matrix")
    run_ids = []
    for strategy in TRAINED_STRATEGIES:
        for seed in TRAINED_SEEDS:
            spec = RunSpec(strategy=strategy, data=str(data), model="tiny", epochs=2, seed=seed,
                           batch_size=4, train_views=2)
            run = execute_one(spec, results, warehouse, options)
            assert run["status"] == "success", run.get("error")
            run_ids.append(run["run_id"])
    failed = RunSpec(strategy="full", data=str(data), model="tiny", epochs=1, lr=0.5)
    Warehouse(warehouse).write_run(RunRecord(run={
        "run_id": failed.run_id, "matrix_id": "fixture-matrix", "strategy": "full", "model": "preset:tiny",
        "dataset": "synthetic", "status": "failed", "error": "RuntimeError: loss is NaN", "seed": 0,
        "spec": failed.to_dict(), "started_at": datetime.now(), "finished_at": datetime.now()}))
    return TrainedRuns(warehouse, results, tuple(run_ids), "fixture-matrix")


DASHBOARD_MATRIX = "dashboard-variety"
# head: videos per class 1 (two seeds) and 2, frames 8 and 4; lora: lr x rank, 2 x 2. All 1 epoch.
DASHBOARD_VARIETY = (
    {"strategy": "head", "videos_per_class": 1, "seed": 0}, {"strategy": "head", "videos_per_class": 1, "seed": 1},
    {"strategy": "head", "videos_per_class": 2}, {"strategy": "head", "videos_per_class": 2, "frames_per_clip": 4},
    *({"strategy": "lora", "videos_per_class": 2, "lr": lr, "lora_rank": rank}
      for lr in (1e-3, 1e-2) for rank in (4, 8)),
)


def add_dashboard_variety(root: Path, base: TrainedRuns, data: Path) -> TrainedRuns:
    """`base`'s warehouse copied to `root`, plus DASHBOARD_VARIETY run by the real runner (matrix still "running")
    and the vectors of the real `runner embed` for the Embeddings page."""
    from typer.testing import CliRunner

    from runner.cli import app
    from runner.orchestration.execute import execute_one
    from vjepa_core.spec import ExecOptions, RunSpec

    warehouse, results = root / "vjepa.duckdb", root / "results"
    shutil.copy(base.warehouse, warehouse)
    store = Warehouse(warehouse)
    store.upsert_matrix({"matrix_id": DASHBOARD_MATRIX, "name": "dashboard variety", "status": "running",
                         "total_runs": len(DASHBOARD_VARIETY) + 2, "started_at": datetime.now()})
    options = ExecOptions(progress=False, matrix_id=DASHBOARD_MATRIX)
    run_ids = []
    for overrides in DASHBOARD_VARIETY:
        spec = RunSpec.from_dict({"data": str(data), "model": "tiny", "epochs": 1, "batch_size": 4,
                                  "train_views": 1, "frames_per_clip": 8, **overrides})
        run = execute_one(spec, results, warehouse, options)
        assert run["status"] == "success", run.get("error")
        run_ids.append(run["run_id"])
        store.upsert_matrix({"matrix_id": DASHBOARD_MATRIX, "current_run_id": run["run_id"]})
    embedded = CliRunner().invoke(app, ["embed", str(data), "--model", "tiny", "--warehouse", str(warehouse),
                                        "--results", str(results), "--quiet"])
    assert embedded.exit_code == 0, embedded.output
    return TrainedRuns(warehouse, results, (*base.run_ids, *run_ids), DASHBOARD_MATRIX)


START = datetime(2025, 3, 1, 12, 0, 0)


def make_record(run_id: str, *, predictions: int = 4, epochs: int = 3, test_acc: float = 0.75) -> RunRecord:
    """A successful run's rows with made-up numbers: 2 classes, `predictions` test videos, `epochs` epochs."""
    classes = ["up", "down"]
    return RunRecord(
        run={
            "run_id": run_id,
            "matrix_id": "m1",
            "strategy": "head",
            "model": "tiny",
            "dataset": "synthetic",
            "status": "success",
            "started_at": START,
            "finished_at": START + timedelta(seconds=90),
            "test_acc": test_acc,
            "trainable_params": 2**33,  # BIGINT, past int32
            "spec": {"strategy": "head", "lr": 1e-3},
            "skipped_videos": [],
        },
        epochs=[{"epoch": e, "train_loss": 1.0 / (e + 1), "val_acc": 0.5 + e / 10} for e in range(epochs)],
        class_metrics=[
            {"split": "test", "class_name": c, "precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 2}
            for c in classes
        ],
        confusion=[
            {"split": "test", "true_class": t, "pred_class": p, "count": 1} for t in classes for p in classes
        ],
        predictions=[
            {
                "split": "test",
                "video": f"v{i:05d}.mp4",
                "true_class": classes[i % 2],
                "pred_class": "up",
                "confidence": 0.9,
                "correct": i % 2 == 0,
                "probs": {"up": 0.9, "down": 0.1},
            }
            for i in range(predictions)
        ],
    )


def snapshot(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    return {name: warehouse.table(name) for name in schema.RUN_TABLES}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if atomic.is_temp(p))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # reaped: its pid names no process now, as after kill -9
    return process.pid


def plant_claim(store: Any, run_id: str, **columns: Any) -> None:
    """A `claims` row as another runner process would have left it; columns override the dead default."""
    from vjepa_core.store.claims import utc_now

    row = {"run_id": run_id, "owner": f"planted-{run_id}", "host": socket.gethostname(), "pid": dead_pid(),
           "pid_started": None, "command": "run-matrix", "claimed_at": utc_now(), "heartbeat_at": utc_now(),
           **columns}
    with store.write_transaction() as conn:
        conn.execute(f"INSERT INTO claims ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


# -- scored runs, for verdicts -------------------------------------------------------------------------

VIDEOS = 54
SCORED_PARAMS = {"head": 774, "pooler_head": 380_934, "lora": 29_446, "pooler_head_lora": 409_606,
                 "full": 974_470, "scratch": 974_470}


def right(*videos: Any) -> Any:
    """A right/wrong vector over the VIDEOS test videos: right on the videos listed (ranges or lists)."""
    import numpy as np

    correct = np.zeros(VIDEOS, dtype=bool)
    for chosen in videos:
        correct[list(chosen)] = True
    return correct


def write_scored_run(store: Any, strategy: str, *, val: float | None = None, correct: Any = None,
                     videos_per_class: int = 10, seed: int = 0, model: str = "tiny-jepa", error: str | None = None,
                     params: int | None = None, matrix_id: str = "m", data: str = "synthetic",
                     columns: dict[str, Any] | None = None) -> str:
    """One run as the runner writes it: a `runs` row (plus `columns`, e.g. train_seconds, release_bytes,
    inference_ms, device) and its test predictions (none if it failed)."""
    from vjepa_core.spec import RunSpec
    from vjepa_core.store.warehouse import RunRecord

    spec = RunSpec(strategy=strategy, model=model, videos_per_class=videos_per_class, seed=seed, epochs=2, data=data)
    run = {"run_id": spec.run_id, "matrix_id": matrix_id, "strategy": strategy, "model": model,
           "status": "failed" if error else "success", "error": error, "spec": spec.to_dict(), "seed": seed,
           "videos_per_class": videos_per_class, "frames_per_clip": spec.frames_per_clip,
           "trainable_params": params or SCORED_PARAMS[strategy], "started_at": datetime.now(), **(columns or {})}
    predictions = []
    if correct is not None:
        run.update({"best_val_acc": val, "test_acc": float(sum(correct)) / len(correct), "num_test": len(correct),
                    "num_val": VIDEOS})
        predictions = [{"split": "test", "video": f"clips/v{i:03d}.mp4", "true_class": "up",
                        "pred_class": "up" if ok else "down", "confidence": 0.9, "correct": bool(ok)}
                       for i, ok in enumerate(correct)]
    store.write_run(RunRecord(run=run, predictions=predictions))
    return spec.run_id


def statsmodels_mcnemar(first: Any, second: Any) -> float:
    """The exact McNemar p of two right/wrong vectors, from their 2x2 table (statsmodels)."""
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int((first & second).sum()), int((first & ~second).sum())],
             [int((~first & second).sum()), int((~first & ~second).sum())]]
    return float(mcnemar(table, exact=True).pvalue)


def simulated_power(videos: int, disagreement: float, difference: float, *, alpha: float, draws: int,
                    seed: int) -> float:
    """Brute force: draw test sets, run statsmodels' exact McNemar on each, count rejections."""
    from functools import cache

    import numpy as np
    from statsmodels.stats.contingency_tables import mcnemar

    rate = max(disagreement, difference)
    tables = np.random.default_rng(seed).multinomial(videos, [(rate + difference) / 2, (rate - difference) / 2,
                                                              1 - rate], size=draws)

    @cache
    def p_value(b: int, c: int) -> float:
        return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)

    return float(np.mean([p_value(int(b), int(c)) < alpha for b, c, _ in tables]))


def hand_holm(p_values: list[float]) -> list[float]:
    """Holm's step-down, written from its definition: the i-th smallest p times (m - i), running maximum."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m, running, adjusted = len(p_values), 0.0, [0.0] * len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# -- bad videos -----------------------------------------------------------------------------------------

NOT_READABLE = "not a readable video (Invalid data found when processing input)"
# file name -> the reason the probe gives for it
BAD_VIDEOS = {"empty.mp4": "empty file (0 bytes)", "notes.mp4": NOT_READABLE, "sound.mp4": "no video stream",
              "cut.mp4": NOT_READABLE}


def write_bad_videos(folder: Path, good: Path, names: tuple[str, ...] = tuple(BAD_VIDEOS)) -> dict[str, str]:
    """Real bad files in `folder` (those of BAD_VIDEOS in `names`): zero bytes, text named .mp4, audio only
    (AAC in an mp4, written with PyAV), the video `good` cut in half. Returns resolved path -> reason."""
    folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "empty.mp4": lambda path: path.write_bytes(b""),
        "notes.mp4": lambda path: path.write_text("shot list: take 1, take 2\n" * 20),
        "sound.mp4": _write_audio_only,
        "cut.mp4": lambda path: path.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
    }
    for name in names:
        writers[name](folder / name)
    return {str((folder / name).resolve()): BAD_VIDEOS[name] for name in names}


def _write_audio_only(path: Path) -> None:
    """Half a second of silence as AAC in an mp4 container: a media file without a video stream."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def pan_video(path: Path, num_frames: int, *, muxer: str | None = None, rotation: int = 0, **x264: str) -> Path:
    """A pan over noise, so every frame differs, with a keyframe every 10 frames unless `x264` says otherwise."""
    import av
    import numpy as np

    scene = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w", format=muxer) as container:
        params = ":".join(f"{key}={value}" for key, value in {"keyint": "10", **x264}.items())
        stream = container.add_stream("libx264", rate=30, options={"x264-params": params})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(num_frames):
            image = np.roll(scene, index, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path
