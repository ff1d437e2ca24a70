"""A released model folder run as its card tells a user: in an environment of exactly the card's `pip install`
line (`tests.artifact_env`: new, built by uv, no vjepa-lab), the card's lines run as written from the folder's
parent, beside a `clip.mp4`. The merged form's pipeline classifies the video as `runner predict` does; the
adapter-only form's lines (its list adds PEFT) give the merged folder's logits. Each list provides every module
the card's code and the folder's processor import. The run comes from `release_support.make_run` (no training).
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.artifact_env import ArtifactEnvs, artifact_environ, missing_modules
from tests.release_support import FakeRun, make_run, release
from vjepa_core.inference.predict import Predictor
from vjepa_core.release.hub_processor import PROCESSOR_CLASS, PROCESSOR_CODE
from vjepa_core.release.model import load_plain, logits, probe_clip
from vjepa_core.release.requirements import imports_of
from vjepa_core.release.writer import FP32_TOLERANCE

# The pipeline against `runner predict --engine fp32` on the same frames: merged vs unmerged fp32 weights, so
# rounding only (test_release_cli's tolerance).
PIPELINE_PROB_TOLERANCE = 1e-5
# Appended to the adapter card's lines: the model they built, on the probe clip the test saved, as JSON.
LOGITS_OF_MODEL = """
import json, torch
from safetensors.torch import load_file
with torch.no_grad():
    print(json.dumps(model(pixel_values_videos=load_file("probe.safetensors")["clip"]).logits.tolist()))
print(type(pipe.video_processor).__name__)
"""


@dataclass(frozen=True)
class Released:
    run: FakeRun
    root: Path  # where the folders are, and where the card's lines run (beside clip.mp4)
    merged: Path
    adapter: Path
    video: Path


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> Released:
    """A `lora` run released merged (fp32) and adapter-only, with `clip.mp4` beside the folders."""
    root = tmp_path_factory.mktemp("release-envs")
    run = make_run(root, "lora")
    release(run, root / "merged")
    release(run, root / "adapter", adapter_only=True)
    video = next((synthetic_small / "down").glob("*.mp4"))
    shutil.copyfile(video, root / "clip.mp4")
    return Released(run, root, root / "merged", root / "adapter", video)


def card_packages(folder: Path) -> list[str]:
    """The card's `pip install` line, as a user copies it."""
    (line,) = [line for line in (folder / "README.md").read_text().splitlines() if line.startswith("pip install ")]
    return line.split()[2:]


def card_code(folder: Path) -> list[str]:
    """The card's python blocks, in order."""
    return [block.split("```", 1)[0] for block in (folder / "README.md").read_text().split("```python\n")[1:]]


def run_lines(python: Path, code: str, cwd: Path) -> list[str]:
    done = subprocess.run([str(python), "-c", code], cwd=cwd, env=artifact_environ(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def check_imports_resolve(python: Path, folder: Path) -> None:
    """Every module the card's code and the folder's processor import is found in the card's environment."""
    sources = [*card_code(folder), (folder / PROCESSOR_CODE).read_text()]
    imported = set().union(*(imports_of(source).modules for source in sources))
    assert missing_modules(python, imported - set(sys.stdlib_module_names)) == []
    assert missing_modules(python, {"vjepa_core", "pytest"}) == ["pytest", "vjepa_core"]


def test_the_cards_pipeline_classifies_a_video_in_the_environment_its_card_lists(released: Released,
                                                                              artifact_envs: ArtifactEnvs) -> None:
    packages = card_packages(released.merged)
    assert {p.split("==")[0] for p in packages} == {"av", "numpy", "torch", "torchcodec", "torchvision",
                                                    "transformers"}
    python = artifact_envs.python(packages, what="the model card")
    check_imports_resolve(python, released.merged)
    pipeline_lines = card_code(released.merged)[0]
    answer = ast.literal_eval(run_lines(python, pipeline_lines, released.root)[-1])  # [{score, label}] x 3
    expected = Predictor.from_checkpoint(released.run.checkpoint, device="cpu", engine="fp32").classify(
        str(released.video)).probs
    assert answer[0]["label"] == max(expected, key=expected.get) and len(answer) == 3
    for item in answer:
        assert item["score"] == pytest.approx(expected[item["label"]], abs=PIPELINE_PROB_TOLERANCE)


def test_the_adapter_cards_lines_give_the_merged_logits_in_the_environment_its_card_lists(
        released: Released, artifact_envs: ArtifactEnvs) -> None:
    packages = card_packages(released.adapter)
    assert {p.split("==")[0] for p in packages} == {"av", "numpy", "peft", "torch", "torchcodec", "torchvision",
                                                    "transformers"}
    python = artifact_envs.python(packages, what="the adapter-only card")
    check_imports_resolve(python, released.adapter)
    clip_tensor = probe_clip(load_plain(released.merged).config, 4)
    save_file({"clip": clip_tensor.contiguous()}, released.root / "probe.safetensors")
    *_, theirs, processor = run_lines(python, card_code(released.adapter)[0] + LOGITS_OF_MODEL, released.root)
    merged = logits(load_plain(released.merged), clip_tensor)
    assert (merged - torch.tensor(json.loads(theirs))).abs().max().item() <= FP32_TOLERANCE
    assert processor == PROCESSOR_CLASS  # the folder's own processor, as the card says

