"""Run, configuration, matrix and pretraining ids of known specs, as literal hashes.

The warehouse, the checkpoints and the token cache are keyed by these ids: a change that moves one
re-keys every stored result silently (a finished run would train again, a dashboard row split in two).
The literals were computed on main at 459f88c, before the run options were declared as field metadata.
A new run option keeps them by being left out of the id at its default (`added` in its metadata).
"""

from __future__ import annotations

import pytest

from runner.orchestration.matrix import parse_matrix
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.spec import RunSpec

PINNED = [  # (spec values, run_id, config_id)
    ({}, "cb121bf5a5123cbc", "01fe44046f077913"),
    ({"strategy": "lora", "lora_rank": 8, "lora_alpha": 16.0, "lora_dropout": 0.1, "lr": 3e-4},
     "893b2464255e33ee", "982eab5ac86e9e82"),
    ({"strategy": "lora_backbone", "lora_mlp": True, "encoder_lr_scale": 0.5}, "a74522706b14a9c9", "1d14d5376201229a"),
    ({"strategy": "pooler_head", "feature_layers": (-1, -3), "pooler_layers": 2}, "fcab48a7918efcb3",
     "451a9980cecfb83f"),
    # head reads none of these: they are reset, and the ids are plain head's
    ({"strategy": "head", "lora_rank": 64, "lora_alpha": 8.0, "lora_mlp": True, "pooler_layers": 3,
      "encoder_lr_scale": 0.5}, "c177aa4289fba698", "ce453a2932c943a5"),
    ({"strategy": "full", "videos_per_class": 4, "frames_per_clip": 8, "epochs": 2, "seed": 1, "data": "/videos/x",
      "precision": "fp32"}, "58d004c94472e28d", "bc31df0da8f75b67"),
]


@pytest.mark.parametrize(("values", "run_id", "config_id"), PINNED)
def test_known_specs_keep_their_run_and_config_ids(values: dict, run_id: str, config_id: str) -> None:
    spec = RunSpec.from_dict(values)
    assert (spec.run_id, spec.config_id) == (run_id, config_id)


def test_a_known_matrix_keeps_its_id() -> None:
    matrix = parse_matrix({"name": "pin", "base": {"epochs": 2}, "axes": {"strategies": ["head", "lora"],
                                                                          "seeds": [0, 1]},
                           "phase2": {"top_k": 1, "set": {"seeds": [2]}}})
    assert [spec.run_id for spec in matrix.runs] == ["2ab5ca49c1500fe6", "dde9f9c5720fa2c3", "ee48918054b854fb",
                                                     "021b17419001148f"]
    assert matrix.matrix_id == "f4ba29a8dbed426b"


def test_known_pretraining_specs_keep_their_ids() -> None:
    assert PretrainSpec().pretrain_id("abc123") == "54c4092fc33f6b81"
    spec = PretrainSpec(epochs=3, masks="4x0.15/0.5", lr=1e-3, probe_data="lab")
    assert spec.pretrain_id("fp") == "ed731d8dbf7d1c80"
