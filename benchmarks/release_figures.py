"""The release figures, measured in one process: `python -m benchmarks.release_figures`.

Takes a trained run (`--warehouse W --run RUN_ID`), or trains the default study's `lora` on `tiny-jepa`, releases
it in every form (fp32, fp16, bf16, adapter-only) and measures how each folder, as plain transformers (and PEFT)
loads it, and the `pipeline` with and without the folder's remote-code processor, agree with vjepa-lab's own
model and `runner predict` on the run's test videos; plus the folders' sizes (`--sizes-only`: only those).
Figures and how to read them: docs/benchmarks/release.md.

    python -m benchmarks.release_figures [--warehouse W --run RUN_ID] [--work DIR] [--sizes-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vjepa_core.data import eval_clip_indices, probe_video, read_frames
from vjepa_core.inference.predict import Predictor
from vjepa_core.inference.views import clip_views, decoded_clips
from vjepa_core.release.adapter import BASE_DIR, base_reference, load_adapter_form
from vjepa_core.release.hub_processor import PROCESSOR_CLASS
from vjepa_core.release.model import load_plain, logits
from vjepa_core.release.writer import ReleaseRequest, release_run
from vjepa_core.store.checkpoint import load_checkpoint
from vjepa_core.store.warehouse import Warehouse

FORMS = {"merged fp32": {}, "merged fp16": {"dtype": "fp16"}, "merged bf16": {"dtype": "bf16"},
         "adapter-only fp32": {"adapter_only": True}}
PIPELINE_WAYS = {"file": "given the file (transformers' sampling: the whole video)",
                 "file_remote_code": "given the file, trust_remote_code=True (the run's clip)",
                 "eval_clip": "given the evaluation's clip (the card's snippet)"}
RUN = ["runner", "run", "--data", "synthetic", "--model", "tiny-jepa", "--strategy", "lora",
       "--videos-per-class", "10", "--epochs", "40", "--quiet"]


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def train(work: Path) -> tuple[Path, str]:
    warehouse = work / "vjepa.duckdb"
    subprocess.run([*RUN, "--warehouse", str(warehouse), "--results", str(work / "results")], check=True)
    return warehouse, str(Warehouse(warehouse).runs()["run_id"].iloc[-1])


def release_all(warehouse: Path, run_id: str, work: Path) -> dict[str, dict[str, Any]]:
    forms = {}
    for name, options in FORMS.items():
        out = work / name.replace(" ", "-")
        started = time.perf_counter()
        report = release_run(ReleaseRequest(run_id, out, warehouse, force=True, **options))
        weights = sum((out / f).stat().st_size for f in report.files if f.endswith(".safetensors"))
        bundled = folder_bytes(out / BASE_DIR) if (out / BASE_DIR).is_dir() else 0  # a preset base, carried along
        forms[name] = {"folder": out, "bytes": folder_bytes(out), "weights_bytes": weights,
                       "bundled_base_bytes": bundled, "release_check_delta": report.max_logit_delta,
                       "seconds": time.perf_counter() - started}
    return forms


def test_views(warehouse: Path, run_id: str) -> tuple[list[str], dict[str, Predictor]]:
    """The run's test videos, and `runner predict`'s `Predictor` under `--engine fp32` (the evaluation's own
    arithmetic) and under its default `--engine auto` (here the fastest engine that passes its check)."""
    store = Warehouse(warehouse)
    run = store.get_run(run_id)
    assert run is not None
    predictions = store.table("predictions", run_id)
    videos = sorted(predictions[predictions["split"] == "test"]["video"])
    return videos, {engine: Predictor.from_checkpoint(Path(run["checkpoint_path"]), device="cpu", engine=engine)
                    for engine in ("fp32", "auto")}


def evaluation_clips(video: str, pre: dict[str, Any]) -> torch.Tensor:
    """The views [V, T, 3, crop, crop] the run's evaluation scored `video` on (as `Predictor.classify`)."""
    return torch.stack(clip_views(decoded_clips(video, pre), pre))


def logit_deltas(forms: dict[str, dict[str, Any]], videos: list[str], checkpoint: Path) -> None:
    loaded = load_checkpoint(checkpoint)
    pre = loaded.manifest["preprocessing"]
    views = [evaluation_clips(video, pre) for video in videos]
    reference = [logits(loaded.model, clip) for clip in views]
    for name, form in forms.items():
        folder = form["folder"]
        base = base_reference(loaded.manifest["base_model"]).path_in(folder)
        model = load_adapter_form(folder, base) if name.startswith("adapter") else load_plain(folder)
        theirs = [logits(model, clip) for clip in views]
        form["max_abs_logit_delta"] = max(float((mine - ref).abs().max()) for mine, ref in zip(theirs, reference,
                                                                                                strict=True))
        form["max_abs_prob_delta"] = max(float((mine.softmax(-1) - ref.softmax(-1)).abs().max())
                                         for mine, ref in zip(theirs, reference, strict=True))
        form["top1_agree"] = sum(int(mine.mean(0).argmax() == ref.mean(0).argmax())
                                 for mine, ref in zip(theirs, reference, strict=True))


