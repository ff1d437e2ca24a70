"""A V-JEPA 2.1 run released: the folder brings its model code (Hub remote code) and loads where vjepa-lab cannot
be imported, merged or adapter-only, and its Space's classifier answers as vjepa-lab's model does.

Runs come from `release_support.make_run` on the tiny-2.1 preset (a checkpoint whose trainable weights moved). The
merged folder checked is the Space's `model/` (what `runner release` writes without --space, plus the engine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.release_support import FakeRun, make_run, release
from vjepa_core.inference.engines.check import PROB_TOLERANCE
from vjepa_core.release.adapter import load_adapter_form
from vjepa_core.release.hub_model import AUTO_MAP, MODEL_CODE
from vjepa_core.release.model import logits, probe_clip
from vjepa_core.release.writer import FP32_TOLERANCE
from vjepa_core.store.checkpoint import load_checkpoint

# As the Space test runs its app: an interpreter where importing vjepa-lab fails, as on a machine without it.
BLOCKED = "import sys; [sys.modules.__setitem__(m, None) for m in ('vjepa_core', 'runner', 'demo', 'dashboard')]"


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeRun, Path]:
    root = tmp_path_factory.mktemp("v21-release")
    run = make_run(root, "lora_backbone", model="tiny-2.1")
    release(run, root / "adapter", adapter_only=True)
    release(run, root / "space", space=True)
    return run, root


def clip_and_logits(run: FakeRun, tmp_path: Path) -> tuple[Path, torch.Tensor]:
    model = load_checkpoint(run.checkpoint).model
    clip = probe_clip(model.config, 4)
    torch.save(clip, tmp_path / "clip.pt")
    return tmp_path / "clip.pt", logits(model, clip)


def outside_vjepa_lab(code: str) -> list[float]:
    """Run `code` (which prints a JSON list) in a fresh interpreter that cannot import vjepa-lab."""
    done = subprocess.run([sys.executable, "-c", f"{BLOCKED}\n{code}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_merged_folder_names_and_carries_its_model_code(released: tuple[FakeRun, Path]) -> None:
    _, root = released
    config = json.loads((root / "space" / "model" / "config.json").read_text())
    assert config["model_type"] == "vjepa2" and config["auto_map"] == AUTO_MAP
    assert config["use_rope_interleave"] and config["interpolate_rope"]
    assert config["hierarchical_layers"] == [0, 1, 2, 3]
    code = (root / "space" / "model" / MODEL_CODE).read_text()
    assert "import vjepa_core" not in code and "from vjepa_core" not in code
    card = (root / "space" / "model" / "README.md").read_text()
    assert "V-JEPA 2.1 video classifier" in card and f"(`{MODEL_CODE}`" in card


def test_plain_transformers_and_the_space_answer_as_vjepa_lab(released: tuple[FakeRun, Path], tmp_path: Path) -> None:
    """In an interpreter without vjepa-lab: the model folder through AutoModelForVideoClassification (its remote
    code), and the Space app's own Classifier (the OpenVINO engine the release wrote)."""
    run, root = released
    clip, expected = clip_and_logits(run, tmp_path)
    model = root / "space" / "model"
    plain, space = outside_vjepa_lab(
        "import json, pathlib, torch\nfrom transformers import AutoModelForVideoClassification\n"
        f"clip = torch.load({str(clip)!r})\n"
        f"model = AutoModelForVideoClassification.from_pretrained({str(model)!r}, trust_remote_code=True)\n"
        "assert type(model).__name__ == 'VJEPA21ForVideoClassification', type(model)\n"
        f"sys.path.insert(0, {str(root / 'space')!r})\nimport app\n"
        f"classifier = app.Classifier(pathlib.Path({str(model)!r}))\n"
        "assert classifier.engine == 'openvino-int8', classifier.engine\n"
        "with torch.no_grad():\n"
        "    print(json.dumps([model(pixel_values_videos=clip).logits[0].tolist(), "
        "classifier.logits(clip)[0].tolist()]))")
    assert (torch.tensor(plain) - expected[0]).abs().max() <= FP32_TOLERANCE
    probabilities = torch.tensor(space).softmax(-1) - expected[0].softmax(-1)
    assert probabilities.abs().max() <= PROB_TOLERANCE


def test_the_adapter_loads_onto_its_bundled_21_base(released: tuple[FakeRun, Path], tmp_path: Path) -> None:
    run, root = released
    clip, expected = clip_and_logits(run, tmp_path)
    assert (root / "adapter" / "base" / MODEL_CODE).is_file()
    merged = load_adapter_form(root / "adapter", str(root / "adapter" / "base"))
    assert (logits(merged, torch.load(clip)) - expected).abs().max() <= FP32_TOLERANCE
