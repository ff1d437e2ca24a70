"""How a trained model runs at inference: `--engine` (fp32 eager, quantized, exported), prepared once per weights.

- `base`: model parts (`classifier`: pixels -> logits; `encoder`: pixels -> tokens), the `Engine` interface,
  the registry.
- `eager`: `fp32` (the reference), `bf16` / `fp16` autocast, `torch-int8` (torch.ao dynamic quantization).
- `onnx`: `ort-fp32`, `ort-int8` (ONNX Runtime; the encoder's weight matmuls in int8 blocks of 128).
- `openvino`: `openvino-fp32`, `openvino-int8` (NNCF int8 weights, dynamically quantized activations).
- `check`: probe clips and the agreement of an engine's outputs with fp32's.
- `store`: prepared engines on disk, keyed by the weights; bounded, listable, clearable.
- `prepare`: `prepare_engine(...)` -> `PreparedEngine`, with `auto`, the cache and the fallback to fp32.
"""

from vjepa_core.inference.engines import eager, onnx, openvino  # noqa: F401 (each registers its engines)
from vjepa_core.inference.engines.base import ENGINES, PARTS, EngineUnfit, model_part
from vjepa_core.inference.engines.prepare import (
    AUTO,
    AUTO_CPU,
    ENGINE_ENV,
    PreparedEngine,
    Probes,
    candidates,
    check_engine_name,
    default_engine,
    engine_names,
    prepare_engine,
    resolve_engine,
)

__all__ = [
    "AUTO",
    "AUTO_CPU",
    "ENGINE_ENV",
    "ENGINES",
    "PARTS",
    "EngineUnfit",
    "PreparedEngine",
    "Probes",
    "candidates",
    "check_engine_name",
    "default_engine",
    "engine_names",
    "model_part",
    "prepare_engine",
    "resolve_engine",
]
