"""`runner convert`: Meta's checkpoints (the reference fixtures, made by Meta's code) as transformers folders that
give Meta's tokens, through `AutoModel` and as `--model`; refusals in one line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from typer.testing import CliRunner

from runner.cli import app
from vjepa_core.models import load_model
from vjepa_core.release.hub_model import AUTO_MAP, MODEL_CODE

FIXTURES = Path(__file__).parents[1] / "fixtures" / "official"
MANIFEST = json.loads((FIXTURES / "fixtures.json").read_text())
CLI = CliRunner()


def convert(name: str, out: Path) -> object:
    constructor = MANIFEST[name]["constructor"]
    return CLI.invoke(app, ["convert", str(FIXTURES / f"{name}.pt"), str(out), "--heads",
                            str(constructor["num_heads"]), "--crop-size", str(constructor["img_size"][0]), "-q"])


@pytest.mark.parametrize("name", list(MANIFEST))
def test_a_converted_folder_gives_metas_tokens_as_model(tmp_path: Path, name: str) -> None:
    out = tmp_path / "converted"
    result = convert(name, out)
    assert result.exit_code == 0, result.output
    assert "checked: AutoModel gives the converted encoder's tokens within max |Δ| = 0" in result.stdout
    v21 = MANIFEST[name]["version"] == "2.1"
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json", "README.md"} <= files
    assert (MODEL_CODE in files) == v21
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "vjepa2" and (config.get("auto_map") == AUTO_MAP) == v21
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and f"converted from `{name}.pt`" in card.text
    model = load_model(str(out), ["a", "b"])  # the folder as --model: a fresh pooler over Meta's encoder
    tensors = load_file(FIXTURES / f"{name}.safetensors")
    case = MANIFEST[name]["cases"][0]
    with torch.no_grad():
        tokens = model.vjepa2.encoder(tensors[case["input"]].permute(0, 2, 1, 3, 4)).last_hidden_state
    assert (tokens - tensors[f"{case['case']}.tokens"]).abs().max() <= 1e-5


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = convert("vjepa2_0", taken)
    assert result.exit_code == 2 and "OUT" in result.output and "not an empty folder" in result.output
    broken = tmp_path / "broken.pt"
    checkpoint = torch.load(FIXTURES / "vjepa2_0.pt", weights_only=True)
    del checkpoint["target_encoder"]["module.backbone.blocks.1.attn.proj.bias"]
    torch.save(checkpoint, broken)
    out = tmp_path / "out"
    result = CLI.invoke(app, ["convert", str(broken), str(out), "--heads", "2", "--crop-size", "48", "-q"])
    assert result.exit_code == 2 and "blocks.1.attn.proj.bias" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pt", "taken"]  # no OUT, no temporary folder
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
