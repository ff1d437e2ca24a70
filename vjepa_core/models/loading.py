"""V-JEPA 2 and 2.1 models from hub ids, local `save_pretrained` folders, Meta's checkpoints and offline presets, as
`transformers.VJEPA2ForVideoClassification` with one output per label: `pixel_values_videos` [B, T, 3, crop, crop]
-> logits [B, labels]. Presets have ViT-L's proportions scaled down so that everything runs offline on a CPU:
`tiny`, `small` and `tiny-2.1` are random weights from a fixed seed, `tiny-jepa` ships pretrained weights as package
data, refused unless their sha256 matches. Meta's checkpoints (`models.official`) get a fresh pooler and classifier;
V-JEPA 2.1 is transformers' class extended (`models.vjepa21`). `load_run_model(spec, labels)` is how every caller
loads a run's model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import VJEPA2Config, VJEPA2ForVideoClassification
from transformers.utils import logging as hf_logging

from vjepa_core.errors import UserError
from vjepa_core.models.device import fork_rng
from vjepa_core.models.layers import encoder_levels, resolve_layers, set_pooler_layers, use_feature_layers
from vjepa_core.models.official import OFFICIAL, is_official, load_official, named_config, v21_fields
from vjepa_core.models.vjepa21 import VJEPA21ForVideoClassification, is_vjepa21
from vjepa_core.strategies import get_strategy

if TYPE_CHECKING:
    from vjepa_core.spec import RunSpec

log = logging.getLogger(__name__)

PRESET_SEED = 20250611
PRESETS: dict[str, dict[str, Any]] = {
    # 4 tokens a side x 8 tubelets = 128 tokens of width 128: a forward pass takes milliseconds.
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, crop_size=64,
                 num_pooler_layers=1, pred_hidden_size=32, pred_num_attention_heads=1,
                 pred_num_hidden_layers=1),
    # 8 tokens a side x 8 tubelets = 512 tokens of width 256: a stand-in for ViT-L's cost shape, with its
    # encoder : pooler depth of 8 : 1 (24 : 3), so the cached part weighs what it weighs in ViT-L.
    "small": dict(hidden_size=256, num_hidden_layers=8, num_attention_heads=4, crop_size=128,
                  num_pooler_layers=1, pred_hidden_size=64, pred_num_attention_heads=1,
                  pred_num_hidden_layers=1),
}
# The tiny preset's size with V-JEPA 2.1's encoder (interleaved RoPE interpolated from a 4-patch grid, modality
# and image embeddings, a level norm after each of its 4 blocks): the 2.1 code paths, offline and fast.
PRESETS["tiny-2.1"] = dict(PRESETS["tiny"], num_hidden_layers=4,
                           **v21_fields(4, 1, modality=True, image=True, levels=[0, 1, 2, 3]))
# The tiny architecture pretrained with `runner pretrain` on an unlabelled synthetic corpus, with a pooler
# trained on a labelled source task whose classes differ from the default study's (benchmarks/build_tiny_jepa.py).
PRESETS["tiny-jepa"] = dict(PRESETS["tiny"])
SHIPPED_WEIGHTS = ("tiny-jepa",)  # presets whose weights are package data rather than a seed
PRESET_COMMON = dict(patch_size=16, tubelet_size=2, frames_per_clip=16, mlp_ratio=4.0)
# A fresh pooler's attention starts flat (query . key ~ 0 at init std 0.02), a plateau that a random encoder's
# weak tokens often never leave, so that some seeds of a preset stayed near chance; larger query/key
# projections give the attention a slope to start from.
PRESET_POOLER_QK_SCALE = 4.0


def describe_model(name: str) -> str:
    if name in PRESETS:
        return f"preset:{name}"
    if name in OFFICIAL:
        return f"official:{name}"
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def load_model(name: str, labels: list[str], *, seed: int = 0, random_init: bool = False,
               feature_layers: Sequence[int] = (), pooler_layers: int | None = None
               ) -> VJEPA2ForVideoClassification:
    """Load a base model with a fresh classifier for `labels`.

    `random_init` builds the same architecture with fresh random weights (the from-scratch arm).
    New parts (classifier, and the pooler for encoder-only checkpoints such as `runner pretrain`'s
    output) are initialised from `seed`; a new pooler's query/key start sharper, as the presets' do.
    `pooler_layers` other than the model's own depth swaps in a fresh pooler of that depth, from `seed`;
    `feature_layers` feeds the pooler with those encoder blocks' tokens (see `models.layers`).
    """
    model = _load_base(name, labels, seed=seed, random_init=random_init)
    if pooler_layers is not None and pooler_layers != model.config.num_pooler_layers:
        set_pooler_layers(model, pooler_layers, seed=seed)
        if name in PRESETS:
            _sharpen_pooler_attention(model, PRESET_POOLER_QK_SCALE)
    use_feature_layers(model, feature_layers)
    return model.eval()


def load_run_model(spec: RunSpec, labels: list[str], *, name: str | None = None) -> VJEPA2ForVideoClassification:
    """The model `spec` trains (or a checkpoint of it was trained on): its base model, seed and probe recipe.

    `name` loads another base model in place of `spec.model` (a checkpoint moved to another machine)."""
    return load_model(name or spec.model, labels, seed=spec.seed, random_init=get_strategy(spec.strategy).random_init,
                      feature_layers=spec.feature_layers, pooler_layers=spec.pooler_layers)


def check_run_model(spec: RunSpec) -> None:
    """Everything wrong with the model a spec names, found without loading weights (a `UserError`)."""
    config = load_config(spec.model)
    resolve_layers(spec.feature_layers, config.num_hidden_layers, levels=encoder_levels(config))


def model_class(config: VJEPA2Config) -> type[VJEPA2ForVideoClassification]:
    """transformers' class for a V-JEPA 2 config; its 2.1 extension (`models.vjepa21`) for a 2.1 config."""
    return VJEPA21ForVideoClassification if is_vjepa21(config) else VJEPA2ForVideoClassification


