"""Long-video benchmark: `runner predict --window 2 --stride 1` on 1080p videos of 1 and 5 minutes.

`python -m benchmarks.bench_long_video [--minutes 1 5] [--work-dir DIR] [--json]`

Writes real 1080p30 H.264 videos of moving shapes (`write_long_video`, into a temporary folder
unless --work-dir is given), trains a one-epoch `head` checkpoint on the `tiny` preset, then runs
`runner predict CKPT VIDEO --window 2 --stride 1` on each video in its own process and reads that
process's peak RSS from the kernel (`wait4`). It prints, per length: windows, wall time and peak
RSS, then the ratio of the longest video's peak RSS to the shortest's. A streamed decode keeps
that ratio near 1: memory must not grow with the video's length. Both runs happen in one
invocation, so the ratio is not skewed by a machine that got busier in between.
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

RUNNER = [sys.executable, "-c", "from runner.cli import main; main()"]


def make_checkpoint(work: Path) -> Path:
    """A real `runner run` checkpoint on the tiny preset (head, 1 epoch, 2 training videos per class)."""
    from vjepa_core.data import make_synthetic
    from vjepa_core.spec import ExecOptions, RunSpec
    from vjepa_core.training.experiment import Paths, run_experiment

    data = make_synthetic(work / "synthetic", videos_per_class=6)
    spec = RunSpec(strategy="head", model="tiny", data=str(data), epochs=1, videos_per_class=2)
    record = run_experiment(spec, Paths(work / "results"), ExecOptions(progress=False))
    return Path(record.run["checkpoint_path"])


def measure(checkpoint: Path, video: Path, rows: Path) -> dict[str, Any]:
    """Wall time and peak RSS (bytes) of one `runner predict --window 2 --stride 1` process."""
    command = [*RUNNER, "predict", str(checkpoint), str(video), "--window", "2", "--stride", "1", "--quiet",
               "--out", str(rows)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"runner predict failed on {video.name}: {stderr.strip()}")
    windows = sum(1 for _ in rows.open()) - 1
    return {"video": video.name, "windows": windows, "wall_seconds": round(wall, 1),
            "peak_rss_bytes": usage.ru_maxrss * 1024}  # Linux reports KiB


def run(minutes: list[float], work: Path) -> dict[str, Any]:
    from vjepa_core.data.synthetic import write_long_video

    results: dict[str, Any] = {"machine_load_1min": os.getloadavg()[0], "videos": []}
    checkpoint = make_checkpoint(work)
    for length in minutes:
        video = work / f"long_{length:g}min_1080p.mp4"
        started = time.perf_counter()
        write_long_video(video, seconds=60 * length, fps=30, height=1080, width=1920)
        print(f"wrote {video.name} ({video.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        row = {"minutes": length, **measure(checkpoint, video, work / f"rows_{length:g}.csv")}
        results["videos"].append(row)
        print(f"{length:g} min: {row['windows']} windows in {row['wall_seconds']} s, "
              f"peak RSS {row['peak_rss_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
    first, last = results["videos"][0], results["videos"][-1]
    results["peak_rss_ratio"] = round(last["peak_rss_bytes"] / first["peak_rss_bytes"], 3)
    results["machine_load_after"] = os.getloadavg()[0]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_long_video", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0], help="video lengths (default 1 5)")
    parser.add_argument("--work-dir", type=Path, help="keep the videos and checkpoint here (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if len(args.minutes) < 2 or min(args.minutes) <= 0:
        parser.error("give at least two positive lengths, e.g. --minutes 1 5")
    with tempfile.TemporaryDirectory(prefix="vjepa-long-") as temp:
        work = args.work_dir or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        results = run(sorted(args.minutes), work)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'minutes':>8} {'windows':>8} {'wall s':>8} {'peak RSS MiB':>13}")
    for row in results["videos"]:
        print(f"{row['minutes']:>8g} {row['windows']:>8} {row['wall_seconds']:>8} "
              f"{row['peak_rss_bytes'] / 2**20:>13.0f}")
    print(f"peak RSS {results['videos'][-1]['minutes']:g} min / {results['videos'][0]['minutes']:g} min = "
          f"{results['peak_rss_ratio']:.3f} (load average {results['machine_load_1min']:.1f} before, "
          f"{results['machine_load_after']:.1f} after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
