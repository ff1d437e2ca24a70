"""The run spec: validation names the field, coercion of YAML/CLI strings, a stable run id."""

from __future__ import annotations

import pytest

from vjepa_core.errors import UserError
from vjepa_core.spec import RunSpec, config_id


def test_run_id_is_stable_and_depends_on_every_field() -> None:
    spec = RunSpec()
    assert spec.run_id == RunSpec().run_id and len(spec.run_id) == 16
    assert spec.replace(lr=2e-3).run_id != spec.run_id
    assert spec.replace(seed=1).run_id != spec.run_id
    assert RunSpec.from_dict({"lr": 1e-3}).run_id == spec.run_id  # same values, same id


def test_options_a_strategy_never_reads_do_not_split_its_runs() -> None:
    head = RunSpec(strategy="head", lora_rank=64, lora_alpha=8.0, encoder_lr_scale=0.1)
    assert (head.lora_rank, head.lora_alpha, head.encoder_lr_scale) == (16, 32.0, 1.0)
    assert head.run_id == RunSpec(strategy="head").run_id
    assert RunSpec(strategy="lora", lora_rank=64).run_id != RunSpec(strategy="lora").run_id
    assert RunSpec(strategy="lora_backbone", encoder_lr_scale=0.1).run_id == RunSpec(strategy="lora_backbone").run_id
    assert RunSpec(strategy="full", encoder_lr_scale=0.1).run_id != RunSpec(strategy="full").run_id
    assert RunSpec(strategy="lora", lora_mlp=True).run_id == RunSpec(strategy="lora").run_id
    assert RunSpec(strategy="lora_backbone", lora_mlp=True).run_id != RunSpec(strategy="lora_backbone").run_id
    with pytest.raises(UserError, match="lora_rank"):  # an impossible value is still refused
        RunSpec(strategy="head", lora_rank=0)


@pytest.mark.parametrize(("values", "field"), [
    ({"lora_rank": 0}, "lora_rank"),
    ({"lr": 0}, "lr"),
    ({"lr": -1e-3}, "lr"),
    ({"frames_per_clip": 0}, "frames_per_clip"),
    ({"epochs": "many"}, "epochs"),
    ({"strategy": "magic"}, "strategy"),
    ({"precision": "fp8"}, "precision"),
    ({"lora_dropout": 1.5}, "lora_dropout"),
    ({"augment": 3}, "augment"),
    ({"epochs": True}, "epochs"),
])
def test_bad_values_name_the_field(values: dict, field: str) -> None:
    with pytest.raises(UserError, match=field):
        RunSpec.from_dict(values)


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(UserError, match="unknown run option.*learning_rate"):
        RunSpec.from_dict({"learning_rate": 1e-3})


def test_strings_from_the_cli_are_coerced() -> None:
    spec = RunSpec.from_dict({"lr": "5e-4", "epochs": "3", "videos_per_class": "none", "augment": "false",
                              "strategy": "lora", "lora_alpha": 16})
    assert spec.lr == 5e-4 and spec.epochs == 3 and spec.videos_per_class is None
    assert spec.augment is False and spec.lora_alpha == 16.0 and isinstance(spec.lora_alpha, float)


def test_config_id_is_the_spec_without_its_seed() -> None:
    a, b, c = RunSpec(seed=0), RunSpec(seed=1), RunSpec(seed=0, lr=0.01)
    assert a.config_id == b.config_id != c.config_id
    assert a.run_id != b.run_id
    assert config_id(a.to_dict()) == a.config_id  # a warehouse row's spec dict gives the same id
