"""The run as a plain transformers model: LoRA merged into the weights it adapts, a config with `num_frames` (what
the video-classification pipeline samples), a `VJEPA2VideoProcessor` reproducing the run's evaluation
preprocessing, and the check: fp32 logits [1, labels] on a fixed clip [1, T, 3, crop, crop] from vjepa-lab's
model and from the folder plain transformers loads. A run plain transformers cannot express is refused.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import (
    AutoModelForVideoClassification,
    VJEPA2Config,
    VJEPA2ForVideoClassification,
    VJEPA2VideoProcessor,
)

from vjepa_core.data.transforms import resize_size
from vjepa_core.errors import UserError
from vjepa_core.models.layers import feature_layers
from vjepa_core.models.loading import model_class, quiet_transformers
from vjepa_core.release.hub_model import with_model_code, write_model_code
from vjepa_core.store.checkpoint import WEIGHT_DTYPES, LoadedCheckpoint

RELEASE_DTYPES = tuple(WEIGHT_DTYPES)
PROBE_SEED = 18


def check_releasable(loaded: LoadedCheckpoint) -> None:
    """Refuse, in one line, a run whose model `VJEPA2ForVideoClassification` cannot express."""
    run = loaded.manifest["run_id"]
    layers = feature_layers(loaded.model)
    if layers:
        raise UserError(f"run {run} cannot be released as a transformers model: its pooler reads the tokens of "
                        f"encoder blocks {','.join(map(str, layers))} concatenated (--feature-layers), and "
                        f"VJEPA2ForVideoClassification feeds it the last block only")
    pre = loaded.manifest["preprocessing"]
    if pre.get("resize_shortest_edge", resize_size(pre["crop_size"])) != resize_size(pre["crop_size"]):
        raise UserError(f"run {run} cannot be released with a VJEPA2VideoProcessor: it resized to "
                        f"{pre['resize_shortest_edge']} px before a {pre['crop_size']} px crop, the processor "
                        f"always resizes to crop * 256 / 224 = {resize_size(pre['crop_size'])}")


def merge_lora(model: torch.nn.Module) -> VJEPA2ForVideoClassification:
    """Merge every PEFT LoRA layer of `model` into its base layer and put the base layer back, in place.

    The checkpoint loader injects adapters with `inject_adapter_in_model` (no `PeftModel` around the
    model), so this runs the two steps `merge_and_unload` runs on each adapted layer. The result must have
    exactly the parameters of a plain `VJEPA2ForVideoClassification` of its config (checked)."""
    adapted = [(name, module) for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]
    for name, module in adapted:
        module.merge()
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    with torch.device("meta"):
        plain = model_class(model.config)(model.config)
    extra = set(model.state_dict()) ^ set(plain.state_dict())
    if extra:
        raise RuntimeError(f"merged model has weights a plain VJEPA2ForVideoClassification does not: "
                           f"{sorted(extra)[:3]}")
    return model  # type: ignore[return-value]


def release_config(model: VJEPA2ForVideoClassification, preprocessing: dict[str, Any]) -> VJEPA2Config:
    """The model's config with `num_frames` (the video-classification pipeline samples that many frames) and,
    for V-JEPA 2.1, the `auto_map` of the folder's model code (`hub_model`)."""
    config = copy.deepcopy(model.config)
    config.num_frames = int(preprocessing["frames_per_clip"])
    return with_model_code(config)


def video_processor(preprocessing: dict[str, Any]) -> VJEPA2VideoProcessor:
    """The processor that turns frames into the run's evaluation input; `num_frames` is what it samples
    when given a whole video (spread evenly over it: the pipeline's way, see the model card)."""
    return VJEPA2VideoProcessor(crop_size=int(preprocessing["crop_size"]), image_mean=list(preprocessing["mean"]),
                                image_std=list(preprocessing["std"]),
                                num_frames=int(preprocessing["frames_per_clip"]))


def probe_clip(config: VJEPA2Config, frames: int) -> torch.Tensor:
    """A fixed random input [1, frames, 3, crop, crop] (seeded: the same on every call)."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    return torch.randn(1, frames, 3, config.crop_size, config.crop_size, generator=generator)


@torch.no_grad()
def logits(model: torch.nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """fp32 logits [B, labels] of `clip`, computed in the model's own dtype."""
    dtype = next(model.parameters()).dtype
    return model.eval()(pixel_values_videos=clip.to(dtype)).logits.float()


def save_model(model: torch.nn.Module, folder: Path, *, dtype: str) -> None:
    """`save_pretrained` (config.json + model.safetensors) with the weights cast to `dtype`, in place; a V-JEPA 2.1
    model's code beside them (`hub_model`)."""
    model.to(WEIGHT_DTYPES[dtype])
    model.config = with_model_code(model.config)
    with quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
    write_model_code(folder, model.config)


def load_plain(folder: Path) -> torch.nn.Module:
    """The folder as plain transformers opens it (`AutoModelForVideoClassification`; a V-JEPA 2.1 folder with
    its own model code), in its stored dtype."""
    with quiet_transformers():
        return AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True).eval()
