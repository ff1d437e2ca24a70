"""A full disk as `--results`: the run fails with one line, leaves no debris, and the re-run succeeds.

On a real tmpfs mounted for it (so it needs root), small enough to fill while the cache fills or while the
checkpoint is written, it runs the command, counts what is left behind and the failed rows, then grows the
disk and runs the same command again. Figures: docs/benchmarks/robustness.md.

    python -m benchmarks.disk_full [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.robustness import debris, runner_command, strategy_for, write_matrix
from tests.disks import SmallDisk
from vjepa_core.store.warehouse import Warehouse

SIZES_KIB = {"cache fill": 128, "checkpoint write": 1024}
FREED_KIB = 16 * 1024
RUN_OPTIONS = {"model": "tiny", "epochs": 1, "batch_size": 4, "train_views": 1, "frames_per_clip": 8}


def command(scenario: str, data: Path, work: Path, results: Path) -> list[str]:
    where = ["--warehouse", work / "w.duckdb", "--results", results, "-q"]
    if scenario == "cache fill":
        flags = [item for key, value in RUN_OPTIONS.items() for item in (f"--{key.replace('_', '-')}", value)]
        return runner_command("run", "--data", data, "--strategy", strategy_for("pooler"), *flags, *where)
    spec = write_matrix(work / "one.yaml", data, strategies=[strategy_for("pooler")],
                        frames=[RUN_OPTIONS["frames_per_clip"]], seeds=[0], epochs=RUN_OPTIONS["epochs"])
    return runner_command("run-matrix", spec, *where)


def scenario(name: str, data: Path, work: Path) -> dict[str, Any]:
    """Fail on a full disk, free space, run again: the figures of both attempts."""
    work.mkdir(parents=True, exist_ok=True)
    disk = SmallDisk(work / "disk", SIZES_KIB[name])
    try:
        argv = command(name, data, work, disk.path)
        first = _run(argv)
        runs = Warehouse(work / "w.duckdb").runs()
        failed = runs[runs["status"] == "failed"]
        figures = {
            "scenario": name, "disk_kib": SIZES_KIB[name], "exit": first.returncode,
            "output_lines": [line for line in (first.stdout + first.stderr).splitlines() if line.strip()],
            "traceback": "Traceback" in first.stdout + first.stderr,
            "leftover_temp_files": len(debris(disk.path)), "failed_rows": len(failed),
            "error_kind": failed["error_kind"].tolist(), "reason": failed["error"].tolist(),
            "cache_entries_kept": sum(1 for _ in disk.path.glob("cache/*/*.npy")),
        }
        disk.resize(FREED_KIB)
        second = _run(argv)
        run = Warehouse(work / "w.duckdb").runs().iloc[0]
        figures.update(rerun_exit=second.returncode, rerun_status=run["status"], rerun_rows=len(
            Warehouse(work / "w.duckdb").runs()), rerun_cache_hits=int(run["cache_hits"] or 0),
            rerun_checkpoint=Path(run["checkpoint_path"] or "-").is_dir(),
            leftover_temp_files_after_rerun=len(debris(disk.path)))
    finally:
        disk.unmount()
    return figures


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "VJEPA_PROGRESS": "0"},
                          timeout=900, check=False)


def main() -> None:
    from vjepa_core.data.synthetic import make_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic(Path(tmp) / "data", videos_per_class=4)
        for name in SIZES_KIB:
            row = scenario(name, data, Path(tmp) / name.replace(" ", "_"))
            rows.append(row)
            print(f"disk full during {name} ({row['disk_kib']} KiB): exit {row['exit']}, "
                  f"{len(row['output_lines'])} line(s) of output, traceback: {row['traceback']}, "
                  f"{row['leftover_temp_files']} leftover temp files, {row['failed_rows']} failed row(s) "
                  f"(error_kind {row['error_kind']}); re-run with space freed: exit {row['rerun_exit']}, "
                  f"{row['rerun_status']}, {row['rerun_rows']} row(s), {row['rerun_cache_hits']} cache hits, "
                  f"{row['leftover_temp_files_after_rerun']} temp files")
            print(f"  reason: {row['reason'][0] if row['reason'] else '-'}")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
