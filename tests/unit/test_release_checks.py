"""A release refuses what it cannot do before writing anything: one line each, no folder, no temporary files.

The releases themselves (every form, checked against vjepa-lab's model) are in
tests/integration/test_release_forms.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.release_support import make_run, release
from vjepa_core.errors import UserError
from vjepa_core.release.writer import ReleaseRequest, release_run
from vjepa_core.store.warehouse import RunRecord, Warehouse


def test_feature_layers_are_refused_in_one_line(tmp_path: Path) -> None:
    run = make_run(tmp_path, "pooler_head", feature_layers=(0, 1))
    with pytest.raises(UserError, match=r"--feature-layers") as error:
        release(run, tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path, "head")
    lora = make_run(tmp_path / "l", "lora")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    cases = {
        "unknown": (ReleaseRequest("feedfacefeedface", tmp_path / "a", run.warehouse), "not in"),
        "no warehouse": (ReleaseRequest(run.run_id, tmp_path / "a", tmp_path / "none.duckdb"), "no warehouse"),
        "not empty": (ReleaseRequest(run.run_id, busy, run.warehouse), "not empty"),
        "force on a stranger": (ReleaseRequest(run.run_id, busy, run.warehouse, force=True), "holds no earlier"),
        "adapter of head": (ReleaseRequest(run.run_id, tmp_path / "a", run.warehouse, adapter_only=True),
                            "needs a LoRA run"),
        "space + adapter": (ReleaseRequest(lora.run_id, tmp_path / "a", lora.warehouse, adapter_only=True,
                                           space=True), "--space"),
        "dtype": (ReleaseRequest(run.run_id, tmp_path / "a", run.warehouse, dtype="int8"), "--dtype"),
        "out is a file": (ReleaseRequest(run.run_id, busy / "notes.txt", run.warehouse), "is a file"),
    }
    for name, (request, words) in cases.items():
        with pytest.raises(UserError, match=words) as error:
            release_run(request)
        assert "\n" not in str(error.value), name
    assert not (tmp_path / "a").exists()
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]


def test_a_run_whose_checkpoint_is_gone_or_that_failed(tmp_path: Path) -> None:
    run = make_run(tmp_path, "head")
    shutil.rmtree(run.checkpoint)
    with pytest.raises(UserError, match="has no checkpoint"):
        release(run, tmp_path / "out")
    Warehouse(run.warehouse).write_run(RunRecord(run={"run_id": "badbadbadbadbad0", "status": "failed",
                                                      "error": "RuntimeError: loss is NaN\ntraceback", "spec": {}}))
    with pytest.raises(UserError, match=r"did not succeed \(status failed: RuntimeError: loss is NaN\)"):
        release_run(ReleaseRequest("badbadbadbadbad0", tmp_path / "out", run.warehouse))
    assert not (tmp_path / "out").exists()


