"""`runner verdict` end to end on warehouses written with the real Warehouse API: which matrix it reads
(newest, by name, by id or prefix), the sentences and the JSON, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dashboard.queries import comparison
from runner.cli import app
from tests.support import right, write_scored_run
from vjepa_core.analysis.verdict_text import p_text
from vjepa_core.store.warehouse import Warehouse


def invoke(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_matrices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`older` (head vs lora, lora better on validation) and, newer, `study` (head best on validation, lora best
    on test, pooler_head clearly worse, one failed scratch run)."""
    path = tmp_path_factory.mktemp("verdict") / "w.duckdb"
    store = Warehouse(path)
    older = [write_scored_run(store, "head", val=0.6, correct=right(range(30)), matrix_id="0ld0000000000001",
                              videos_per_class=5),
             write_scored_run(store, "lora", val=0.7, correct=right(range(31)), matrix_id="0ld0000000000001",
                              videos_per_class=5)]
    study = [write_scored_run(store, "head", val=0.9, correct=right(range(38)), matrix_id="5tudy00000000001"),
             write_scored_run(store, "lora", val=0.8, correct=right(range(8, 54)), matrix_id="5tudy00000000001"),
             write_scored_run(store, "pooler_head", val=0.7, correct=right(range(20)), matrix_id="5tudy00000000001"),
             write_scored_run(store, "scratch", error="RuntimeError: loss is NaN", matrix_id="5tudy00000000001")]
    start = datetime(2026, 1, 1, 12)
    for matrix_id, name, run_ids, started in (("0ld0000000000001", "older", older, start),
                                               ("5tudy00000000001", "study", study, start + timedelta(hours=1))):
        store.upsert_matrix({"matrix_id": matrix_id, "name": name, "status": "finished", "total_runs": len(run_ids),
                             "started_at": started, "spec": {"name": name, "run_ids": run_ids}})
    return path


def test_the_newest_matrix_by_default(two_matrices: Path) -> None:
    result = invoke("verdict", "--warehouse", two_matrices)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "matrix study (5tudy00000000001, finished): 4 run(s)"
    assert lines[1].startswith("Which strategy? head, chosen on validation among 3 configurations (val 90.0%): "
                               "test 70.4%, 95% CI 57.2% to 80.9% (Wilson over 54 videos). It beats pooler_head")
    assert "It ties with lora (85.2%" in lines[1]
    assert lines[1].endswith("Left out: scratch, seed 0 (failed: RuntimeError: loss is NaN).")


@pytest.mark.parametrize("wanted", ["older", "0ld0000000000001", "0ld0"])
def test_a_matrix_by_name_id_or_prefix(two_matrices: Path, wanted: str) -> None:
    result = invoke("verdict", wanted, "--warehouse", two_matrices)
    assert result.exit_code == 0, result.output
    # The setting is not named: it does not vary within that matrix.
    assert result.output.startswith("matrix older (0ld0000000000001, finished): 2 run(s)\nWhich strategy? lora, "
                                    "chosen on validation among 2 configurations")


def test_json_is_one_object_with_every_number(two_matrices: Path) -> None:
    result = invoke("verdict", "study", "--json", "--warehouse", two_matrices)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["matrix"] == {"matrix_id": "5tudy00000000001", "name": "study", "runs": 4, "status": "finished"}
    (verdict,) = out["verdicts"]
    assert verdict["chosen_on"] == "val" and verdict["winner"]["config"] == "head"
    assert verdict["winner"]["test_acc"] == pytest.approx(38 / 54) and len(verdict["winner"]["test_interval"]) == 2
    assert {(o["config"], o["verdict"]) for o in verdict["others"]} == {("lora", "tied"), ("pooler_head", "worse")}
    assert [item["reason"] for item in out["left_out"]] == ["failed: RuntimeError: loss is NaN"]
    assert 0 < verdict["min_detectable_difference"] < 1


