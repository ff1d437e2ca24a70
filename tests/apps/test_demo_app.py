"""The demo as users and scripts meet it: a real Gradio server on 127.0.0.1, called with `gradio_client`.

Checks that `/classify` equals `runner predict --json` on the same checkpoint and video, that every bad
input arrives as a one-line message while the server keeps answering, the UI's outputs (frame strip
pixels, latency split), the CLI's argument errors, and `runner demo --auth` end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import pytest
from conftest import TrainedRuns
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from test_demo_service import BAD_MESSAGES, TEST_LIMITS, by_strategy_seed, clip, write_bad_videos
from typer.testing import CliRunner

from demo.__main__ import main as demo_main
from demo.app import build_demo
from runner.cli import app as runner_app

STARTUP_TIMEOUT = 120.0
# The installed `runner` entry point, independent of PATH (`python -m runner.cli` would not register area commands).
RUNNER = [sys.executable, "-c", "from runner.cli import main; main()"]


@dataclass
class Served:
    demo: gr.Blocks
    client: Client
    root: Path
    ids: dict[tuple[str, int], str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(trained_runs: TrainedRuns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo over a copy of the fixture's checkpoints plus one whose base model does not exist."""
    root = tmp_path_factory.mktemp("demo") / "checkpoints"
    shutil.copytree(trained_runs.results / "checkpoints", root)
    ids = by_strategy_seed(trained_runs)
    shutil.copytree(root / ids[("head", 0)], root / "lost_base")
    manifest = json.loads((root / "lost_base" / "manifest.json").read_text())
    (root / "lost_base" / "manifest.json").write_text(json.dumps({**manifest, "base_model": "gone-model"}))
    demo = build_demo(root, warehouse=trained_runs.warehouse, limits=TEST_LIMITS,
                      examples_dir=root.parent / "examples")
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Served(demo, Client(f"http://127.0.0.1:{port}/", verbose=False), root, ids)
    finally:
        demo.close()


def test_classify_endpoint_equals_runner_predict(served: Served, synthetic_small: Path) -> None:
    video = clip(synthetic_small, "down")
    checkpoint = served.ids[("lora", 0)]
    out = subprocess.run([*RUNNER, "predict", str(served.root / checkpoint), str(video),
                          "--json", "--top-k", "6"], capture_output=True, text=True, check=True)
    expected = {row["label"]: row["prob"] for row in json.loads(out.stdout)["top"]}
    probs = served.client.predict(checkpoint, handle_file(video), api_name="/classify")
    assert probs == expected
    assert sum(probs.values()) == pytest.approx(1.0) and len(probs) == 6


def test_switching_checkpoints_keeps_the_base(served: Served, synthetic_small: Path) -> None:
    cache = served.demo.service.cache  # type: ignore[attr-defined]
    video = handle_file(clip(synthetic_small, "wave"))
    before = cache.base_loads
    for strategy in ("head", "pooler_head", "lora", "head"):
        served.client.predict(served.ids[(strategy, 0)], video, api_name="/classify")
    assert cache.base_loads == max(before, 1)


def test_bad_inputs_give_messages_and_server_keeps_serving(served: Served, synthetic_small: Path,
                                                          tmp_path: Path) -> None:
    good, checkpoint = clip(synthetic_small), served.ids[("head", 0)]
    cases = [(checkpoint, path, BAD_MESSAGES[name]) for name, path in write_bad_videos(tmp_path, good).items()]
    cases += [("../checkpoints/" + checkpoint, good, "not a path out of it"),
              ("no-such-run", good, "no checkpoint named 'no-such-run'"),
              ("lost_base", good, "checkpoint 'lost_base' cannot be loaded: model: unknown 'gone-model'")]
    for name, video, message in cases:
        with pytest.raises(AppError) as error:
            served.client.predict(name, handle_file(video), api_name="/classify")
        assert message in str(error.value) and "\n" not in str(error.value), (name, video)
    probs = served.client.predict(checkpoint, handle_file(good), api_name="/classify")
    assert sum(probs.values()) == pytest.approx(1.0)


