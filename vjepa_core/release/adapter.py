"""The adapter-only form of a LoRA run: PEFT's own adapter folder (LoRA weights, the classifier as
`modules_to_save`), the released `config.json`, the pooler when the run trained or created one (PEFT cannot
save a module's weights and LoRA layers inside it at once), and for a preset base the base itself (a preset
exists only inside vjepa-lab). `load_adapter_form` is the model card's snippet as code: it returns a plain
`VJEPA2ForVideoClassification`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForVideoClassification, VJEPA2Config

from vjepa_core.errors import UserError
from vjepa_core.models import PRESETS, load_run_model, official
from vjepa_core.models.loading import load_config, model_class, quiet_transformers
from vjepa_core.release.hub_model import write_model_code
from vjepa_core.release.model import save_model
from vjepa_core.store.checkpoint import PEFT_PREFIX, WEIGHT_DTYPES, LoadedCheckpoint
from vjepa_core.strategies import STRATEGIES, get_strategy
from vjepa_core.strategies.base import ADAPTER_NAME, is_lora

BASE_DIR = "base"
POOLER_FILE = "pooler.safetensors"
HEAD = "classifier"


@dataclass(frozen=True)
class BaseReference:
    """Where the adapter's base model comes from: `name` is what `from_pretrained` takes."""

    name: str
    kind: str  # "hub" (a hub id), "local" (a folder on this machine), "bundled" (`base/` in the release)

    def path_in(self, folder: Path) -> str:
        return str(folder / BASE_DIR) if self.kind == "bundled" else self.name


@dataclass(frozen=True)
class AdapterForm:
    base: BaseReference
    carries_pooler: bool


def base_reference(base_model: str) -> BaseReference:
    if base_model in PRESETS:
        return BaseReference(BASE_DIR, "bundled")
    path = Path(base_model).expanduser()
    return BaseReference(str(path.resolve()), "local") if path.exists() else BaseReference(base_model, "hub")


def lora_strategies() -> list[str]:
    return [name for name, strategy in STRATEGIES.items() if strategy.lora_scope]


def check_adapter_form(loaded: LoadedCheckpoint) -> None:
    spec = loaded.spec
    if get_strategy(spec.strategy).lora_config(spec) is None:
        raise UserError(f"--adapter-only needs a LoRA run ({', '.join(lora_strategies())}); run {spec.run_id} "
                        f"is {spec.strategy}: release it whole, without --adapter-only")
    if official.is_official(spec.model):
        raise UserError(f"--adapter-only needs a base model transformers can load, and run {spec.run_id}'s is Meta's "
                        f"checkpoint {spec.model}: release it whole, or convert the checkpoint (runner convert) "
                        f"and train on that folder")


def write_adapter_form(folder: Path, loaded: LoadedCheckpoint, *, config: VJEPA2Config, dtype: str) -> AdapterForm:
    """Write the adapter-only form of `loaded` into `folder`: PEFT's adapter files, `config.json` (the `config=` of
    the base load), `pooler.safetensors` when the base's own pooler is not the run's, and `base/` for a preset."""
    check_adapter_form(loaded)
    spec = loaded.spec
    reference = base_reference(loaded.manifest["base_model"])
    if reference.kind == "bundled":
        start = load_run_model(spec, loaded.labels)  # the base as the run started: preset weights, seeded head
        start.config = config
        save_model(start, folder / BASE_DIR, dtype=dtype)
        del start
    base = _load_base(reference.path_in(folder), config)
    run = base_weights(loaded.model)
    _check_encoder(base, run, reference)
    own = base.state_dict()
    carries_pooler = any(not torch.equal(own[key], run[key]) for key in own if key.startswith("pooler."))
    keep = [key for key in run if key.startswith(f"{HEAD}.") or (carries_pooler and key.startswith("pooler."))]
    base.load_state_dict({key: run[key] for key in keep}, strict=False)
    lora = get_strategy(spec.strategy).lora_config(spec)
    lora.modules_to_save = [HEAD]
    base.name_or_path = reference.name  # what PEFT records as base_model_name_or_path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' deprecation notes inside PEFT's wrapper
        model = get_peft_model(base, lora, adapter_name=ADAPTER_NAME)
    adapter = {PEFT_PREFIX + key: value for key, value in
               get_peft_model_state_dict(loaded.model, adapter_name=ADAPTER_NAME).items()}
    adapter.update({f"{PEFT_PREFIX}{key}": run[key] for key in keep if key.startswith(f"{HEAD}.")})
    result = set_peft_model_state_dict(model, adapter, adapter_name=ADAPTER_NAME)
    if result.unexpected_keys:
        raise RuntimeError(f"adapter weights do not fit the base: {result.unexpected_keys[:3]}")
    # save_embedding_layers=False: PEFT would look the base up on the hub to see whether to save embeddings.
    model.to(WEIGHT_DTYPES[dtype]).save_pretrained(folder, safe_serialization=True, save_embedding_layers=False)
    if carries_pooler:
        pooler = {key: run[key].to(WEIGHT_DTYPES[dtype]).contiguous() for key in keep if key.startswith("pooler.")}
        save_file(pooler, folder / POOLER_FILE, metadata={"format": "pt"})
    config.save_pretrained(folder)
    write_model_code(folder, config)
    return AdapterForm(reference, carries_pooler)


def load_adapter_form(folder: Path, base: str, *, remote_code: bool = True) -> torch.nn.Module:
    """The adapter-only release as a plain model: transformers + PEFT, the lines the model card shows. Without
    `remote_code`, vjepa-lab's own model classes stand in for any code the folder or its base carries."""
    with quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        config = load_config(str(folder)) if not remote_code else AutoConfig.from_pretrained(folder)
        model = _load_base(base, config, remote_code=remote_code)
        if (Path(folder) / POOLER_FILE).is_file():
            model.load_state_dict(load_file(Path(folder) / POOLER_FILE), strict=False)
        return PeftModel.from_pretrained(model, folder).merge_and_unload().eval()


def base_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The run's weights without its LoRA layers, named as in a plain model (`q_proj.base_layer.weight` ->
    `q_proj.weight`)."""
    return {key.replace(".base_layer.", "."): value for key, value in model.state_dict().items()
            if not is_lora(key)}


def _load_base(name: str, config: VJEPA2Config, *, remote_code: bool = True) -> torch.nn.Module:
    with quiet_transformers():
        # ignore_mismatched_sizes: the base's own classifier (another label set) is replaced by the run's.
        if not remote_code:
            return model_class(config).from_pretrained(name, config=config, ignore_mismatched_sizes=True,
                                                       use_safetensors=True)
        return AutoModelForVideoClassification.from_pretrained(name, config=config, ignore_mismatched_sizes=True,
                                                               trust_remote_code=True)


def _check_encoder(base: torch.nn.Module, run: dict[str, torch.Tensor], reference: BaseReference) -> None:
    own = base.state_dict()
    differ = [key for key in own if key.startswith("vjepa2.encoder.") and not torch.equal(own[key], run[key])]
    if differ:
        raise UserError(f"base model {reference.name} as transformers loads it does not have the encoder the run "
                        f"used ({len(differ)} weights differ, e.g. {differ[0]}): cannot release the adapter alone")


