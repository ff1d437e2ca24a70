"""Which runs of a plan train side by side: those that see the same batches, and no more than `--joint`."""

from __future__ import annotations

from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.training.joint import joint_groups

GRID = [RunSpec(lr=lr, weight_decay=wd, warmup_ratio=0.0) for lr in (5e-3, 3e-3, 1e-3, 3e-4, 1e-4)
        for wd in (0.01, 0.1, 0.4, 0.8)]


def sizes(specs: list[RunSpec], **options: object) -> list[int]:
    return [len(group) for group in joint_groups(specs, ExecOptions(**options))]


def test_the_probe_grid_is_one_group_up_to_the_limit() -> None:
    assert sizes(GRID) == [20]
    assert sizes(GRID, joint=8) == [8, 8, 4]
    assert sizes(GRID, joint=1) == [1] * 20
    assert sizes(GRID, cache=False) == [1] * 20  # without the cache every run decodes its own pixels
    assert [spec for group in joint_groups(GRID, ExecOptions(joint=8)) for spec in group] == GRID  # plan order


def test_runs_that_see_other_batches_or_train_the_encoder_stay_apart() -> None:
    base = RunSpec(strategy="pooler_head")
    specs = [base, base.replace(strategy="pooler_head_lora", lora_rank=8), base.replace(epochs=3, lr=0.1),
             base.replace(seed=1), base.replace(batch_size=4), base.replace(feature_layers=(0, 1)),
             base.replace(pooler_layers=3), base.replace(strategy="head"), base.replace(strategy="full"),
             base.replace(strategy="full", lr=0.1)]
    groups = joint_groups(specs, ExecOptions())
    assert [[specs.index(s) for s in group] for group in groups] == [[0, 1, 2], [3], [4], [5], [6], [7], [8], [9]]
