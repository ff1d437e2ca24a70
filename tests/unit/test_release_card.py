"""The model card carries the warehouse's figures: a Hub-valid YAML header that huggingface_hub parses back to
the same test accuracy, and a body whose interval, chance test, per-class scores, matrix place and McNemar p are
those of vjepa-lab's statistics on the same rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from PIL import Image

from tests.release_support import LABELS, MATRIX, TEST_VIDEOS, fake_spec, write_rows
from vjepa_core.analysis.stats import chance_test, compare_predictions, wilson_interval
from vjepa_core.fields import command_line
from vjepa_core.release.adapter import BaseReference
from vjepa_core.release.card import Released, describe_base, model_card
from vjepa_core.release.evidence import accuracy_figures, matrix_place, read_evidence
from vjepa_core.release.figures import confusion_grid, write_confusion_png
from vjepa_core.spec import RunSpec

PRE = {"crop_size": 64, "resize_shortest_edge": 73, "frames_per_clip": 4, "frame_stride": 2, "eval_clips": 1,
       "eval_crops": 1, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def released(**changes: object) -> Released:
    values = {"labels": LABELS, "preprocessing": PRE, "dtype": "fp32", "folder_name": "out",
              "release_command": "runner release abc out",
              "max_logit_delta": 4.8e-7, **changes}
    return Released(**values)  # type: ignore[arg-type]


def saved(card: ModelCard, tmp_path: Path) -> ModelCard:
    card.save(tmp_path / "README.md")
    return ModelCard.load(tmp_path / "README.md")


def test_header_parses_back_to_the_warehouse_accuracy(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "lora", model="facebook/vjepa2-vitl-fpc16-256-ssv2")
    write_rows(tmp_path / "w.duckdb", spec, correct=9, val_acc=0.7, matrix=None)
    evidence = read_evidence(tmp_path / "w.duckdb", spec.run_id)
    card = saved(model_card(evidence, released()), tmp_path)
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "video-classification"
    assert data.base_model == "facebook/vjepa2-vitl-fpc16-256-ssv2"
    assert data.to_dict()["base_model_relation"] == "finetune"
    assert {"lora", "peft", "vjepa2", "video-classification"} <= set(data.tags)
    assert data.metrics == ["accuracy", "f1"]
    name, results = model_index_to_eval_results(data.to_dict()["model-index"])
    accuracy = {r.metric_type: r.metric_value for r in results}
    assert accuracy["accuracy"] == pytest.approx(evidence.run["test_acc"], abs=1e-6) == 0.75
    assert accuracy["f1"] == pytest.approx(evidence.run["test_macro_f1"], abs=1e-6)
    assert all(r.dataset_split == "test" and r.task_type == "video-classification" for r in results)
    assert name == data.model_name
    assert [r.metric_value for r in data.eval_results] == [r.metric_value for r in results]


def test_a_preset_base_is_described_not_linked(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "head", model="tiny-jepa", data="synthetic")
    write_rows(tmp_path / "w.duckdb", spec, correct=9, val_acc=0.7, matrix=None)
    card = saved(model_card(read_evidence(tmp_path / "w.duckdb", spec.run_id), released(synthetic_data=True)),
                 tmp_path)
    assert card.data.base_model is None  # a preset is no hub id: the body says what it is
    assert "preset `tiny-jepa`" in card.text and "pretrained offline by vjepa-lab" in card.text
    assert "synthetic-data" in card.data.tags and "says nothing about real footage" in card.text
    assert "random weights from a fixed seed" in describe_base("tiny")
    assert "random initial weights" in describe_base("tiny-jepa", random_init=True)


def test_body_gives_interval_chance_p_and_per_class_scores(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "head")
    write_rows(tmp_path / "w.duckdb", spec, correct=7, val_acc=0.7, matrix=None)
    evidence = read_evidence(tmp_path / "w.duckdb", spec.run_id)
    text = model_card(evidence, released()).text
    low, high = wilson_interval(7, TEST_VIDEOS)
    chance = chance_test(7, TEST_VIDEOS, [4, 4, 4])
    assert f"({7} of {TEST_VIDEOS} test videos)" in text
    assert f"{100 * low:.1f}% to {100 * high:.1f}%" in text
    assert f"Chance level {100 * chance.chance:.1f}%" in text and f"p = {chance.p_value:.2g}" in text
    figures = accuracy_figures(evidence)
    assert (figures.correct, figures.total) == (7, TEST_VIDEOS)
    for row in evidence.class_metrics.itertuples():
        assert f"| {row.class_name} | {row.precision:.2f} | {row.recall:.2f} | {row.f1:.2f} | 4 |" in text
    assert "![Confusion matrix on the test split](confusion_matrix.png)" in text
    assert "This run was trained alone" in text
    assert f"{command_line(RunSpec, spec.to_dict(), 'runner run')}\nrunner release abc out" in text
    assert RunSpec.from_dict(spec.to_dict()).run_id == spec.run_id
    assert "One seed of this configuration" in text


def test_matrix_place_chooses_on_validation_and_tests_against_the_best(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    mine = fake_spec(tmp_path, "head", videos_per_class=10)
    write_rows(warehouse, mine, correct=9, val_acc=0.7)
    by_test = fake_spec(tmp_path, "lora", videos_per_class=10)  # best on test, not on validation
    write_rows(warehouse, by_test, correct=12, val_acc=0.6)
    by_val = fake_spec(tmp_path, "pooler_head", videos_per_class=40)
    write_rows(warehouse, by_val, correct=5, val_acc=0.8)
    evidence = read_evidence(warehouse, mine.run_id)
    place = matrix_place(evidence)
    assert place is not None and place.matrix_id == MATRIX
    assert place.best["strategy"] == "pooler_head" and place.compared_with == by_val.run_id
    theirs = evidence.matrix_predictions[evidence.matrix_predictions["run_id"] == by_val.run_id]
    expected = compare_predictions(theirs, evidence.predictions)
    assert place.comparison == expected
    text = model_card(evidence, released()).text
    assert "| configuration | 10 / class | 40 / class |" in text
    assert "| head | **75.0% (70.0%) ◀** | - |" in text
    assert "| pooler_head | - | 41.7% (80.0%) ★ |" in text
    assert f"Chosen on validation among 3 configurations: {place.best['config']} (configuration " in text
    assert place.best["config"].startswith("pooler_head")
    assert f"McNemar p = {expected.mcnemar_p:.3g}" in text and f"{100 * expected.diff:+.1f} points" in text


def test_the_best_configuration_with_two_seeds(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    mine = fake_spec(tmp_path, "head")
    write_rows(warehouse, mine, correct=9, val_acc=0.9)
    write_rows(warehouse, mine.replace(seed=1), correct=11, val_acc=0.7)
    write_rows(warehouse, fake_spec(tmp_path, "lora"), correct=12, val_acc=0.75)
    evidence = read_evidence(warehouse, mine.run_id)
    place = matrix_place(evidence)
    assert place is not None and place.comparison is None  # mean val 0.8 over two seeds beats 0.75
    row = place.configurations[place.configurations["this"]].iloc[0]
    assert row["seeds"] == 2 and row["val_acc"] == pytest.approx(0.8) and row["test_acc"] == pytest.approx(20 / 24)
    text = model_card(evidence, released()).text
    assert "this run's configuration (validation 80.0%)" in text and "2 seeds of this configuration" in text


def test_adapter_card_names_its_base_and_the_snippet(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "lora", model="facebook/vjepa2-vitl-fpc16-256-ssv2")
    write_rows(tmp_path / "w.duckdb", spec, correct=9, val_acc=0.7, matrix=None)
    evidence = read_evidence(tmp_path / "w.duckdb", spec.run_id)
    card = saved(model_card(evidence, released(adapter_base=BaseReference("facebook/vjepa2-vitl-fpc16-256-ssv2",
                                                                                "hub"))), tmp_path)
    assert card.data.to_dict()["base_model_relation"] == "adapter"
    assert 'BASE = "facebook/vjepa2-vitl-fpc16-256-ssv2"' in card.text
    assert "PeftModel.from_pretrained(base, MODEL).merge_and_unload()" in card.text
    assert "pooler.safetensors" not in card.text


def test_confusion_png_shows_the_counts(tmp_path: Path) -> None:
    confusion = pd.DataFrame({"true_class": ["up", "up", "down", "still"], "pred_class": ["up", "down", "down", "up"],
                              "count": [3, 1, 4, 2]})
    grid = confusion_grid(confusion, LABELS)
    assert grid.tolist() == [[3, 1, 0], [0, 4, 0], [2, 0, 0]]
    write_confusion_png(tmp_path / "c.png", confusion, LABELS, title="t")
    image = np.asarray(Image.open(tmp_path / "c.png").convert("RGB"))
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # drawn cells and text, not a blank canvas
