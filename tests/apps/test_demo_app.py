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

import av
import gradio as gr
import httpx
import numpy as np
import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from test_demo_service import BAD_MESSAGES, TEST_LIMITS, by_strategy_seed, clip, write_bad_videos
from typer.testing import CliRunner

from demo.__main__ import main as demo_main
from demo.app import build_demo
from runner.cli import app as runner_app
from tests.support import TrainedRuns
from vjepa_core.data.synthetic import write_long_video

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
    assert list(endpoints) == ["/classify", "/timeline"]


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


# -- the long-video tab ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s at 12 fps, 96x128: within TEST_LIMITS, a new motion every 2 s."""
    path = tmp_path_factory.mktemp("long") / "match.mp4"
    write_long_video(path, seconds=8, fps=12, height=96, width=128, segment_seconds=2)
    return path


def test_timeline_endpoint_equals_runner_predict_window(served: Served, long_clip: Path) -> None:
    checkpoint = served.ids[("pooler_head", 0)]
    out = subprocess.run([*RUNNER, "predict", str(served.root / checkpoint), str(long_clip), "--window", "3",
                          "--stride", "1", "--json", "-k", "6", "-q"], capture_output=True, text=True, check=True)
    expected = [json.loads(line) for line in out.stdout.splitlines()]
    timeline = served.client.predict(checkpoint, handle_file(long_clip), 3, 1, api_name="/timeline")
    assert timeline["video"] == {"frames": 96, "fps": 12.0, "width": 128, "height": 96, "seconds": 8.0}
    assert [(w["start"], w["end"]) for w in timeline["windows"]] == [(r["start"], r["end"]) for r in expected]
    for window, row in zip(timeline["windows"], expected, strict=True):
        assert window["probs"] == pytest.approx(row["probs"], abs=1e-6)


def test_timeline_view_chart_frames_and_table(served: Served, long_clip: Path) -> None:
    checkpoint = served.ids[("lora", 0)]
    chart, summary, slider, caption, strip, table, csv_file = served.client.predict(
        checkpoint, handle_file(long_clip), 4, 2, api_name="/timeline_view")
    points = pd.DataFrame(chart["data"], columns=chart["columns"])
    assert chart["mark"] == "line"
    assert sorted(points["time"].unique()) == [2.0, 4.0, 6.0]  # window centres: 0-4, 2-6, 4-8 s
    assert len(points) == 3 * 6 and points.groupby("time")["probability"].sum().tolist() == pytest.approx([1.0] * 3)
    assert "3 windows of 4 s every 2 s over 8.0 s" in summary and caption.startswith("window 1 of 3: 0.00-4.00 s")
    assert np.asarray(Image.open(strip)).shape == (128, 512, 3)  # 16 frames of 64 px, 8 to a row
    rows = pd.read_csv(csv_file)
    assert list(rows[["start", "end"]].itertuples(index=False, name=None)) == [(0, 4), (2, 6), (4, 8)]
    assert len(table["data"]) == 3
    later, text = served.client.predict(5.4, api_name="/moment")  # the session keeps the timeline
    assert text.startswith("window 3 of 3: 4.00-8.00 s")
    assert not np.array_equal(np.asarray(Image.open(later)), np.asarray(Image.open(strip)))


def test_timeline_bad_inputs_give_messages_and_server_keeps_serving(served: Served, long_clip: Path,
                                                                    tmp_path: Path) -> None:
    checkpoint = served.ids[("head", 0)]
    other_base = served.root / "other_base"
    if not other_base.exists():
        shutil.copytree(served.root / checkpoint, other_base)
        manifest = json.loads((other_base / "manifest.json").read_text())
        (other_base / "manifest.json").write_text(json.dumps({**manifest, "base_model": "small"}))
    no_frames = tmp_path / "empty_stream.mp4"
    with av.open(str(no_frames), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    cases = [(checkpoint, long_clip, 9, 1, "match.mp4: window of 9 s is longer than the video (8.00 s"),
             (checkpoint, long_clip, 2, 0, "match.mp4: stride must be > 0 seconds"),
             (checkpoint, no_frames, 2, 1, "empty_stream.mp4: "),
             ("other_base", long_clip, 2, 1, "checkpoint 'other_base' cannot be loaded: trained on base model")]
    for name, video, window, stride, message in cases:
        with pytest.raises(AppError) as error:
            served.client.predict(name, handle_file(video), window, stride, api_name="/timeline")
        assert message in str(error.value) and "\n" not in str(error.value), (name, window, stride)
    timeline = served.client.predict(checkpoint, handle_file(long_clip), 8, 1, api_name="/timeline")
    assert len(timeline["windows"]) == 1
