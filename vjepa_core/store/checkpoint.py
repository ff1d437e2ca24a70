"""Checkpoints: `results/checkpoints/<run_id>/` holds `manifest.json` (run id, strategy, base model and its
fingerprint, config, labels, preprocessing, metrics) and only the trained weights, as safetensors (a PEFT
adapter folder for LoRA). Never pickles. `load_checkpoint` rebuilds the base model and refuses one whose
weights differ from those the run trained on. Weights may be stored in half precision (`checkpoint_dtype`),
and a folder is written atomically: a reader sees a whole checkpoint or none.
"""

from __future__ import annotations

import json
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vjepa_core import __version__
from vjepa_core.errors import CheckpointError, UserError
from vjepa_core.models import base_fingerprint, load_run_model
from vjepa_core.models.device import DTYPES
from vjepa_core.spec import CheckpointDtype, RunSpec
from vjepa_core.store.atomic import staged_dir
from vjepa_core.strategies import get_strategy
from vjepa_core.strategies.base import ADAPTER_NAME, is_lora

CHECKPOINT_DTYPES: tuple[str, ...] = typing.get_args(CheckpointDtype)  # ExecOptions.checkpoint_dtype's choices
WEIGHT_DTYPES = {name: DTYPES[name] for name in CHECKPOINT_DTYPES if name != "auto"}
MANIFEST = "manifest.json"
MANIFEST_KEYS = ("spec", "labels", "base_model")  # what rebuilding the model reads
WEIGHTS = "trained.safetensors"
ADAPTER_DIR = "adapter"
FORMAT_VERSION = 1
PEFT_PREFIX = "base_model.model."


@dataclass
class LoadedCheckpoint:
    path: Path
    manifest: dict[str, Any]
    model: torch.nn.Module

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def spec(self) -> RunSpec:
        return RunSpec.from_dict(self.manifest["spec"])


def checkpoint_dtype(choice: str, *, precision: str, frozen_encoder: bool) -> str:
    """The dtype to store weights in: `choice`, or for "auto" the run's half type for bf16/fp16 runs, fp16 for the
    pooler-sized checkpoints of a frozen encoder, and fp32 for encoder weights trained in fp32."""
    if choice not in CHECKPOINT_DTYPES:
        raise UserError(f"checkpoint dtype: expected one of {', '.join(CHECKPOINT_DTYPES)}, got {choice!r}")
    if choice != "auto":
        return choice
    if precision in ("bf16", "fp16"):
        return precision
    return "fp16" if frozen_encoder else "fp32"


def save_checkpoint(directory: Path, model: torch.nn.Module, *, spec: RunSpec, labels: list[str],
                    base_fp: str, preprocessing: dict[str, Any], metrics: dict[str, Any],
                    weights_dtype: str = "fp32") -> Path:
    lora = get_strategy(spec.strategy).lora_config(spec)
    dtype = WEIGHT_DTYPES[weights_dtype]
    trained = {name: _stored(p, dtype) for name, p in model.named_parameters() if p.requires_grad and not is_lora(name)}
    manifest = {
        "format_version": FORMAT_VERSION, "vjepa_lab_version": __version__, "run_id": spec.run_id,
        "strategy": spec.strategy, "base_model": spec.model, "base_fingerprint": base_fp,
        "model_config": model.config.to_dict(), "labels": labels, "preprocessing": preprocessing,
        "spec": spec.to_dict(), "metrics": metrics, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "weights_dtype": weights_dtype,
        "lora": None if lora is None else {"rank": spec.lora_rank, "alpha": spec.lora_alpha,
                                           "dropout": spec.lora_dropout, "targets": lora.target_modules},
    }
    with staged_dir(directory) as staging:
        save_file(trained, staging / WEIGHTS, metadata={"format": "vjepa-lab", "run_id": spec.run_id})
        if lora is not None:
            _save_adapter(staging / ADAPTER_DIR, model, lora, dtype)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return directory


def _stored(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    tensor = tensor.detach().cpu()
    return (tensor.to(dtype) if tensor.is_floating_point() else tensor).contiguous()


def _save_adapter(directory: Path, model: torch.nn.Module, config: LoraConfig, dtype: torch.dtype) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    state = get_peft_model_state_dict(model, adapter_name=ADAPTER_NAME)
    # PeftModel wraps the model as base_model.model; naming keys that way lets plain PEFT load the folder.
    save_file({PEFT_PREFIX + k: _stored(v, dtype) for k, v in state.items()},
              directory / "adapter_model.safetensors", metadata={"format": "pt"})
    config.save_pretrained(str(directory))


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {MANIFEST} or release.json (not a vjepa-lab checkpoint or release)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({getattr(exc, 'msg', exc)})") from exc
    missing = [key for key in MANIFEST_KEYS if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)} (not a vjepa-lab checkpoint's manifest)")
    return manifest


def load_checkpoint(directory: Path, *, base_model: str | None = None,
                    base: torch.nn.Module | None = None) -> LoadedCheckpoint:
    """Rebuild a trained model from `directory` onto its base model (or `base_model` instead).

    `base`, when given, is a freshly loaded base model to reuse (the demo keeps one per base).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = RunSpec.from_dict(manifest["spec"])
    strategy = get_strategy(spec.strategy)
    name = base_model or manifest["base_model"]
    model = base if base is not None else load_run_model(spec, manifest["labels"], name=name)
    if not strategy.random_init:
        check_base(model, manifest, name)
    lora = strategy.lora_config(spec)
    if lora is not None:
        model = inject_adapter_in_model(lora, model, adapter_name=ADAPTER_NAME)
        adapter = {k.removeprefix(PEFT_PREFIX): v
                   for k, v in read_weights(directory / ADAPTER_DIR / "adapter_model.safetensors").items()}
        result = set_peft_model_state_dict(model, adapter, adapter_name=ADAPTER_NAME)
        if result.unexpected_keys:
            raise CheckpointError(f"{directory} adapter does not fit the base model "
                            f"({len(result.unexpected_keys)} unexpected weights)")
    _load_trained(model, directory / WEIGHTS)
    return LoadedCheckpoint(directory, manifest, model.eval())


def check_base(model: torch.nn.Module, manifest: dict[str, Any], name: str) -> None:
    expected = manifest.get("base_fingerprint")
    actual = base_fingerprint(model)
    if expected and expected != actual:
        raise CheckpointError(f"trained on base model {manifest['base_model']!r} "
                        f"(fingerprint {expected}) but {name!r} has different weights ({actual})")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of one of a checkpoint's safetensors files; a missing or damaged file is a `CheckpointError`."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from error


def _load_trained(model: torch.nn.Module, path: Path) -> None:
    weights = read_weights(path)
    params = dict(model.named_parameters())
    for key, value in weights.items():
        if key not in params or params[key].shape != value.shape:
            raise CheckpointError(f"weight {key} {tuple(value.shape)} does not fit the base model")
        with torch.no_grad():
            params[key].copy_(value)
