"""Meta's own checkpoints (V-JEPA 2 and 2.1 `.pt` files) into transformers' V-JEPA 2 classes.

An official checkpoint is a `torch.save` dict written by Meta's training code (or by a user's pretraining
with it): the encoder sits under `ema_encoder` (2.1's distilled ViT-B/L), `target_encoder` (the EMA encoder
every run keeps) or `encoder`, its keys prefixed by `module.` (DistributedDataParallel) and `backbone.`
(MultiSeqWrapper). `read_checkpoint(path)` finds it (loading with `weights_only=True`: tensors and plain
values only); `official_config(...)` infers the architecture from the weights' shapes (width, depth, MLP
ratio, patch, tubelet; 2.1's level norms, modality and image embeddings), plus what shapes cannot say:
attention heads and crop size, from the name's table, the `params-pretrain.yaml` Meta's training writes
beside a checkpoint, or the released widths; `encoder_weights(...)` renames Meta's keys to transformers'
(`blocks.3.attn.qkv` -> `layer.3.attention.query/key/value`), after checking every key and shape.

The four V-JEPA 2.1 files go by the names of Meta's torch.hub entry points (`OFFICIAL`); `official_file(name)`
downloads one into the torch hub cache (`torch.hub.get_dir()/checkpoints`) or, offline, says in one line where
to put it. Every refusal is one `UserError` line: nothing half-loaded is ever returned.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers import VJEPA2Config

from vjepa_core.errors import UserError

log = logging.getLogger(__name__)

BASE_URL = "https://dl.fbaipublicfiles.com/vjepa2"
URL_VARIABLE = "VJEPA_OFFICIAL_URL"  # another base URL (a mirror) for the official files
ENCODER_KEYS = ("ema_encoder", "target_encoder", "encoder")  # in the order they are looked for
PREFIXES = ("module.", "backbone.")
# Meta's ViT names -> attention heads (src/models and app/vjepa_2_1 vision_transformer.py): head dim 64,
# except ViT-H and the non-xformers giants (16 heads).
META_HEADS = {"vit_tiny": 3, "vit_small": 6, "vit_base": 12, "vit_large": 16, "vit_large_rope": 16,
              "vit_huge": 16, "vit_huge_rope": 16, "vit_giant": 16, "vit_giant_rope": 16,
              "vit_giant_xformers": 22, "vit_giant_xformers_rope": 22, "vit_gigantic": 16,
              "vit_gigantic_xformers": 26}
# The widths Meta released, with the heads of the released files (hub backbones: the xformers giants).
RELEASED_HEADS = {768: 12, 1024: 16, 1280: 16, 1408: 22, 1664: 26}
# 2.1 level norms by depth: app/vjepa_2_1/models/vision_transformer.py fixes them for these depths only.
LEVELS_BY_DEPTH = {12: [2, 5, 8, 11], 24: [5, 11, 17, 23], 40: [9, 19, 29, 39], 48: [11, 23, 37, 47]}


@dataclass(frozen=True)
class OfficialModel:
    file: str
    width: int
    depth: int
    heads: int
    mlp_ratio: float
    distillation_outputs: int  # 1 for the distilled ViT-B/L (their ema_encoder), 4 for ViT-g/G
    summary: str
    crop_size: int = 384

    @property
    def url(self) -> str:
        return f"{os.environ.get(URL_VARIABLE, BASE_URL).rstrip('/')}/{self.file}"


# Named as Meta's torch.hub entry points (src/hub/backbones.py), one per released 2.1 file.
OFFICIAL: dict[str, OfficialModel] = {
    "vjepa2_1_vit_base_384": OfficialModel("vjepa2_1_vitb_dist_vitG_384.pt", 768, 12, 12, 4.0, 1,
                                           "V-JEPA 2.1 ViT-B/16 at 384 px, distilled from ViT-G (80M parameters)"),
    "vjepa2_1_vit_large_384": OfficialModel("vjepa2_1_vitl_dist_vitG_384.pt", 1024, 24, 16, 4.0, 1,
                                            "V-JEPA 2.1 ViT-L/16 at 384 px, distilled from ViT-G (300M parameters)"),
    "vjepa2_1_vit_giant_384": OfficialModel("vjepa2_1_vitg_384.pt", 1408, 40, 22, 48 / 11, 4,
                                            "V-JEPA 2.1 ViT-g/16 at 384 px (1B parameters)"),
    "vjepa2_1_vit_gigantic_384": OfficialModel("vjepa2_1_vitG_384.pt", 1664, 48, 26, 64 / 13, 4,
                                               "V-JEPA 2.1 ViT-G/16 at 384 px (2B parameters)"),
}
# Meta's V-JEPA 2 files, by name: their crop size (the weights do not say; vitg-384 is the one at 384 px).
V20_CROPS = {"vitl.pt": 256, "vith.pt": 256, "vitg.pt": 256, "vitg-384.pt": 384}


def is_official(name: str) -> bool:
    """`--model` names an official checkpoint: one of `OFFICIAL`, or a `.pt`/`.pth`/`.tar` file."""
    return name in OFFICIAL or Path(name).suffix in (".pt", ".pth", ".tar")


def official_file(name: str) -> Path:
    """The local file of an `OFFICIAL` name (downloaded into the torch hub cache once) or the path given."""
    if name not in OFFICIAL:
        path = Path(name).expanduser()
        if not path.is_file():
            raise UserError(f"model: no checkpoint file {name}")
        return path
    entry = OFFICIAL[name]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / entry.file
    if cached.is_file():
        return cached
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("VJEPA_OFFLINE"):
        raise UserError(_missing(name, cached, entry))
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(entry.url, str(cached), progress=True)
    except OSError as exc:  # URLError and HTTPError are OSErrors; download_url_to_file leaves no partial file
        raise UserError(_missing(name, cached, entry)) from exc
    return cached


def _missing(name: str, cached: Path, entry: OfficialModel) -> str:
    return (f"model {name}: {entry.file} is not in the torch hub cache and cannot be downloaded here; fetch "
            f"{entry.url} on a machine with internet and put it at {cached}")


def read_checkpoint(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(the key the encoder was under, its tensors with `module.`/`backbone.` stripped) of an official file."""
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6; Meta's files are
        raise UserError(f"model: {path} is not a V-JEPA checkpoint (not a file torch.save writes: those are zip "
                        f"archives)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:  # an object torch.load(weights_only=True) will not build: never unpickled here
            raise UserError(f"model: {path} holds Python objects ({found.group(1)}), not only tensors: it is not "
                            f"loaded (weights_only); save the encoder's state_dict alone") from exc
        raise UserError(f"model: {path} is not a V-JEPA checkpoint (not a PyTorch file)") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"model: {path} is not a V-JEPA checkpoint (torch.load: {str(exc).splitlines()[0]})") from exc
    if not isinstance(checkpoint, Mapping):
        raise UserError(f"model: {path} is not a V-JEPA checkpoint (it holds a {type(checkpoint).__name__}, "
                        f"not a dict)")
    key = next((k for k in ENCODER_KEYS if isinstance(checkpoint.get(k), Mapping)), None)
    if key is None:
        keys = ", ".join(sorted(map(str, checkpoint))[:8])
        raise UserError(f"model: {path} is not a V-JEPA checkpoint: it has none of {', '.join(ENCODER_KEYS)} "
                        f"(its keys: {keys})")
    state = {_strip(name): tensor for name, tensor in checkpoint[key].items()}
    if "patch_embed.proj.weight" not in state:
        raise UserError(f"model: {path}'s {key} is not a V-JEPA encoder: it has no patch_embed.proj.weight "
                        f"(its keys: {', '.join(sorted(state)[:6])})")
    return key, state