def _load_base(name: str, labels: list[str], *, seed: int, random_init: bool) -> VJEPA2ForVideoClassification:
    label_args = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={label: i for i, label in enumerate(labels)})
    if name in PRESETS:
        config = VJEPA2Config(**PRESET_COMMON, **PRESETS[name], **label_args)
        with fork_rng(seed if random_init else PRESET_SEED):
            model = model_class(config)(config)
        if name in SHIPPED_WEIGHTS and not random_init:
            missing, unexpected = model.load_state_dict(shipped_weights(name), strict=False)
            if unexpected or set(missing) != {"classifier.weight", "classifier.bias"}:
                raise UserError(f"preset {name}: its weights file does not fit the architecture; "
                                f"{REBUILD_HINT}")
        else:
            _sharpen_pooler_attention(model, PRESET_POOLER_QK_SCALE)
        if not random_init:
            _reset_new_parts(model, seed)
        return model
    if is_official(name) and not random_init:
        return _from_official(name, label_args, seed=seed)
    config = load_config(name)
    if random_init:
        for key, value in label_args.items():
            setattr(config, key, value)
        with fork_rng(seed):
            return model_class(config)(config)
    with fork_rng(seed):
        return _from_pretrained(name, label_args)


def _from_official(name: str, label_args: dict[str, Any], *, seed: int) -> VJEPA2ForVideoClassification:
    """Meta's encoder with a pooler and classifier initialised from `seed` (every key checked first)."""
    config, weights = load_official(name)
    for key, value in label_args.items():
        setattr(config, key, value)
    with fork_rng(seed):
        model = model_class(config)(config)
    model.vjepa2.encoder.load_state_dict(weights)
    _sharpen_pooler_attention(model, PRESET_POOLER_QK_SCALE)  # a new pooler, as for encoder-only folders
    kept = "encoder" if is_vjepa21(config) else "encoder (a fresh predictor)"
    log.info("model %s: Meta's %s; new pooler and classifier", name, kept)
    return model


REBUILD_HINT = "reinstall vjepa-lab, or rebuild it with `make tiny-jepa`"


def preset_file(name: str, suffix: str) -> Path:
    return Path(str(resources.files("vjepa_core.models").joinpath("presets", f"{name}{suffix}")))


def shipped_weights(name: str, *, folder: Path | None = None) -> dict[str, torch.Tensor]:
    """A pretrained preset's tensors, after checking the file against the sha256 its manifest records
    (`folder`: where `<name>.safetensors` and `<name>.json` are; default the package's presets)."""
    from safetensors.torch import load_file

    weights, manifest = preset_file(name, ".safetensors"), preset_file(name, ".json")
    if folder is not None:
        weights, manifest = folder / weights.name, folder / manifest.name
    if not weights.is_file() or not manifest.is_file():
        raise UserError(f"preset {name}: its weights are not installed ({weights}); {REBUILD_HINT}")
    expected = json.loads(manifest.read_text())["sha256"]
    actual = hashlib.sha256(weights.read_bytes()).hexdigest()
    if actual != expected:
        raise UserError(f"preset {name}: {weights} has sha256 {actual[:12]}..., not the {expected[:12]}... "
                        f"its manifest records; {REBUILD_HINT}")
    return load_file(weights)


