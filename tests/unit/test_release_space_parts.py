"""The Space folder's parts: an app that imports no vjepa-lab code, pinned requirements, the demo's upload
limits, and example clips from the run's test split.

The app itself (served in its own process, called with gradio_client): tests/apps/test_release_space.py.
"""

from __future__ import annotations

import ast
import importlib.util
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pandas as pd

from demo.service import MB, Limits
from vjepa_core.release.space import (
    APP_FILES,
    UPLOAD_LIMITS,
    app_sources,
    pick_examples,
    requirements,
)

PROJECT = ("vjepa_core", "runner", "dashboard", "demo", "benchmarks")


def test_the_app_imports_no_vjepa_lab_code() -> None:
    imported = set()
    for source in app_sources().values():
        tree = ast.parse(source)
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {name for name in imported if name.split(".")[0] in PROJECT}
    runtimes = {"openvino", "onnxruntime"}
    assert {"gradio", "torch", "transformers", "torchcodec.decoders", "decoder_errors", *runtimes} <= imported
    assert {name.split(".")[0] for name in imported} - {"gradio", "torch", "transformers", "torchcodec",
                                                        *runtimes} <= \
        {"__future__", "argparse", "collections", "json", "os", "pathlib", "time", "typing",
         *(Path(f).stem for f in APP_FILES)}


def app_module(tmp_path: Path, name: str) -> ModuleType:
    (tmp_path / name).write_text(app_sources()[name])
    spec = importlib.util.spec_from_file_location(f"released_{Path(name).stem}", tmp_path / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_decoder_error_is_ffmpegs_reason_without_paths(tmp_path: Path) -> None:
    """(The app's frame sampling is the model's processor's: tests/unit/test_release_hub_processor.py.)"""
    app = app_module(tmp_path, "decoder_errors.py")
    error = RuntimeError("SingleStreamDecoder, /__w/torchcodec/src/SingleStreamDecoder.cpp:41, Could not open "
                         "input file: /tmp/gradio/abc/bad.mp4 Invalid data found when processing input")
    assert app.decoder_reason(error, Path("/tmp/gradio/abc/bad.mp4")) == "Invalid data found when processing input"


def test_upload_limits_are_the_demos() -> None:
    limits = Limits()
    demo = {"max_mb": limits.max_bytes / MB, "max_seconds": limits.max_seconds, "min_frames": limits.min_frames}
    assert demo == UPLOAD_LIMITS


def test_requirements_are_what_the_app_imports_with_what_transformers_needs_pinned_as_installed() -> None:
    """The app and the model's processor import gradio, numpy, torch, torchcodec and transformers (openvino or
    onnxruntime only to run an engine: the one the Space's engine needs); transformers' video processor needs
    torchvision, which it does not require."""
    app = ["gradio", "numpy", "torch", "torchcodec", "torchvision", "transformers"]
    assert [line.split("==")[0] for line in requirements().splitlines()] == app
    for runtime in ("openvino", "onnxruntime"):
        lines = requirements(runtime=runtime).splitlines()
        assert [line.split("==")[0] for line in lines] == sorted([*app, runtime])
        for line in lines:
            name, version = line.split("==")
            assert metadata.version(name).startswith(version) and "+" not in version


def test_examples_are_existing_test_videos_one_per_class_right_ones_first(tmp_path: Path) -> None:
    videos = {}
    for name in ("a_wrong.mp4", "a_right.mp4", "b_right.avi", "c_gone.mp4", "c_right.mp4", "d_right.mp4"):
        videos[name] = tmp_path / name
        if name != "c_gone.mp4":
            videos[name].write_bytes(b"video")
    predictions = pd.DataFrame({
        "video": [str(videos[n]) for n in videos],
        "true_class": ["a", "a", "b", "c", "c", "d"],
        "correct": [False, True, True, True, True, True],
    })
    assert pick_examples(predictions) == [videos["a_right.mp4"], videos["b_right.avi"], videos["c_right.mp4"]]
    assert pick_examples(predictions.iloc[[0]]) == [videos["a_wrong.mp4"]]  # a wrong one rather than none