def _strip(name: str) -> str:
    for prefix in PREFIXES:  # Meta's hub loader removes them wherever they are; they lead the keys
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name


def load_official(name: str, *, weights: bool = True, **overrides: Any
                  ) -> tuple[VJEPA2Config, dict[str, torch.Tensor]]:
    """(config, encoder weights renamed and checked) of an `OFFICIAL` name or a checkpoint path.

    `weights=False` returns the config alone (and {}), reading a named file's table rather than the file;
    `overrides` set config fields the weights cannot tell (`num_attention_heads`, `crop_size`)."""
    if name in OFFICIAL and not weights and not overrides:
        return named_config(name), {}
    path = official_file(name)
    key, state = read_checkpoint(path)
    config = named_config(name) if name in OFFICIAL and not overrides else \
        official_config(state, path=path, name=name if name in OFFICIAL else None, **overrides)
    return config, (encoder_weights(state, config, source=f"{path} ({key})") if weights else {})


def named_config(name: str) -> VJEPA2Config:
    """The architecture of an `OFFICIAL` name, without its file."""
    entry = OFFICIAL[name]
    return VJEPA2Config(**_common(entry.width, entry.depth, entry.heads, entry.mlp_ratio, entry.crop_size),
                        **v21_fields(entry.depth, entry.distillation_outputs, modality=True, image=True))