def test_view_shows_frames_latency_and_comparison(served: Served, synthetic_small: Path) -> None:
    video = clip(synthetic_small, "right")
    first, second = served.ids[("pooler_head", 1)], served.ids[("lora", 1)]
    label, latency, strip, other, other_latency = served.client.predict(
        first, second, handle_file(video), api_name="/classify_view")
    expected = served.demo.service.classify(first, video)  # type: ignore[attr-defined]
    top = max(expected.probs, key=expected.probs.get)
    assert label["label"] == top and len(label["confidences"]) == 5
    assert {c["label"]: c["confidence"] for c in label["confidences"]} == dict(expected.top(5))
    assert np.array_equal(np.asarray(Image.open(strip).convert("RGB")), expected.strip)  # PNG: lossless
    for text, name in ((latency, first), (other_latency, second)):
        assert name in text and all(f"{part} " in text for part in ("decode", "preprocess", "model"))
        assert "40 frames, 128x96, 12.0 fps" in text
    assert other["label"] in expected.probs


def test_app_config(served: Served) -> None:
    config = served.demo.get_config_file()
    assert served.demo.analytics_enabled is False and os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    video = next(c for c in config["components"] if c["type"] == "video")
    assert video["props"]["sources"] == ["upload", "webcam"]
    examples = next(c for c in config["components"] if c["type"] == "dataset")
    assert len(examples["props"]["samples"]) == 6
    dropdown = next(c for c in config["components"] if c["type"] == "dropdown")
    assert len(dropdown["props"]["choices"]) == 7  # 6 trained runs + lost_base (listed; fails on load)
    endpoints = served.client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/classify"]


@pytest.mark.parametrize(("args", "message"), [
    (["--auth", "no-colon"], "--auth must look like user:password"),
    (["--auth", ":pw"], "--auth must look like user:password"),
    (["--checkpoints", "/nonexistent/ckpts"], "no checkpoints folder at /nonexistent/ckpts"),
    (["--port", "70000"], "--port must be between 1 and 65535"),
    (["--max-mb", "0"], "demo limits must be positive"),
])
def test_cli_bad_arguments(args: list[str], message: str, tmp_path: Path) -> None:
    folder = ["--checkpoints", str(tmp_path)] if "--checkpoints" not in args else []
    result = CliRunner().invoke(runner_app, ["demo", *folder, *args])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1


def test_python_m_demo_bad_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _exit_code(["--port", "abc"]) == 2
    assert demo_main(["--checkpoints", str(tmp_path / "none")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("error: argument --port: invalid int value") and len(lines) == 2
    assert lines[1] == f"error: no checkpoints folder at {tmp_path / 'none'}: train a run first " \
                       f"(runner run --data synthetic --model tiny) or pass --checkpoints DIR"


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as stop:
        demo_main(argv)
    return int(stop.value.code)


def test_runner_demo_serves_with_auth(served: Served, synthetic_small: Path, tmp_path: Path) -> None:
    """`runner demo --auth` end to end: a login is required, and with it /classify answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [*RUNNER, "demo", "--checkpoints", str(served.root), "--port", str(port),
         "--warehouse", str(tmp_path / "none.duckdb"), "--auth", "ann:pa:ss"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_until_up(url, process).status_code == 401  # nothing without a login
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("ann", "wrong"), verbose=False)
        client = Client(url, auth=("ann", "pa:ss"), verbose=False)
        probs = client.predict(served.ids[("head", 0)], handle_file(clip(synthetic_small)), api_name="/classify")
        assert sorted(probs) == sorted(served.demo.service.checkpoints()[0].labels)  # type: ignore[attr-defined]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"runner demo exited with {process.returncode}: {process.stdout.read()}")
        try:
            return httpx.get(url + "config", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail(f"runner demo did not answer on {url} within {STARTUP_TIMEOUT:.0f} s")