def pipeline_agreement(folder: Path, videos: list[str], predictors: dict[str, Predictor]) -> dict[str, Any]:
    """Each `runner predict` engine against the pipeline three ways (`PIPELINE_WAYS`): given the file with
    transformers' own processor (`num_frames` spread over the whole video), given the file with the folder's
    processor (remote code: the evaluation's clip), and given the evaluation's clip decoded by hand (the card's
    snippet). Also torchcodec (the pipeline's decoder) against vjepa-lab's on every frame of every video."""
    from torchcodec.decoders import VideoDecoder
    from transformers import pipeline

    pipes = {"file": pipeline("video-classification", model=str(folder)),
             "file_remote_code": pipeline("video-classification", model=str(folder), trust_remote_code=True)}
    assert type(pipes["file_remote_code"].video_processor).__name__ == PROCESSOR_CLASS
    pre = next(iter(predictors.values())).pre
    agree = {engine: dict.fromkeys(PIPELINE_WAYS, 0) for engine in predictors}
    worst = {engine: dict.fromkeys(PIPELINE_WAYS, 0.0) for engine in predictors}
    pixels = frame_counts = 0
    for video in videos:
        decoder = VideoDecoder(video)
        count = probe_video(video).num_frames
        frame_counts += count != decoder.metadata.num_frames
        every = list(range(count))
        mine = torch.from_numpy(read_frames(video, every)).permute(0, 3, 1, 2).int()
        pixels = max(pixels, int((decoder.get_frames_at(every).data.int() - mine).abs().max()))
        indices = eval_clip_indices(decoder.metadata.num_frames, pre["frames_per_clip"], pre["frame_stride"])[0]
        answers = {way: pipe(video, top_k=len(predictors["fp32"].labels)) for way, pipe in pipes.items()}
        answers["eval_clip"] = pipes["file"](decoder.get_frames_at(indices.tolist()).data,
                                             top_k=len(predictors["fp32"].labels))
        for engine, predictor in predictors.items():
            ours = predictor.classify(video).probs
            for way, rows in answers.items():
                theirs = {row["label"]: row["score"] for row in rows}
                agree[engine][way] += max(theirs, key=theirs.get) == max(ours, key=ours.get)
                worst[engine][way] = max(worst[engine][way], max(abs(theirs[k] - p) for k, p in ours.items()))
    return {"videos": len(videos), "engines": {name: p.engine.engine for name, p in predictors.items()},
            "agree": agree, "max_abs_prob_delta": worst, "eval_clips": pre["eval_clips"],
            "eval_crops": pre["eval_crops"],
            "decoders": {"frame_counts_differ": frame_counts, "max_abs_pixel_delta": pixels}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.release_figures", description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, help="warehouse of an existing run (else one is trained)")
    parser.add_argument("--run", help="the run to release (with --warehouse)")
    parser.add_argument("--work", type=Path, help="where releases (and a trained run) go (default: a temp folder)")
    parser.add_argument("--sizes-only", action="store_true", help="only release and measure the folders' sizes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="release-figures-"))
    load_before = os.getloadavg()[0]  # the cores may be shared: the load says how far to trust the times
    warehouse, run_id = (args.warehouse, args.run) if args.warehouse else train(work)
    forms = release_all(warehouse, run_id, work)
    figures: dict[str, Any] = {"run_id": run_id, "forms": forms}
    if not args.sizes_only:
        videos, predictors = test_views(warehouse, run_id)
        logit_deltas(forms, videos, predictors["fp32"].loaded.path)
        figures["pipeline"] = pipeline_agreement(forms["merged fp32"]["folder"], videos, predictors)
    figures["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    for form in forms.values():
        form["folder"] = str(form["folder"])
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"run {run_id} (load average {load_before:.1f} before, {figures['load_average']['after']:.1f} after)")
    for name, form in forms.items():
        delta = form.get("max_abs_logit_delta")
        base = form["bundled_base_bytes"]
        print(f"  {name:18s} {form['bytes'] / 2**20:8.2f} MiB (weights {form['weights_bytes'] / 2**20:.2f} MiB"
              + (f", of which the bundled base {base / 2**20:.2f} MiB" if base else "") + ")"
              + (f", max |Δlogit| {delta:.3g}, max |Δprob| {form['max_abs_prob_delta']:.3g}, same top-1 on "
                 f"{form['top1_agree']} videos" if delta is not None else "")
              + f", release check {form['release_check_delta']:.3g}, {form['seconds']:.1f} s")
    if "pipeline" in figures:
        p = figures["pipeline"]
        for engine, chosen in p["engines"].items():
            print(f"  pipeline vs runner predict --engine {engine} ({chosen}) on {p['videos']} test videos "
                  "(same top-1, max |Δprob|):")
            for way, words in PIPELINE_WAYS.items():
                print(f"    {words:58s} {p['agree'][engine][way]}/{p['videos']}, "
                      f"{p['max_abs_prob_delta'][engine][way]:.3g}")
        print(f"  torchcodec vs vjepa-lab's decoder on every frame: max |Δpixel| {p['decoders']['max_abs_pixel_delta']}"
              f", frame counts differ on {p['decoders']['frame_counts_differ']} videos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
