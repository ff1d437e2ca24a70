"""Do inference engines keep a trained checkpoint's answers on its own videos? Each against fp32, per video.

`python -m benchmarks.engine_agreement CKPT --warehouse W [--engines auto,ort-int8,...] [--json]`

The videos are the run's validation and test videos (its `predictions` rows in the warehouse), or `--videos
V...`. Each engine is prepared as `runner predict` prepares it (checked on the run's validation views, which the
warehouse lists; the engine cache is a temporary folder). Each video's evaluation views are decoded once (the
run's frames, stride, clips and crops) and classified by `Predictor` under `--engine fp32` and under each engine,
in one process; a video's probabilities are the mean softmax over its views, as `runner predict` reports them.
Printed per engine and split: the engine that ran (`auto` names its choice; a rejected engine shows as fp32 with
its reason), the encoder blocks it keeps fp32, top-1 agreement with fp32 over the videos, the largest and the
99th-percentile |probability difference| (per video, over its labels), how many videos moved more than the
promised 0.02 (`PROB_TOLERANCE`), and the model's ms per view (batches of 8,
after the engine is prepared and one warm-up batch).

`--floor`: also fp32 on the same views after changes no one sees, the yardstick for an engine's figures: each
decoded pixel moved by one grey level at random (`-1`, `0` or `+1`, as two decoders' colour conversions differ),
and each clip's frames through H.264 at CRF 18 (visually lossless; the built-in synthetic set's own encoding).
How far these move a model's answers is how far its answers are defined at all.

`--demo`: also the demo's classify latency per engine (`DemoService.classify` on the first video, as the
Gradio app calls it, over the checkpoint's own folder: decode + preprocess + model, the median of 5 calls
after the one that loads the checkpoint and prepares its engine or opens it from the engines folder beside
the checkpoints, whose load time is printed too).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vjepa_core.inference.engines import AUTO, CPU, auto_order
from vjepa_core.inference.engines.check import PROB_TOLERANCE


def run_videos(warehouse: Path, run_id: str, split: str) -> list[str]:
    from vjepa_core.store.warehouse import read_connection

    with read_connection(warehouse) as con:
        rows = con.execute("select distinct video from predictions where run_id = ? and split = ? order by video",
                           [run_id, split]).fetchall()
    return [video for (video,) in rows]


def views_of(videos: list[str], pre: dict[str, Any],
             change: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Every video's evaluation views [V, T, 3, crop, crop] (of its decoded clips passed through `change`) and the
    index of the video each view is of."""
    from vjepa_core.inference.views import clip_views, decoded_clips

    stacked, owner = [], []
    for index, video in enumerate(videos):
        clips = decoded_clips(video, pre)
        views = clip_views([change(clip) for clip in clips] if change else clips, pre)
        stacked += views
        owner += [index] * len(views)
    return torch.stack(stacked), np.array(owner)