def _common(width: int, depth: int, heads: int, mlp_ratio: float, crop: int) -> dict[str, Any]:
    return dict(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads, mlp_ratio=mlp_ratio,
                crop_size=crop, patch_size=16, tubelet_size=2, in_chans=3, qkv_bias=True, layer_norm_eps=1e-6,
                frames_per_clip=64)


def v21_fields(depth: int, outputs: int, *, modality: bool, image: bool,
               levels: list[int] | None = None) -> dict[str, Any]:
    """The config fields of a V-JEPA 2.1 encoder (named as transformers' 2.1 port names them)."""
    return dict(use_rope_interleave=True, interpolate_rope=True, use_modality_embeddings=modality,
                use_image_patch_embedder=image, hierarchical_layers=levels or LEVELS_BY_DEPTH[depth],
                num_distillation_outputs=outputs, use_context_projection=False, teacher_embed_dim=None)


def official_config(state: Mapping[str, torch.Tensor], *, path: Path, name: str | None = None,
                    **overrides: Any) -> VJEPA2Config:
    """The VJEPA2Config of an official encoder's tensors (see the module doc); `overrides` win."""
    patch = state["patch_embed.proj.weight"]  # [D, C, tubelet, p, p]
    width, depth = patch.shape[0], _depth(state)
    values: dict[str, Any] = dict(
        hidden_size=width, num_hidden_layers=depth, in_chans=patch.shape[1], tubelet_size=patch.shape[2],
        patch_size=patch.shape[-1], mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / width,
        qkv_bias="blocks.0.attn.qkv.bias" in state, layer_norm_eps=1e-6, frames_per_clip=64)
    v21 = "norms_block.0.weight" in state
    meta = _meta_params(path)
    entry = OFFICIAL.get(name or "")
    heads = overrides.pop("num_attention_heads", None) or (entry.heads if entry else None) \
        or META_HEADS.get(meta.get("model_name", "")) or RELEASED_HEADS.get(width)
    if heads is None:
        raise UserError(f"model: {path} is a width-{width} encoder, not one of Meta's released widths, so its "
                        f"number of attention heads is unknown: keep the params-pretrain.yaml Meta's training "
                        f"wrote beside it, or use runner convert --heads N")
    values["num_attention_heads"] = heads
    crop = (entry.crop_size if entry else None) or meta.get("crop_size") or V20_CROPS.get(path.name) \
        or (384 if v21 else 256)
    values["crop_size"] = int(crop)
    if v21:
        levels = sum(1 for key in state if re.fullmatch(r"norms_block\.\d+\.weight", key))
        if depth not in LEVELS_BY_DEPTH or levels != len(LEVELS_BY_DEPTH[depth]):
            raise UserError(f"model: {path} is a V-JEPA 2.1 encoder of depth {depth} with {levels} level norms; "
                            f"Meta's code places them only for depths {', '.join(map(str, LEVELS_BY_DEPTH))}")
        # Meta's training returns all four levels (the 2.1 objective's targets); only the released distilled
        # ViT-B/L files are read with one.
        outputs = entry.distillation_outputs if entry else 4
        values.update(v21_fields(depth, outputs, modality="video_mod_embed" in state,
                                 image="patch_embed_img.proj.weight" in state))
    values.update(overrides)
    return VJEPA2Config(**values)


def _depth(state: Mapping[str, torch.Tensor]) -> int:
    blocks = {int(m.group(1)) for key in state if (m := re.match(r"blocks\.(\d+)\.", key))}
    if not blocks:
        raise UserError("model: the checkpoint's encoder has no blocks.N weights: not a V-JEPA encoder")
    return max(blocks) + 1


def _meta_params(path: Path) -> dict[str, Any]:
    """What `params-pretrain.yaml` (written by Meta's training beside its checkpoints) says of the encoder."""
    params_file = path.parent / "params-pretrain.yaml"
    if not params_file.is_file():
        return {}
    try:
        params = yaml.safe_load(params_file.read_text()) or {}
    except yaml.YAMLError:
        return {}
    model, data = params.get("model") or {}, params.get("data") or {}
    found = {"model_name": model.get("model_name"), "crop_size": data.get("crop_size")}
    return {key: value for key, value in found.items() if value is not None}


