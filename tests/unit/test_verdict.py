"""The verdict on warehouses written with the real Warehouse API, with answers known in advance or computed
independently (statsmodels' McNemar on 2x2 tables, Holm written from its definition, scipy's exact
permutation test, scipy's Wilson and Student-t intervals)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from tests.support import VIDEOS, hand_holm, right, statsmodels_mcnemar
from tests.support import write_scored_run as write
from vjepa_core.analysis.costs import FIGURES, Costs, cheapest
from vjepa_core.analysis.verdict import TIE_BREAK, left_out_runs, matrix_verdicts, verdicts_json, verdicts_of_run
from vjepa_core.analysis.verdict_text import run_line, verdict_sentences, verdicts_text, winner_line
from vjepa_core.store.warehouse import Warehouse


def read(store: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame]:
    return store.runs(), store.table("predictions")


# head is best on validation, lora on test: the verdict must follow validation.
HEAD, LORA, POOLER = right(range(38)), right(range(8, 54)), right(range(20))


@pytest.fixture(scope="module")
def val_and_test_disagree(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """Read-only for the tests: three strategies, one seed each."""
    store = Warehouse(tmp_path_factory.mktemp("verdict") / "w.duckdb")
    write(store, "head", val=0.90, correct=HEAD)
    write(store, "lora", val=0.80, correct=LORA)
    write(store, "pooler_head", val=0.70, correct=POOLER)
    return store


def test_the_winner_is_chosen_on_validation_not_test(val_and_test_disagree: Warehouse) -> None:
    (verdict,) = matrix_verdicts(*read(val_and_test_disagree))
    assert verdict.question.title == "which strategy"
    assert verdict.winner.label == "head" and verdict.winner.config.test["mean"] == pytest.approx(38 / 54)
    assert max(verdict.others, key=lambda e: e.config.test["mean"]).label == "lora"  # the test-best, not chosen
    calls = {entry.label: entry.verdict for entry in verdict.others}
    assert calls == {"lora": "tied", "pooler_head": "worse"}


def test_mcnemar_and_holm_match_independent_computations(val_and_test_disagree: Warehouse) -> None:
    (verdict,) = matrix_verdicts(*read(val_and_test_disagree))
    raw = [statsmodels_mcnemar(HEAD, LORA), statsmodels_mcnemar(HEAD, POOLER)]
    assert raw == pytest.approx([scipy_stats.binomtest(8, 24).pvalue, 2 * 0.5**18])
    by_label = {entry.label: entry for entry in verdict.others}
    assert [by_label[name].test.p for name in ("lora", "pooler_head")] == pytest.approx(raw, rel=1e-9)
    assert [by_label[name].p_holm for name in ("lora", "pooler_head")] == pytest.approx(hand_holm(raw), rel=1e-9)
    assert by_label["lora"].test.only_first == (8,) and by_label["lora"].test.only_second == (16,)


def test_json_has_the_issues_shape(val_and_test_disagree: Warehouse) -> None:
    runs, predictions = read(val_and_test_disagree)
    out = json.loads(json.dumps(verdicts_json(matrix_verdicts(runs, predictions))))
    (verdict,) = out["verdicts"]
    assert {"question", "chosen_on", "winner", "others", "min_detectable_difference"} <= set(verdict)
    assert verdict["chosen_on"] == "val" and out["tie_break"] == TIE_BREAK
    winner = verdict["winner"]
    assert {"config", "strategy", "val_acc", "test_acc", "test_interval", "run_ids"} <= set(winner)
    wilson = scipy_stats.binomtest(38, 54).proportion_ci(method="wilson")
    assert winner["test_interval"] == pytest.approx([wilson.low, wilson.high])
    assert winner["interval"] == "Wilson over 54 videos" and winner["val_acc"] == pytest.approx(0.9)
    assert winner["run_ids"] == runs.loc[runs["strategy"] == "head", "run_id"].tolist()
    for other in verdict["others"]:
        assert {"config", "strategy", "val_acc", "test_acc", "p", "p_holm", "verdict"} <= set(other)
    lora = next(o for o in verdict["others"] if o["strategy"] == "lora")
    assert lora["difference_vs_winner"] == pytest.approx(8 / 54) and lora["disagreement"] == pytest.approx(24 / 54)
    assert verdict["test_videos"] == 54 and verdict["mdd_alpha"] == pytest.approx(0.025)
    assert 0 < verdict["min_detectable_difference"] < 1


def test_sentences_name_the_choice_the_beaten_and_the_tied(val_and_test_disagree: Warehouse) -> None:
    (verdict,) = matrix_verdicts(*read(val_and_test_disagree))
    text = verdict_sentences(verdict)
    lora_p = hand_holm([statsmodels_mcnemar(HEAD, LORA), statsmodels_mcnemar(HEAD, POOLER)])[0]
    assert text.startswith("Which strategy? head, chosen on validation among 3 configurations (val 90.0%): "
                           "test 70.4%, 95% CI 57.2% to 80.9% (Wilson over 54 videos).")
    assert "It beats pooler_head (37.0%, Holm p = 1.5e-05)." in text
    assert f"It ties with lora (85.2%, Holm p = {lora_p:.2g})." in text
    mdd = 100 * verdict.min_detectable_difference
    assert (f"On 54 test videos, differences under {mdd:.1f} points were not detectable (80% power, alpha 0.025 = "
            f"0.05/2, disagreement {100 * verdict.disagreement:.1f}%).") in text
    assert text.endswith("Deployment pick: head, the winner itself (774 trainable parameters), chosen as the cheapest "
                         "configuration statistically tied with the validation winner (among head and lora).")
    assert winner_line(verdict) in text


def test_what_the_verdict_says_of_one_run(val_and_test_disagree: Warehouse) -> None:
    runs, predictions = read(val_and_test_disagree)
    verdicts = matrix_verdicts(runs, predictions)
    ids = dict(zip(runs["strategy"], runs["run_id"], strict=True))
    (verdict,) = verdicts_of_run(verdicts, ids["lora"])
    assert run_line(verdict, ids["head"]) == f"Which strategy? {winner_line(verdict)}"
    lora_p = verdict.others[[e.label for e in verdict.others].index("lora")].p_holm
    assert run_line(verdict, ids["lora"]) == (f"Which strategy? Not this configuration (lora, test 85.2%): "
                                              f"{winner_line(verdict)} This one is tied with it (Holm p = "
                                              f"{lora_p:.2g}).")
    assert run_line(verdict, ids["pooler_head"]).endswith("This one is worse than it (Holm p = 1.5e-05).")
    assert verdicts_of_run(verdicts, "not-a-run") == []


def test_three_seeds_combine_over_the_same_videos(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    rng = np.random.default_rng(3)
    first = rng.random((3, VIDEOS)) < 0.8
    second = first.copy()
    changed = rng.choice(VIDEOS, size=12, replace=False)
    second[:, changed] = rng.random((3, 12)) < 0.4
    for seed in range(3):
        write(store, "head", val=0.8 + seed / 100, correct=first[seed], seed=seed)
        write(store, "lora", val=0.7, correct=second[seed], seed=seed)
    (verdict,) = matrix_verdicts(*read(store))
    (other,) = verdict.others
    assert verdict.winner.label == "head" and other.test.seed_pairs == 3 and other.test.videos == VIDEOS
    per_video = (first & ~second).sum(0).astype(int) - (second & ~first).sum(0)
    nonzero = per_video[per_video != 0].astype(float)
    exact = scipy_stats.permutation_test((nonzero,), lambda x, axis: np.sum(x, axis=axis), n_resamples=np.inf,
                                         permutation_type="samples", alternative="two-sided").pvalue
    assert other.test.p == pytest.approx(exact, rel=1e-9) and other.p_holm == pytest.approx(exact, rel=1e-9)
    assert other.test.p_per_seed == pytest.approx([statsmodels_mcnemar(first[s], second[s]) for s in range(3)])
    accuracies = first.mean(axis=1)
    low, high = scipy_stats.t.interval(0.95, 2, loc=accuracies.mean(), scale=scipy_stats.sem(accuracies))
    summary = verdict.winner.config.test
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, min(high, 1.0)))
    assert summary["interval"] == "t over 3 seeds"
    assert verdict.winner.config.val_acc == pytest.approx(0.81)


def test_a_question_where_everything_ties(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    write(store, "head", val=0.85, correct=right(range(40)))
    write(store, "lora", val=0.83, correct=right(range(2, 42)))
    write(store, "pooler_head", val=0.80, correct=right(range(1, 39), [50]))
    write(store, "pooler_head_lora", val=0.78, correct=right(range(37)))
    (verdict,) = matrix_verdicts(*read(store))
    assert [entry.verdict for entry in verdict.others] == ["tied"] * 3
    # Discordant videos, head only / other only: lora 2 / 2, pooler_head 2 / 1, pooler_head_lora 3 / 0.
    raw = [1.0, 1.0, 2 * 0.5**3]
    assert [entry.test.p for entry in verdict.others] == pytest.approx(raw)
    assert [entry.p_holm for entry in verdict.others] == pytest.approx(hand_holm(raw)) == [1.0, 1.0, 0.75]
    text = verdict_sentences(verdict)
    assert "It beats" not in text and "It ties with lora (74.1%, Holm p = 1), pooler_head (72.2%, Holm p = 1) " \
        "and pooler_head_lora (68.5%, Holm p = 0.75)." in text
    # Two or three videos of disagreement out of 54: only a large difference could have shown.
    assert verdict.disagreement == pytest.approx(3 / 54) and verdict.min_detectable_difference > 0.1


def test_a_failed_run_is_left_out_and_said_so(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    for seed in range(3):
        write(store, "head", val=0.9, correct=right(range(40 + seed)), seed=seed)
        if seed == 2:
            write(store, "lora", seed=seed, error="OutOfMemoryError: CUDA out of memory\ntraceback...")
        else:
            write(store, "lora", val=0.8, correct=right(range(36 + seed)), seed=seed)
    failed = write(store, "scratch", error="RuntimeError: loss is NaN")
    runs, predictions = read(store)
    (verdict,) = matrix_verdicts(runs, predictions)
    assert [entry.label for entry in verdict.others] == ["lora"]
    assert verdict.others[0].config.seeds == [0, 1] and verdict.others[0].test.seed_pairs == 2
    assert {(item.label, item.reason) for item in verdict.left_out} == {
        ("lora, seed 2", "failed: OutOfMemoryError: CUDA out of memory"),
        ("scratch, seed 0", "failed: RuntimeError: loss is NaN")}
    assert verdict_sentences(verdict).endswith("Left out: lora, seed 2 (failed: OutOfMemoryError: CUDA out of "
                                               "memory); scratch, seed 0 (failed: RuntimeError: loss is NaN).")
    out = verdicts_json([verdict], left_out=left_out_runs(runs))
    assert failed in {item["run_id"] for item in out["left_out"]}
    assert failed in {item["run_id"] for item in out["verdicts"][0]["left_out"]}


def default_shape(store: Warehouse) -> None:
    """The default study's shape: four strategies at 10 and 40 per class on tiny-jepa, head on tiny at 40."""
    rng = np.random.default_rng(0)
    for strategy in ("head", "pooler_head", "lora", "full"):
        for videos in (10, 40):
            write(store, strategy, val=float(rng.uniform(0.6, 0.9)), correct=rng.random(VIDEOS) < 0.8,
                  videos_per_class=videos)
    write(store, "head", val=0.2, correct=rng.random(VIDEOS) < 0.17, videos_per_class=40, model="tiny")


