"""The verdict of a matrix or sweep: per question, the configuration chosen on validation, reported on test,
every other configuration tested against it on the shared test videos, and the cheapest configuration tied
with it to deploy. Pure: `runs` and `predictions` DataFrames in, `Verdict`s out; no torch.

Questions. A configuration is a run spec without its seed (`analysis.configurations`). A *setting* is a
data size, a frames setting or a model. "Which configuration" questions let the configurations of one
setting compete; "which data size / frames setting / model" questions let configurations equal in everything
but that setting compete. All competitors of a question share one test set.

The winner has the best mean validation accuracy over its seeds; a tie goes to the cheaper configuration
(`costs.TIE_BREAK`), is reported, and never looks at the test set. Every other configuration is paired with
the winner on the test videos both scored (`paired.paired_runs`, runs paired by seed), the p-values are
Holm-adjusted within the question, and each is `worse`, `better` (validation and test disagree), `tied` or
`untested`. The question's minimum detectable difference is the exact McNemar test's at 80% power and
alpha / m (Holm's strictest step over its m comparisons), for its test videos and the median disagreement
of its comparisons; `analysis.planning` asks the same function how many videos a difference needs. The
deployment pick is the cheapest of the winner and the configurations tied with it (`costs.DEPLOYMENT_RULE`).
The sentences are `analysis.verdict_text`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vjepa_core.analysis.configurations import SHORT_NAMES, seed_pairs, spec_dict, value_text, with_configurations
from vjepa_core.analysis.costs import DEPLOYMENT_RULE, TIE_BREAK, Costs, cheapest, costs_of, tie_reason, training_order
from vjepa_core.analysis.paired import (
    POWER,
    PairedTest,
    correct_by_run,
    holm,
    min_detectable_difference,
    paired_runs,
)
from vjepa_core.analysis.stats import ALPHA, accuracy_summary
from vjepa_core.spec import REPEAT_FIELDS
from vjepa_core.strategies import STRATEGIES

SETTINGS = ("videos_per_class", "frames_per_clip", "model")
# Never compete: pairing needs every competitor scored on one test set.
TEST_SET = ("data", "split_seed", "val_fraction", "test_fraction")
CHOSEN_ON = "val"
WORSE, BETTER, TIED, UNTESTED = "worse", "better", "tied", "untested"


@dataclass(frozen=True)
class Config:
    """One configuration's runs: `runs` succeeded (one row per seed), `failed` did not."""

    config_id: str
    spec: dict[str, Any]   # without the seed
    runs: pd.DataFrame
    failed: pd.DataFrame

    @property
    def strategy(self) -> str:
        return str(self.spec.get("strategy"))

    @property
    def val_acc(self) -> float:
        return float(self.runs["best_val_acc"].mean()) if len(self.runs) else math.nan

    @property
    def test(self) -> dict[str, Any]:
        scored = self.runs.dropna(subset=["test_acc"])
        videos = scored["num_test"].fillna(0).astype(int).tolist() if "num_test" in scored else []
        return accuracy_summary(scored["test_acc"].tolist(), videos)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(seed) for seed in self.runs["seed"])

    @property
    def costs(self) -> Costs:
        return costs_of(self.runs)


@dataclass(frozen=True)
class Question:
    kind: str                   # "configuration", or the setting that competes (a SETTINGS field)
    fixed: dict[str, Any]       # what every competitor shares, among the fields that vary in the matrix
    config_ids: tuple[str, ...]
    title: str                  # "which strategy at 10/class on tiny-jepa"


@dataclass(frozen=True)
class Entry:
    config: Config
    label: str
    verdict: str = "chosen"     # chosen (the winner), worse, better, tied, untested
    test: PairedTest | None = None
    p_holm: float = math.nan


@dataclass(frozen=True)
class LeftOut:
    run_id: str
    label: str
    reason: str


@dataclass(frozen=True)
class DeploymentPick:
    entry: Entry                     # the winner's own entry when it is the pick
    candidates: tuple[str, ...]      # labels of the winner and every configuration tied with it on test
    compared: tuple[str, ...]        # the figures (`costs.FIGURES`) known for every candidate, in the order they count

    @property
    def is_winner(self) -> bool:
        return self.entry.verdict == "chosen"


@dataclass(frozen=True)
class Verdict:
    question: Question
    winner: Entry
    others: tuple[Entry, ...]
    tied_on_val: tuple[str, ...]     # labels of others with the winner's exact mean validation accuracy
    tie_reasons: tuple[str, ...]     # per label of `tied_on_val`: the cost that settled the tie (`costs.tie_reason`)
    deployment: DeploymentPick
    left_out: tuple[LeftOut, ...]
    test_videos: int
    disagreement: float              # median over the comparisons
    mdd_alpha: float
    min_detectable_difference: float | None

    @property
    def configurations(self) -> int:
        return 1 + len(self.others)


