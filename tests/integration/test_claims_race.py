"""Many real processes racing for the same runs on one warehouse file never claim one twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from vjepa_core.store.warehouse import Warehouse

RACER = """
import json, sys, time
from vjepa_core.store.claims import CLAIMED, Claims
from vjepa_core.store.warehouse import RunRecord, Warehouse
store, ids = Warehouse(sys.argv[1]), [f"run-{i:02d}" for i in range(int(sys.argv[2]))]
won = []
while time.time() < float(sys.argv[3]):  # start together
    time.sleep(0.001)
with Claims(store, command="racer") as claims:
    for run_id in ids:
        if claims.claim(run_id).kind == CLAIMED:
            won.append(run_id)
            time.sleep(0.02)  # "training"
            claims.record(RunRecord(run={"run_id": run_id, "status": "success", "matrix_id": claims.owner}))
print(json.dumps(won))
"""


def test_racing_processes_claim_each_run_exactly_once(tmp_path: Path) -> None:
    path, runs, racers = tmp_path / "w.duckdb", 24, 4
    Warehouse(path).migrate()
    start = time.time() + 3  # every racer imported and waiting
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(runs), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(racers)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * racers, [err for _, err in outputs]
    won = [json.loads(out) for out, _ in outputs]
    claimed = [run_id for ids in won for run_id in ids]
    assert sorted(claimed) == [f"run-{i:02d}" for i in range(runs)]  # all trained, none twice
    assert sum(1 for ids in won if ids) >= 2  # the work was shared, not done by one racer alone
    store = Warehouse(path)
    recorded = set(store.runs()["run_id"])
    assert recorded == set(claimed), f"claimed, not recorded: {sorted(set(claimed) - recorded)}"
    assert store.claims().empty
