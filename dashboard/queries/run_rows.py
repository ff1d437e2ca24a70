"""Runs as the pages see them: every `runs` row plus its configuration (the key and label the CLI uses too,
`vjepa_core.analysis.configurations`), the training videos per class it used, and its chance level with the
exact binomial test against it; the run tables of chosen runs from one snapshot; and the sidebar's filters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from vjepa_core.analysis.configurations import with_configurations
from vjepa_core.analysis.stats import above_chance_p, chance_level
from vjepa_core.store import warehouse as wh
from vjepa_core.store.schema import RUN_TABLES


def load_runs(path: str | Path) -> pd.DataFrame:
    """Every run, oldest first, with `config_id`, `config` and `train_vpc` added."""
    with wh.read_connection(path) as conn:
        runs = conn.execute(RUNS_SQL.format(where="")).df()
    return enrich_runs(runs)


# Each run with its test class counts: `stats.chance_level` turns them into its chance level.
RUNS_SQL = """
SELECT runs.*, chance.test_largest_class, chance.test_support
FROM runs LEFT JOIN (
    SELECT run_id, max(support) AS test_largest_class, sum(support) AS test_support
    FROM class_metrics WHERE split = 'test' AND support > 0 GROUP BY run_id
) AS chance USING (run_id)
{where}
ORDER BY started_at NULLS LAST, run_id
"""
ONLY_IDS = "WHERE list_contains(?::VARCHAR[], run_id)"


def load_run_tables(path: str | Path, run_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The rows of `run_ids` in every run table, from one consistent snapshot."""
    ids = list(run_ids)
    with wh.read_connection(path) as conn:
        tables = {name: conn.execute(f'SELECT * FROM "{name}" {ONLY_IDS}', [ids]).df()
                  for name in RUN_TABLES if name != "runs"}
        runs = conn.execute(RUNS_SQL.format(where=ONLY_IDS), [ids]).df()
    return {"runs": enrich_runs(runs), **tables}


def enrich_runs(runs: pd.DataFrame) -> pd.DataFrame:
    runs = with_configurations(runs)  # the configuration key the CLI's matrix summary and compare use too
    # "All videos" is a number too: the data-scaling axis needs it, and num_train says what it was.
    num_train, num_classes = runs["num_train"].astype("float64"), runs["num_classes"].astype("float64")
    per_class = (num_train / num_classes.where(num_classes > 0)).round()
    runs["train_vpc"] = runs["videos_per_class"].astype("float64").fillna(per_class)
    return with_chance(runs)


def with_chance(runs: pd.DataFrame) -> pd.DataFrame:
    """`chance_acc` (largest test class share, else 1/num_classes) and `above_chance_p` (exact binomial)."""
    runs = runs.copy()
    fallback = 1.0 / runs["num_classes"].astype("float64").where(runs["num_classes"] > 0)
    counts = [runs[c].astype("float64") if c in runs else pd.Series(math.nan, index=runs.index)
              for c in ("test_largest_class", "test_support")]
    runs["chance_acc"] = pd.Series(chance_level(*counts), index=runs.index).fillna(fallback)
    total = runs["num_test"].astype("float64")
    scored = runs["test_acc"].notna() & (total > 0) & runs["chance_acc"].notna()
    correct = (runs["test_acc"].astype("float64") * total).round()
    runs["above_chance_p"] = math.nan
    if scored.any():
        runs.loc[scored, "above_chance_p"] = above_chance_p(correct[scored].to_numpy(), total[scored].to_numpy(),
                                                            runs.loc[scored, "chance_acc"].to_numpy())
    return runs.drop(columns=["test_largest_class", "test_support"], errors="ignore")


def filter_runs(runs: pd.DataFrame, *, matrices: Sequence[str] = (), datasets: Sequence[str] = (),
                models: Sequence[str] = (), strategies: Sequence[str] = (), statuses: Sequence[str] = (),
                dates: tuple[date, date] | None = None) -> pd.DataFrame:
    """Rows matching every non-empty filter; `dates` is an inclusive (first, last) day of `started_at`."""
    keep = pd.Series(True, index=runs.index)
    for column, wanted in (("matrix_id", matrices), ("dataset", datasets), ("model", models),
                           ("strategy", strategies), ("status", statuses)):
        if wanted:
            keep &= runs[column].isin(list(wanted))
    if dates is not None:
        day = pd.to_datetime(runs["started_at"]).dt.date
        keep &= (day >= dates[0]) & (day <= dates[1])
    return runs[keep]
