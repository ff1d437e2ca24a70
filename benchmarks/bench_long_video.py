"""Long-video benchmark: `runner predict --window 2 --stride 1` on 1080p videos of 1 and 5 minutes, before and
after the inference engines.

`python -m benchmarks.bench_long_video [--minutes 1 5] [--checkpoint CKPT] [--work-dir DIR] [--json]`

Writes real 1080p30 H.264 videos of moving shapes and runs `runner predict` on each in its own process per arm
(`fp32`, the eager model; `auto`, the default engine; `fp32-ftz`, eager with subnormal floats flushed to zero,
which shows how much of the engines' gain is that flush rather than cheaper arithmetic), reading wall time and
peak RSS from the kernel, with the arms' order rotated so that a change of load touches each alike, and how
`auto`'s windows agree with `fp32`'s. The default workload is the default study's `head` on `tiny-jepa`, whose
windows carry confident answers. Figures: docs/benchmarks/long-video.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PRELUDE = "from runner.cli import main; main()"
ARMS = {  # arm -> (python code run before the CLI, --engine)
    "fp32": (PRELUDE, "fp32"),
    "auto": (PRELUDE, "auto"),
    "fp32-ftz": ("import torch; torch.set_flush_denormal(True); " + PRELUDE, "fp32"),
}


def make_checkpoint(work: Path) -> Path:
    """The default study's `head` at 10 videos per class on `tiny-jepa` (built-in synthetic set, 40 epochs)."""
    from vjepa_core.spec import ExecOptions, RunSpec
    from vjepa_core.training.experiment import Paths, run_experiment

    spec = RunSpec(strategy="head", model="tiny-jepa", data="synthetic", epochs=40, videos_per_class=10, lr=1e-3,
                   batch_size=8, seed=0)
    record = run_experiment(spec, Paths(work / "results"), ExecOptions(progress=False))
    return Path(record.run["checkpoint_path"])


def prepare_default_engine(checkpoint: Path) -> dict[str, Any]:
    """Prepare `auto`'s engine into the checkpoint's engines folder (where runner predict looks): which one, why,
    and the one-off seconds (0 when it was already there)."""
    from vjepa_core.inference.predict import Predictor
    from vjepa_core.paths import checkpoint_results, engines_dir

    said: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("vjepa_core.inference.engines.prepare")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        engine = Predictor.from_checkpoint(checkpoint, device="cpu", engine="auto",
                                           engine_cache=engines_dir(checkpoint_results(checkpoint))).engine
    finally:
        logger.removeHandler(handler)
    return {"engine": engine.engine, "cached": engine.cached, "setup_s": round(engine.setup_s, 1),
            "log": said, "fallback": engine.fallback}


def measure(checkpoint: Path, video: Path, rows: Path, arm: str) -> dict[str, Any]:
    """Wall time, peak RSS (bytes) and engine of one `runner predict --window 2 --stride 1` process."""
    prelude, engine = ARMS[arm]
    command = [sys.executable, "-c", prelude, "predict", str(checkpoint), str(video), "--window", "2", "--stride", "1",
               "--engine", engine, "--quiet", "--out", str(rows)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read() if process.stderr else ""  # read before reaping: a full pipe would block it
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"runner predict ({arm}) failed on {video.name}: {stderr.strip()}")
    ran = re.search(r"engine ([\w-]+)\)", stderr)
    return {"arm": arm, "engine": ran.group(1) if ran else None, "wall_seconds": round(wall, 1),
            "peak_rss_bytes": usage.ru_maxrss * 1024}  # Linux reports KiB


