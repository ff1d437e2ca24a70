"""Matrix specs: validation (one message naming the field), expansion, ordering, ids, phase 2, summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from runner.orchestration.matrix import DEFAULT_MATRIX_FILE, load_matrix, parse_matrix, top_configurations
from vjepa_core.errors import UserError
from vjepa_core.spec import RunSpec

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_default_matrix_is_the_shipped_default_yaml() -> None:
    assert (EXPERIMENTS / "default.yaml").resolve() == DEFAULT_MATRIX_FILE.resolve()
    matrix = load_matrix(None)
    assert matrix.name == "default"
    assert matrix.matrix_id == load_matrix(EXPERIMENTS / "default.yaml").matrix_id
    cells = [(s.model, s.strategy, s.videos_per_class) for s in matrix.runs]
    strategies = ("head", "pooler_head", "lora", "pooler_head_lora", "full", "scratch")
    assert cells == [("tiny-jepa", s, n) for n in (10, 40) for s in strategies] + [("tiny", "head", 40)]
    assert {s.data for s in matrix.runs} == {"synthetic"}
    same_recipe = {(s.epochs, s.encoder_lr_scale, s.lr) for s in matrix.runs if s.strategy in ("full", "scratch")}
    assert same_recipe == {(10, 0.1, 1e-3)}  # pretrained vs scratch: only the initial weights differ
    # One test set for every run, sized by the planner: 90 test, 20 validation, 40 training videos per class.
    assert {(s.val_fraction, s.test_fraction) for s in matrix.runs} == {(0.134, 0.6)}


@pytest.mark.parametrize("name", ["default", "quick", "strategies", "data_scaling", "frames", "lora_sweep",
                                  "vjepa2_probe", "backbones"])
def test_example_specs_parse(name: str) -> None:
    matrix = load_matrix(EXPERIMENTS / f"{name}.yaml")
    assert matrix.name == name
    assert len({s.run_id for s in matrix.runs}) == len(matrix.runs)


def test_the_backbone_study_differs_only_in_the_backbone() -> None:
    matrix = load_matrix(EXPERIMENTS / "backbones.yaml")
    models = ("facebook/vjepa2-vitl-fpc64-256", "vjepa2_1_vit_base_384", "vjepa2_1_vit_large_384")
    strategies = ("head", "pooler_head", "lora", "pooler_head_lora", "lora_backbone")
    assert sorted((s.model, s.strategy, s.seed) for s in matrix.runs) == sorted(
        (m, st, seed) for m in models for st in strategies for seed in (0, 1, 2))
    recipe = {(s.videos_per_class, s.frames_per_clip, s.epochs, s.lr, s.batch_size) for s in matrix.runs}
    assert recipe == {(40, 16, 20, 1e-3, 8)}


def test_the_official_probe_sweep_is_one_joint_group_chosen_on_validation() -> None:
    from vjepa_core.spec import ExecOptions
    from vjepa_core.training.joint import joint_groups

    matrix = load_matrix(EXPERIMENTS / "vjepa2_probe.yaml", {"model": "small"})  # a CLI flag over the base
    assert sorted((s.lr, s.weight_decay) for s in matrix.runs) == sorted(
        (lr, wd) for lr in (5e-3, 3e-3, 1e-3, 3e-4, 1e-4) for wd in (0.01, 0.1, 0.4, 0.8))
    assert {(s.model, s.strategy, s.feature_layers, s.pooler_layers, s.warmup_ratio, s.schedule, s.grad_clip)
            for s in matrix.runs} == {("small", "pooler_head", (-7, -5, -3, -1), 3, 0.0, "cosine", 0.0)}
    assert [len(group) for group in joint_groups(matrix.runs, ExecOptions())] == [20]
    assert matrix.phase2 is not None and (matrix.phase2.top_k, matrix.phase2.by) == (1, "best_val_acc")
    results = pd.DataFrame({"run_id": [s.run_id for s in matrix.runs], "status": "success",
                            "best_val_acc": [0.9 if s.lr == 1e-3 and s.weight_decay == 0.4 else 0.5
                                             for s in matrix.runs],
                            "test_acc": [0.9 if s.lr == 5e-3 else 0.1 for s in matrix.runs]})  # never read
    chosen = matrix.phase2_runs(results)
    assert {(s.lr, s.weight_decay, s.seed) for s in chosen} == {(1e-3, 0.4, seed) for seed in (0, 1, 2)}


def test_lora_sweep_is_the_union_of_its_grids_with_alpha_from_the_ratio() -> None:
    matrix = load_matrix(EXPERIMENTS / "lora_sweep.yaml")
    # 5 lr x 4 ranks, + 5 lr x ratios 1 and 4 at rank 16, + 3 lr at dropout 0.1: duplicates run once
    assert len(matrix.runs) == 20 + 10 + 3
    assert {(s.lora_rank, s.lora_alpha) for s in matrix.runs if s.lora_dropout == 0.05 and s.lr == 1e-4} == {
        (8, 16.0), (16, 32.0), (32, 64.0), (64, 128.0), (16, 16.0), (16, 64.0)}
    assert matrix.phase2 is not None and matrix.phase2.top_k == 3
    assert matrix.phase2.overrides == {"videos_per_class": (16,), "seed": (0, 1, 2)}


def test_expansion_is_cartesian_in_axis_order_with_aliases() -> None:
    matrix = parse_matrix({"base": {"epochs": 1}, "axes": {"strategies": ["head", "lora"], "seeds": [0, 1],
                                                           "lr": [1e-3]}})
    assert [(s.strategy, s.seed) for s in matrix.runs] == [("head", 0), ("head", 1), ("lora", 0), ("lora", 1)]
    assert all(s.epochs == 1 and s.lr == 1e-3 for s in matrix.runs)
    assert [s.run_id for s in matrix.runs] == [
        RunSpec(strategy=st, seed=se, epochs=1, lr=1e-3).run_id for st in ("head", "lora") for se in (0, 1)]


def test_an_axis_a_strategy_ignores_does_not_repeat_its_runs() -> None:
    matrix = parse_matrix({"axes": {"strategies": ["head", "lora"], "lora_rank": [8, 32]}})
    assert [(s.strategy, s.lora_rank) for s in matrix.runs] == [("head", 16), ("lora", 8), ("lora", 32)]


def test_runs_are_grouped_by_data_setting_so_data_is_prepared_once_per_group() -> None:
    matrix = parse_matrix({"axes": {"strategies": ["head", "lora"], "videos_per_class": [4, 8]},
                           "include": [{"strategy": "full", "videos_per_class": 4}]})
    assert [(s.strategy, s.videos_per_class) for s in matrix.runs] == [
        ("head", 4), ("lora", 4), ("full", 4), ("head", 8), ("lora", 8)]


def test_include_exclude_and_duplicates() -> None:
    matrix = parse_matrix({"axes": {"strategies": ["head", "lora", "full"], "seeds": [0, 1]},
                           "exclude": [{"strategy": "full", "seed": 1}],
                           "include": [{"strategy": "head", "seed": 0}, {"strategy": "scratch"}]})
    assert [(s.strategy, s.seed) for s in matrix.runs] == [
        ("head", 0), ("head", 1), ("lora", 0), ("lora", 1), ("full", 0), ("scratch", 0)]


def test_matrix_id_is_stable_and_depends_on_runs_name_and_phase2() -> None:
    spec = {"name": "a", "axes": {"strategies": ["head", "lora"]}}
    same = {"name": "a", "axes": {"strategies": ["lora", "head"]}}  # same runs, other order
    assert parse_matrix(spec).matrix_id == parse_matrix(same).matrix_id
    ids = {parse_matrix(spec).matrix_id, parse_matrix({**spec, "name": "b"}).matrix_id,
           parse_matrix({**spec, "base": {"epochs": 2}}).matrix_id,
           parse_matrix({**spec, "phase2": {"top_k": 1, "set": {"seeds": [0, 1]}}}).matrix_id}
    assert len(ids) == 4


def test_cli_overrides_lay_over_base_but_not_over_axes() -> None:
    matrix = parse_matrix({"base": {"epochs": 5}, "axes": {"strategies": ["head"]}}, overrides={"epochs": 1})
    assert matrix.runs[0].epochs == 1
    with pytest.raises(UserError, match=r"^--strategy: the matrix spec already varies this"):
        parse_matrix({"axes": {"strategies": ["head"]}}, overrides={"strategy": "lora"})


@pytest.mark.parametrize(("spec", "message"), [
    ({"axes": {"strategies": ["head"]}, "bogus": 1}, r"^matrix spec: unknown key\(s\) bogus"),
    ({"base": {"epoch": 3}}, r"^base: unknown run option\(s\): epoch \(known: .*\); did you mean epochs\?$"),
    ({"base": {"lr": "fast"}}, r"^base: lr: expected float, got 'fast'"),
    ({"base": {"epochs": 0}}, r"^base: epochs must be at least 1, got 0"),
    ({"base": []}, r"^base: expected a mapping"),
    ({"axes": {"lr": []}}, r"^axes\.lr: expected a non-empty list, got \[\]"),
    ({"axes": {"lr": 0.001}}, r"^axes\.lr: expected a non-empty list, got 0\.001"),
    ({"axes": {"learning_rate": [1e-3]}}, r"^axes\.learning_rate: unknown run option"),
    ({"axes": [{"lr": [1e-3]}, {"rank": [8]}]}, r"^axes\[1\]\.rank: unknown run option .*\)$"),
    ({"axes": {"lora_r": [4]}}, r"^axes\.lora_r: unknown run option .*; did you mean lora_rank\?$"),
    ({"bases": {"epochs": 1}}, r"^matrix spec: unknown key\(s\) bases .*; did you mean base\?$"),
    ({"axes": {"lr": [1e-3, -1.0]}}, r"^run lr=-1\.0: lr must be > 0, got -1\.0"),
    ({"axes": {"strategies": ["head", "hed"]}}, r"^run strategies=hed: strategy: unknown 'hed'.*did you mean head\?$"),
    ({"axes": {"lora_dropout": [0.1, 1.5]}}, r"^run lora_dropout=1\.5: lora_dropout is out of range"),
    ({"axes": {"lora_alpha_ratio": [0]}}, r"lora_alpha_ratio: expected a number > 0, got 0"),
    ({"axes": {"strategies": ["head"]}, "exclude": [{"strategy": "head"}]}, r"^matrix spec expands to no runs"),
    ({"axes": {"seeds": [0]}, "phase2": {"top_k": 0}}, r"^phase2\.top_k: expected an integer >= 1, got 0"),
    ({"axes": {"seeds": [0]}, "phase2": {"by": "test_acc"}}, r"^phase2\.by: expected one of best_val_acc"),
    ({"axes": {"seeds": [0]}, "phase2": {"set": {"videos_per_class": 0}}},
     r"^phase2\.set: videos_per_class must be at least 1"),
    ({"axes": {"seeds": [0]}, "phase2": {"sets": {}}}, r"^phase2: unknown key\(s\) sets"),
    ({"name": ""}, r"^name: expected a non-empty string"),
])
def test_bad_specs_fail_with_one_line_naming_the_field(spec: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        parse_matrix(spec)
    assert "\n" not in str(info.value)


def test_bad_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_matrix(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\naxes: [unclosed\n")
    with pytest.raises(UserError, match=r"not valid YAML: line 3, column 1: expected ',' or ']'"):
        load_matrix(broken)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 text \(byte 0xe9 at offset 16\); save it as UTF-8"):
        load_matrix(latin1)
    options_on_top = tmp_path / "flat.yaml"
    options_on_top.write_text("strategies: [head, lora]\nepochs: 3\n")
    with pytest.raises(UserError, match="epochs, strategies are run options: put one value under base: or a list"):
        load_matrix(options_on_top)
    comments_only = tmp_path / "empty.yaml"
    comments_only.write_text("# axes to come\n")
    with pytest.raises(UserError, match="is empty"):
        load_matrix(comments_only)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_a_study_file_reads_as_utf8_or_with_a_utf16_bom(tmp_path: Path, encoding: str) -> None:
    study = tmp_path / "study.yaml"
    study.write_text("name: café\naxes:\n  seeds: [0, 1]\n", encoding=encoding)  # Notepad: BOM, UTF-16
    assert load_matrix(study).name == "café"


def test_phase2_takes_top_configurations_by_mean_val_accuracy_over_seeds() -> None:
    matrix = parse_matrix({"base": {"strategy": "lora", "epochs": 1}, "axes": {"lr": [1e-4, 1e-3, 1e-2],
                                                                              "seeds": [0, 1]},
                           "phase2": {"top_k": 2, "set": {"videos_per_class": [4, 8], "seeds": [0, 5]}}})
    val = {(1e-4, 0): 0.9, (1e-4, 1): 0.1, (1e-3, 0): 0.6, (1e-3, 1): 0.6, (1e-2, 0): 0.55, (1e-2, 1): 0.52}
    results = pd.DataFrame([{"run_id": s.run_id, "status": "success", "best_val_acc": val[(s.lr, s.seed)]}
                            for s in matrix.runs])
    best = top_configurations(matrix.runs, results, top_k=2, by="best_val_acc")
    assert [s.lr for s in best] == [1e-3, 1e-2]  # means 0.6 and 0.535 beat 0.5
    phase2 = matrix.phase2_runs(results)
    assert sorted((s.lr, s.videos_per_class, s.seed) for s in phase2) == sorted(
        (lr, vpc, seed) for lr in (1e-3, 1e-2) for vpc in (4, 8) for seed in (0, 5))
    failed = results.assign(status=["failed"] * 2 + ["success"] * 4)  # lr 1e-4 failed: not a candidate
    assert [s.lr for s in top_configurations(matrix.runs, failed, top_k=5, by="best_val_acc")] == [1e-3, 1e-2]


def test_the_summary_keeps_one_strategy_on_two_models_apart() -> None:
    """The default study runs `head` on tiny-jepa and on tiny: two rows, never one mean over both."""
    from runner.commands.matrix import summary_table
    from runner.orchestration.matrix import summary_frame

    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "status": "success", "strategy": "head",
                         "model": ["preset:tiny-jepa", "preset:tiny", "preset:tiny-jepa"],
                         "videos_per_class": [40, 40, 10], "frames_per_clip": 16, "test_acc": [0.8, 0.2, 0.7],
                         "trainable_params": 774, "train_seconds": 5.0})
    frame = summary_frame(runs)
    assert sorted(zip(frame["model"], frame["videos_per_class"], frame["test_acc_mean"], frame["n"],
                      strict=True)) == [("preset:tiny", 40, 0.2, 1), ("preset:tiny-jepa", 10, 0.7, 1),
                                        ("preset:tiny-jepa", 40, 0.8, 1)]
    table = summary_table(frame, title="t")
    assert list(table.columns[0].cells) == ["head on tiny-jepa", "head on tiny"]