def test_the_questions_of_a_matrix(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    default_shape(store)
    failed = write(store, "scratch", videos_per_class=40, error="RuntimeError: loss is NaN")
    verdicts = matrix_verdicts(*read(store))
    assert [(v.question.kind, v.question.title, v.configurations) for v in verdicts] == [
        ("configuration", "which strategy at 10/class on tiny-jepa", 4),
        ("configuration", "which strategy at 40/class on tiny-jepa", 4),
        ("videos_per_class", "which data size for head on tiny-jepa", 2),
        ("videos_per_class", "which data size for pooler_head", 2),
        ("videos_per_class", "which data size for lora", 2),
        ("videos_per_class", "which data size for full", 2),
        ("model", "which model for head at 40/class", 2)]
    data_size = verdicts[2]
    assert {data_size.winner.label, *(e.label for e in data_size.others)} == {"head at 10/class", "head at 40/class"}
    model = verdicts[-1]
    assert model.winner.label == "head on tiny-jepa" and model.others[0].label == "head on tiny"
    assert model.others[0].verdict == "worse"  # 17% against ~80% on 54 videos
    assert model.question.fixed == {"strategy": "head", "videos_per_class": 40}
    assert verdicts_text(verdicts).count("\n\n") == len(verdicts) - 1
    # The failed run belongs to the 40/class question only (no scratch run succeeded: no data-size question).
    assert [[item.label for item in v.left_out] for v in verdicts] == [
        [], ["scratch at 40/class on tiny-jepa, seed 0"], [], [], [], [], []]
    assert verdicts[1].left_out[0].run_id == failed


def test_two_datasets_never_compete(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    for data in ("/videos/ucf", "/videos/kinetics"):
        write(store, "head", val=0.8, correct=right(range(30)), data=data)
        write(store, "lora", val=0.7, correct=right(range(20)), data=data)
    verdicts = matrix_verdicts(*read(store))
    assert sorted(v.question.title for v in verdicts) == ["which strategy data=kinetics", "which strategy data=ucf"]
    assert all(v.configurations == 2 for v in verdicts)


def test_a_tie_on_validation_goes_to_fewer_parameters_never_to_test(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    write(store, "full", val=0.8, correct=right(range(50)))
    write(store, "head", val=0.8, correct=right(range(30)))
    (verdict,) = matrix_verdicts(*read(store))
    assert verdict.winner.label == "head" and verdict.tied_on_val == ("full",)
    assert verdict.tie_reasons == ("fewer trainable parameters (774 against 974,470)",)
    assert verdict.others[0].verdict == "better"  # validation could not tell them apart; the test set can
    text = verdict_sentences(verdict)
    assert ("(val 80.0%; tied on validation with full (fewer trainable parameters (774 against 974,470)), settled "
            "for the cheaper)") in text
    assert "Validation and test disagree: full did better on test (92.6%, Holm p = 1.9e-06)." in text


def test_a_tie_with_equal_parameters_goes_to_less_training_time(tmp_path: Path) -> None:
    """A warehouse where validation ties: the cheaper configuration wins whatever the order or the test set say."""
    store = Warehouse(tmp_path / "w.duckdb")
    # head's whole time is longer (it filled the token cache both read): its own training loop is what counts.
    slow = write(store, "lora", val=0.75, correct=right(range(45)), params=5000,
                 columns={"train_seconds": 95.0, "fit_seconds": 90.0})
    fast = write(store, "head", val=0.75, correct=right(range(20)), params=5000,
                 columns={"train_seconds": 140.0, "fit_seconds": 30.0})
    write(store, "pooler_head", val=0.75, correct=right(range(40)), params=9000, columns={"fit_seconds": 10.0})
    runs, predictions = read(store)
    (verdict,) = matrix_verdicts(runs, predictions)
    assert verdict.winner.config.runs["run_id"].tolist() == [fast] and slow != fast
    assert dict(zip(verdict.tied_on_val, verdict.tie_reasons, strict=True)) == {
        "lora": "less training time (30.0 s against 90.0 s)",
        "pooler_head": "fewer trainable parameters (5,000 against 9,000)"}
    assert json.loads(json.dumps(verdicts_json([verdict])))["verdicts"][0]["tie_settled_by"] == [
        "less training time (30.0 s against 90.0 s)", "fewer trainable parameters (5,000 against 9,000)"]
    assert "tied on validation with lora (less training time (30.0 s against 90.0 s)) and pooler_head" in \
        verdict_sentences(verdict)


def test_the_deployment_pick_is_the_cheapest_tied_configuration(tmp_path: Path) -> None:
    """lora wins on validation; head and pooler_head tie with it on test, pooler_head_lora is worse: head, the
    fewest trainable parameters among the tied, is the pick, and the worse one never is however cheap."""
    store = Warehouse(tmp_path / "w.duckdb")
    cpu = {"device": "cpu", "release_bytes": 4_000_000}
    write(store, "lora", val=0.9, correct=right(range(40)), columns={**cpu, "inference_ms": 20.0})
    write(store, "head", val=0.8, correct=right(range(38)), columns={**cpu, "inference_ms": 21.0})
    write(store, "pooler_head", val=0.7, correct=right(range(1, 40)), columns={**cpu, "inference_ms": 19.0})
    write(store, "pooler_head_lora", val=0.6, correct=right(range(10)), params=10, columns={**cpu, "inference_ms": 5.0})
    (verdict,) = matrix_verdicts(*read(store))
    assert verdict.winner.label == "lora"
    assert {e.label: e.verdict for e in verdict.others} == {"head": "tied", "pooler_head": "tied",
                                                              "pooler_head_lora": "worse"}
    pick = verdict.deployment
    assert pick.entry.label == "head" and not pick.is_winner and pick.candidates == ("lora", "head", "pooler_head")
    assert pick.compared == ("trainable_params", "release_bytes")  # one workload: their milliseconds are noise
    out = json.loads(json.dumps(verdicts_json([verdict])))["verdicts"][0]["deployment_pick"]
    assert out == {"config": "head", "config_id": pick.entry.config.config_id, "strategy": "head", "is_winner": False,
                   "test_acc": pytest.approx(38 / 54), "trainable_params": 774, "release_bytes": 4_000_000,
                   "cpu_ms_per_clip": 21.0, "compared_on": ["trainable_params", "release_bytes"],
                   "candidates": ["lora", "head", "pooler_head"]}
    assert verdict_sentences(verdict).endswith(
        "Deployment pick: head (774 trainable parameters, release 4.0 MB, 21.0 CPU ms per clip (measured)), chosen as "
        "the cheapest configuration statistically tied with the validation winner (among lora, head and "
        "pooler_head).")


def test_deployment_figures_narrow_in_order_and_latency_compares_workloads() -> None:
    nan = float("nan")
    eight, sixteen = "[400, 8]", "[400, 16]"
    same = Costs(trainable_params=100, train_seconds=1, release_bytes=400, cpu_ms=10.0, workload=sixteen)
    assert cheapest([same, Costs(100, 1, 400, 9.5, eight)]) == (0, FIGURES)  # 5% faster: within the tolerance
    assert cheapest([same, Costs(100, 1, 400, 8.5, eight)]) == (1, FIGURES)
    # The same network on the same input: a faster measurement is noise, never a reason.
    assert cheapest([same, Costs(100, 1, 400, 2.0, sixteen)]) == (0, ("trainable_params", "release_bytes"))
    # Workloads compare by their mean: the 8-frame pair is faster although one of its runs measured slow.
    assert cheapest([same, Costs(100, 1, 400, 11.0, eight), Costs(100, 1, 400, 5.0, eight)])[0] == 1
    assert cheapest([same, Costs(100, 1, 300, 20.0, eight)])[0] == 1  # a smaller release first, then latency
    assert cheapest([same, Costs(100, 1, 400, nan, eight)]) == (0, ("trainable_params", "release_bytes"))
    assert cheapest([same, Costs(50, 1, nan, nan)]) == (1, ("trainable_params",))


def test_no_question_without_two_configurations(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    write(store, "head", val=0.8, correct=right(range(30)))
    write(store, "lora", error="RuntimeError: loss is NaN")
    runs, predictions = read(store)
    assert matrix_verdicts(runs, predictions) == []
    assert [item.reason for item in left_out_runs(runs)] == ["failed: RuntimeError: loss is NaN"]
    assert verdicts_text([], left_out_runs(runs)) == ("Left out of every question: lora, seed 0 (failed: "
                                                      "RuntimeError: loss is NaN).")
