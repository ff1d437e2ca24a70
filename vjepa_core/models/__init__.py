"""V-JEPA 2 models and where they run.

- `loading`: hub ids, local `save_pretrained` folders and offline presets -> a
  `transformers.VJEPA2ForVideoClassification`; weight fingerprints and parameter counts.
- `layers`: which encoder blocks feed the pooler, and the pooler's depth (the official probe recipe).
- `device`: device auto-detection, autocast precision, peak memory.
"""

from vjepa_core.models.layers import feature_layers, resolve_layers
from vjepa_core.models.loading import (
    PRESET_COMMON,
    PRESETS,
    base_fingerprint,
    check_run_model,
    count_parameters,
    describe_model,
    encoder_fingerprint,
    load_config,
    load_model,
    load_run_model,
    release_bytes,
    tokens_per_clip,
    weights_fingerprint,
)

__all__ = [
    "PRESET_COMMON",
    "PRESETS",
    "base_fingerprint",
    "check_run_model",
    "count_parameters",
    "describe_model",
    "encoder_fingerprint",
    "feature_layers",
    "load_config",
    "load_model",
    "load_run_model",
    "release_bytes",
    "resolve_layers",
    "tokens_per_clip",
    "weights_fingerprint",
]
