"""The kill torture: a matrix killed with SIGKILL at N moments, in each phase of a run, resumed after each.

Each round starts `runner run-matrix`, watches it from outside (its processes' children and open files, files
appearing under the results, its progress lines) until it is decoding, encoding, training, writing a
checkpoint or writing the warehouse, kills the whole process group there, and starts again; after the last
kill the matrix runs to completion and `benchmarks.robustness.audit` counts what must be zero. The figures and
how to read them: docs/benchmarks/robustness.md.

    python -m benchmarks.kill_torture [--kills 10] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.robustness import audit, runner_command, strategy_for, summary_counts, write_matrix
from runner.orchestration.matrix import load_matrix
from vjepa_core.store.atomic import is_temp

PHASES = ("decode", "encode", "train", "checkpoint", "warehouse")
# How long after a phase is seen the kill may come (uniform): the longer phases get a random moment
# inside them; the short writes are hit at once.
JITTER = {"decode": 0.05, "encode": 0.1, "train": 0.05, "checkpoint": 0.0, "warehouse": 0.0}
POLL = 0.002
EPOCHS = 3  # "train" is between the first epoch's line and the last one's: at least 2
FRAMES = [4, 6, 8]  # each clip length is a cold cache for the first cached run that uses it (3 x 3 runs)
ROUND_TIMEOUT = 600.0


def torture_matrix(work: Path, data: Path, frames: list[int], epochs: int) -> Path:
    return write_matrix(work / "torture.yaml", data, frames=frames, seeds=[0], epochs=epochs,
                        strategies=[strategy_for(role) for role in ("pooler", "lora", "pixel")])


@dataclass
class Round:
    phase: str
    hit: bool
    run_id: str | None = None  # the run in flight (its claim, left by the kill)
    seconds: float = 0.0  # from start to kill
    note: str = ""


@dataclass
class Watch:
    """A runner process and what it shows from outside."""

    proc: subprocess.Popen
    warehouse: Path
    results: Path
    data: Path
    lines: list[str] = field(default_factory=list)
    epochs: int = EPOCHS
    entries_at_start: int = 0
    started: float = field(default_factory=time.time)
    wrote_checkpoint: bool = False

    def __post_init__(self) -> None:
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def in_phase(self, phase: str) -> bool:
        if phase == "decode":
            return bool(decoding_workers(self.proc.pid, self.data))
        if phase == "encode":
            return cache_entries(self.results) > self.entries_at_start
        if phase == "train":
            return training(self.lines, self.epochs)
        if phase == "checkpoint":
            return any(is_temp(p) for p in _listing(self.results / "checkpoints"))
        # warehouse: after this round's checkpoint landed, the runner opens the file to record the run
        if not self.wrote_checkpoint:
            self.wrote_checkpoint = any(_modified_after(p, self.started) for p in _listing(self.results / "checkpoints")
                                        if not is_temp(p))
            return False
        return has_open(self.proc.pid, self.warehouse)


def decoding_workers(pid: int, data: Path) -> list[psutil.Process]:
    """The children of `pid` that have a file under `data` open (DataLoader workers decoding videos)."""
    data = data.resolve()  # as /proc shows open files
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for child in children:
        try:
            if any(Path(f.path).is_relative_to(data) for f in child.open_files()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def has_open(pid: int, path: Path) -> bool:
    try:
        return any(Path(f.path) in (path, path.with_name(path.name + ".wal")) for f in psutil.Process(pid).open_files())
    except psutil.Error:
        return False


def cache_entries(results: Path) -> int:
    return sum(1 for _ in (results / "cache").glob("*/*.json"))


def training(lines: list[str], epochs: int) -> bool:
    """Is a run between its first and its last epoch? (Its last line says "epoch k: ...", k < epochs.)"""
    for line in reversed(lines):
        if line.startswith("epoch "):
            done = line.split(":", 1)[0].removeprefix("epoch ")
            return done.isdigit() and int(done) < epochs
        if line.startswith(("ok ", "x ", "- ")):  # a run line: that run is over
            return False
    return False


def _modified_after(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime > moment
    except OSError:  # swapped out between the listing and now
        return False


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def kill_round(command: list[str], phase: str, *, warehouse: Path, results: Path, data: Path, epochs: int,
               rng: random.Random) -> Round:
    env = {**os.environ, "VJEPA_PROGRESS": "1"}  # the progress lines a user sees in a log
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    watch = Watch(proc, warehouse.resolve(), results, data, epochs=epochs, entries_at_start=cache_entries(results))
    started = time.monotonic()
    hit = False
    while proc.poll() is None and time.monotonic() - started < ROUND_TIMEOUT:
        if watch.in_phase(phase):
            time.sleep(rng.uniform(0, JITTER[phase]))
            hit = watch.in_phase(phase) or JITTER[phase] == 0
            if hit:
                break
        time.sleep(POLL)
    seconds = time.monotonic() - started
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its workers, as a container kill or the OOM killer
    proc.wait()
    _wait_for_group(proc.pid)
    note = "" if hit else f"process ended (exit {proc.returncode}) before the phase: " + "".join(watch.lines[-3:])
    return Round(phase, hit, _claimed_by(warehouse, proc.pid), round(seconds, 2), note)


def _wait_for_group(pgid: int, timeout: float = 30.0) -> None:
    """Until no process of the killed group is left (workers die with it, but take a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in psutil.process_iter(["pid"]) if _group_of(p) == pgid]
        if not alive:
            return
        time.sleep(0.05)