# -- configurations and questions ---------------------------------------------------------------


def configurations(runs: pd.DataFrame) -> dict[str, Config]:
    """Every configuration of `runs` (successful and failed runs), in order of first appearance, grouped by
    the project's one configuration key (`analysis.configurations.with_configurations`)."""
    runs = with_configurations(runs)
    runs["seed"] = [spec_dict(spec).get("seed", 0) for spec in runs["spec"]]
    found = {}
    for key, group in runs.groupby("config_id", sort=False):
        spec = {k: v for k, v in spec_dict(group["spec"].iloc[0]).items() if k not in REPEAT_FIELDS}
        ok = group["status"] == "success"
        found[key] = Config(key, spec, group[ok].sort_values("seed").reset_index(drop=True),
                            group[~ok].reset_index(drop=True))
    return found


def _key(spec: dict[str, Any], fields: list[str] | tuple[str, ...]) -> str:
    return json.dumps({field: spec.get(field) for field in fields}, sort_keys=True, default=str)


def varying_fields(configs: list[Config]) -> list[str]:
    """Spec fields (besides the seed) with two or more values among `configs`, in spec order."""
    names = list(dict.fromkeys(name for config in configs for name in config.spec))
    return [name for name in names if len({_key(c.spec, [name]) for c in configs}) > 1]


def find_questions(configs: dict[str, Config]) -> list[Question]:
    """The questions of these configurations (those with successful runs compete): see the module doc."""
    live = [c for c in configs.values() if len(c.runs)]
    varying = varying_fields(live)
    questions = []
    for ids in _groups(live, question_fields("configuration", live)):
        spec = configs[ids[0]].spec
        fixed = {field: spec.get(field) for field in (*SETTINGS, *TEST_SET) if field in varying}
        what = "which strategy" if len({configs[i].strategy for i in ids}) == len(ids) else "which configuration"
        questions.append(Question("configuration", fixed, ids, f"{what} {_describe(fixed)}".strip()))
    for setting in SETTINGS:
        for ids in _groups(live, question_fields(setting, live)):  # equal but for the setting: it differs
            spec = configs[ids[0]].spec
            # Name what sets this strategy's configurations apart in the matrix, not every field that varies.
            kin = varying_fields([c for c in live if c.strategy == spec.get("strategy")])
            fixed = {field: spec.get(field) for field in kin if field != setting}
            noun = {"videos_per_class": "data size", "frames_per_clip": "frames setting"}.get(setting, setting)
            subject = " ".join([str(spec.get("strategy")), _describe(fixed)]).strip()
            questions.append(Question(setting, {"strategy": spec.get("strategy"), **fixed}, ids,
                                      f"which {noun} for {subject}"))
    return sorted(questions, key=_question_order)


def _question_order(question: Question) -> tuple[Any, ...]:
    """Configuration questions first, by setting; then each setting's questions, strategies in registry order."""
    kinds = ["configuration", *SETTINGS]
    strategies = list(STRATEGIES)
    strategy = question.fixed.get("strategy")
    rank = strategies.index(strategy) if strategy in strategies else len(strategies)
    values = [(value is None, value if isinstance(value, int | float) else 0, str(value))
              for key, value in question.fixed.items() if key != "strategy"]
    return (kinds.index(question.kind), rank, values)


def question_fields(kind: str, configs: list[Config]) -> list[str]:
    """The spec fields the competitors of a `kind` question share: the setting and the test set for
    "configuration", every field but the competing setting for a setting question."""
    if kind == "configuration":
        return [*SETTINGS, *TEST_SET]
    return sorted(({name for c in configs for name in c.spec} | set(SETTINGS)) - {kind})


