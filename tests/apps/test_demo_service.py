"""demo.service on the shared `trained_runs` checkpoints: listing, safe names, cached loading, validation, strips."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as tvF

from demo.service import (
    CheckpointCache,
    DemoError,
    DemoService,
    Limits,
    default_checkpoint,
    frame_strip,
    list_checkpoints,
    make_examples,
    resolve_checkpoint,
    validate_video,
)
from tests.support import TRAINED_SEEDS, TRAINED_STRATEGIES, TrainedRuns, said_once
from vjepa_core.data import SYNTHETIC_CLASSES, eval_clip_indices, make_synthetic, probe_video, read_frames
from vjepa_core.inference.engines.check import PROB_TOLERANCE
from vjepa_core.inference.predict import Predictor
from vjepa_core.store.warehouse import Warehouse


def checkpoints_root(runs: TrainedRuns) -> Path:
    return runs.results / "checkpoints"


def by_strategy_seed(runs: TrainedRuns) -> dict[tuple[str, int], str]:
    found = {}
    for run_id in runs.run_ids:
        manifest = json.loads((checkpoints_root(runs) / run_id / "manifest.json").read_text())
        found[(manifest["strategy"], manifest["spec"]["seed"])] = run_id
    return found


def clip(synthetic: Path, name: str = "up") -> Path:
    return next((synthetic / name).glob("*.mp4"))


def write_bad_videos(folder: Path, good: Path) -> dict[str, Path]:
    """Files every demo entry point must refuse: name -> path. `big` is `good` padded past 1 MB."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"text": folder / "notes.txt", "empty": folder / "empty.mp4", "corrupt": folder / "corrupt.mp4",
             "big": folder / "big.mp4", "renamed": folder / "bad.mp4"}
    files["text"].write_text("not a video")
    files["renamed"].write_text("a text file renamed .mp4")
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    files["big"].write_bytes(good.read_bytes() + bytes(1_300_000 - good.stat().st_size))  # exactly 1.3 MB
    short = make_synthetic(folder / "short", classes=("up",), videos_per_class=1, num_frames=4, formats=("mp4",))
    slow = make_synthetic(folder / "slow", classes=("up",), videos_per_class=1, num_frames=40, fps=2, formats=("mp4",))
    files["short"], files["long"] = next(short.glob("up/*.mp4")), next(slow.glob("up/*.mp4"))
    return files


# Limits that the 40-frame, 12 fps, ~0.2 MB synthetic clips pass and `write_bad_videos` files fail.
TEST_LIMITS = Limits(max_bytes=1_000_000, max_seconds=10.0, min_frames=8)
BAD_MESSAGES = {
    "text": "notes.txt: not a video file",
    "empty": "empty.mp4: empty file (0 bytes)",
    "corrupt": "corrupt.mp4: not a readable video",
    "renamed": "bad.mp4: not a readable video (Invalid data found when processing input)",
    "big": "big.mp4 is 1.3 MB; the limit is 1 MB",
    "short": "is too short: 4 frame(s); at least 8 needed",
    "long": "is 20.0 s long; the limit is 10 s",
}


def test_lists_every_checkpoint_with_warehouse_metrics(trained_runs: TrainedRuns) -> None:
    infos = list_checkpoints(checkpoints_root(trained_runs), warehouse=trained_runs.warehouse)
    assert sorted(info.name for info in infos) == sorted(trained_runs.run_ids)
    runs = Warehouse(trained_runs.warehouse).runs().set_index("run_id")
    for info in infos:
        assert info.labels == tuple(sorted(SYNTHETIC_CLASSES)) and info.base_model == "tiny"
        assert info.test_acc == pytest.approx(runs.loc[info.run_id, "test_acc"])
        assert info.date.replace(tzinfo=None) == runs.loc[info.run_id, "finished_at"].to_pydatetime()
        assert info.describe().startswith(f"{info.strategy} · tiny · 6 classes · test acc ")
    assert {info.strategy for info in infos} == set(TRAINED_STRATEGIES)
    assert [info.date for info in infos] == sorted((info.date for info in infos), reverse=True)
    # The picker starts on the best validation accuracy (the newer of a tie), not on whatever ran last.
    assert [info.val_acc for info in infos] == pytest.approx(runs.loc[[i.run_id for i in infos], "best_val_acc"])
    best = max(info.val_acc for info in infos)
    assert default_checkpoint(infos) == next(info for info in infos if info.val_acc == best)
    unscored = [replace(info, val_acc=None) for info in infos]
    assert default_checkpoint(unscored) == unscored[0] and default_checkpoint([]) is None


