"""The model card carries the warehouse's figures: a Hub-valid YAML header that huggingface_hub parses back to
the same test accuracy, and a body whose interval, chance test, per-class scores and matrix place are
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
from vjepa_core.analysis.stats import chance_test, wilson_interval
from vjepa_core.analysis.verdict import matrix_verdicts, verdicts_of_run
from vjepa_core.analysis.verdict_text import run_line
from vjepa_core.fields import command_line
from vjepa_core.release.adapter import BaseReference
from vjepa_core.release.card import STATED, Released, describe_base, model_card, other_options
from vjepa_core.release.evidence import accuracy_figures, matrix_place, read_evidence
from vjepa_core.release.figures import confusion_grid, write_confusion_png
from vjepa_core.spec import RUN_DEFAULTS, RunSpec
from vjepa_core.store.matrix_results import scored_runs
from vjepa_core.store.warehouse import Warehouse

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


def test_the_recipe_states_every_option_that_differs_from_its_default(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "pooler_head", label_smoothing=0.1, eval_clips=3, feature_layers=(-3, -1),
                     hflip=False, pooler_layers=0, lr=3e-4)
    write_rows(tmp_path / "w.duckdb", spec, correct=9, val_acc=0.7, matrix=None)
    text = model_card(read_evidence(tmp_path / "w.duckdb", spec.run_id), released()).text
    recipe = text[text.index("## Training recipe"):text.index("## Evaluation")]
    assert "| learning rate | 0.0003 (cosine, warmup 0.1)" in recipe
    for row in ("| `label_smoothing` | 0.1: Cross-entropy label smoothing |", "| `eval_clips` | 3: Clips per video",
                "| `feature_layers` | -3,-1: Encoder blocks whose tokens feed the pooler", "| `hflip` | False: Mirror",
                "| `pooler_layers` | 0: Self-attention layers"):
        assert row in recipe
    assert "`grad_clip`" not in recipe and "`augment`" not in recipe  # at their defaults


def test_a_new_run_option_shows_on_the_card() -> None:
    """Every run option is stated by a worded row of the recipe or listed once it leaves its default: an option
    added to RunSpec tomorrow is on the card without anyone touching it."""
    changed = {name: f"changed-{name}" for name in RUN_DEFAULTS}
    assert set(other_options(changed)) == set(RUN_DEFAULTS) - STATED
    assert set(RUN_DEFAULTS) > STATED
    assert other_options(RUN_DEFAULTS) == {}


def test_matrix_place_is_the_verdict_of_the_matrix(tmp_path: Path) -> None:
    """The card states what `runner verdict` says of the run: its own setting's question, then its data size's,
    each chosen on validation (never on test) and tested on the shared test videos."""
    warehouse = tmp_path / "w.duckdb"
    mine = fake_spec(tmp_path, "head", videos_per_class=10)
    write_rows(warehouse, mine, correct=9, val_acc=0.7)
    by_val = fake_spec(tmp_path, "lora", videos_per_class=10)  # chosen at 10/class: best on validation
    write_rows(warehouse, by_val, correct=3, val_acc=0.8)
    write_rows(warehouse, fake_spec(tmp_path, "pooler_head", videos_per_class=10), correct=12, val_acc=0.6)
    more = mine.replace(videos_per_class=40)  # chosen among head's data sizes
    write_rows(warehouse, more, correct=10, val_acc=0.9)
    evidence = read_evidence(warehouse, mine.run_id)
    place = matrix_place(evidence)
    assert place is not None and place.matrix_id == MATRIX
    runs, predictions = scored_runs(warehouse, list(Warehouse(warehouse).runs()["run_id"]))  # as runner verdict
    expected = verdicts_of_run(matrix_verdicts(runs, predictions), mine.run_id)
    assert [v.question.title for v in place.verdicts] == [v.question.title for v in expected] == \
        ["which strategy at 10/class", "which data size for head"]
    assert [v.winner.label for v in place.verdicts] == ["lora", "head at 40/class"]
    text = model_card(evidence, released()).text
    for verdict in expected:
        assert f"- {run_line(verdict, mine.run_id)}" in text
    assert "lora, chosen on validation among 3 configurations (val 80.0%)" in text
    assert "Not this configuration (head, test 75.0%)" in text
    assert "| configuration | 10 / class | 40 / class |" in text
    assert "| head | **75.0% (70.0%) ◀** | 83.3% (90.0%) |" in text
    assert "| lora | 25.0% (80.0%) ★ | - |" in text
    assert "| pooler_head | 100.0% (60.0%) | - |" in text


def test_the_chosen_configuration_with_two_seeds(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    mine = fake_spec(tmp_path, "head")
    write_rows(warehouse, mine, correct=9, val_acc=0.9)
    write_rows(warehouse, mine.replace(seed=1), correct=11, val_acc=0.7)
    write_rows(warehouse, fake_spec(tmp_path, "lora"), correct=12, val_acc=0.75)
    evidence = read_evidence(warehouse, mine.run_id)
    place = matrix_place(evidence)
    assert place is not None and [v.winner.label for v in place.verdicts] == ["head"]  # mean val 0.8 > 0.75
    row = place.configurations[place.configurations["this"]].iloc[0]
    assert row["seeds"] == 2 and row["val_acc"] == pytest.approx(0.8) and row["test_acc"] == pytest.approx(20 / 24)
    assert row["chosen"]
    text = model_card(evidence, released()).text
    assert "head, chosen on validation among 2 configurations (val 80.0%)" in text
    assert "2 seeds of this configuration" in text


def test_a_rival_without_a_question_is_said(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    mine = fake_spec(tmp_path, "head", videos_per_class=10)
    write_rows(warehouse, mine, correct=9, val_acc=0.7)
    write_rows(warehouse, fake_spec(tmp_path, "lora", videos_per_class=40), correct=12, val_acc=0.8)
    place = matrix_place(read_evidence(warehouse, mine.run_id))
    assert place is not None and place.verdicts == [] and not place.configurations["chosen"].any()
    text = model_card(read_evidence(warehouse, mine.run_id), released()).text
    assert "no question is asked of it" in text
    assert "| head | **75.0% (70.0%) ◀** | - |" in text and "| lora | - | 100.0% (80.0%) |" in text


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


def test_the_snippet_trusts_the_folders_processor_and_says_what_it_does(tmp_path: Path) -> None:
    spec = fake_spec(tmp_path, "lora")
    write_rows(tmp_path / "w.duckdb", spec, correct=9, val_acc=0.7, matrix=None)
    evidence = read_evidence(tmp_path / "w.duckdb", spec.run_id)
    text = " ".join(saved(model_card(evidence, released()), tmp_path).text.split())
    assert 'pipe = pipeline("video-classification", model="./out", trust_remote_code=True)' in text
    assert "`video_processing_vjepa_lab.py`" in text and "centred clip of 4 frames every 2 frames" in text
    assert "Without `trust_remote_code`" in text and "evenly over the *whole* video" in text
    assert "scores one view" not in text
    several = " ".join(saved(model_card(evidence, released(preprocessing={**PRE, "eval_clips": 2})), tmp_path)
                       .text.split())
    assert "averaged the softmax of 2 clip(s) x 1 crop(s) per video; the pipeline scores one view" in several


def test_confusion_png_shows_the_counts(tmp_path: Path) -> None:
    confusion = pd.DataFrame({"true_class": ["up", "up", "down", "still"], "pred_class": ["up", "down", "down", "up"],
                              "count": [3, 1, 4, 2]})
    grid = confusion_grid(confusion, LABELS)
    assert grid.tolist() == [[3, 1, 0], [0, 4, 0], [2, 0, 0]]
    write_confusion_png(tmp_path / "c.png", confusion, LABELS, title="t")
    image = np.asarray(Image.open(tmp_path / "c.png").convert("RGB"))
    assert image.shape[0] > 200 and image.shape[1] > 200
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20  # drawn cells and text, not a blank canvas
