"""What a released file needs, from its imports: the rule behind a Space's requirements.txt and a card's
`pip install` line. (Each artifact installed from exactly its list and run: tests/apps/test_release_space.py,
tests/integration/test_release_environments.py.)"""

from __future__ import annotations

from importlib import metadata

import pytest

from vjepa_core.release.requirements import distributions, imports_of, pinned

SOURCE = '''
from __future__ import annotations
import json, os.path
import numpy as np
from transformers.pipelines import pipeline
from . import sibling
from decoder_errors import decoder_reason

try:
    import onnxruntime
except (ModuleNotFoundError, OSError):
    onnxruntime = None

try:
    import yaml
except KeyError:
    pass


def late() -> None:
    from peft import PeftModel
'''


def test_imports_are_top_level_names_anywhere_and_guarded_ones_are_optional() -> None:
    found = imports_of(SOURCE)
    assert found.required == {"json", "os.path", "numpy", "transformers.pipelines.pipeline",
                              "decoder_errors.decoder_reason", "yaml", "peft.PeftModel"}
    assert found.modules == {"json", "os", "numpy", "transformers", "decoder_errors", "yaml", "peft"}
    assert found.optional == {"onnxruntime"}  # guarded by an ImportError handler; yaml's handler is not one


def test_distributions_skip_the_standard_library_and_local_modules_and_add_runtime_needs() -> None:
    imported = imports_of(SOURCE).required
    assert distributions(imported, local={"decoder_errors"}) == ["numpy", "peft", "pyyaml", "torch", "torchcodec",
                                                                 "torchvision", "transformers"]
    assert distributions({"torch", "json"}) == ["torch"]  # torch needs nothing it does not require
    # The video-classification pipeline refuses to start without PyAV; `transformers.pipelines.pipeline` is not
    # that name, the card's `from transformers import pipeline` is.
    assert "av" in distributions(imports_of("from transformers import pipeline").required)


def test_a_module_nothing_installed_provides_is_an_error() -> None:
    with pytest.raises(LookupError, match="'decoder_errors'"):
        distributions({"decoder_errors"})


def test_pins_are_the_installed_versions_without_local_tags() -> None:
    (torch,) = pinned(["torch"])
    assert torch == f"torch=={metadata.version('torch').split('+')[0]}" and "+" not in torch