def load_config(name: str) -> VJEPA2Config:
    """The architecture of a preset, a local folder or a hub id, without loading weights."""
    if name in PRESETS:
        return VJEPA2Config(**PRESET_COMMON, **PRESETS[name])
    if name in OFFICIAL:
        return named_config(name)
    if is_official(name):
        return load_official(name, weights=False)[0]
    if "/" not in name and not Path(name).expanduser().exists():
        raise UserError(_load_error(name))  # not a path and not org/name: no point asking the hub
    if Path(name).expanduser().is_dir() and not (Path(name).expanduser() / "config.json").is_file():
        raise UserError(_load_error(name))
    try:
        # The raw dict first: VJEPA2Config.from_pretrained on another model's config logs a warning line
        # before our one-line error.
        values, _ = VJEPA2Config.get_config_dict(name)
    except OSError as exc:
        raise UserError(_load_error(name)) from exc
    if values.get("model_type") != "vjepa2":
        raise UserError(f"model: {name} is a {values.get('model_type')!r} model, not a V-JEPA 2 one")
    return VJEPA2Config.from_dict(values)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' warnings and progress bars off for the block (its table of newly initialised keys, a
    "Loading weights" / "Writing model shards" bar per call, over in a blink); errors still show."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _from_pretrained(name: str, label_args: dict[str, Any]) -> VJEPA2ForVideoClassification:
    try:
        with quiet_transformers():  # the new keys are said in one line below
            model, info = model_class(load_config(name)).from_pretrained(
                name, ignore_mismatched_sizes=True, attn_implementation="sdpa", use_safetensors=True,
                output_loading_info=True, **label_args)
    except OSError as exc:
        raise UserError(_load_error(name)) from exc
    new = sorted({key.split(".")[0] for key in info["missing_keys"]} | {"classifier"})
    log.info("model %s: new %s (not in the checkpoint)", name, ", ".join(new))
    if "pooler" in new:
        # An encoder-only checkpoint (runner pretrain's output): its new pooler starts like the presets' do.
        _sharpen_pooler_attention(model, PRESET_POOLER_QK_SCALE)
    return model


def _load_error(name: str) -> str:
    if Path(name).expanduser().exists():
        return f"model: {name} is not a save_pretrained folder of a V-JEPA 2 model (no config.json/weights)"
    presets = ", ".join(PRESETS)
    if "/" not in name:
        return (f"model: unknown {name!r}: not a preset ({presets}), one of Meta's V-JEPA 2.1 files "
                f"({', '.join(OFFICIAL)}), a .pt checkpoint, a local folder, or a hub id like org/name")
    return (f"model: cannot load {name!r}: not a preset ({presets}), not a local folder, and not reachable on "
            f"the Hugging Face hub or in its cache (download it once with network access, or pass a folder)")


def _sharpen_pooler_attention(model: VJEPA2ForVideoClassification, scale: float) -> None:
    with torch.no_grad():
        for name, param in model.pooler.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                param.mul_(scale)


def _reset_new_parts(model: VJEPA2ForVideoClassification, seed: int) -> None:
    """The classifier is new for every run: initialise it from the run's seed, not the preset's."""
    with fork_rng(seed):
        torch.nn.init.trunc_normal_(model.classifier.weight, std=model.config.initializer_range)
        torch.nn.init.zeros_(model.classifier.bias)


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short hash of a module's weights: strided samples of every tensor, cheap even for ViT-L."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        sample = flat[::step].to(torch.float32).cpu().numpy().tobytes()
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(sample)
    return digest.hexdigest()[:16]


def encoder_fingerprint(model: VJEPA2ForVideoClassification) -> str:
    return weights_fingerprint(model.vjepa2.encoder)


def base_fingerprint(model: VJEPA2ForVideoClassification) -> str:
    """Fingerprint of what a checkpoint is applied onto: the encoder and the pretrained pooler."""
    digest = hashlib.sha256()
    digest.update(encoder_fingerprint(model).encode())
    digest.update(weights_fingerprint(model.pooler).encode())
    return digest.hexdigest()[:16]


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; the predictor is excluded: classification never runs it."""
    trainable = total = 0
    for name, param in model.named_parameters():
        if ".predictor." in f".{name}":
            continue
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
    return trainable, total


def release_bytes(model: torch.nn.Module) -> int:
    """Bytes of the weights a merged fp32 release of `model` holds (`save_pretrained`'s state dict): every
    tensor but the LoRA adapters', which the merge folds into the weights they adapt."""
    return sum(4 * tensor.numel() for name, tensor in model.state_dict().items() if ".lora_" not in f".{name}")


def tokens_per_clip(config: VJEPA2Config, frames_per_clip: int) -> int:
    grid = config.crop_size // config.patch_size
    return max(1, frames_per_clip // config.tubelet_size) * grid * grid
