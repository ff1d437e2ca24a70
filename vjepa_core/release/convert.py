"""`convert_checkpoint(source, out)`: Meta's V-JEPA 2 / 2.1 checkpoint -> a standard `save_pretrained` folder.

In:  an official `.pt` (Meta's file or a user's own pretraining with Meta's code) or one of the four V-JEPA 2.1
     names (`models.official`), plus what its weights cannot tell (`num_attention_heads`, `crop_size`) when
     no table or `params-pretrain.yaml` does.
Out: OUT with `config.json` + `model.safetensors` (a `VJEPA2Model`: the encoder, every key checked against the
     architecture), `video_preprocessor_config.json` (`VJEPA2VideoProcessor` at the model's crop), for V-JEPA 2.1
     its model code as Hub remote code (`hub_model`), and `README.md`, a short card (huggingface_hub's
     `ModelCard`). Before OUT appears, transformers' `AutoModel` opens the folder and its tokens on a fixed clip
     are compared with the model built from Meta's weights. Meta's predictor is not converted: a V-JEPA 2 folder
     gets a fresh one when loaded (transformers says so), a V-JEPA 2.1 model has none.

Written atomically (`store.atomic.staged_dir`): a refused file, a failed check or a full disk leaves nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelCardData
from transformers import AutoModel, VJEPA2Config, VJEPA2Model, VJEPA2VideoProcessor

from vjepa_core import __version__
from vjepa_core.errors import UserError
from vjepa_core.models import official
from vjepa_core.models.loading import quiet_transformers
from vjepa_core.models.vjepa21 import VJEPA21Model, is_vjepa21
from vjepa_core.release.hub_model import MODEL_CODE, with_model_code, write_model_code
from vjepa_core.store.atomic import staged_dir

TOLERANCE = 1e-5  # fp32 tokens of the written folder against the model built in memory
PROBE_SEED = 30


class ConvertCheckFailed(RuntimeError):
    """The written folder does not give the converted model's tokens: a bug, never bad input."""


@dataclass(frozen=True)
class ConvertReport:
    out: Path
    source: Path
    key: str
    config: VJEPA2Config
    max_token_delta: float
    files: list[str]


def convert_checkpoint(source: str, out: Path, *, say: Callable[[str], None] = lambda _: None,
                       **overrides: Any) -> ConvertReport:
    """Write `source` (a checkpoint path or an official name) as a transformers folder at `out`."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"OUT {out} exists and is not an empty folder: choose a new one")
    path = official.official_file(source)
    say(f"reading {path}")
    key, state = official.read_checkpoint(path)
    config = official.named_config(source) if source in official.OFFICIAL and not overrides else \
        official.official_config(state, path=path, name=source if source in official.OFFICIAL else None,
                                 **overrides)
    weights = official.encoder_weights(state, config, source=f"{path} ({key})")
    del state
    config = with_model_code(config)
    model = (VJEPA21Model if is_vjepa21(config) else VJEPA2Model)(config).eval()
    model.encoder.load_state_dict(weights)
    with staged_dir(out, elsewhere="choose an OUT folder on another disk") as staging:
        say(f"writing {out}")
        with quiet_transformers():
            model.save_pretrained(staging, state_dict={f"encoder.{k}": v for k, v in weights.items()},
                                  safe_serialization=True)
        write_model_code(staging, config)
        VJEPA2VideoProcessor(crop_size=config.crop_size).save_pretrained(staging)
        say("checking the folder with transformers' AutoModel")
        delta = _check(staging, model)
        _card(config, source=path, key=key, delta=delta, name=out.name).save(staging / "README.md")
        for item in staging.rglob("*"):
            item.chmod(0o644 if item.is_file() else 0o755)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return ConvertReport(out, path, key, config, delta, files)


def _check(folder: Path, model: torch.nn.Module) -> float:
    config = model.config
    generator = torch.Generator().manual_seed(PROBE_SEED)
    clip = torch.randn(1, 2 * config.tubelet_size, 3, config.crop_size, config.crop_size, generator=generator)
    with quiet_transformers():
        plain = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        delta = float((plain(pixel_values_videos=clip, skip_predictor=True).last_hidden_state
                       - model(pixel_values_videos=clip, skip_predictor=True).last_hidden_state).abs().max())
    if not delta <= TOLERANCE:
        raise ConvertCheckFailed(f"the written folder does not give the converted encoder's tokens: max |Δ| = "
                                 f"{delta:.3g} (tolerance {TOLERANCE:g})")
    return delta


def _card(config: VJEPA2Config, *, source: Path, key: str, delta: float, name: str) -> ModelCard:
    v21 = is_vjepa21(config)
    version = "V-JEPA 2.1" if v21 else "V-JEPA 2"
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    load = (f'model = AutoModel.from_pretrained("./{name}", trust_remote_code=True)  # 2.1: {MODEL_CODE}' if v21
            else f'model = AutoModel.from_pretrained("./{name}")')
    levels = (f"; level norms after blocks {', '.join(map(str, config.hierarchical_layers))}, "
              f"{config.num_distillation_outputs} distillation output(s)" if v21 else "")
    predictor = ("V-JEPA 2.1's predictor is not part of transformers' classes: the model is the encoder alone "
                 "(call it with `skip_predictor=True`)." if v21 else
                 "Meta's predictor is not converted: transformers initialises a fresh one when it loads the folder "
                 "(and says so); the encoder is what classification, features and fine-tuning read.")
    remote = (f"\n\nThe folder brings its model code (`{MODEL_CODE}`: transformers' V-JEPA 2 classes with 2.1's "
              "interleaved and interpolated RoPE, modality embeddings and level norms; torch and transformers only) "
              "until transformers carries V-JEPA 2.1; its config names the 2.1 fields as transformers' pending port "
              "does." if v21 else "")
    data = ModelCardData(library_name="transformers", pipeline_tag="video-classification",
                         tags=["video", "v-jepa", "vjepa2", "vjepa-lab"] + (["vjepa2.1"] if v21 else []))
    text = f"""---
{data.to_yaml()}
---

# {version} encoder converted from `{source.name}`

Meta's {version} encoder (`{key}` of `{source.name}`, sha256 `{digest.hexdigest()[:16]}...`) as a
transformers `VJEPA2Model` folder, written by vjepa-lab {__version__} (`runner convert`). Architecture:
width {config.hidden_size}, {config.num_hidden_layers} blocks, {config.num_attention_heads} heads, MLP ratio
{config.mlp_ratio:.3g}, {config.patch_size} px patches, tubelet {config.tubelet_size}, {config.crop_size} px
crop{levels}.{remote}

```python
from transformers import AutoModel

{load}
tokens = model(pixel_values_videos=clip, skip_predictor=True).last_hidden_state  # clip [B, T, 3, H, W]
```

{predictor}

Checked when written: the folder, opened by `AutoModel`, gives the tokens of the encoder built from Meta's
weights within max |Δ| = {delta:.2g} on a random clip. vjepa-lab's reference fixtures show its loader equal to
Meta's own code within 1e-5 (docs/guides/models.md). The weights are Meta's: their license is Meta's (see
github.com/facebookresearch/vjepa2).
"""
    return ModelCard(text)