def test_lists_without_warehouse_and_skips_broken(trained_runs: TrainedRuns, tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    run_id = trained_runs.run_ids[0]
    shutil.copytree(checkpoints_root(trained_runs) / run_id, root / "group" / run_id)
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{not json")
    (tmp_path / "outside").symlink_to(checkpoints_root(trained_runs) / trained_runs.run_ids[1])
    (root / "escape").symlink_to(tmp_path / "outside")
    infos = list_checkpoints(root, warehouse=tmp_path / "missing.duckdb")
    assert [info.name for info in infos] == [f"group/{run_id}"]
    manifest = json.loads((root / "group" / run_id / "manifest.json").read_text())
    assert infos[0].test_acc == manifest["metrics"]["test_acc"]


def test_resolve_refuses_names_outside_the_folder(trained_runs: TrainedRuns, tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    shutil.copytree(checkpoints_root(trained_runs) / trained_runs.run_ids[0], root / "ok")
    (root / "escape").symlink_to(checkpoints_root(trained_runs) / trained_runs.run_ids[1])
    (root / "alias").symlink_to(root / "ok")
    assert resolve_checkpoint(root, "ok") == (root / "ok").resolve()
    assert resolve_checkpoint(root, "alias") == (root / "ok").resolve()  # a link inside the folder is fine
    for name, message in [("../ckpts/ok", "not a path out of it"), ("/etc", "not a path out of it"),
                          ("ok/../../x", "not a path out of it"), ("~root", "not a path out of it"),
                          ("escape", "points outside the checkpoints folder"), ("nope", "no checkpoint named"),
                          ("", "pick a checkpoint first")]:
        with pytest.raises(DemoError, match=message):
            resolve_checkpoint(root, name)


def test_cache_loads_each_base_once_and_matches_predictor(trained_runs: TrainedRuns, synthetic_small: Path) -> None:
    """One base load per seed (seed initialises the classifier); LoRA injection never leaks into the base."""
    ids = by_strategy_seed(trained_runs)
    cache = CheckpointCache(checkpoints_root(trained_runs), max_loaded=4)
    video = clip(synthetic_small, "left")
    # LoRA first: if the shared base were mutated by it, the head checkpoint after it would differ.
    order = [("lora", 0), ("head", 0), ("pooler_head", 0)]
    for key in order:
        predictor, loaded = cache.get(ids[key])
        assert loaded
        expected = Predictor.from_checkpoint(checkpoints_root(trained_runs) / ids[key]).classify(video).probs
        assert predictor.classify(video).probs == expected
    assert cache.base_loads == 1
    for seed in TRAINED_SEEDS[1:]:
        for strategy in TRAINED_STRATEGIES:
            cache.get(ids[(strategy, seed)])
    assert cache.base_loads == len(TRAINED_SEEDS)
    assert cache.get(ids[("pooler_head", 1)])[1] is False  # still cached: no load at all
    assert cache.get(ids[("lora", 0)])[1] is True  # evicted (max_loaded=4) and rebuilt from the kept base
    assert cache.base_loads == len(TRAINED_SEEDS)


def test_released_folders_are_listed_and_classify_as_their_checkpoint(trained_runs: TrainedRuns,
                                                                      synthetic_small: Path, tmp_path: Path) -> None:
    """`runner release` output under the checkpoints folder: merged, adapter-only (its base bundled) and a Space."""
    from typer.testing import CliRunner

    from runner.cli import app

    ids = by_strategy_seed(trained_runs)
    root = tmp_path / "ckpts"
    for name, strategy, form in (("merged", "head", None), ("adapter", "lora", "--adapter-only"),
                                 ("space", "pooler_head", "--space")):
        args = ["release", ids[(strategy, 0)], str(root / name), "--warehouse", str(trained_runs.warehouse),
                "--quiet", *([form] if form else [])]
        assert CliRunner().invoke(app, args).exit_code == 0
    infos = {info.name: info for info in list_checkpoints(root, warehouse=trained_runs.warehouse)}
    assert sorted(infos) == ["adapter", "merged", "space/model"]
    runs = Warehouse(trained_runs.warehouse).runs().set_index("run_id")
    assert infos["adapter"].describe().startswith("release (adapter) · vjepa2 · 6 classes · test acc ")
    for name, strategy in (("merged", "head"), ("adapter", "lora"), ("space/model", "pooler_head")):
        info = infos[name]
        assert info.run_id == ids[(strategy, 0)] and info.labels == tuple(sorted(SYNTHETIC_CLASSES))
        assert info.test_acc == pytest.approx(runs.loc[info.run_id, "test_acc"])
        video = clip(synthetic_small, "left")
        released = DemoService(root=root, engine="fp32").classify(name, video).probs
        checkpoint = Predictor.from_checkpoint(checkpoints_root(trained_runs) / info.run_id, engine="fp32")
        assert released == pytest.approx(checkpoint.classify(video).probs, abs=1e-5)
    (root / "merged" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(DemoError, match="'merged' cannot be loaded: merged: the demo loads safetensors weights only"):
        CheckpointCache(root).get("merged")


def test_unloadable_checkpoints_give_one_line(trained_runs: TrainedRuns, synthetic_small: Path,
                                              tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    source = checkpoints_root(trained_runs) / trained_runs.run_ids[0]
    for name in ("good", "no_base", "pickled_base", "bad_weights"):
        shutil.copytree(source, root / name)
    _set_base(root / "no_base", "no-such-model")
    pickled = tmp_path / "pickled_base"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"pickle")
    _set_base(root / "pickled_base", str(pickled))
    (root / "bad_weights" / "trained.safetensors").write_bytes(b"garbage")
    service = DemoService(root, limits=TEST_LIMITS)
    video = clip(synthetic_small)
    for name, message in [("no_base", "cannot be loaded: model: unknown 'no-such-model'"),
                          ("pickled_base", "has no .safetensors weights"),
                          ("bad_weights", "cannot be loaded: bad_weights/trained.safetensors is not a readable "
                                          "safetensors file")]:
        with pytest.raises(DemoError, match=message) as info:
            service.classify(name, video)
        assert "\n" not in str(info.value) and said_once(str(info.value)), str(info.value)
        assert str(root) not in str(info.value)  # checkpoints are named as the page lists them
    result = service.classify("good", video)  # the service keeps working
    assert sum(result.probs.values()) == pytest.approx(1.0)


def _set_base(folder: Path, base_model: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "base_model": base_model}))


def test_validate_video_limits(synthetic_small: Path, tmp_path: Path) -> None:
    good = clip(synthetic_small)
    info = validate_video(good, TEST_LIMITS)
    assert (info.num_frames, info.fps, info.height, info.width) == (40, 12.0, 96, 128)
    for name, path in write_bad_videos(tmp_path, good).items():
        with pytest.raises(DemoError, match=re.escape(BAD_MESSAGES[name])) as error:
            validate_video(path, TEST_LIMITS)
        assert str(tmp_path) not in str(error.value)  # the user sees file names, not server paths
        assert said_once(str(error.value)), str(error.value)


def test_frame_strip_is_the_cropped_frames(synthetic_small: Path, trained_runs: TrainedRuns) -> None:
    video = clip(synthetic_small, "wave")
    service = DemoService(checkpoints_root(trained_runs))
    result = service.classify(trained_runs.run_ids[0], video)
    assert result.strip.shape == (2 * 64, 8 * 64, 3) and result.strip.dtype == np.uint8
    assert set(result.timings_ms) == {"decode", "preprocess", "model", "load"}
    # Independently: the centred clip, short side resized to 73, centre-cropped to 64.
    indices = eval_clip_indices(probe_video(video).num_frames, 16, 2, 1)[0]
    raw = torch.from_numpy(read_frames(video, indices)).permute(0, 3, 1, 2)
    expected = tvF.center_crop(tvF.resize(raw, [73, 97], antialias=True), [64, 64]).permute(0, 2, 3, 1).numpy()
    for t in range(16):
        tile = result.strip[(t // 8) * 64:(t // 8 + 1) * 64, (t % 8) * 64:(t % 8 + 1) * 64]
        assert np.abs(tile.astype(int) - expected[t].astype(int)).max() <= 1


def test_frame_strip_pads_with_black() -> None:
    frames = torch.zeros(5, 3, 4, 4)  # normalised zero = the mean colour
    strip = frame_strip(frames, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), columns=4)
    assert strip.shape == (8, 16, 3)
    assert (strip[:4] == 128).all() and (strip[4:, :4] == 128).all() and (strip[4:, 4:] == 0).all()


def test_examples_are_one_clip_per_class(tmp_path: Path) -> None:
    paths = make_examples(tmp_path / "examples")
    assert [p.parent.name for p in paths] == sorted(SYNTHETIC_CLASSES)
    assert all(probe_video(p).num_frames == 40 for p in paths)
    assert make_examples(tmp_path / "examples") == paths  # generated once, reused


def test_limits_reject_impossible_values() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Limits(max_bytes=0)


def test_the_demo_runs_the_engine_it_is_given_and_keeps_the_answers(trained_runs: TrainedRuns,
                                                                    synthetic_small: Path) -> None:
    """`runner demo --engine auto` (the default outside the tests): the checkpoint's engine is prepared into the
    engines folder beside its checkpoints (where runner predict finds it too), and classifies like fp32."""
    name = by_strategy_seed(trained_runs)[("pooler_head", 0)]
    video = clip(synthetic_small, "wave")
    fast = DemoService(checkpoints_root(trained_runs), engine="auto").classify(name, video)
    exact = DemoService(checkpoints_root(trained_runs), engine="fp32").classify(name, video)
    predictor, _ = DemoService(checkpoints_root(trained_runs), engine="auto").cache.get(name)
    assert predictor.engine.engine != "fp32" and predictor.engine.cached  # prepared once, opened from the cache
    assert max(fast.probs, key=fast.probs.get) == max(exact.probs, key=exact.probs.get)
    assert fast.probs == pytest.approx(exact.probs, abs=PROB_TOLERANCE)
