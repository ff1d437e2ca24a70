"""Matrix specs: base run settings plus axes, validated up front and expanded into `RunSpec`s.

A matrix spec is a YAML mapping (`name`, `base`, `axes`, `include`, `exclude`, `phase2`; experiments/README.md
documents it, `default_study.yaml` is the built-in study). Every expanded run is built with
`RunSpec.from_dict`, so any problem is a `UserError` naming the field before anything runs. `matrix_id` hashes
the name, the phase-1 run ids and the phase-2 block, so the same study always has the same id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vjepa_core.analysis.configurations import config_labels, spec_dict, with_configurations
from vjepa_core.errors import UserError, did_you_mean
from vjepa_core.spec import RunSpec, field_names

ALIASES = {"strategies": "strategy", "seeds": "seed"}
RATIO = "lora_alpha_ratio"
TOP_KEYS = ("name", "description", "base", "axes", "include", "exclude", "phase2")
PHASE2_KEYS = ("top_k", "by", "set")
# Only validation metrics: choosing configurations by test accuracy would leak the test set.
RANK_BY = ("best_val_acc",)
DATA_FIELDS = ("data", "videos_per_class", "val_fraction", "test_fraction", "split_seed")
# The summary table's columns (data size x frames) and its "on <model>": a row names the rest of a configuration.
SUMMARY_COLUMNS = ("videos_per_class", "frames_per_clip", "model")

# The built-in study of `runner run-matrix`: package data, also reachable as experiments/default.yaml (a link).
DEFAULT_MATRIX_FILE = Path(__file__).with_name("default_study.yaml")


@dataclass(frozen=True)
class Phase2:
    """Re-run the `top_k` configurations best on `by` (a validation metric, never test) with `overrides`
    (field -> values, a cartesian grid)."""

    top_k: int
    by: str
    overrides: dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class MatrixSpec:
    name: str
    source: dict[str, Any]
    runs: tuple[RunSpec, ...]
    phase2: Phase2 | None = None

    @property
    def matrix_id(self) -> str:
        phase2 = None if self.phase2 is None else {
            "top_k": self.phase2.top_k, "by": self.phase2.by,
            "set": {k: list(v) for k, v in sorted(self.phase2.overrides.items())}}
        canonical = json.dumps({"name": self.name, "runs": sorted(s.run_id for s in self.runs), "phase2": phase2},
                               sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def phase2_runs(self, results: pd.DataFrame) -> list[RunSpec]:
        """Phase-2 plan from the phase-1 `runs` rows (needs run_id, status, spec, and the `by` column)."""
        if self.phase2 is None:
            return []
        best = top_configurations(self.runs, results, top_k=self.phase2.top_k, by=self.phase2.by)
        grid = grid_points(self.phase2.overrides)
        return list(order_runs(dedupe(settle({**spec.to_dict(), **point}, "phase2.set") for spec in best
                                       for point in grid)))


# -- parsing ------------------------------------------------------------------------------------


def load_matrix(path: Path | None, overrides: dict[str, Any] | None = None) -> MatrixSpec:
    """The spec at `path` (None: the built-in default) with CLI `overrides` laid over its base."""
    from runner.options import load_yaml

    path = DEFAULT_MATRIX_FILE if path is None else Path(path)
    return parse_matrix(load_yaml(path), default_name=path.stem, overrides=overrides)


def parse_matrix(values: dict[str, Any], *, default_name: str = "matrix",
                 overrides: dict[str, Any] | None = None) -> MatrixSpec:
    if not isinstance(values, dict):
        raise UserError("matrix spec must be a mapping with base/axes keys")
    unknown = sorted(set(values) - set(TOP_KEYS))
    if unknown:
        options = [key for key in unknown if key in {*field_names(), *ALIASES, RATIO}]
        hint = (f"; {', '.join(options)} {'is a run option' if len(options) == 1 else 'are run options'}: "
                f"put one value under base: or a list under axes:") if options else ""
        raise UserError(f"matrix spec: unknown key(s) {', '.join(map(str, unknown))} "
                        f"(known: {', '.join(TOP_KEYS)}){hint or did_you_mean(map(str, unknown), TOP_KEYS)}")
    name = values.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"name: expected a non-empty string, got {name!r}")
    base = {**_mapping(_given(values, "base"), "base"), **(overrides or {})}
    settle(base, "base")
    grids = _grids(values.get("axes"))
    _check_overrides(overrides or {}, grids)
    include = [_mapping(item, f"include[{i}]") for i, item in enumerate(_list(values.get("include"), "include"))]
    exclude = [_mapping(item, f"exclude[{i}]") for i, item in enumerate(_list(values.get("exclude"), "exclude"))]
    for i, rule in enumerate(exclude):
        _check_names(rule, f"exclude[{i}]")
    specs = [settle({**base, **point}, _where(point)) for grid in grids for point in grid_points(grid)]
    specs += [settle({**base, **item}, f"include[{i}]") for i, item in enumerate(include)]
    specs = [spec for spec in specs if not any(_matches(spec, rule) for rule in exclude)]
    if not specs:
        raise UserError("matrix spec expands to no runs (every run excluded?)")
    phase2 = _phase2(values.get("phase2"), base)
    source = {key: values[key] for key in TOP_KEYS if key in values}
    return MatrixSpec(name=name.strip(), source=source, runs=order_runs(dedupe(specs)), phase2=phase2)


def settle(settings: dict[str, Any], where: str) -> RunSpec:
    """Plural aliases and lora_alpha_ratio resolved, then validated as a RunSpec; errors say where."""
    values = {ALIASES.get(key, key): value for key, value in settings.items()}
    ratio = values.pop(RATIO, None)
    try:
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 0:
                raise UserError(f"{RATIO}: expected a number > 0, got {ratio!r}")
            rank = values.get("lora_rank", RunSpec().lora_rank)
            if isinstance(rank, int) and not isinstance(rank, bool):
                values["lora_alpha"] = float(ratio * rank)
        return RunSpec.from_dict(values)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _grids(axes: Any) -> list[dict[str, tuple[Any, ...]]]:
    if axes is None:
        return [{}]
    raw = axes if isinstance(axes, list) else [axes]
    if not raw:
        raise UserError("axes: expected a mapping of field -> list of values, or a list of such mappings")
    grids = []
    for i, grid in enumerate(raw):
        where = "axes" if not isinstance(axes, list) else f"axes[{i}]"
        grid = _mapping(grid, where)
        _check_names(grid, where)
        grids.append({key: tuple(_list(value, f"{where}.{key}", required=True)) for key, value in grid.items()})
    return grids


def _phase2(block: Any, base: dict[str, Any]) -> Phase2 | None:
    if block is None:
        return None
    block = _mapping(block, "phase2")
    unknown = sorted(set(block) - set(PHASE2_KEYS))
    if unknown:
        raise UserError(f"phase2: unknown key(s) {', '.join(unknown)} (known: {', '.join(PHASE2_KEYS)})")
    top_k = block.get("top_k", 3)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise UserError(f"phase2.top_k: expected an integer >= 1, got {top_k!r}")
    by = block.get("by", RANK_BY[0])
    if by not in RANK_BY:
        raise UserError(f"phase2.by: expected one of {', '.join(RANK_BY)}, got {by!r}")
    raw = _mapping(_given(block, "set"), "phase2.set")
    _check_names(raw, "phase2.set")
    overrides = {ALIASES.get(k, k): tuple(v) if isinstance(v, list) else (v,) for k, v in raw.items()}
    for key, options in overrides.items():
        if not options:
            raise UserError(f"phase2.set.{key}: expected a value or a non-empty list, got []")
    for point in grid_points(overrides):
        settle({**base, **point}, "phase2.set")
    return Phase2(top_k=top_k, by=by, overrides=overrides)


def _check_overrides(overrides: dict[str, Any], grids: list[dict[str, tuple[Any, ...]]]) -> None:
    """A flag for a field the spec varies would be silently ignored by the axis: refuse it."""
    axes = {ALIASES.get(key, key) for grid in grids for key in grid}
    clash = sorted(set(overrides) & axes)
    if clash:
        flags = ", ".join("--" + name.replace("_", "-") for name in clash)
        raise UserError(f"{flags}: the matrix spec already varies this as an axis; edit the spec instead")


def _check_names(values: dict[str, Any], where: str) -> None:
    known = set(field_names()) | set(ALIASES) | {RATIO}
    for key in values:
        if key not in known:
            raise UserError(f"{where}.{key}: unknown run option (known: {', '.join(field_names())}, "
                            f"{', '.join(ALIASES)}, {RATIO}){did_you_mean([key], known)}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where}: expected a mapping of run options, got {value!r}")
    return dict(value)


def _given(values: dict[str, Any], key: str) -> Any:
    """An absent or empty (`key:` with nothing after it) mapping is {}; anything else is checked."""
    value = values.get(key)
    return {} if value is None else value


def _list(value: Any, where: str, *, required: bool = False) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise UserError(f"{where}: expected a non-empty list, got {value!r}")
    return value


def _where(point: dict[str, Any]) -> str:
    return "run " + ", ".join(f"{key}={value}" for key, value in point.items()) if point else "base"


def _matches(spec: RunSpec, rule: dict[str, Any]) -> bool:
    values = spec.to_dict()
    return all(values.get(ALIASES.get(k, k)) == v for k, v in rule.items() if k != RATIO) and (
        RATIO not in rule or math.isclose(spec.lora_alpha, rule[RATIO] * spec.lora_rank))


# -- expansion ----------------------------------------------------------------------------------


def grid_points(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The cartesian product of a grid, in axis order (the last axis varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def dedupe(specs: Iterable[RunSpec]) -> list[RunSpec]:
    seen: dict[str, RunSpec] = {}
    for spec in specs:
        seen.setdefault(spec.run_id, spec)
    return list(seen.values())


def data_key(spec: RunSpec) -> tuple[Any, ...]:
    """Runs with the same key share one `prepare_data` result (same videos, same splits)."""
    return tuple(getattr(spec, name) for name in DATA_FIELDS)


def order_runs(specs: list[RunSpec]) -> tuple[RunSpec, ...]:
    """Group by data setting (in order of first appearance); keep the spec's order inside a group."""
    first: dict[tuple[Any, ...], int] = {}
    for spec in specs:
        first.setdefault(data_key(spec), len(first))
    return tuple(sorted(specs, key=lambda spec: first[data_key(spec)]))