def test_bad_input_is_one_line_and_exit_2(two_matrices: Path, tmp_path: Path) -> None:
    unknown = invoke("verdict", "nope", "--warehouse", two_matrices)
    assert unknown.exit_code == 2
    assert unknown.output == (f"error: no matrix 'nope' in {two_matrices} (newest: study (5tudy00000000001), "
                              f"older (0ld0000000000001); runner list shows runs)\n")
    ambiguous = invoke("verdict", "", "--warehouse", two_matrices)
    assert ambiguous.exit_code == 2 and "is ambiguous" in ambiguous.output
    missing = invoke("verdict", "--warehouse", tmp_path / "none.duckdb")
    assert missing.exit_code == 2 and missing.output.startswith(f"error: no warehouse at {tmp_path / 'none.duckdb'}")
    assert not (tmp_path / "none.duckdb").exists()
    Warehouse(tmp_path / "empty.duckdb").migrate()
    empty = invoke("verdict", "--warehouse", tmp_path / "empty.duckdb")
    assert empty.exit_code == 2 and empty.output.startswith("error: no matrix in")
    assert len(empty.output.splitlines()) == 1


@pytest.fixture(scope="module")
def seeds_matrix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """head and lora with one seed at 10/class and three seeds at 40/class, on the same 54 test videos."""
    path = tmp_path_factory.mktemp("seeds") / "w.duckdb"
    store, rng = Warehouse(path), np.random.default_rng(11)
    run_ids = []
    for videos, seeds in ((10, [0]), (40, [0, 1, 2])):
        for seed in seeds:
            for strategy, rate, val in (("head", 0.8, 0.9), ("lora", 0.65, 0.7)):
                run_ids.append(write_scored_run(store, strategy, val=val, correct=rng.random(54) < rate, seed=seed,
                                                videos_per_class=videos, matrix_id="5eed5000000000001"))
    store.upsert_matrix({"matrix_id": "5eed5000000000001", "name": "seeds", "status": "finished",
                         "total_runs": len(run_ids), "started_at": datetime(2026, 1, 1),
                         "spec": {"name": "seeds", "run_ids": run_ids}})
    return path


@pytest.mark.parametrize(("question", "seeds"), [("which strategy at 10/class", 1), ("which strategy at 40/class", 3)])
def test_compare_and_the_verdict_give_one_p(seeds_matrix: Path, question: str, seeds: int) -> None:
    """One paired test: `runner compare` of two configurations prints the p the verdict tested them with."""
    out = json.loads(invoke("verdict", "seeds", "--json", "--warehouse", seeds_matrix).output)
    (verdict,) = [v for v in out["verdicts"] if v["question"] == question]
    (other,) = verdict["others"]
    assert other["seed_pairs"] == seeds and len(verdict["winner"]["seeds"]) == seeds
    compared = invoke("compare", verdict["winner"]["config_id"], other["config_id"], "--json", "--warehouse",
                      seeds_matrix)
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.output)
    assert result["p"] == other["p"] and result["p_per_seed"] == other["p_per_seed"]
    assert result["difference"] == pytest.approx(other["difference_vs_winner"]) and len(result["pairs"]) == seeds
    low, high = result["interval"]
    assert low <= result["difference"] <= high
    text = invoke("compare", verdict["winner"]["config_id"][:10], other["config_id"], "--warehouse", seeds_matrix)
    assert f"p = {p_text(other['p'])} (exact {'McNemar' if seeds == 1 else 'sign-flip over videos'}" in text.output
    if seeds == 1:  # the dashboard's Compare page pairs runs: the same p for the same two runs
        runs = Warehouse(seeds_matrix).runs()
        page = comparison.significance(Warehouse(seeds_matrix).table("predictions"),
                                       [verdict["winner"]["run_ids"][0], other["run_ids"][0]], {})
        assert page["p"].tolist() == [other["p"]] and len(runs) == 8