def _groups(configs: list[Config], fields: list[str]) -> list[tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for config in configs:
        groups.setdefault(_key(config.spec, fields), []).append(config.config_id)
    return [tuple(ids) for ids in groups.values() if len(ids) >= 2]


def _describe(values: dict[str, Any]) -> str:
    return " ".join(_part(field, value) for field, value in values.items())


def _part(field: str, value: Any) -> str:
    """A setting as a phrase ("at 10/class", "with 8 frames", "on tiny-jepa"), any other option as key=value."""
    if field == "videos_per_class":
        return "at all videos" if value is None else f"at {value}/class"
    if field == "frames_per_clip":
        return f"with {value} frames"
    if field == "model":
        return f"on {Path(str(value).removeprefix('preset:')).name or value}"
    shown = json.dumps(value) if isinstance(value, list) else value_text(field, value)
    return f"{SHORT_NAMES.get(field, field)}={shown}"


def labels(configs: list[Config]) -> dict[str, str]:
    """Shortest names that tell `configs` apart: the strategy, plus what differs among those sharing it."""
    named = {}
    for config in configs:
        same = [c for c in configs if c.strategy == config.strategy]
        parts = [_part(field, config.spec.get(field)) for field in varying_fields(same)]
        named[config.config_id] = " ".join([config.strategy, *parts])
    return named


# -- deciding a question ------------------------------------------------------------------------


def _rank(config: Config) -> tuple[Any, ...]:
    return (-round(config.val_acc, 9), *training_order(config.costs), config.config_id)


def compare(winner: Config, other: Config, correct: dict[str, pd.Series]) -> PairedTest | None:
    """The paired test of `winner` against `other`, their runs paired by seed (None: nothing to pair)."""
    return paired_runs([(a, b) for _, a, b in seed_pairs(winner.runs, other.runs)], correct)


def decide(question: Question, configs: dict[str, Config], correct: dict[str, pd.Series], *,
           left_out: tuple[LeftOut, ...] = ()) -> Verdict:
    """The verdict of one question (see the module doc)."""
    competitors = sorted((configs[i] for i in question.config_ids), key=_rank)
    names = labels(competitors)
    winner, rest = competitors[0], competitors[1:]
    tests = [compare(winner, other, correct) for other in rest]
    adjusted = holm([math.nan if t is None else t.p for t in tests])
    others = tuple(Entry(other, names[other.config_id], _call(test, p_holm), test, p_holm)
                   for other, test, p_holm in zip(rest, tests, adjusted, strict=True))
    tested = [t for t in tests if t is not None]
    alpha = ALPHA / max(1, len(tested))
    videos = int(np.median([t.videos for t in tested])) if tested else 0
    disagreement = float(np.median([t.disagreement for t in tested])) if tested else math.nan
    mdd = min_detectable_difference(videos, disagreement, alpha=alpha) if tested else None
    tied_on_val = [o for o in rest if round(o.val_acc, 9) == round(winner.val_acc, 9)]
    chosen = Entry(winner, names[winner.config_id])
    return Verdict(question, chosen, others, tuple(names[o.config_id] for o in tied_on_val),
                   tuple(tie_reason(winner.costs, o.costs) for o in tied_on_val), deployment_pick(chosen, others),
                   left_out, videos, disagreement, alpha, mdd)


def deployment_pick(winner: Entry, others: Sequence[Entry]) -> DeploymentPick:
    """The cheapest of `winner` and the `others` tied with it on test (`costs.cheapest`, `DEPLOYMENT_RULE`)."""
    candidates = [winner, *(entry for entry in others if entry.verdict == TIED)]
    position, compared = cheapest([entry.config.costs for entry in candidates])
    return DeploymentPick(candidates[position], tuple(entry.label for entry in candidates), compared)


def verdicts_of_run(verdicts: Sequence[Verdict], run_id: str) -> list[Verdict]:
    """The questions one run's configuration competes in (its own setting's first), e.g. for its model card."""
    return [v for v in verdicts for entry in (v.winner, *v.others)
            if run_id in set(entry.config.runs["run_id"].astype(str))]


def _call(test: PairedTest | None, p_holm: float) -> str:
    if test is None:
        return UNTESTED
    if p_holm < ALPHA and test.difference != 0:
        return WORSE if test.difference > 0 else BETTER
    return TIED


# -- a matrix -----------------------------------------------------------------------------------


def failed_runs(configs: dict[str, Config]) -> list[LeftOut]:
    """Every run that cannot compete: failed, or succeeded without a validation accuracy. Each is named by
    its configuration, the settings that vary in the matrix and its seed ("scratch at 40/class, seed 0")."""
    everything = list(configs.values())
    names = labels(everything)
    varying = varying_fields(everything)
    settings = [field for field in SETTINGS if field in varying]

    def name(config: Config, run: dict[str, Any]) -> str:
        shown = _describe({f: config.spec.get(f) for f in settings if _part(f, config.spec.get(f))
                           not in names[config.config_id]})
        return f"{' '.join(filter(None, [names[config.config_id], shown]))}, seed {run['seed']}"

    out = [LeftOut(str(run["run_id"]), name(c, run), _reason(run))
           for c in everything for run in c.failed.to_dict("records")]
    out += [LeftOut(str(run["run_id"]), name(c, run), "no validation accuracy")
            for c in everything for run in c.runs.to_dict("records") if pd.isna(run.get("best_val_acc"))]
    return sorted(out, key=lambda item: item.label)


def left_out_runs(runs: pd.DataFrame) -> list[LeftOut]:
    """`failed_runs` of the `runs` rows of a matrix (none for no rows)."""
    return failed_runs(configurations(runs)) if len(runs) else []


def _reason(run: dict[str, Any]) -> str:
    error = run.get("error")
    first = str(error).strip().splitlines()[0] if isinstance(error, str) and error.strip() else "no error recorded"
    return f"{run.get('status')}: {first}"


def matrix_verdicts(runs: pd.DataFrame, predictions: pd.DataFrame) -> list[Verdict]:
    """Every question's verdict for the `runs` rows of one matrix and their `predictions` rows.

    `runs` needs run_id, status, spec, best_val_acc, test_acc, num_test, trainable_params (error for failed
    runs); `predictions` run_id, split, video, correct, true_class, pred_class. Failed runs and runs without
    a validation accuracy are left out of every question they belong to, and named in its `left_out`.
    """
    all_configs = configurations(runs)
    out = failed_runs(all_configs)
    excluded = {left.run_id for left in out}
    configs = {key: Config(c.config_id, c.spec, c.runs[~c.runs["run_id"].isin(excluded)].reset_index(drop=True),
                           c.failed) for key, c in all_configs.items()}
    correct = correct_by_run(predictions)
    verdicts = []
    for question in find_questions(configs):
        members = _members(question, all_configs)
        left = tuple(item for item in out if item.run_id in members)
        verdicts.append(decide(question, configs, correct, left_out=left))
    return verdicts


def _members(question: Question, configs: dict[str, Config]) -> set[str]:
    """Run ids of every configuration, with or without a successful run, that this question would hold."""
    fields = question_fields(question.kind, list(configs.values()))
    anchor = _key(configs[question.config_ids[0]].spec, fields)
    return {str(run_id) for c in configs.values() if _key(c.spec, fields) == anchor
            for run_id in [*c.runs["run_id"], *c.failed["run_id"]]}


# -- JSON -----------------------------------------------------------------------------------------


def verdicts_json(verdicts: list[Verdict], *, left_out: Sequence[LeftOut] = (),
                  matrix: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `runner verdict --json` object: {"verdicts": [...]} plus what the numbers mean."""
    return {
        **({"matrix": matrix} if matrix else {}),
        "chosen_on": CHOSEN_ON, "tie_break": TIE_BREAK, "deployment_rule": DEPLOYMENT_RULE, "alpha": ALPHA,
        "power": POWER,
        "test": "exact McNemar per seed pair, combined over seed pairs by an exact sign-flip test over the test "
                "videos; Holm-adjusted within each question",
        "verdicts": [_verdict_json(v) for v in verdicts],
        "left_out": [vars(item) for item in left_out],
    }


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    winner = verdict.winner.config
    summary = winner.test
    return {
        "question": verdict.question.title, "kind": verdict.question.kind,
        "fixed": _clean(verdict.question.fixed), "chosen_on": CHOSEN_ON, "configurations": verdict.configurations,
        "tied_on_validation_with": list(verdict.tied_on_val), "tie_settled_by": list(verdict.tie_reasons),
        "winner": {**_config_json(verdict.winner), "test_interval": [_num(summary["ci_low"]), _num(summary["ci_high"])],
                   "interval": summary["interval"]},
        "others": [_other_json(entry) for entry in verdict.others],
        "deployment_pick": _deployment_json(verdict.deployment),
        "min_detectable_difference": _num(verdict.min_detectable_difference),
        "test_videos": verdict.test_videos, "disagreement": _num(verdict.disagreement),
        "mdd_alpha": verdict.mdd_alpha, "left_out": [vars(item) for item in verdict.left_out],
    }


def _config_json(entry: Entry) -> dict[str, Any]:
    config = entry.config
    return {"config": entry.label, "config_id": config.config_id, "strategy": config.strategy,
            "val_acc": _num(config.val_acc), "test_acc": _num(config.test["mean"]), "seeds": config.seeds,
            "run_ids": [str(r) for r in config.runs["run_id"]]}


def _other_json(entry: Entry) -> dict[str, Any]:
    test = entry.test
    return {**_config_json(entry), "p": _num(test.p) if test else None, "p_holm": _num(entry.p_holm),
            "verdict": entry.verdict, "p_per_seed": list(test.p_per_seed) if test else [],
            "test_videos": test.videos if test else 0, "seed_pairs": test.seed_pairs if test else 0,
            "difference_vs_winner": _num(-test.difference) if test else None,
            "disagreement": _num(test.disagreement) if test else None}


def _deployment_json(pick: DeploymentPick) -> dict[str, Any]:
    costs = pick.entry.config.costs
    return {"config": pick.entry.label, "config_id": pick.entry.config.config_id,
            "strategy": pick.entry.config.strategy, "is_winner": pick.is_winner,
            "test_acc": _num(pick.entry.config.test["mean"]), "trainable_params": _num(costs.trainable_params),
            "release_bytes": _num(costs.release_bytes), "cpu_ms_per_clip": _num(costs.cpu_ms),
            "compared_on": list(pick.compared), "candidates": list(pick.candidates)}


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))
