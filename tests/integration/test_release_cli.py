"""`runner release` end to end on runs the real runner trained: one per strategy of the default study on
`tiny-jepa` (1 epoch each on `synthetic_small`), released through the CLI, opened with plain transformers and
its pipeline on the run's own test videos; bad input is one line, exit code 2 and nothing written; `runner show`
prints the command.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from typer.testing import CliRunner

from runner.cli import app
from tests.support import TrainedRuns, said_once
from vjepa_core.data import eval_clip_indices
from vjepa_core.inference.predict import Predictor
from vjepa_core.release.adapter import BASE_DIR, load_adapter_form
from vjepa_core.release.command import release_command
from vjepa_core.release.hub_processor import PROCESSOR_CLASS
from vjepa_core.release.model import load_plain, logits
from vjepa_core.release.writer import FP32_TOLERANCE, RELEASE_FILE
from vjepa_core.spec import ExecOptions, RunSpec
from vjepa_core.store.warehouse import Warehouse

DEFAULT_STUDY = ("head", "pooler_head", "lora", "pooler_head_lora", "full", "scratch")
MATRIX = "release-study"
# The pipeline's probabilities against `runner predict`'s (fp32 engine) on the same frames: the same pixels
# (torchcodec and decord decode these files identically) through LoRA merged vs unmerged fp32 weights, so only
# rounding differs (docs/benchmarks/release.md has the measured differences); 1e-5 leaves room for larger
# trained weights.
PIPELINE_PROB_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Study:
    warehouse: Path
    results: Path
    runs: dict[str, str]  # strategy -> run id
    releases: dict[str, Path]  # strategy -> its merged fp32 release, written by `runner release`
    outputs: dict[str, str]  # strategy -> what `runner release` printed


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> Study:
    """The default study's strategies on tiny-jepa, 1 epoch each, by the real runner (one matrix), each released
    once with `runner release RUN_ID_PREFIX OUT`."""
    from runner.orchestration.execute import execute_one

    root = tmp_path_factory.mktemp("release-study")
    options = ExecOptions(progress=False, matrix_id=MATRIX)
    runs, releases, outputs = {}, {}, {}
    for strategy in DEFAULT_STUDY:
        spec = RunSpec(strategy=strategy, data=str(synthetic_small), model="tiny-jepa", epochs=1, batch_size=4,
                       train_views=1, frames_per_clip=8)
        run = execute_one(spec, root / "results", root / "vjepa.duckdb", options)
        assert run["status"] == "success", run.get("error")
        runs[strategy] = run["run_id"]
    for strategy, run_id in runs.items():
        releases[strategy] = root / "releases" / strategy
        result = runner("release", run_id[:10], releases[strategy], "--warehouse", root / "vjepa.duckdb", "--quiet")
        assert result.exit_code == 0, result.output
        outputs[strategy] = result.output
    return Study(root / "vjepa.duckdb", root / "results", runs, releases, outputs)


def runner(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def run_predictor(study: Study, run_id: str) -> tuple[Predictor, list[str]]:
    run = Warehouse(study.warehouse).get_run(run_id)
    assert run is not None
    predictions = Warehouse(study.warehouse).table("predictions", run_id)
    return (Predictor.from_checkpoint(Path(run["checkpoint_path"]), device="cpu"),
            sorted(predictions[predictions["split"] == "test"]["video"]))


@pytest.mark.parametrize("strategy", DEFAULT_STUDY)
def test_every_strategy_of_the_default_study_releases_and_round_trips(study: Study, strategy: str) -> None:
    run_id, out = study.runs[strategy], study.releases[strategy]
    assert f"released run {run_id} (merged, fp32)" in study.outputs[strategy]
    predictor, videos = run_predictor(study, run_id)
    plain = load_plain(out)
    pre = predictor.pre
    # The run's own evaluation views of its test videos: vjepa-lab's model vs the folder plain transformers opens.
    for video in videos[:3]:
        views = torch.stack([predictor.classify(video).frames])
        assert (logits(plain, views) - logits(predictor.model, views)).abs().max().item() <= FP32_TOLERANCE
    card = ModelCard.load(out / "README.md")
    accuracy = {r.metric_type: r.metric_value for r in card.data.eval_results}["accuracy"]
    assert accuracy == pytest.approx(Warehouse(study.warehouse).get_run(run_id)["test_acc"], abs=1e-6)
    assert card.data.base_model is None and "preset `tiny-jepa`" in card.text
    assert "chosen on validation among 6 configurations" in card.text  # the verdict's line: one data size
    assert f"runner verdict {MATRIX}" in card.text
    assert release_command(run_id, str(out)) in card.text
    assert json.loads((out / RELEASE_FILE).read_text())["evaluation"]["frames_per_clip"] == pre["frames_per_clip"]
    # The release size the verdict's deployment pick compares: the weights this folder holds (plus the header).
    recorded = Warehouse(study.warehouse).get_run(run_id)["release_bytes"]
    assert recorded <= (out / "model.safetensors").stat().st_size <= recorded + 64_000


def test_adapter_only_release_gives_the_merged_logits(study: Study, tmp_path: Path) -> None:
    """The adapter of a LoRA run that also trained its pooler (the form that must carry the most)."""
    run_id = study.runs["pooler_head_lora"]
    result = runner("release", run_id, tmp_path / "adapter", "--warehouse", study.warehouse, "--quiet",
                    "--adapter-only")
    assert result.exit_code == 0, result.output
    assert f"released run {run_id} (adapter-only, fp32)" in result.output
    predictor, videos = run_predictor(study, run_id)
    views = torch.stack([predictor.classify(videos[0]).frames])
    adapter = load_adapter_form(tmp_path / "adapter", str(tmp_path / "adapter" / BASE_DIR))
    merged = load_plain(study.releases["pooler_head_lora"])
    assert (logits(adapter, views) - logits(merged, views)).abs().max().item() <= FP32_TOLERANCE


def test_runner_predict_takes_a_release_as_its_checkpoint(study: Study, tmp_path: Path) -> None:
    """A merged release, an adapter-only one and a Space folder classify as the checkpoint does (fp32, --json)."""
    run_id = study.runs["pooler_head_lora"]
    adapter, space = tmp_path / "adapter", tmp_path / "space"
    for out, form in ((adapter, "--adapter-only"), (space, "--space")):
        assert runner("release", run_id, out, "--warehouse", study.warehouse, "--quiet", form).exit_code == 0
    _, videos = run_predictor(study, run_id)
    checkpoint = Path(Warehouse(study.warehouse).get_run(run_id)["checkpoint_path"])

    def predicted(folder: Path) -> list[dict]:
        result = runner("predict", folder, *videos[:2], "--engine", "fp32", "--json", "--top-k", "6", "--quiet",
                        "--results", tmp_path / "results")
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    expected = predicted(checkpoint)
    assert len(expected) == 2
    for folder in (study.releases["pooler_head_lora"], adapter, space):
        rows = predicted(folder)
        assert [row["video"] for row in rows] == [row["video"] for row in expected]
        for row, want in zip(rows, expected, strict=True):
            probs = {top["label"]: top["prob"] for top in row["top"]}
            assert probs == pytest.approx({top["label"]: top["prob"] for top in want["top"]}, abs=1e-5)
    not_a_release = tmp_path / "plain"
    not_a_release.mkdir()
    (not_a_release / "config.json").write_text("{}")
    result = runner("predict", not_a_release, videos[0], "--quiet")
    assert result.exit_code == 2 and "has no manifest.json or release.json" in result.output
    damaged = tmp_path / "damaged"
    shutil.copytree(study.releases["pooler_head_lora"], damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    result = runner("predict", damaged, videos[0], "--quiet")
    assert result.exit_code == 2, result.output
    line = f"error: checkpoint: {damaged}: transformers cannot load the released model ("
    assert result.output.startswith(line) and result.output.count("\n") == 1, result.output


def test_the_pipeline_answers_as_runner_predict_with_the_folders_processor(study: Study) -> None:
    """With trust_remote_code=True the pipeline loads the folder's own processor, which reads the evaluation's
    clip from the file: `runner predict`'s top label and probabilities on every test video."""
    from transformers import pipeline

    pipe = pipeline("video-classification", model=str(study.releases["lora"]), trust_remote_code=True)
    assert type(pipe.video_processor).__name__ == PROCESSOR_CLASS
    predictor, videos = run_predictor(study, study.runs["lora"])
    for video in videos:
        ours = predictor.classify(video)
        theirs = {row["label"]: row["score"] for row in pipe(video, top_k=len(ours.probs))}
        assert max(theirs, key=theirs.get) == ours.top(1)[0][0]
        assert theirs == pytest.approx(ours.probs, abs=PIPELINE_PROB_TOLERANCE)