def top_configurations(specs: Iterable[RunSpec], results: pd.DataFrame, *, top_k: int, by: str) -> list[RunSpec]:
    """The first spec of each of the `top_k` configurations with the best mean `by` over successful runs.

    Ties keep plan order, so the choice is deterministic.
    """
    ok = results[results["status"] == "success"].set_index("run_id")[by] if len(results) else pd.Series()
    scores: dict[str, list[float]] = {}
    first: dict[str, RunSpec] = {}
    for spec in specs:
        if spec.run_id in ok.index and pd.notna(ok[spec.run_id]):
            scores.setdefault(spec.config_id, []).append(float(ok[spec.run_id]))
            first.setdefault(spec.config_id, spec)
    ranked = sorted(scores, key=lambda key: -sum(scores[key]) / len(scores[key]))
    return [first[key] for key in ranked[:top_k]]


# -- the summary --------------------------------------------------------------------------------


def summary_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of the successful `runs` rows (`with_configurations`: the key the dashboard's
    leaderboard and `runner compare` use too), in the order they first appear.

    Columns: config_id, config (its label), row (the label without the table's columns: data size, frames
    and model), model, strategy, videos_per_class, frames_per_clip, n, test_acc_mean, test_acc_std (NaN with
    one seed), trainable_params (median), seconds (mean).
    """
    keys = ["config_id", "config", "row", "model", "strategy", "videos_per_class", "frames_per_clip"]
    ok = with_configurations(runs)
    ok = ok[ok["status"] == "success"].copy()
    if ok.empty:
        return pd.DataFrame(columns=[*keys, "n", "test_acc_mean", "test_acc_std", "trainable_params", "seconds"])
    specs = [spec_dict(spec) for spec in ok.get("spec", pd.Series([None] * len(ok), index=ok.index))]
    ok["row"] = config_labels(specs, ok["strategy"].tolist(), basis=[spec for spec in specs if spec],
                              leave_out=SUMMARY_COLUMNS)
    ok["videos_per_class"] = ok["videos_per_class"].astype("Int64")
    grouped = ok.groupby("config_id", sort=False)
    frame = grouped.agg(**{key: (key, "first") for key in keys[1:]}, n=("run_id", "count"),
                        test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"),
                        trainable_params=("trainable_params", "median"), seconds=("train_seconds", "mean"))
    return frame.reset_index()
