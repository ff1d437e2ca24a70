"""`runner bench --sweep`'s workload: a sweep's runs one at a time vs side by side on one pass of the cached tokens.

Both arms train the same runs (the official probe grid, lr 5e-3..1e-4 x weight decay 0.01..0.8, no
warmup, cosine to 0, with feature layers) on the same warm token cache, in one process:
- separate: `run_experiments([spec])` for each spec in turn (what `--joint 1` does);
- joint: `run_experiments(specs)`, one group (what `--joint N` does).
The cache is filled first, untimed, by one run: both arms would fill it once, so it is not what differs.

`run_sweep_bench(SweepWorkload(...), work_dir)` returns a flat dict (the `--json` of `runner bench
--sweep`): both wall times and their ratio, each arm's fixed part (everything but the epochs) and its
epochs' time, the ratio extrapolated to 20 epochs (fixed part + 20 x the measured mean epoch), the
largest difference between the two arms' per-epoch train losses (they must agree), and the load
average before and after (the CPUs may be shared with other work: the ratio is measured in one run).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vjepa_core.data import SYNTHETIC_CLASSES, make_synthetic
from vjepa_core.models import check_run_model
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.warehouse import RunRecord
from vjepa_core.training.experiment import Paths, PreparedData, prepare_data, run_experiments

LRS = (5e-3, 3e-3, 1e-3, 3e-4, 1e-4)
WEIGHT_DECAYS = (0.01, 0.1, 0.4, 0.8)


@dataclass(frozen=True)
class SweepWorkload:
    model: str = "small"
    runs: int = 20                    # the first `runs` points of the 5 x 4 grid
    classes: int = 6
    train_per_class: int = 4
    eval_per_class: int = 2           # videos per class in val, and again in test
    epochs: int = 2
    train_views: int = 2
    batch_size: int = 8
    frames_per_clip: int = 8
    feature_layers: tuple[int, ...] = (-7, -5, -3, -1)  # ViT-L's 17, 19, 21, 23; 1, 3, 5, 7 of `small`
    workers: int = 1

    def specs(self, data: Path) -> list[RunSpec]:
        total = self.train_per_class + 2 * self.eval_per_class
        base = RunSpec(strategy="pooler_head", model=self.model, data=str(data), epochs=self.epochs,
                       batch_size=self.batch_size, train_views=self.train_views, frames_per_clip=self.frames_per_clip,
                       val_fraction=self.eval_per_class / total, test_fraction=self.eval_per_class / total,
                       warmup_ratio=0.0, schedule="cosine", feature_layers=self.feature_layers)
        grid = [base.replace(lr=lr, weight_decay=wd) for lr in LRS for wd in WEIGHT_DECAYS]
        return grid[:self.runs]


def run_sweep_bench(workload: SweepWorkload, work_dir: Path, *, progress: bool = False) -> dict[str, Any]:
    work_dir = Path(work_dir)
    check_run_model(workload.specs(work_dir)[0])  # layers the model lacks: one line, before any work
    data_dir = make_synthetic(work_dir / "data", classes=SYNTHETIC_CLASSES[:workload.classes],
                              videos_per_class=workload.train_per_class + 2 * workload.eval_per_class)
    specs = workload.specs(data_dir)
    options = ExecOptions(num_workers=workload.workers, progress=progress)
    prepared = prepare_data(specs[0], work_dir, options)
    load_before = os.getloadavg()
    run_experiments([specs[0].replace(epochs=1)], Paths(work_dir / "warm"), options, prepared)  # fills the cache
    separate = _arm(work_dir, "separate", [[spec] for spec in specs], options, prepared)
    joint = _arm(work_dir, "joint", [specs], options, prepared)
    return _summary(workload, separate, joint, load=(load_before, os.getloadavg()))


def _arm(work_dir: Path, name: str, groups: list[list[RunSpec]], options: ExecOptions,
         data: PreparedData) -> dict[str, Any]:
    results = work_dir / name
    results.mkdir(parents=True, exist_ok=True)
    (results / "cache").symlink_to(work_dir / "warm" / "cache")  # the same warm cache for both arms
    start = time.perf_counter()
    records = [record for group in groups for record in run_experiments(group, Paths(results), options, data)]
    return {"wall": time.perf_counter() - start, "records": records}


def _summary(workload: SweepWorkload, separate: dict[str, Any], joint: dict[str, Any], *,
             load: tuple[tuple[float, ...], tuple[float, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": asdict(workload), "runs": len(separate["records"]),
                           "separate_seconds": separate["wall"], "joint_seconds": joint["wall"],
                           "ratio": separate["wall"] / joint["wall"]}
    for name, arm in (("separate", separate), ("joint", joint)):
        epochs = _epoch_seconds(arm["records"])
        out[f"{name}_epoch_seconds"] = epochs
        out[f"{name}_fixed_seconds"] = arm["wall"] - epochs
        out[f"{name}_seconds_20_epochs"] = arm["wall"] - epochs + 20 * epochs / workload.epochs
    out["ratio_20_epochs"] = out["separate_seconds_20_epochs"] / out["joint_seconds_20_epochs"]
    out["max_train_loss_difference"] = max(
        abs(a["train_loss"] - b["train_loss"]) for x, y in zip(separate["records"], joint["records"], strict=True)
        for a, b in zip(x.epochs, y.epochs, strict=True))
    out["same_run_ids"] = [r.run["run_id"] for r in separate["records"]] == [r.run["run_id"] for r in joint["records"]]
    out["load_average_before"], out["load_average_after"] = load[0][0], load[1][0]
    out["cpus"] = os.cpu_count()
    return out


def _epoch_seconds(records: list[RunRecord]) -> float:
    """The arm's time in training epochs (a joint run's epoch seconds are its share: they add up)."""
    return sum(row["seconds"] for record in records for row in record.epochs)
