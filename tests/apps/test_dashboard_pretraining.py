"""The Pretraining page and its queries, over a warehouse that real `runner pretrain` runs wrote."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.queries import pretraining
from vjepa_core import paths
from vjepa_core.pretrain.loop import PretrainOptions, prepare, pretrain, read_probe_set, read_videos
from vjepa_core.pretrain.spec import PretrainSpec
from vjepa_core.store.warehouse import RunRecord, Warehouse

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, synthetic_small: Path) -> Path:
    """Two real pretraining runs (2 epochs with a probe set, 1 without) and one failed row."""
    root = tmp_path_factory.mktemp("pretraining")
    store = Warehouse(root / "w.duckdb")
    options = PretrainOptions(progress=False)
    for spec, probe in ((PretrainSpec(data=str(synthetic_small), epochs=2, batch_size=8), True),
                        (PretrainSpec(data=str(synthetic_small), epochs=1, batch_size=8, seed=1), False)):
        probe_items = read_probe_set(str(synthetic_small)) if probe else None
        prepared = prepare(spec, videos=read_videos(str(synthetic_small)), probe_items=probe_items, options=options)
        record = pretrain(prepared, root / "results", options)
        store.write_pretrain(record.run, record.epochs)
    store.write_pretrain({"pretrain_id": "f" * 16, "status": "failed", "error": "RuntimeError: loss is nan",
                          "model": "preset:tiny", "dataset": "corpus", "started_at": datetime.now()}, [])
    return root / "w.duckdb"


def _page(monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> AppTest:
    monkeypatch.setenv(paths.WAREHOUSE_ENV, str(warehouse))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("views/pretraining.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_queries_shape_runs_and_curves(pretrained: Path) -> None:
    runs, epochs = pretraining.load_pretraining(pretrained)
    assert len(runs) == 3 and set(runs.status) == {"success", "failed"}
    assert all(label.startswith(pid[:8]) for label, pid in zip(runs.label, runs.pretrain_id, strict=True))
    done = runs[runs.status == "success"]
    long = pretraining.pretrain_curves(done, epochs)
    per_run = long.groupby(["run", "metric"]).size().unstack()
    with_probe = done[done.probe_acc.notna()].label.item()
    without = done[done.probe_acc.isna()].label.item()
    assert per_run.loc[with_probe, "probe accuracy"] == 3 and pd.isna(per_run.loc[without, "probe accuracy"])
    assert per_run.loc[with_probe, "loss (L1)"] == 2  # epoch 0 has no loss
    kept = long[long.kept].groupby("run").epoch.unique()
    assert {run: list(e) for run, e in kept.items()} == {
        row.label: [row.chosen_epoch] for row in done.itertuples()}
    summary = pretraining.pretrain_summary(runs)
    row = summary[summary.run == with_probe].iloc[0]
    start, end = (float(x.rstrip("%")) for x in row["probe accuracy"].split(" -> "))
    assert 0 <= start <= 100 and 0 <= end <= 100 and row["kept epoch"].endswith("(probe_acc)")
    assert summary[summary.status == "failed"]["model folder"].item() == "RuntimeError: loss is nan"


def test_pretraining_page_draws_every_diagnostic(monkeypatch: pytest.MonkeyPatch, pretrained: Path) -> None:
    at = _page(monkeypatch, pretrained)
    assert at.title[0].value == "Pretraining"
    table = at.dataframe[0].value
    assert len(table) == 3 and {"effective rank", "embedding std", "probe accuracy"} <= set(table.columns)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    frame = pa.ipc.open_stream(charts[0].proto.datasets[0].data.data).read_all().to_pandas()
    assert set(frame.metric) == set(pretraining.PRETRAIN_METRICS.values())
    assert spec["resolve"]["scale"]["y"] == "independent"
    runs, epochs = pretraining.load_pretraining(pretrained)
    assert len(frame) == len(pretraining.pretrain_curves(runs, epochs))


def test_a_warehouse_without_pretraining_says_how_to_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "w.duckdb")
    store.write_run(RunRecord(run={"run_id": "r", "status": "success", "test_acc": 0.5}))
    at = _page(monkeypatch, tmp_path / "w.duckdb")
    assert "No pretraining run" in at.info[0].value
    assert "runner pretrain --data VIDEOS" in at.code[0].value and str(tmp_path) in at.code[0].value
