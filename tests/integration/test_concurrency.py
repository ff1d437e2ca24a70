"""Several real `runner` processes on one warehouse: each run trains once, a run a live process holds is
skipped and said so, and a dead process's claim is taken over."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from benchmarks.robustness import FAST, audit, runner_command, summary_counts, write_matrix
from runner.orchestration.matrix import load_matrix
from vjepa_core.store.claims import CLAIMED, Claims
from vjepa_core.store.warehouse import Warehouse


def matrix_spec(path: Path, data: Path, seeds: int) -> Path:
    return write_matrix(path, data, strategies=["head"], frames=[8], seeds=list(range(seeds)))


def start(*args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "VJEPA_PROGRESS": "1"}  # progress lines (and skip lines) in the captured stderr
    return subprocess.Popen(runner_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out + err


def assert_each_run_once(warehouse: Path, results: Path, run_ids: list[str]) -> None:
    found = audit(warehouse, results, run_ids)
    assert found.clean and found.success == found.checkpoints == len(run_ids), found


def test_two_run_matrix_processes_split_the_work(tmp_path: Path, synthetic_small: Path) -> None:
    spec = matrix_spec(tmp_path / "four.yaml", synthetic_small, seeds=4)
    where = ["--warehouse", tmp_path / "w.duckdb", "--results", tmp_path / "results"]
    procs = [start("run-matrix", spec, *where) for _ in range(2)]
    results = [finish(proc) for proc in procs]
    assert [code for code, _ in results] == [0, 0], [out[-2000:] for _, out in results]
    tallies = [summary_counts(out) for _, out in results]
    assert sum(t["ran"] for t in tallies) == 4  # each run trained once, by one of the two
    assert all(t["ran"] + t["done"] + t["elsewhere"] == 4 and t["failed"] == 0 for t in tallies)
    assert_each_run_once(tmp_path / "w.duckdb", tmp_path / "results", [s.run_id for s in load_matrix(spec).runs])


def test_a_run_held_by_a_live_process_is_skipped_and_said_so(tmp_path: Path, synthetic_small: Path) -> None:
    spec = matrix_spec(tmp_path / "three.yaml", synthetic_small, seeds=3)
    run_ids = [s.run_id for s in load_matrix(spec).runs]
    where = ["--warehouse", tmp_path / "w.duckdb", "--results", tmp_path / "results"]
    store = Warehouse(tmp_path / "w.duckdb")
    with Claims(store, command="run-matrix") as holder:  # this test process: alive, training run_ids[1]
        assert holder.claim(run_ids[1], strategy="head").kind == CLAIMED
        code, output = finish(start("run-matrix", spec, *where))
        assert code == 0, output[-2000:]
        assert summary_counts(output) == {"total": 3, "ran": 2, "done": 0, "elsewhere": 1, "failed": 0}
        assert f"- {run_ids[1]} head" in output
        assert f"skipped, running elsewhere (PID {os.getpid()} on {socket.gethostname()}, since " in output
        assert run_ids[1] not in set(store.runs()["run_id"])

        single = load_matrix(spec).runs[1]
        code, output = finish(start("run", "--data", synthetic_small, "--strategy", "head", "--seed", single.seed,
                                    "--frames-per-clip", "8", "--epochs", "1",
                                    *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()], *where, "-q"))
        assert code == 0, output[-2000:]
        assert f"run {run_ids[1]}: skipped, running elsewhere (PID {os.getpid()} on" in output
    # The holder is gone (released here; a killed one would be taken over): the rest gets done.
    code, output = finish(start("run-matrix", spec, *where, "-q"))
    assert code == 0 and summary_counts(output) == {"total": 3, "ran": 1, "done": 2, "elsewhere": 0, "failed": 0}
    assert_each_run_once(tmp_path / "w.duckdb", tmp_path / "results", run_ids)