def test_the_pipeline_classifies_the_runs_test_videos(study: Study) -> None:
    """Without trust_remote_code, pipeline("video-classification") opens the folder with transformers' own
    processor and classifies files; given the clip the run was evaluated on (the card's snippet) it agrees with
    `runner predict` on every test video."""
    from torchcodec.decoders import VideoDecoder
    from transformers import pipeline

    run_id = study.runs["lora"]
    pipe = pipeline("video-classification", model=str(study.releases["lora"]))
    assert type(pipe.video_processor).__name__ == "VJEPA2VideoProcessor"
    predictor, videos = run_predictor(study, run_id)
    pre = predictor.pre
    for video in videos:
        ours = predictor.classify(video)
        on_file = pipe(video, top_k=6)
        assert {row["label"] for row in on_file} == set(ours.probs)
        decoder = VideoDecoder(video)
        indices = eval_clip_indices(decoder.metadata.num_frames, pre["frames_per_clip"], pre["frame_stride"])[0]
        on_clip = {row["label"]: row["score"] for row in pipe(decoder.get_frames_at(indices.tolist()).data, top_k=6)}
        assert max(on_clip, key=on_clip.get) == ours.top(1)[0][0]
        assert on_clip == pytest.approx(ours.probs, abs=PIPELINE_PROB_TOLERANCE)


