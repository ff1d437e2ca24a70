"""How a trained model runs at inference: `--engine` (fp32 eager, autocast, int8), prepared once per weights.

Importing this package registers every engine (`base.ENGINES`) without importing torch: names, help texts and
`auto`'s orders come from here. Preparing an engine is `vjepa_core.inference.engines.prepare.prepare_engine`.
"""

from vjepa_core.inference.engines import eager, onnx, openvino  # noqa: F401 (each registers its engines)
from vjepa_core.inference.engines.base import (
    AUTO,
    CPU,
    ENGINE_ENV,
    ENGINES,
    REFERENCE,
    SPACE,
    EngineUnfit,
    auto_help,
    auto_order,
    check_engine_name,
    default_engine,
    engine_help,
    engine_names,
    space_choices,
)

__all__ = [
    "AUTO",
    "CPU",
    "ENGINES",
    "ENGINE_ENV",
    "REFERENCE",
    "SPACE",
    "EngineUnfit",
    "auto_help",
    "auto_order",
    "check_engine_name",
    "default_engine",
    "engine_help",
    "engine_names",
    "space_choices",
]
