"""Ctrl-C and `kill` sent to a runner's whole process group (the runner and its decode workers) while it
decodes: the matrix is recorded `interrupted`, its claims released, exit 130, and the only output is
"interrupted": no traceback, nothing from the DataLoader workers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.kill_torture import decoding_workers
from benchmarks.robustness import runner_command, strategy_for, write_matrix
from runner.orchestration.matrix import load_matrix
from vjepa_core.store.atomic import is_temp
from vjepa_core.store.warehouse import Warehouse


@pytest.mark.parametrize(("command", "signum"), [("run-matrix", signal.SIGTERM), ("run-matrix", signal.SIGINT),
                                                 ("run", signal.SIGTERM)])
def test_a_signal_to_the_process_group_ends_cleanly(tmp_path: Path, synthetic_small: Path, command: str,
                                                    signum: signal.Signals) -> None:
    # The pixel strategy decodes in workers during every epoch: a long window with workers at work.
    spec = write_matrix(tmp_path / "one.yaml", synthetic_small, strategies=[strategy_for("pixel")], frames=[8],
                        seeds=[0], epochs=3)
    where = ["--warehouse", tmp_path / "w.duckdb", "--results", tmp_path / "results", "--workers", "2"]
    if command == "run":
        base = load_matrix(spec).runs[0]
        args = ["run", "--data", synthetic_small, "--strategy", base.strategy, "--model", "tiny", "--epochs", "3",
                "--frames-per-clip", "8", "--batch-size", "4", "--train-views", "1"]
    else:
        args = ["run-matrix", spec]
    # A background job (nohup, `make test &`) inherits SIGINT ignored, and Python then installs no Ctrl-C
    # handler: start the runner as a terminal would, with the default disposition.
    proc = subprocess.Popen(runner_command(*args, *where), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "VJEPA_PROGRESS": "0"},
                            preexec_fn=_default_ctrl_c)
    deadline = time.monotonic() + 300
    while not decoding_workers(proc.pid, synthetic_small) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "no decode worker started"
    os.killpg(proc.pid, signum)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 130, out + err
    assert (out + err).strip() == "interrupted"
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == []
    store = Warehouse(tmp_path / "w.duckdb")
    assert store.claims().empty and store.runs().empty
    if command == "run-matrix":
        assert list(store.matrices()["status"]) == ["interrupted"]
    assert [p for p in (tmp_path / "results").rglob("*") if is_temp(p)] == []


def _default_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