def _group_of(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except (ProcessLookupError, PermissionError):
        return None


def _claimed_by(warehouse: Path, pid: int) -> str | None:
    from vjepa_core.store.warehouse import read_connection

    if not warehouse.exists():
        return None
    with read_connection(warehouse) as conn:
        rows = conn.execute("SELECT run_id FROM claims WHERE pid = ?", [pid]).fetchall()
    return rows[0][0] if rows else None


def torture(data: Path, work: Path, *, kills: int = 10, seed: int = 0, frames: list[int] = FRAMES,
            epochs: int = EPOCHS, log: Any = print) -> dict[str, Any]:
    """Kill a matrix `kills` times (phases in turn), resume it to the end, audit; returns the figures."""
    spec = torture_matrix(work, data, frames, epochs)
    warehouse, results = work / "torture.duckdb", work / "results"
    run_ids = [s.run_id for s in load_matrix(spec).runs]
    command = runner_command("run-matrix", spec, "--warehouse", warehouse, "--results", results, "--workers", "2")
    rng = random.Random(seed)
    rounds = []
    for i in range(kills):
        phase = PHASES[i % len(PHASES)]
        rounds.append(kill_round(command, phase, warehouse=warehouse, results=results, data=data, epochs=epochs,
                                 rng=rng))
        r = rounds[-1]
        log(f"kill {i + 1}/{kills}: {phase:<10} {'hit' if r.hit else 'MISSED'} after {r.seconds:5.1f} s"
            f" (run in flight: {r.run_id or '-'}){' ' + r.note if r.note else ''}")
    started = time.monotonic()
    final = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "VJEPA_PROGRESS": "0"},
                           check=False)
    output = final.stdout + final.stderr
    found = audit(warehouse, results, run_ids)
    hits = Counter(r.phase for r in rounds if r.hit)
    return {"kills": sum(r.hit for r in rounds), "rounds": len(rounds), "phases_hit": dict(hits),
            "resume_exit": final.returncode, "resume": summary_counts(output) if final.returncode in (0, 1) else {},
            "resume_seconds": round(time.monotonic() - started, 1),
            "took_over_claims": sum(r.run_id is not None for r in rounds),
            "rounds_detail": [r.__dict__ for r in rounds], **found.as_dict()}


def main() -> None:
    from vjepa_core.data.synthetic import make_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs, cycling through the phases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random moments within each phase")
    parser.add_argument("--frames", default=",".join(map(str, FRAMES)), help="clip lengths of the matrix "
                        "(3 runs each)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic(Path(tmp) / "data", videos_per_class=4)
        figures = torture(data, Path(tmp), kills=args.kills, seed=args.seed,
                          frames=[int(f) for f in args.frames.split(",")])
    print(f"{figures['kills']} kills of {figures['rounds']} rounds hit their phase ({figures['phases_hit']}); "
          f"resumed to the end: exit {figures['resume_exit']}")
    print(f"runs: {figures['expected']} expected, {figures['success']} success, {figures['lost']} lost, "
          f"{figures['extra_runs']} extra; rows: {figures['duplicate_rows']} duplicated, {figures['orphan_rows']} "
          f"orphan; checkpoints: {figures['checkpoints']}, {figures['unreadable_checkpoints']} unreadable; "
          f"cache: {figures['cache_entries']} entries, {figures['unreadable_cache_entries']} unreadable, "
          f"{figures['stray_cache_arrays']} stray arrays; {figures['temp_files']} temporary files left; "
          f"{figures['claims_left']} claims left ({figures['took_over_claims']} taken over)")
    if args.json:
        print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
