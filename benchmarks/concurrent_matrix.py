"""Several `runner run-matrix` processes on one warehouse: do they split the work, each run trained once?

Starts 2, then 3, copies of one small matrix at the same moment against a fresh warehouse, and prints what
each says it did, the total trainings (which must equal the runs), duplicate rows, exit codes, wall time and
the `benchmarks.robustness.audit` of the result. Figures: docs/benchmarks/robustness.md.

    python -m benchmarks.concurrent_matrix [--copies 2,3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.robustness import audit, runner_command, strategy_for, summary_counts, write_matrix
from runner.orchestration.matrix import load_matrix
from vjepa_core.data.synthetic import make_synthetic


def six_runs(work: Path, data: Path) -> Path:
    """pooler x 2 seeds, lora x 2 seeds, pixel x 2 seeds: cached and decoded runs, adapter checkpoints."""
    return write_matrix(work / "six.yaml", data, strategies=[strategy_for(r) for r in ("pooler", "lora", "pixel")],
                        frames=[8], seeds=[0, 1])


def race(spec: Path, copies: int, work: Path) -> dict[str, Any]:
    warehouse, results = work / f"copies{copies}.duckdb", work / f"results{copies}"
    env = {**os.environ, "VJEPA_PROGRESS": "0"}
    command = runner_command("run-matrix", spec, "--warehouse", warehouse, "--results", results)
    started = time.perf_counter()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for _ in range(copies)]
    outputs = [proc.communicate()[0] for proc in procs]
    wall = time.perf_counter() - started
    per_copy = [{"exit": proc.returncode, **summary_counts(out)} for proc, out in zip(procs, outputs, strict=True)]
    run_ids = [s.run_id for s in load_matrix(spec).runs]
    found = audit(warehouse, results, run_ids)
    return {"copies": copies, "runs": len(run_ids), "trainings": sum(c["ran"] for c in per_copy),
            "duplicate_rows": found.duplicate_rows, "all_exit_0": all(c["exit"] == 0 for c in per_copy),
            "wall_seconds": round(wall, 1), "per_copy": per_copy, "audit": found.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", default="2,3", help="comma-separated numbers of concurrent processes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_synthetic(work / "data", videos_per_class=4)
        spec = six_runs(work, data)
        rows = []
        for copies in (int(c) for c in args.copies.split(",")):
            row = race(spec, copies, work)
            rows.append(row)
            print(f"{copies} copies of a {row['runs']}-run matrix: {row['trainings']} trainings, "
                  f"{row['duplicate_rows']} duplicate rows, all exit 0: {row['all_exit_0']}, "
                  f"{row['wall_seconds']} s wall; audit clean: {row['audit']['clean']}")
            for i, copy in enumerate(row["per_copy"]):
                print(f"  copy {i + 1}: exit {copy['exit']}, ran {copy['ran']}, skipped as done {copy['done']}, "
                      f"skipped as running elsewhere {copy['elsewhere']}, failed {copy['failed']}")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
