"""A V-JEPA 2.1 folder's model code, shipped as Hub remote code while transformers lacks V-JEPA 2.1.

`with_model_code(config)` returns the config with `auto_map` {"AutoModel": "modeling_vjepa_lab.VJEPA21Model",
"AutoModelForVideoClassification": "modeling_vjepa_lab.VJEPA21ForVideoClassification"} for a V-JEPA 2.1 config
(a V-JEPA 2 config is returned as it is); `write_model_code(folder, config)` writes `modeling_vjepa_lab.py` beside
it: `vjepa_core/models/vjepa21.py` as is (torch and transformers only), the classes vjepa-lab itself runs.

The config keeps `model_type: vjepa2` and the 2.1 fields named as transformers' pending port names them, so a
transformers that carries V-JEPA 2.1 reads the folder natively. Until then `from_pretrained(FOLDER,
trust_remote_code=True)` (and `pipeline(..., trust_remote_code=True)`) builds the file's classes; without
`trust_remote_code`, transformers builds its V-JEPA 2 model and warns about the 2.1 weights it does not use, as
the model card says. The same mechanism as the folder's video processor (`hub_processor`).
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

from transformers import VJEPA2Config

from vjepa_core.models.vjepa21 import is_vjepa21

MODEL_CODE = "modeling_vjepa_lab.py"
AUTO_MAP = {"AutoModel": "modeling_vjepa_lab.VJEPA21Model",
            "AutoModelForVideoClassification": "modeling_vjepa_lab.VJEPA21ForVideoClassification"}


def model_source() -> str:
    return resources.files("vjepa_core.models").joinpath("vjepa21.py").read_text()


def with_model_code(config: VJEPA2Config) -> VJEPA2Config:
    """`config` with the `auto_map` that names the folder's model code, for V-JEPA 2.1 (else `config`)."""
    if not is_vjepa21(config):
        return config
    config = copy.deepcopy(config)
    config.auto_map = {**(getattr(config, "auto_map", None) or {}), **AUTO_MAP}
    return config


def write_model_code(folder: Path, config: VJEPA2Config) -> None:
    """`modeling_vjepa_lab.py` in `folder` when `config` names it (a V-JEPA 2.1 model)."""
    if set(AUTO_MAP.items()) <= set((getattr(config, "auto_map", None) or {}).items()):
        (Path(folder) / MODEL_CODE).write_text(model_source())