def encoder_weights(state: Mapping[str, torch.Tensor], config: VJEPA2Config, *, source: str
                    ) -> dict[str, torch.Tensor]:
    """Meta's encoder tensors renamed to `VJEPA2Model.encoder`'s, after checking keys and shapes (one line)."""
    from vjepa_core.models.vjepa21 import VJEPA21Encoder, is_vjepa21

    with torch.device("meta"):
        reference = (VJEPA21Encoder(config) if is_vjepa21(config) else
                     _v20_encoder(config)).state_dict()
    # pos_embed: a fixed sin-cos table RoPE models never read (Meta's hub loader skips it too).
    renamed = {}
    for key, tensor in state.items():
        if key == "pos_embed":
            continue
        renamed.update(_rename(key, tensor))
    missing = sorted(set(reference) - set(renamed), key=_natural)
    extra = sorted(set(renamed) - set(reference), key=_natural)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} key(s) the {_kind(config)} architecture needs: "
                         f"{_few(_meta_names(missing))}")
        if extra:
            parts.append(f"has {len(extra)} it does not use: {_few(_meta_names(extra))}")
        raise UserError(f"model: {source} " + "; ".join(parts))
    wrong = [key for key in reference if tuple(reference[key].shape) != tuple(renamed[key].shape)]
    if wrong:
        key = wrong[0]
        raise UserError(f"model: {source} has {len(wrong)} tensor(s) of the wrong shape for the {_kind(config)} "
                        f"architecture, e.g. {_meta_names([key])[0]} {tuple(renamed[key].shape)} where "
                        f"{tuple(reference[key].shape)} is expected")
    return {key: renamed[key].to(torch.float32).contiguous() for key in reference}


def _v20_encoder(config: VJEPA2Config) -> torch.nn.Module:
    from transformers.models.vjepa2.modeling_vjepa2 import VJEPA2Encoder

    return VJEPA2Encoder(config)


def _kind(config: VJEPA2Config) -> str:
    from vjepa_core.models.vjepa21 import is_vjepa21

    version = "V-JEPA 2.1" if is_vjepa21(config) else "V-JEPA 2"
    return f"{version} {config.hidden_size}-wide {config.num_hidden_layers}-block"


# Meta's encoder key -> VJEPA2Model.encoder's (first match wins); qkv is then split into query, key, value.
RENAMES = ((r"patch_embed_img\.", "embeddings.patch_embeddings_img."),
           (r"patch_embed\.", "embeddings.patch_embeddings."), (r"(video|img)_mod_embed$", r"embeddings.\1_mod_embed"),
           (r"blocks\.(\d+)\.attn\.", r"layer.\1.attention."), (r"blocks\.", "layer."),
           (r"norms_block\.", "hierarchical_norms."), (r"norm\.", "layernorm."))
# ... and back, to name keys in the user's file's own spelling.
UNRENAMES = ((r"embeddings\.patch_embeddings_img\.", "patch_embed_img."),
             (r"embeddings\.patch_embeddings\.", "patch_embed."),
             (r"embeddings\.(video|img)_mod_embed$", r"\1_mod_embed"),
             (r"layer\.(\d+)\.attention\.(query|key|value)\.", r"blocks.\1.attn.qkv."),
             (r"layer\.(\d+)\.attention\.", r"blocks.\1.attn."), (r"layer\.", "blocks."),
             (r"hierarchical_norms\.", "norms_block."), (r"layernorm\.", "norm."))


def _respell(key: str, table: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in table:
        if re.match(pattern, key):
            return re.sub(f"^{pattern}", replacement, key, count=1)
    return key


def _rename(key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    new = _respell(key, RENAMES)
    if ".attention.qkv." not in new or tensor.shape[0] % 3:
        return {new: tensor}  # not three equal parts: reported as unused, its parts as missing
    prefix, suffix = new.split(".qkv.")
    q, k, v = tensor.chunk(3, dim=0)
    return {f"{prefix}.query.{suffix}": q, f"{prefix}.key.{suffix}": k, f"{prefix}.value.{suffix}": v}


def as_meta_state(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `encoder_weights`: a `VJEPA2Model.encoder` state dict in Meta's key names (qkv joined)."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in weights.items():
        if re.search(r"\.attention\.(key|value)\.", key):
            continue
        if ".attention.query." in key:
            parts = [weights[key.replace(".query.", f".{part}.")] for part in ("query", "key", "value")]
            state[_respell(key, UNRENAMES)] = torch.cat(parts, dim=0)
        else:
            state[_respell(key, UNRENAMES)] = tensor
    return state


def _meta_names(keys: list[str]) -> list[str]:
    """Our key names back in Meta's spelling, for messages about their file."""
    return list(dict.fromkeys(_respell(key, UNRENAMES) for key in keys))


def _few(names: list[str], shown: int = 4) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _natural(key: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]
