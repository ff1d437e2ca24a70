"""Configurations: which runs repeat one experiment, and what to call it. The one grouping key.

A configuration is a run spec without its seed (`vjepa_core.spec.config_id`, which leaves out the fields
declared `repeat`): its runs differ only by seed. The matrix summary (`runner run-matrix`), the dashboard's
leaderboard and `runner compare` all group runs with `with_configurations`, so that they agree on what one
configuration is (two lrs of one strategy are two configurations everywhere). No torch.

- `with_configurations(runs) -> runs`: warehouse `runs` rows (run_id, strategy, status, spec) plus
  `config_id` (the key; a row without a spec is a configuration of its own) and `config` (its label,
  naming what differs between the successful runs' configurations).
- `config_labels(specs, strategies, basis=, leave_out=) -> [label]`: `strategy · key=value ...`.
- `find_configuration(runs, given) -> config_id | None`: the configuration whose id is, or uniquely starts
  with, `given` (a `UserError` if a prefix names several).
- `seed_pairs(runs_a, runs_b) -> [(seed, run_id_a, run_id_b)]`: two sets of successful runs paired by seed,
  what `analysis.paired.paired_runs` compares.
- `spec_dict(spec) -> dict`: a stored spec (JSON text or dict) as a dict; `value_text(key, value)`: an
  option's value as labels write it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.errors import UserError
from vjepa_core.spec import REPEAT_FIELDS, config_id, reads_option

# Labels spell these options shorter; the rest by their field name.
SHORT_NAMES = {"videos_per_class": "videos", "frames_per_clip": "frames", "lora_rank": "rank",
               "lora_alpha": "alpha", "lora_dropout": "dropout", "weight_decay": "wd"}


def spec_dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        return dict(spec)
    if isinstance(spec, str) and spec:
        return json.loads(spec)
    return {}


def with_configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` plus `config_id` and `config`; labels name what differs between the successful runs (all runs
    when none succeeded): a failed run with an odd lr should not lengthen every label."""
    runs = runs.copy()
    specs = [spec_dict(spec) for spec in runs.get("spec", pd.Series([None] * len(runs), index=runs.index))]
    runs["config_id"] = [config_id(spec) if spec else run_id
                         for spec, run_id in zip(specs, runs["run_id"], strict=True)]
    succeeded = [spec for spec, status in zip(specs, runs["status"], strict=True) if status == "success" and spec]
    runs["config"] = config_labels(specs, runs["strategy"].tolist(), basis=succeeded or specs)
    return runs


def config_labels(specs: list[dict[str, Any]], strategies: Sequence[Any], *,
                  basis: list[dict[str, Any]] | None = None, leave_out: Sequence[str] = ()) -> list[str]:
    """`strategy · key=value ...` naming the spec fields that differ between the `basis` runs (default all),
    except the seed, `leave_out`, and those the run's strategy never reads (no `encoder_lr_scale=1` on a
    `lora` run)."""
    basis = specs if basis is None else basis
    keys = sorted({key for spec in basis for key in spec} - {*REPEAT_FIELDS, "strategy", *leave_out})
    varying = [key for key in keys if len({json.dumps(spec.get(key), default=str) for spec in basis}) > 1]
    labels = []
    for spec, strategy in zip(specs, strategies, strict=True):
        name = str(spec.get("strategy", strategy))
        parts = [f"{SHORT_NAMES.get(key, key)}={value_text(key, spec.get(key))}" for key in varying
                 if reads_option(name, key)]
        labels.append(" · ".join([name, *parts]))
    return labels


def value_text(key: str, value: Any) -> str:
    if value is None:
        return "all" if key == "videos_per_class" else "-"
    if key == "data":
        return Path(str(value)).name or str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def find_configuration(runs: pd.DataFrame, given: str) -> str | None:
    """The `config_id` (of `with_configurations(runs)`) that is, or uniquely starts with, `given`; else None."""
    ids = sorted(set(runs["config_id"]))
    if given in ids:
        return given
    matches = [key for key in ids if key.startswith(given)]
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise UserError(f"configuration id prefix {given!r} is ambiguous: matches {shown}")
    return matches[0] if matches else None


def seed_pairs(runs_a: pd.DataFrame, runs_b: pd.DataFrame) -> list[tuple[int, str, str]]:
    """(seed, run of a, run of b) for every seed both sets ran successfully, in seed order. A seed decides
    initialisation, shuffling and augmentation, so the runs of one seed are the fairest pairs (a configuration
    has one run per seed: the same spec is the same run id)."""
    a, b = ({int(seed): run_id for seed, run_id in zip(ok["seed"], ok["run_id"], strict=True)}
            for ok in (runs[runs["status"] == "success"] for runs in (runs_a, runs_b)))
    return [(seed, a[seed], b[seed]) for seed in sorted(set(a) & set(b))]
