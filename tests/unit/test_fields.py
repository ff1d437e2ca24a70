"""Options declared once: the spec fields' declarations, and what is derived from them (checks, flags, commands)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer
from typer.testing import CliRunner

import demo.__main__
from demo.options import DemoOptions
from runner.app import with_exec_options
from runner.cli import app as runner_app
from runner.options import option_group, set_flags, spec_parameters, user_errors, with_spec_options
from vjepa_core.errors import UserError
from vjepa_core.fields import Option, allowed, command_line, declared, hints
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.spec import (
    COLUMN_FIELDS,
    PER_RUN_FIELDS,
    RUN_OPTIONS,
    SWEPT_FIELDS,
    ExecOptions,
    RunSpec,
    reads_option,
    spec_columns,
)
from vjepa_core.store.schema import schema_sql
from vjepa_core.training.features import default_workers


def test_the_declarations_say_what_the_hand_kept_lists_said() -> None:
    """The lists each option once had to be added to by hand (main at 459f88c), now read off the fields."""
    assert set(PER_RUN_FIELDS) == {"strategy", "lr", "weight_decay", "schedule", "warmup_ratio", "grad_clip",
                                   "label_smoothing", "epochs", "early_stopping_patience", "accumulation_steps",
                                   "encoder_lr_scale", "lora_rank", "lora_alpha", "lora_dropout", "lora_mlp"}
    assert set(RUN_OPTIONS) - set(SWEPT_FIELDS) == {"seed", "data", "split_seed"}
    assert [name for name, o in RUN_OPTIONS.items() if o.added] == ["feature_layers", "pooler_layers"]
    assert COLUMN_FIELDS == ("strategy", "model", "videos_per_class", "frames_per_clip", "frame_stride", "epochs",
                             "batch_size", "accumulation_steps", "lr", "weight_decay", "lora_rank", "lora_alpha",
                             "lora_dropout", "seed", "precision")
    assert all(o.help for spec in (RunSpec, PretrainSpec) for o in declared(spec).values())
    spec = RunSpec(strategy="lora", lr=3e-4, seed=2)
    assert spec_columns(spec)["lr"] == 3e-4 and spec_columns(spec)["seed"] == 2 and len(spec_columns(spec)) == 15


# The warehouse types a spec field's Python type may land in.
COLUMN_TYPES = {int: ("INTEGER", "BIGINT"), float: ("DOUBLE",), str: ("VARCHAR",), bool: ("BOOLEAN",)}


def test_every_field_declared_a_column_has_its_column_in_the_warehouse_schema() -> None:
    """schema.sql (the current version; migrations bring older files to it) has each `column=True` field."""
    with duckdb.connect(":memory:") as conn:
        conn.execute(schema_sql())
        columns = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_name = 'runs'").fetchall())
    for name in COLUMN_FIELDS:
        assert name in columns, f"RunSpec.{name} is declared column=True but runs has no column {name}"
        kinds = {type(a) if not isinstance(a, type) else a for a in allowed(hints(RunSpec)[name])} - {type(None)}
        assert all(columns[name] in COLUMN_TYPES[kind] for kind in kinds), (name, columns[name])


def test_which_strategies_read_an_option_follows_what_they_train() -> None:
    assert reads_option("lora", "lora_rank") and not reads_option("head", "lora_rank")
    assert reads_option("lora_backbone", "lora_mlp") and not reads_option("pooler_head_lora", "lora_mlp")
    assert reads_option("full", "encoder_lr_scale") and not reads_option("lora_backbone", "encoder_lr_scale")
    assert reads_option("head", "lr") and reads_option("no_such_strategy", "lora_rank")  # unknown: assume it does


@pytest.mark.parametrize(("declaration", "value", "message"), [
    (Option("h", at_least=1), 0, "x must be at least 1, got 0"),
    (Option("h", above=0), -1.0, "x must be > 0, got -1.0"),
    (Option("h", above=0), float("nan"), "x must be > 0, got nan"),
    (Option("h", at_most=1), 2, "x must be at most 1, got 2"),
    (Option("h", at_least=0, below=1), 1.5, "x is out of range: 1.5 (expected 0 <= x < 1)"),
    (Option("h", above=0, at_most=1), 0.0, "x is out of range: 0.0 (expected 0 < x <= 1)"),
])
def test_bounds_name_the_field_and_what_it_takes(declaration: Option, value: Any, message: str) -> None:
    assert declaration.bounds_error("x", value) == message
    assert declaration.bounds_error("x", None) is None  # an optional field left unset
    assert declaration.bounds_error("x", True) is None  # a bool is type-checked, not bounded


@pytest.mark.parametrize(("values", "message"), [
    ({"epochs": "0"}, "epochs must be at least 1, got 0"),
    ({"lr": "fast"}, "lr: expected float, got 'fast'"),
    ({"crop_scale": 0}, r"crop_scale is out of range: 0.0 \(expected 0 < crop_scale <= 1\)"),
    ({"ema_start": 0.9, "ema_end": 0.5}, r"ema_end is out of range: 0.5 \(need ema_start <= ema_end <= 1\)"),
    ({"precision": "fp8"}, "precision: expected 'auto'"),
    ({"epoch": 3}, r"unknown pretraining option\(s\): epoch"),
    ({"masks": "8x"}, "masks"),
])
def test_pretraining_options_are_checked_as_run_options_are(values: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message):
        PretrainSpec.from_dict(values)


def test_pretraining_options_are_coerced_as_run_options_are() -> None:
    spec = PretrainSpec.from_dict({"epochs": "3", "lr": 1, "crop_scale": "0.5"})
    assert (spec.epochs, spec.lr, spec.crop_scale) == (3, 1.0, 0.5) and isinstance(spec.lr, float)


def _parsed(spec_class: type, command: str, program: str) -> Any:
    """Parse `command` with the runner's generated options for `spec_class`, as a command receives them."""
    seen: dict[str, Any] = {}
    app = typer.Typer()

    @app.command()
    @option_group(spec_parameters(spec_class, panel="Options"), set_flags, "overrides")
    def main(overrides: dict[str, Any] | None = None) -> None:
        seen["spec"] = spec_class.from_dict(overrides or {})

    args = shlex.split(command)
    assert args[:2] == program.split()
    result = CliRunner().invoke(app, args[2:])
    assert result.exit_code == 0, result.output
    return seen["spec"]


