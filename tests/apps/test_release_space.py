"""A released Space as a user meets it: in its folder, an environment with nothing but its `requirements.txt`
(`tests.artifact_env`: built by uv, shared by the tests of a session), then `python app.py --port P` in its own
process, called with gradio_client. It runs the engine the release wrote (`auto`: `openvino-int8`, in
`model/openvino/`) and answers as `runner predict --engine fp32` does on the checkpoint within the engine check's
tolerance, says which engine answered, refuses bad uploads with a message and keeps serving; without openvino the
same folder runs transformers fp32 and gives `runner predict`'s numbers. A Space released with `--engine ort-int8`
answers the same in its own environment (its sampling rule: tests/unit; a release where no engine can run:
tests/integration/test_release_cli.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from test_demo_service import BAD_MESSAGES, by_strategy_seed, clip, write_bad_videos

from tests.artifact_env import ArtifactEnvs, artifact_environ, missing_modules
from tests.support import TrainedRuns
from vjepa_core.inference.engines.check import PROB_TOLERANCE
from vjepa_core.inference.predict import Predictor
from vjepa_core.release.requirements import imports_of, top_level
from vjepa_core.release.writer import ReleaseRequest, release_run
from vjepa_core.store.warehouse import Warehouse

STARTUP_TIMEOUT = 240.0


@dataclass
class Space:
    folder: Path
    client: Client
    checkpoint: Path
    log: Path
    python: Path  # the interpreter of the environment its requirements.txt alone made


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, server: subprocess.Popen, log: Path) -> Client:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert server.poll() is None, f"app exited with {server.returncode}: {log.read_text()[-2000:]}"
        try:
            return Client(url, verbose=False)
        except Exception:  # not listening yet
            time.sleep(1.0)
    raise AssertionError(f"the Space app at {url} did not come up in {STARTUP_TIMEOUT:.0f} s")


@pytest.fixture(scope="module")
def space(trained_runs: TrainedRuns, artifact_envs: ArtifactEnvs,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Space]:
    """`runner release <lora run> OUT --space`, then, in an environment of its requirements.txt alone,
    `python app.py --port P` in OUT; stopped afterwards."""
    run_id = by_strategy_seed(trained_runs)[("lora", 0)]
    folder = tmp_path_factory.mktemp("space") / "out"
    release_run(ReleaseRequest(run_id, folder, trained_runs.warehouse, space=True))
    python = artifact_envs.python((folder / "requirements.txt").read_text().split(), what="the Space")
    port, log = free_port(), folder.parent / "app.log"
    with open(log, "w") as out:
        server = subprocess.Popen([str(python), "app.py", "--port", str(port)], cwd=folder, env=artifact_environ(),
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = wait_ready(f"http://127.0.0.1:{port}/", server, log)
        yield Space(folder, client, trained_runs.results / "checkpoints" / run_id, log, python)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def runner_predict(checkpoint: Path, videos: list[Path]) -> dict[str, dict[str, float]]:
    """What `runner predict --engine fp32` says of each video: {video: {label: probability}} (its `Predictor`, in
    process: a second interpreter would only add its start-up)."""
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", engine="fp32")
    return {str(video): predictor.classify(str(video)).probs for video in videos}


def engine_spec(space_folder: Path, engine_folder: str = "openvino") -> dict:
    return json.loads((space_folder / "model" / engine_folder / "engine.json").read_text())


def two_videos_per_class(synthetic_small: Path) -> list[Path]:
    return [path for name in ("down", "wave") for path in (clip(synthetic_small, name),
                                                           next((synthetic_small / name).glob("*.avi")))]


def test_the_folder_is_a_space(space: Space) -> None:
    names = sorted(str(p.relative_to(space.folder)) for p in space.folder.rglob("*") if p.is_file())
    assert {"app.py", "requirements.txt", "packages.txt", "README.md", "space.json", "model/config.json",
            "model/model.safetensors", "model/README.md", "model/release.json", "model/openvino/engine.json",
            "model/openvino/model.bin", "model/video_processing_vjepa_lab.py"} <= set(names)
    spec = engine_spec(space.folder)
    assert spec["engine"] == "openvino-int8" and f"model/openvino/{spec['graph']}" in names
    assert spec["runtime"] == {"package": "openvino", "options": {"INFERENCE_PRECISION_HINT": "f32",
                                                                  "PERFORMANCE_HINT": "LATENCY"}}
    pre = json.loads((space.folder / "model" / "release.json").read_text())["evaluation"]
    assert spec["input"]["shape"] == ["batch", pre["frames_per_clip"], 3, pre["crop_size"], pre["crop_size"]]
    check = spec["check"]  # checked on the run's validation views, as runner predict checks its engine
    assert check["kind"] == "views" and check["passed"]
    assert check["evidence"].endswith(f"validation videos of run {space.checkpoint.name}")
    assert check["top1_agreement"] >= 0.98 and check["max_prob_diff"] <= PROB_TOLERANCE
    assert spec["plan"]["blocks"] > 0 and len(spec["plan"]["fp32_blocks"]) <= spec["plan"]["blocks"] // 2
    assert f"**Engine: `{spec['engine']}`**" in (space.folder / "README.md").read_text()
    requirements = (space.folder / "requirements.txt").read_text()
    assert "openvino==" in requirements and "onnxruntime" not in requirements and "nncf" not in requirements
    examples = [name for name in names if name.startswith("examples/")]
    assert 2 <= len(examples) <= 3
    header = (space.folder / "README.md").read_text().split("---")[1]
    assert "sdk: gradio" in header and "app_file: app.py" in header
    assert (space.folder / "packages.txt").read_text() == "ffmpeg\n"


def test_its_requirements_provide_every_module_its_files_import(space: Space) -> None:
    """app.py, decoder_errors.py and the model's processor (remote code the app loads): each import they make, the
    guarded openvino too (this Space's engine runs on it), is found in the environment requirements.txt made."""
    files = [space.folder / "app.py", space.folder / "decoder_errors.py",
             space.folder / "model" / "video_processing_vjepa_lab.py"]
    imported = top_level(set().union(*({*found.required, *found.optional} for found in
                                       (imports_of(file.read_text()) for file in files))))
    local = {file.stem for file in files}
    assert {"openvino", "onnxruntime"} <= imported and "vjepa_core" not in imported
    needed = imported - local - set(sys.stdlib_module_names) - {"onnxruntime"}  # the other engine's, guarded
    assert missing_modules(space.python, needed) == []
    nothing_else = {"vjepa_core", "pytest", "onnxruntime", "nncf"}  # nor the other engine's runtime, nor NNCF
    assert missing_modules(space.python, nothing_else) == sorted(nothing_else)


def test_it_answers_as_runner_predict_under_its_engine(space: Space, synthetic_small: Path) -> None:
    videos = two_videos_per_class(synthetic_small)
    expected = runner_predict(space.checkpoint, videos)
    for video in videos:
        probs = space.client.predict(handle_file(video), api_name="/classify")
        theirs = expected[str(video)]
        assert max(probs, key=probs.get) == max(theirs, key=theirs.get), video
        assert probs == pytest.approx(theirs, abs=PROB_TOLERANCE), video


def test_the_page_says_which_engine_answered(space: Space, synthetic_small: Path) -> None:
    engine = engine_spec(space.folder)["engine"]
    labels, latency = space.client.predict(handle_file(clip(synthetic_small)), 2, api_name="/classify_top")
    assert len(labels["confidences"]) == 2
    assert latency.startswith("Classified in ") and latency.endswith(f" ms with {engine}.")
    assert f"engine: {engine}\n" in space.log.read_text()


def test_without_openvino_the_same_folder_runs_transformers_fp32(space: Space, synthetic_small: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's fallback, in this process: openvino made unimportable, as where it is not installed."""
    from torchcodec.decoders import VideoDecoder

    monkeypatch.setitem(sys.modules, "openvino", None)
    monkeypatch.syspath_prepend(str(space.folder))  # the app imports clip_sampling from beside it
    spec = importlib.util.spec_from_file_location("released_space_app", space.folder / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    try:
        classifier = app.Classifier(space.folder / "model")
        assert classifier.engine == "transformers fp32"
        videos = two_videos_per_class(synthetic_small)[:2]
        expected = runner_predict(space.checkpoint, videos)
        for video in videos:
            assert classifier.classify(VideoDecoder(str(video))) == pytest.approx(expected[str(video)], abs=1e-4)
    finally:
        torch.set_flush_denormal(False)  # the app's transformers path sets it: this process's default again


CLASSIFY = """
import json, sys
from pathlib import Path

from torchcodec.decoders import VideoDecoder

import app

classifier = app.Classifier(Path("model"))
print(json.dumps({"engine": classifier.engine,
                  "probs": {video: classifier.classify(VideoDecoder(video)) for video in sys.argv[1:]}}))
"""


def test_a_space_released_with_ort_int8_answers_the_same_in_its_own_environment(
        space: Space, trained_runs: TrainedRuns, artifact_envs: ArtifactEnvs, synthetic_small: Path,
        tmp_path: Path) -> None:
    """`--engine ort-int8`: the graph in `model/onnx/`, onnxruntime (not openvino) in requirements.txt, and in an
    environment of those alone the app's classifier runs it and answers as `runner predict --engine fp32`."""
    run_id = json.loads((space.folder / "model" / "release.json").read_text())["run_id"]
    folder = tmp_path / "ort"
    release_run(ReleaseRequest(run_id, folder, trained_runs.warehouse, space=True, engine="ort-int8", progress=False))
    spec = engine_spec(folder, "onnx")
    assert spec["engine"] == "ort-int8" and spec["runtime"]["package"] == "onnxruntime"
    assert spec["check"]["passed"] and not (folder / "model" / "openvino").exists()
    requirements = (folder / "requirements.txt").read_text().split()
    assert any(line.startswith("onnxruntime==") for line in requirements)
    assert not any(line.startswith("openvino") for line in requirements)
    python = artifact_envs.python(requirements, what="the ort-int8 Space")
    videos = two_videos_per_class(synthetic_small)
    done = subprocess.run([str(python), "-c", CLASSIFY, *map(str, videos)], cwd=folder, env=artifact_environ(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    answered = json.loads(done.stdout.strip().splitlines()[-1])
    assert answered["engine"] == "ort-int8"
    expected = runner_predict(space.checkpoint, videos)
    for video in videos:
        probs, theirs = answered["probs"][str(video)], expected[str(video)]
        assert max(probs, key=probs.get) == max(theirs, key=theirs.get), video
        assert probs == pytest.approx(theirs, abs=PROB_TOLERANCE), video


def test_examples_from_the_test_split_are_classified(space: Space, trained_runs: TrainedRuns) -> None:
    run = Warehouse(trained_runs.warehouse).get_run(json.loads((space.folder / "model" / "release.json").read_text())
                                                    ["run_id"])
    assert run is not None
    test_videos = set(Warehouse(trained_runs.warehouse).table("predictions", run["run_id"]).query("split == 'test'")
                      ["video"].map(lambda v: Path(v).name))
    for example in sorted((space.folder / "examples").iterdir()):
        assert example.name.split("_", 2)[2] in test_videos
        probs = space.client.predict(handle_file(example), api_name="/classify")
        assert sum(probs.values()) == pytest.approx(1.0)


def test_bad_uploads_get_a_message_and_the_app_keeps_serving(space: Space, synthetic_small: Path,
                                                            tmp_path: Path) -> None:
    good = clip(synthetic_small)
    messages = {**BAD_MESSAGES, "corrupt": "corrupt.mp4: not a readable video",
                "renamed": "bad.mp4: not a readable video (Invalid data found when processing input)",
                "big": None, "long": None}  # within the Space's default limits (200 MB, 120 s)
    for name, path in write_bad_videos(tmp_path, good).items():
        if messages[name] is None:
            continue
        with pytest.raises(AppError) as error:
            space.client.predict(handle_file(path), api_name="/classify")
        assert messages[name] in str(error.value) and "\n" not in str(error.value), name
    probs = space.client.predict(handle_file(good), api_name="/classify")
    assert sum(probs.values()) == pytest.approx(1.0)
    assert "Traceback" not in space.log.read_text()


def test_the_served_api(space: Space) -> None:
    endpoints = space.client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/classify"]
