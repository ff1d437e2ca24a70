"""The frozen-backbone token cache in real runs: reuse across runs, strategies, seeds and feature layers,
`runner cache ls | clear`, and memory mode.

Runs are real (`run_experiment` on `synthetic_small`, tiny preset, 1 epoch); the cache lives in
each test's own results folder. (The cache's own rules, entry by entry: tests/unit/test_cache.py.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from runner.cli import app
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.cache import list_groups
from vjepa_core.store.warehouse import RunRecord
from vjepa_core.training.experiment import Paths, prepare_data, run_experiment

OPTIONS = ExecOptions(progress=False)


def run(data: Path, results: Path, **changes: object) -> dict:
    spec = RunSpec(data=str(data), model="tiny", epochs=1, batch_size=4, train_views=2, frames_per_clip=8,
                   **changes)
    record = run_experiment(spec, Paths(results), OPTIONS, prepare_data(spec, results, OPTIONS))
    return record.run


@pytest.fixture(scope="module")
def warm(synthetic_small: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A cache filled by one pooler_head run, then read by other strategies and seeds."""
    results = tmp_path_factory.mktemp("warm")
    runs = [run(synthetic_small, results, strategy="pooler_head", seed=0),
            run(synthetic_small, results, strategy="lora", seed=1),
            run(synthetic_small, results, strategy="head", seed=2)]
    return results, runs


def test_first_run_fills_the_cache_and_the_others_run_no_encoder(warm: tuple[Path, list[dict]]) -> None:
    _, (first, lora, head) = warm
    views = first["num_train"] * 2 + first["num_val"] + first["num_test"]
    assert first["encoded_clips"] == views and first["cache_misses"] == views and first["cache_hits"] == 0
    for other in (lora,):  # another strategy and seed: every view is a hit
        assert other["encoded_clips"] == 0 and other["cache_misses"] == 0 and other["cache_hits"] == views
        assert other["decode_seconds"] == 0.0
    # head pools cached tokens (its pooled vectors miss once) but runs the encoder on nothing.
    assert head["encoded_clips"] == 0 and head["cache_misses"] == views and head["cache_hits"] == views
    assert first["cache_bytes"] > 0 and head["cache_bytes"] > first["cache_bytes"]


def test_a_run_does_not_depend_on_what_filled_the_cache(synthetic_small: Path, tmp_path: Path) -> None:
    """A smaller data size puts the same video at another index: its cached views must still fit."""
    def record(results: Path, **changes: object) -> RunRecord:
        spec = RunSpec(data=str(synthetic_small), model="tiny", epochs=3, batch_size=4, train_views=2,
                       frames_per_clip=8, **changes)
        return run_experiment(spec, Paths(results), OPTIONS, prepare_data(spec, results, OPTIONS))

    fresh = record(tmp_path / "fresh", strategy="pooler_head")
    record(tmp_path / "used", strategy="head", seed=1, videos_per_class=1)  # train views at other indices
    after = record(tmp_path / "used", strategy="pooler_head")
    assert after.run["cache_hits"] > 0 and after.run["run_id"] == fresh.run["run_id"]
    assert [e["train_loss"] for e in after.epochs] == pytest.approx([e["train_loss"] for e in fresh.epochs],
                                                                      rel=1e-6)
    assert [p["confidence"] for p in after.predictions] == pytest.approx([p["confidence"] for p in fresh.predictions])


def test_tokens_of_several_layers_are_a_group_of_their_own(warm: tuple[Path, list[dict]], tmp_path: Path) -> None:
    """Feature layers change every token: their own group, filled once, then shared by seeds and pooler depths."""
    results = tmp_path / "results"
    shutil.copytree(warm[0] / "cache", results / "cache")
    views = warm[1][0]["encoded_clips"]
    data = Path(warm[1][0]["dataset_path"])
    last = run(data, results, strategy="pooler_head", feature_layers=(-1,))  # the last block: the default group
    assert last["encoded_clips"] == 0 and last["cache_hits"] == views
    first = run(data, results, strategy="pooler_head", feature_layers=(0, 1))
    again = run(data, results, strategy="pooler_head_lora", feature_layers=(1, 0), seed=3, pooler_layers=2)
    assert first["encoded_clips"] == views and again["encoded_clips"] == 0 and again["cache_hits"] == views
    groups = {g["group"]: g for g in list_groups(results / "cache")}
    layered = [g for g in groups.values() if g["kind"] == "tokens" and g["entries"] == views]
    assert len(layered) == 2  # the last-layer group and the (0, 1) group
    group = next(d for d in (results / "cache").iterdir() if json.loads((d / "group.json").read_text()).get("layers"))
    assert json.loads((group / "group.json").read_text())["layers"] == [0, 1]
    tokens = np.load(next(group.glob("*.npy")))
    assert tokens.shape == (2 * 64, 128)  # 2 blocks x (4 tubelets x 4 x 4 patches) of width 128


def test_cache_ls_and_clear(warm: tuple[Path, list[dict]], tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(warm[0] / "cache", results / "cache")
    cli = CliRunner()
    listed = cli.invoke(app, ["cache", "ls", "--results", str(results), "--json"])
    groups = [json.loads(line) for line in listed.output.splitlines()]
    assert listed.exit_code == 0 and sorted(g["kind"] for g in groups) == ["pooled", "tokens"]
    assert {g["model"] for g in groups} == {"preset:tiny"} and all(g["frames_per_clip"] == 8 for g in groups)
    tokens = next(g for g in groups if g["kind"] == "tokens")
    assert tokens["entries"] == warm[1][0]["encoded_clips"] and tokens["bytes"] > 0
    table = cli.invoke(app, ["cache", "ls", "--results", str(results)])
    assert table.exit_code == 0 and "token cache" in table.output

    assert cli.invoke(app, ["cache", "clear", "--results", str(results), "--older-than", "1"]).output.startswith(
        "removed 0 entries")
    cleared = cli.invoke(app, ["cache", "clear", "--results", str(results), "--all"])
    assert cleared.exit_code == 0 and f"removed {sum(g['entries'] for g in groups)} entries" in cleared.output
    assert list_groups(results / "cache") == []
    bad = cli.invoke(app, ["cache", "clear", "--results", str(results)])
    assert bad.exit_code == 2 and "exactly one of --all or --older-than" in bad.output


def test_memory_mode_writes_nothing(synthetic_small: Path, tmp_path: Path) -> None:
    spec = RunSpec(data=str(synthetic_small), model="tiny", epochs=1, batch_size=4, train_views=1,
                   frames_per_clip=8, strategy="head")
    options = ExecOptions(progress=False, cache_on_disk=False)
    record = run_experiment(spec, Paths(tmp_path), options, prepare_data(spec, tmp_path, options))
    assert record.run["encoded_clips"] > 0 and record.run["cache_bytes"] > 0
    assert not (tmp_path / "cache").exists()
