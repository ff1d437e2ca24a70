"""V-JEPA 2 models and where they run.

- `loading`: hub ids, local `save_pretrained` folders and offline presets -> a
  `transformers.VJEPA2ForVideoClassification`; weight fingerprints and parameter counts.
- `device`: device auto-detection, autocast precision, peak memory.
"""

from vjepa_core.models.loading import (
    PRESET_COMMON,
    PRESETS,
    base_fingerprint,
    count_parameters,
    describe_model,
    encoder_fingerprint,
    load_config,
    load_model,
    tokens_per_clip,
    weights_fingerprint,
)

__all__ = [
    "PRESET_COMMON",
    "PRESETS",
    "base_fingerprint",
    "count_parameters",
    "describe_model",
    "encoder_fingerprint",
    "load_config",
    "load_model",
    "tokens_per_clip",
    "weights_fingerprint",
]