def test_bad_input_is_one_line_exit_2_and_nothing_written(study: Study, trained_runs: TrainedRuns,
                                                           tmp_path: Path, synthetic_small: Path) -> None:
    from runner.orchestration.execute import execute_one

    layered = RunSpec(strategy="pooler_head", data=str(synthetic_small), model="tiny-jepa", epochs=1, batch_size=4,
                      train_views=1, frames_per_clip=8, feature_layers=(0, 1))
    warehouse = tmp_path / "w.duckdb"
    assert execute_one(layered, tmp_path / "results", warehouse, ExecOptions(progress=False))["status"] == "success"
    failed = next(r for r in Warehouse(trained_runs.warehouse).runs().itertuples() if r.status == "failed")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    cases = [
        (("release", "0000ffff", tmp_path / "a", "--warehouse", study.warehouse), "is not in"),
        (("release", failed.run_id, tmp_path / "a", "--warehouse", trained_runs.warehouse), "did not succeed"),
        (("release", study.runs["head"], busy, "--warehouse", study.warehouse), "is not empty"),
        (("release", study.runs["head"], tmp_path / "a", "--warehouse", study.warehouse, "--adapter-only"),
         "needs a LoRA run"),
        (("release", study.runs["head"], tmp_path / "a", "--warehouse", study.warehouse, "--dtype", "int4"),
         "--dtype"),
        (("release", layered.run_id, tmp_path / "a", "--warehouse", warehouse), "--feature-layers"),
        (("release", study.runs["head"], tmp_path / "a", "--warehouse", tmp_path / "none.duckdb"), "no warehouse"),
        (("release", study.runs["head"], tmp_path / "a", "--warehouse", study.warehouse, "--space", "--engine",
          "bf16"), "--engine: expected one of auto, openvino-int8, ort-int8, fp32"),
        (("release", study.runs["head"], tmp_path / "a", "--warehouse", study.warehouse, "--engine", "ort-int8"),
         "--engine chooses the Space's engine: add --space"),
    ]
    for args, words in cases:
        result = runner(*args, "--quiet")
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and words in lines[0] and said_once(lines[0]), (args, result.output)
    assert not (tmp_path / "a").exists() and [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".a")]


def test_a_space_without_a_runnable_engine_runs_transformers_and_says_why(study: Study, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """openvino and onnxruntime made unimportable, as on a machine without them: no engine can be prepared, so the
    Space gets no engine files and neither requirement, its card says transformers fp32, and the release says why
    in one line."""
    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    out = tmp_path / "space"
    result = runner("release", study.runs["head"], out, "--warehouse", study.warehouse, "--space", "--quiet")
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Space engine:")]
    assert line == ("Space engine: none (openvino-int8: it needs openvino: pip install openvino; ort-int8: it needs "
                    "onnxruntime: pip install onnxruntime): the Space runs transformers fp32")
    assert not (out / "model" / "openvino").exists() and not (out / "model" / "onnx").exists()
    assert (out / "model" / "model.safetensors").is_file()
    requirements = (out / "requirements.txt").read_text()
    assert "onnxruntime" not in requirements and "openvino" not in requirements
    assert "**Engine: transformers fp32.**" in (out / "README.md").read_text()


def test_runner_show_prints_the_release_command(study: Study) -> None:
    run_id = study.runs["lora"]
    result = runner("show", run_id, "--warehouse", study.warehouse)
    expected = release_command(run_id, f"release-{run_id[:8]}", warehouse=str(study.warehouse))
    assert result.exit_code == 0 and expected in " ".join(result.output.split())
    shown = json.loads(runner("show", run_id, "--warehouse", study.warehouse, "--json").output)
    assert shown["release_command"] == expected
