"""`runner verdict` end to end on warehouses written with the real Warehouse API: which matrix it reads
(newest, by name, by id or prefix), the sentences and the JSON, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runner.cli import app
from tests.support import right, write_scored_run
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
