"""`runner embed` end to end: vectors in parquet and the warehouse, the token cache reused, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from runner.cli import app
from tests.support import TrainedRuns
from vjepa_core.data import discover_dataset, eval_views, read_frames
from vjepa_core.data.clips import ClipConfig, EvalClips
from vjepa_core.inference.engines import CPU, auto_order
from vjepa_core.models import load_model
from vjepa_core.store.checkpoint import load_checkpoint
from vjepa_core.store.warehouse import Warehouse

CLI = CliRunner()


def invoke(*args: str | Path) -> object:
    return CLI.invoke(app, [str(a) for a in args])


def encoded(output: str) -> tuple[int, int]:
    match = re.search(r"encoded clips: (\d+) \(cached: (\d+)\)", output)
    assert match, output
    return int(match.group(1)), int(match.group(2))


def parquet_of(output: str) -> pd.DataFrame:
    return pd.read_parquet(re.search(r"parquet:\s+(\S+)", output).group(1))


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("embed")
    return root / "vjepa.duckdb", root / "results"


def _clip(synthetic: Path, video: str, frames: int = 16, stride: int = 2) -> torch.Tensor:
    items = [item for item in discover_dataset(str(synthetic)).items if item.path == video]
    return EvalClips(items, [items[0].label], ClipConfig(frames, stride, 64))[0][0]


def test_frozen_encoder_vectors_and_a_second_call_encodes_nothing(synthetic_small: Path,
                                                                  places: tuple[Path, Path]) -> None:
    warehouse, results = places
    # --engine fp32: the eager encoder, as training caches its tokens (the default engine is checked below)
    args = ("embed", synthetic_small, "--model", "tiny", "--engine", "fp32", "--warehouse", warehouse, "--results",
            results, "-q")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert encoded(first.stdout) == (24, 0)
    second = invoke(*args)
    assert encoded(second.stdout) == (0, 24)
    table, stored = parquet_of(second.stdout), Warehouse(warehouse).embeddings()
    assert len(table) == len(stored) == 24 and stored["model_fingerprint"].nunique() == 1
    assert set(stored["label"]) == {"up", "down", "left", "right", "wave", "still"}
    assert (stored["model"] == "preset:tiny").all() and (stored["source"] == "encoder").all()
    row = table.iloc[5]
    model = load_model("tiny", ["x"])
    with torch.no_grad():
        tokens = model.vjepa2(pixel_values_videos=_clip(synthetic_small, row["video"])[None],
                              skip_predictor=True).last_hidden_state[0]
    # The cache keeps fp16 tokens: the mean agrees to fp16 precision.
    assert np.allclose(row["embedding"], tokens.mean(0).numpy(), atol=2e-3)
    stored_row = stored.set_index("video").loc[row["video"]]
    assert np.array_equal(np.asarray(stored_row["embedding"], np.float32), np.asarray(row["embedding"], np.float32))
    assert (stored_row["start_frame"], stored_row["end_frame"]) == (0, 40)


def test_checkpoint_pooler_vectors_per_window(synthetic_small: Path, trained_runs: TrainedRuns,
                                              places: tuple[Path, Path]) -> None:
    warehouse, results = places
    checkpoint = trained_runs.results / "checkpoints" / trained_runs.run_ids[2]  # pooler_head
    args = ("embed", synthetic_small, "--checkpoint", checkpoint, "--window", "3", "--stride", "1", "--engine", "fp32",
            "--warehouse", warehouse, "--results", results, "-q")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert encoded(first.stdout) == (48, 0)  # 40 frames at 12 fps: windows at 0 s and at the end, per video
    assert encoded(invoke(*args).stdout) == (0, 48)
    table = parquet_of(first.stdout)
    assert sorted(set(zip(table["start_frame"], table["end_frame"], strict=True))) == [(0, 36), (4, 40)]
    assert (table["checkpoint"] == trained_runs.run_ids[2]).all() and (table["source"] == "pooler").all()
    row = table.iloc[0]
    model = load_checkpoint(checkpoint).model
    # The window [0, 36) reads its centre clip: 16 frames from frame 2, every 2nd.
    clip = eval_views(read_frames(row["video"], 2 + 2 * np.arange(16)), 64)[0]
    with torch.no_grad():
        pooled = model.pooler(model.vjepa2(pixel_values_videos=clip[None], skip_predictor=True).last_hidden_state)
    assert np.allclose(row["embedding"], pooled[0].numpy(), atol=5e-3)
    assert len(Warehouse(warehouse).embeddings()) == 24 + 48


def test_the_default_engine_embeds_like_fp32_into_its_own_cache_group(synthetic_small: Path,
                                                                      places: tuple[Path, Path]) -> None:
    warehouse, results = places  # the fp32 vectors of the first test are there
    args = ("embed", synthetic_small, "--model", "tiny", "--engine", "auto", "--warehouse", warehouse, "--results",
            results, "-q")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    ran = re.search(r"engine ([\w-]+)", first.stdout)
    assert ran and ran[1] in auto_order(CPU) and encoded(first.stdout) == (24, 0)  # an int8 engine's tokens, not fp32's
    assert encoded(invoke(*args).stdout) == (0, 24)
    stored = Warehouse(warehouse).embeddings()
    fp32 = stored[(stored["source"] == "encoder") & (stored["model_fingerprint"] != parquet_of(first.stdout)
                                                     ["model_fingerprint"].iloc[0])].set_index("video")
    int8 = parquet_of(first.stdout).set_index("video")
    assert len(fp32) == len(int8) == 24
    for video in int8.index:
        a, b = (np.asarray(frame.loc[video, "embedding"], np.float32) for frame in (int8, fp32))
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.999
    listed = invoke("cache", "ls", "--engines", "--results", results, "--json")
    entries = [json.loads(line) for line in listed.stdout.splitlines()]  # a candidate before it: its rejection too
    assert {(entry["engine"], entry["part"], entry["status"]) for entry in entries} >= {(ran[1], "encoder", "ok")}
    cleared = invoke("cache", "clear", "--engines", "--all", "--results", results)
    assert cleared.exit_code == 0 and cleared.stdout.startswith(f"removed {len(entries)} entries")
    assert not any((results / "engines").iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["--stride", "1"], "--stride needs --window"),
    (["--window", "5"], "window of 5 s is longer than the video"),
    (["--window", "2", "--stride", "0"], "stride must be > 0 seconds"),
    (["--model", "small", "--checkpoint", "CKPT"], "checkpoint: trained on base model 'tiny'"),
    (["--checkpoint", "CKPT", "--frames-per-clip", "8"], "the checkpoint's pooler was trained on 16"),
    (["--model", "no-such-model"], "model: unknown 'no-such-model'"),
    (["--out", "vectors.csv"], "vectors.csv: the vectors are written as Parquet; name a .parquet file"),
    (["--out", "."], ". is a folder: name the file to write, e.g. embeddings.parquet"),
])
def test_bad_input_is_one_line_and_exit_2(synthetic_small: Path, trained_runs: TrainedRuns, tmp_path: Path,
                                          args: list[str], message: str) -> None:
    checkpoint = trained_runs.results / "checkpoints" / trained_runs.run_ids[2]
    args = [str(checkpoint) if a == "CKPT" else a for a in args]
    result = invoke("embed", synthetic_small, *args, "--warehouse", tmp_path / "w.duckdb", "--results", tmp_path, "-q")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "w.duckdb").exists() and not (tmp_path / "embeddings").exists()