def one_grey_level(clip: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """uint8 [T, H, W, 3] with each value moved by -1, 0 or +1 at random (kept in 0..255)."""
    step = np.random.default_rng(seed).integers(-1, 2, clip.shape)
    return np.clip(clip.astype(np.int16) + step, 0, 255).astype(np.uint8)


def h264_round_trip(clip: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W, 3] encoded with x264 at CRF 18 (yuv420p, so an odd last row or column is dropped) and decoded."""
    import io

    import av

    frames = clip[:, : clip.shape[1] // 2 * 2, : clip.shape[2] // 2 * 2]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "18", "preset": "veryfast",
                                                             "x264-params": "mbtree=0"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1  # with mbtree off: the same bytes every time (data/synthetic.py)
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        out.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as decoded:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in decoded.decode(video=0)])


FLOORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "fp32, pixels +-1": one_grey_level, "fp32, H.264 CRF 18": h264_round_trip}


def per_video(predictor: Any, views: torch.Tensor, owner: np.ndarray) -> tuple[np.ndarray, float]:
    """(mean softmax per video [videos, labels], ms per view after one warm-up batch)."""
    predictor.probabilities(views[:8])
    start = time.perf_counter()
    probs = np.concatenate([predictor.probabilities(views[i:i + 8]) for i in range(0, len(views), 8)])
    ms = 1000 * (time.perf_counter() - start) / len(views)
    return np.stack([probs[owner == video].mean(0) for video in range(owner.max() + 1)]), ms


def figures(probs: np.ndarray, reference: np.ndarray, *, views: int, ms: float) -> dict[str, Any]:
    """Agreement of per-video probabilities with fp32's: top-1, largest and 99th-percentile |difference|, videos over
    the promised tolerance."""
    diff = np.abs(probs - reference).max(1)
    same = probs.argmax(1) == reference.argmax(1)
    return {"videos": len(probs), "views": views, "top1_agreement": float(same.mean()),
            "max_prob_diff": float(diff.max()), "p99_prob_diff": float(np.percentile(diff, 99)),
            "videos_over_tolerance": int((diff > PROB_TOLERANCE).sum()), "ms_per_view": round(ms, 1)}


def floor_rows(fp32: Any, splits: dict[str, list[str]], pre: dict[str, Any],
               reference: dict[str, tuple[np.ndarray, float]]) -> list[dict[str, Any]]:
    """fp32 on each split's views after each of `FLOORS`' changes, against fp32 on the views as decoded."""
    rows = []
    for name, change in FLOORS.items():
        row: dict[str, Any] = {"engine": name, "ran": "fp32", "floor": True}
        for split, videos in splits.items():
            views, owner = views_of(videos, pre, change)
            probs, ms = per_video(fp32, views, owner)
            row[split] = figures(probs, reference[split][0], views=len(views), ms=ms)
        rows.append(row)
    return rows


def run(checkpoint: Path, splits: dict[str, list[str]], engines: list[str], warehouse: Path | None, *,
        floor: bool = False) -> dict[str, Any]:
    from vjepa_core.inference.predict import Predictor
    from vjepa_core.store.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    views = {split: views_of(videos, loaded.manifest["preprocessing"]) for split, videos in splits.items()}
    cache = tempfile.TemporaryDirectory(prefix="vjepa-agreement-")
    fp32 = Predictor(loaded, device="cpu", engine="fp32")
    reference = {split: per_video(fp32, *views[split]) for split in splits}
    rows = [{"engine": "fp32", "ran": "fp32", **{
        split: figures(reference[split][0], reference[split][0], views=len(views[split][0]), ms=reference[split][1])
        for split in splits}}]
    for engine in engines:
        start = time.perf_counter()
        predictor = Predictor(loaded, device="cpu", engine=engine, engine_cache=Path(cache.name), warehouse=warehouse)
        prepared = predictor.engine
        row = {"engine": engine, "ran": prepared.engine, "fallback": prepared.fallback,
               "setup_s": round(time.perf_counter() - start, 1),
               "check": prepared.check.as_dict() if prepared.check else None,
               "plan": prepared.plan.as_dict() if prepared.plan else None}
        for split in splits:
            probs, ms = per_video(predictor, *views[split])
            row[split] = figures(probs, reference[split][0], views=len(views[split][0]), ms=ms)
        rows.append(row)
    cache.cleanup()
    if floor:
        rows += floor_rows(fp32, splits, loaded.manifest["preprocessing"], reference)
    return {"checkpoint": str(checkpoint), "run_id": loaded.manifest["run_id"], "strategy": loaded.manifest["strategy"],
            "base_model": loaded.manifest["base_model"], "engines": rows}


def demo_latency(checkpoint: Path, video: str, engines: list[str]) -> list[dict[str, Any]]:
    """Per engine: the demo's first classify (load + engine preparation) and the median of the next 5."""
    import statistics

    from demo.service import DemoService

    rows = []
    for engine in ["fp32", *engines]:  # engines prepared into the engines folder beside the checkpoints, as served
        service = DemoService(checkpoint.resolve().parent, engine=engine)
        first = service.classify(checkpoint.name, video)
        calls = [service.classify(checkpoint.name, video).timings_ms for _ in range(5)]
        median = {part: statistics.median(call[part] for call in calls) for part in calls[0]}
        rows.append({"engine": engine, "ran": service.cache.get(checkpoint.name)[0].engine.engine,
                     "first_call_load_ms": round(first.timings_ms.get("load", 0.0)),
                     **{f"{part}_ms": round(ms, 1) for part, ms in median.items()},
                     "total_ms": round(sum(median.values()), 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_agreement", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--warehouse", type=Path, help="the run's warehouse: its validation and test videos are "
                        "classified, and the engines checked on its validation views")
    parser.add_argument("--videos", nargs="+", help="these videos instead of the run's validation and test videos")
    parser.add_argument("--engines", default=",".join([AUTO, *auto_order(CPU)]))
    parser.add_argument("--floor", action="store_true", help="also fp32 after changes no one sees (each pixel moved "
                        "by one grey level; H.264 at CRF 18): how far the model's own answers move")
    parser.add_argument("--demo", action="store_true", help="also the demo's classify latency per engine")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from vjepa_core.store.checkpoint import read_manifest

    run_id = read_manifest(args.checkpoint)["run_id"]
    splits = ({"videos": args.videos} if args.videos else
              {split: run_videos(args.warehouse, run_id, split) for split in ("val", "test")} if args.warehouse else {})
    if not any(splits.values()):
        parser.exit(2, "error: no videos: give --warehouse (the run's validation and test videos) or --videos\n")
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    result = run(args.checkpoint, splits, engines, args.warehouse, floor=args.floor)
    if args.demo:
        result["demo"] = demo_latency(args.checkpoint, next(iter(splits.values()))[0], engines)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['strategy']} run {result['run_id']} on {result['base_model']}: "
          + ", ".join(f"{len(videos)} {split} videos" for split, videos in splits.items()))
    for row in result["engines"]:
        ran = row["engine"] if row.get("floor") or row["ran"] == row["engine"] else f"{row['engine']} -> {row['ran']}"
        kept = f" ({len(row['plan']['fp32_blocks'])}/{row['plan']['blocks']} blocks fp32)" if row.get("plan") else ""
        for split in splits:
            shown = row[split]
            print(f"  {ran + kept:36s} {split:5s} top-1 same {shown['top1_agreement']:7.1%}  max |dp| "
                  f"{shown['max_prob_diff']:.4f}  p99 {shown['p99_prob_diff']:.4f}  over {PROB_TOLERANCE}: "
                  f"{shown['videos_over_tolerance']:3d}  {shown['ms_per_view']:7.1f} ms/view")
        if row.get("fallback"):
            print(f"    fell back: {row['fallback']}")
    for row in result.get("demo", []):
        ran = row["ran"] if row["ran"] == row["engine"] else f"{row['engine']} -> {row['ran']}"
        print(f"  demo, {ran:18s} classify {row['total_ms']:7.1f} ms (decode {row['decode_ms']}, preprocess "
              f"{row['preprocess_ms']}, model {row['model_ms']}); first call loads in {row['first_call_load_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