def read_rows(path: Path) -> tuple[list[float], np.ndarray, list[str]]:
    """A window CSV's starts, probabilities [windows, labels] and labels."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    labels = [name.removeprefix("p_") for name in rows[0] if name.startswith("p_")]
    probs = np.array([[float(row[f"p_{label}"]) for label in labels] for row in rows])
    return [float(row["start"]) for row in rows], probs, labels


def agreement(reference: Path, other: Path) -> dict[str, Any]:
    """Windows whose top-1 label is the same in both files, the largest |probability difference|, and how many
    top-1 changes are at near ties (the reference's best two within twice that window's largest difference)."""
    starts, expected, labels = read_rows(reference)
    other_starts, probs, other_labels = read_rows(other)
    if (starts, labels) != (other_starts, other_labels):
        raise SystemExit(f"{reference.name} and {other.name} do not have the same windows and labels")
    diff = np.abs(expected - probs).max(1)
    best_two = np.sort(expected, axis=1)[:, -2:]
    flipped = expected.argmax(1) != probs.argmax(1)
    return {"windows": len(starts), "top1_same": int((~flipped).sum()), "max_prob_diff": round(float(diff.max()), 5),
            "flips_at_near_ties": int((flipped & (best_two[:, 1] - best_two[:, 0] <= 2 * diff)).sum())}


def long_video(work: Path, minutes: float) -> Path:
    """The 1080p30 video of `minutes`, written once (deterministic; an existing file is complete: atomic write)."""
    from vjepa_core.data.synthetic import write_long_video

    video = work / f"long_{minutes:g}min_1080p.mp4"
    if not video.exists():
        started = time.perf_counter()
        write_long_video(video, seconds=60 * minutes, fps=30, height=1080, width=1920)
        print(f"wrote {video.name} ({video.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
    return video


def run(minutes: list[float], work: Path, checkpoint: Path | None) -> dict[str, Any]:
    videos = [long_video(work, length) for length in minutes]
    checkpoint = checkpoint or make_checkpoint(work)
    from vjepa_core.store.checkpoint import read_manifest

    manifest, default = read_manifest(checkpoint), prepare_default_engine(checkpoint)
    results: dict[str, Any] = {"checkpoint": str(checkpoint), "strategy": manifest["strategy"],
                               "base_model": manifest["base_model"], "default_engine": default,
                               "load_before": os.getloadavg(), "videos": []}
    names = list(ARMS)
    for index, (length, video) in enumerate(zip(minutes, videos, strict=True)):
        order = names[index % len(names):] + names[:index % len(names)]
        row: dict[str, Any] = {"minutes": length, "arms": {}}
        for arm in order:
            row["arms"][arm] = measure(checkpoint, video, work / f"rows_{length:g}_{arm}.csv", arm)
            print(f"{length:g} min, {arm}: {row['arms'][arm]['wall_seconds']} s, engine {row['arms'][arm]['engine']}, "
                  f"peak RSS {row['arms'][arm]['peak_rss_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
        row["order"] = order
        reference = work / f"rows_{length:g}_fp32.csv"
        row["agreement"] = {arm: agreement(reference, work / f"rows_{length:g}_{arm}.csv") for arm in names[1:]}
        row["windows"] = row["agreement"]["auto"]["windows"]
        row["speedup"] = {arm: round(row["arms"]["fp32"]["wall_seconds"] / row["arms"][arm]["wall_seconds"], 2)
                          for arm in names[1:]}
        results["videos"].append(row)
    first, last = results["videos"][0]["arms"], results["videos"][-1]["arms"]
    results["peak_rss_ratio"] = {arm: round(last[arm]["peak_rss_bytes"] / first[arm]["peak_rss_bytes"], 3)
                                 for arm in names}
    results["load_after"] = os.getloadavg()
    return results


def print_table(results: dict[str, Any]) -> None:
    default = results["default_engine"]
    print(f"{results['strategy']} on {results['base_model']}; auto ran {default['engine']} "
          f"(prepared in {default['setup_s']} s{', from the cache' if default['cached'] else ''})")
    print(f"{'minutes':>8} {'windows':>8} {'arm':>9} {'engine':>14} {'wall s':>8} {'vs fp32':>8} {'peak RSS MiB':>13} "
          f"{'top-1 same (near ties)':>23} {'max |dp|':>9}")
    for row in results["videos"]:
        for arm in ARMS:
            measured, same = row["arms"][arm], row["agreement"].get(arm)
            agree = f"{same['top1_same']}/{same['windows']} ({same['flips_at_near_ties']})" if same else "-"
            print(f"{row['minutes']:>8g} {row['windows']:>8} {arm:>9} {measured['engine']!s:>14} "
                  f"{measured['wall_seconds']:>8} {row['speedup'].get(arm, 1.0):>7.2f}x "
                  f"{measured['peak_rss_bytes'] / 2**20:>13.0f} {agree:>23} "
                  f"{same['max_prob_diff'] if same else 0:>9}")
    ratios = ", ".join(f"{arm} {ratio:.3f}" for arm, ratio in results["peak_rss_ratio"].items())
    print(f"peak RSS {results['videos'][-1]['minutes']:g} min / {results['videos'][0]['minutes']:g} min: {ratios}; "
          f"load average {results['load_before'][0]:.2f} before, {results['load_after'][0]:.2f} after")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_long_video", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0], help="video lengths (default 1 5)")
    parser.add_argument("--checkpoint", type=Path, help="classify with this checkpoint (default: train the default "
                        "study's head at 10 videos per class on tiny-jepa in the work folder)")
    parser.add_argument("--work-dir", type=Path, help="keep (and reuse) the videos and checkpoint here "
                        "(default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if len(args.minutes) < 2 or min(args.minutes) <= 0:
        parser.error("give at least two positive lengths, e.g. --minutes 1 5")
    with tempfile.TemporaryDirectory(prefix="vjepa-long-") as temp:
        work = args.work_dir or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        results = run(sorted(args.minutes), work, args.checkpoint)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