@pytest.mark.parametrize("spec", [
    RunSpec(),
    RunSpec(strategy="lora_backbone", lora_mlp=True, augment=False, lr=1 / 3, videos_per_class=4,
            feature_layers=(-3, -1), data="my videos/", precision="bf16", schedule="constant"),
    RunSpec(strategy="pooler_head", pooler_layers=0, hflip=False, label_smoothing=0.1),
])
def test_the_reproduce_command_takes_the_flags_the_cli_has(spec: RunSpec) -> None:
    command = command_line(RunSpec, spec.to_dict(), "runner run")
    rebuilt = _parsed(RunSpec, command, "runner run")
    assert rebuilt == spec and rebuilt.run_id == spec.run_id


@pytest.mark.parametrize("spec", [PretrainSpec(), PretrainSpec(masks="4x0.15/0.5", lr=1 / 3, probe_data="a b/")])
def test_pretraining_flags_come_from_the_same_generator(spec: PretrainSpec) -> None:
    command = command_line(PretrainSpec, spec.to_dict(), "runner pretrain")
    assert _parsed(PretrainSpec, command, "runner pretrain").pretrain_id("fp") == spec.pretrain_id("fp")


def test_run_commands_get_only_the_flags_given() -> None:
    seen: dict[str, Any] = {}
    app = typer.Typer()

    @app.command()
    @with_spec_options
    def run(overrides: dict[str, Any] | None = None) -> None:
        seen.update(overrides or {})

    result = CliRunner().invoke(app, ["--epochs", "2", "--no-augment", "--feature-layers=-1,-3"])
    assert result.exit_code == 0, result.output
    assert seen == {"epochs": 2, "augment": False, "feature_layers": "-1,-3"}  # YAML values underneath stay


def _executed(*args: str) -> tuple[int, str, ExecOptions | None]:
    """A command with the execution flags of `runner run` and `run-matrix`, invoked with `args`."""
    seen: dict[str, ExecOptions] = {}
    app = typer.Typer()

    @app.command()
    @user_errors
    @with_exec_options("cache", "joint")
    def main(execution: ExecOptions | None = None) -> None:
        assert execution is not None
        seen["options"] = execution

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output, seen.get("options")


def test_execution_flags_are_generated_from_the_fields() -> None:
    code, output, options = _executed("--device", "cpu", "--workers", "2", "-q", "--checkpoint-dtype", "fp16",
                                      "--no-cache", "--joint", "3")
    assert code == 0, output
    assert options == ExecOptions(device="cpu", num_workers=2, progress=False, checkpoint_dtype="fp16", cache=False,
                                  joint=3)
    assert _executed()[2] == ExecOptions(num_workers=default_workers())  # unset --workers: the runner picks


@pytest.mark.parametrize(("args", "message"), [
    (["--checkpoint-dtype", "int8"], "checkpoint_dtype: expected 'auto' | 'fp32' | 'fp16' | 'bf16', got 'int8'"),
    (["--joint", "0"], "joint must be at least 1, got 0"),
    (["--workers", "-1"], "num_workers must be at least 0, got -1"),
])
def test_bad_execution_flags_are_one_line_naming_the_field(args: list[str], message: str) -> None:
    code, output, _ = _executed(*args)
    assert code == 2 and output == f"error: {message}\n"


@pytest.mark.parametrize(("argv", "expected"), [
    ([], DemoOptions()),
    (["--checkpoints", "ckpts", "--port", "8000", "--share", "--auth", "ann:pw", "--max-mb", "5", "--engine", "fp32"],
     DemoOptions(checkpoints=Path("ckpts"), port=8000, share=True, auth="ann:pw", max_mb=5.0, engine="fp32")),
    (["--results", "res", "--warehouse", "w.duckdb", "--host", "0.0.0.0", "--max-seconds", "30.5"],
     DemoOptions(results=Path("res"), warehouse=Path("w.duckdb"), host="0.0.0.0", max_seconds=30.5)),
])
def test_runner_demo_and_python_m_demo_take_the_same_options(argv: list[str], expected: DemoOptions,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[DemoOptions] = []
    monkeypatch.setattr(demo.__main__, "serve", served.append)
    assert demo.__main__.main(argv) == 0
    result = CliRunner().invoke(runner_app, ["demo", *argv])
    assert result.exit_code == 0, result.output
    assert served == [expected, expected]
