"""Every form a release takes, checked against vjepa-lab's own model: each strategy's merged weights, the adapter
that must carry a trained pooler, bf16, and a fresh interpreter that cannot import vjepa-lab at all.

Runs come from `release_support.make_run` (a real checkpoint of a tiny model whose trainable weights moved, and
warehouse rows): no training, so the weights exercise every merge path without the cost of fitting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from release_support import FakeRun, make_run

from vjepa_core.release.adapter import BASE_DIR, POOLER_FILE, load_adapter_form
from vjepa_core.release.model import load_plain, logits, probe_clip
from vjepa_core.release.writer import FP32_TOLERANCE, ReleaseReport, ReleaseRequest, release_run
from vjepa_core.store.checkpoint import load_checkpoint
from vjepa_core.strategies import STRATEGIES


def release(run: FakeRun, out: Path, **options: object) -> ReleaseReport:
    request = ReleaseRequest(run.run_id, out, run.warehouse, **options)  # type: ignore[arg-type]
    return release_run(request, reproduce=f"runner run --strategy {run.spec.strategy}",
                       release_command=f"runner release {run.run_id} {out}")


def vjepa_logits(run: FakeRun, clip: torch.Tensor) -> torch.Tensor:
    return logits(load_checkpoint(run.checkpoint).model, clip)


def clip_for(folder: Path) -> torch.Tensor:
    return probe_clip(load_plain(folder).config, 4)


@pytest.mark.parametrize(("strategy", "changes"), [*((name, {}) for name in STRATEGIES),
                                                   ("pooler_head", {"pooler_layers": 2})])
def test_every_strategy_round_trips_through_plain_transformers(strategy: str, changes: dict, tmp_path: Path) -> None:
    run = make_run(tmp_path, strategy, **changes)
    release(run, tmp_path / "out")
    plain = load_plain(tmp_path / "out")
    assert plain.config.num_pooler_layers == changes.get("pooler_layers", 1)
    assert not any("lora" in name for name in plain.state_dict())
    clip = clip_for(tmp_path / "out")
    assert (logits(plain, clip) - vjepa_logits(run, clip)).abs().max().item() <= FP32_TOLERANCE


def test_adapter_only_carries_a_pooler_the_run_trained(tmp_path: Path) -> None:
    run = make_run(tmp_path, "pooler_head_lora")
    release(run, tmp_path / "adapter", adapter_only=True)
    adapter = tmp_path / "adapter"
    # PEFT cannot save a module's own weights beside LoRA layers inside it: the pooler goes in a file of its own.
    assert (adapter / POOLER_FILE).is_file()
    assert POOLER_FILE in ModelCard.load(adapter / "README.md").text
    model = load_adapter_form(adapter, str(adapter / BASE_DIR))
    clip = probe_clip(model.config, 4)
    assert (logits(model, clip) - vjepa_logits(run, clip)).abs().max().item() <= FP32_TOLERANCE


def test_bf16_halves_the_weights(tmp_path: Path) -> None:
    run = make_run(tmp_path, "full")
    release(run, tmp_path / "fp32")
    report = release(run, tmp_path / "bf16", dtype="bf16")
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < \
        0.55 * (tmp_path / "fp32" / "model.safetensors").stat().st_size
    plain = load_plain(tmp_path / "bf16")
    assert next(plain.parameters()).dtype == torch.bfloat16
    clip = clip_for(tmp_path / "fp32")
    delta = (logits(plain, clip) - vjepa_logits(run, clip)).abs().max().item()
    assert 0 < delta < 0.2 and 0 < report.max_logit_delta < 0.2


def test_plain_transformers_and_peft_need_no_vjepa_lab_module(tmp_path: Path) -> None:
    """In a fresh interpreter that cannot import vjepa-lab, the merged folder and the adapter-only folder
    (loaded the way its card shows) give the logits vjepa-lab's model gives."""
    run = make_run(tmp_path, "lora")
    release(run, tmp_path / "merged")
    release(run, tmp_path / "adapter", adapter_only=True)
    clip = clip_for(tmp_path / "merged")
    torch.save(clip, tmp_path / "clip.pt")
    expected = vjepa_logits(run, clip)
    script = f"""
import sys
for name in ("vjepa_core", "runner", "demo", "dashboard", "benchmarks"):
    sys.modules[name] = None  # any import of them fails
import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForVideoClassification
clip = torch.load({str(tmp_path / "clip.pt")!r})
merged = AutoModelForVideoClassification.from_pretrained({str(tmp_path / "merged")!r}).eval()
MODEL = {str(tmp_path / "adapter")!r}
base = AutoModelForVideoClassification.from_pretrained(f"{{MODEL}}/base", config=AutoConfig.from_pretrained(MODEL),
                                                       ignore_mismatched_sizes=True)
adapted = PeftModel.from_pretrained(base, MODEL).merge_and_unload().eval()
with torch.no_grad():
    torch.save([merged(pixel_values_videos=clip).logits, adapted(pixel_values_videos=clip).logits],
               {str(tmp_path / "out.pt")!r})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    merged, adapted = torch.load(tmp_path / "out.pt")
    assert (merged - expected).abs().max().item() <= FP32_TOLERANCE
    assert (adapted - expected).abs().max().item() <= FP32_TOLERANCE
