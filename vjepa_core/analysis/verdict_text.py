"""The verdict in plain sentences: one renderer for the matrix summary, `runner verdict`, the dashboard and
the model card, so that they all say the same thing.

- `verdict_sentences(verdict) -> str`: a question and its answer in two to four sentences (the winner chosen
  on validation with its test accuracy and interval; whom it beats, whom it ties with; what the test set could
  detect; runs left out); `question_text` and `answer_text` are its two halves, for a page that sets the
  question apart.
- `verdicts_text(verdicts, left_out) -> str`: every question, one paragraph each, then the runs left out of all.
- `winner_line(verdict) -> str`: one sentence, "chosen on validation among N configurations", for a card;
  `run_line(verdict, run_id)`: what the question says of one run (chosen, or who was and how it compares).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vjepa_core.analysis.costs import figures_text
from vjepa_core.analysis.paired import PairedTest
from vjepa_core.analysis.stats import ALPHA
from vjepa_core.analysis.verdict import BETTER, TIED, UNTESTED, WORSE, Entry, LeftOut, Verdict

DEPLOYMENT_PHRASE = "chosen as the cheapest configuration statistically tied with the validation winner"


def pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def p_text(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def winner_line(verdict: Verdict) -> str:
    winner = verdict.winner.config
    test = winner.test
    settled = [f"{label} ({reason})" for label, reason in zip(verdict.tied_on_val, verdict.tie_reasons, strict=True)]
    tie = f"; tied on validation with {_names(settled)}, settled for the cheaper" if settled else ""
    return (f"{verdict.winner.label}, chosen on validation among {verdict.configurations} configurations "
            f"(val {pct(winner.val_acc)}{tie}): test {pct(test['mean'])}, 95% CI {pct(test['ci_low'])} to "
            f"{pct(test['ci_high'])} ({test['interval']}).")


def run_line(verdict: Verdict, run_id: str) -> str:
    """What the verdict says of one run's configuration: the winner line if it was chosen, else who was chosen
    and how this one compares (a model card states both)."""
    if run_id in set(verdict.winner.config.runs["run_id"].astype(str)):
        return f"{question_text(verdict)} {winner_line(verdict)}"
    (entry,) = [e for e in verdict.others if run_id in set(e.config.runs["run_id"].astype(str))]
    against = {WORSE: "worse than it", BETTER: "better than it on test", TIED: "tied with it",
               UNTESTED: "not tested against it"}[entry.verdict]
    held = f" (Holm p = {p_text(entry.p_holm)})" if entry.verdict != UNTESTED else ""
    return (f"{question_text(verdict)} Not this configuration ({entry.label}, test {pct(entry.config.test['mean'])}): "
            f"{winner_line(verdict)} This one is {against}{held}.")


def question_text(verdict: Verdict) -> str:
    """'Which strategy at 10/class on tiny-jepa?'"""
    title = verdict.question.title
    return f"{title[0].upper()}{title[1:]}?"


def verdict_sentences(verdict: Verdict) -> str:
    return f"{question_text(verdict)} {answer_text(verdict)}"


def answer_text(verdict: Verdict) -> str:
    """The answer after the question: the winner, whom it beats and ties with, what could be detected."""
    parts = [winner_line(verdict)]
    worse = [e for e in verdict.others if e.verdict == WORSE]
    tied = [e for e in verdict.others if e.verdict == TIED]
    if worse:
        parts.append(f"It beats {_list(worse)}.")
    if tied:
        parts.append(f"It ties with {_list(tied)}.")
    for entry in (e for e in verdict.others if e.verdict == BETTER):
        parts.append(f"Validation and test disagree: {entry.label} did better on test "
                     f"({pct(entry.config.test['mean'])}, Holm p = {p_text(entry.p_holm)}).")
    untested = [e.label for e in verdict.others if e.verdict == UNTESTED]
    if untested:
        parts.append(f"Not tested (no seed or test video in common): {_names(untested)}.")
    parts.append(_detectable(verdict))
    parts.append(deployment_line(verdict))
    if verdict.left_out:
        parts.append("Left out: " + "; ".join(_left(item) for item in verdict.left_out) + ".")
    return " ".join(part for part in parts if part)


def deployment_line(verdict: Verdict) -> str:
    """The deployment pick in one sentence, with the figures it was chosen on."""
    pick = verdict.deployment
    figures = figures_text(pick.entry.config.costs)
    if len(pick.candidates) == 1:
        return f"Deployment pick: {pick.entry.label}, the winner ({figures}): nothing is statistically tied with it."
    who = f"{pick.entry.label}, the winner itself" if pick.is_winner else pick.entry.label
    return (f"Deployment pick: {who} ({figures}), {DEPLOYMENT_PHRASE} (among {_names(pick.candidates)}).")


def verdicts_text(verdicts: Sequence[Verdict], left_out: Sequence[LeftOut] = ()) -> str:
    """Every question, a paragraph each; then the `left_out` runs no question names (a configuration with no
    successful run has no question to be left out of, but the reader must still hear of it)."""
    rest = left_out_of_all(verdicts, left_out)
    return "\n\n".join([*(verdict_sentences(v) for v in verdicts), *([left_out_sentence(rest)] if rest else [])])


def left_out_of_all(verdicts: Sequence[Verdict], left_out: Sequence[LeftOut]) -> list[LeftOut]:
    """The `left_out` runs that no question names."""
    named = {item.run_id for verdict in verdicts for item in verdict.left_out}
    return [item for item in left_out if item.run_id not in named]


def left_out_sentence(items: Sequence[LeftOut]) -> str:
    return "Left out of every question: " + "; ".join(_left(item) for item in items) + "."


def _left(item: LeftOut) -> str:
    return f"{item.label} ({item.reason})"


def _list(entries: list[Entry]) -> str:
    return _names([f"{e.label} ({pct(e.config.test['mean'])}, Holm p = {p_text(e.p_holm)})" for e in entries])


def _names(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _detectable(verdict: Verdict) -> str:
    if verdict.test_videos == 0:
        return ""
    alpha = f"alpha {verdict.mdd_alpha:.2g}" + (f" = 0.05/{len(verdict.others)}" if len(verdict.others) > 1 else "")
    how = f"80% power, {alpha}, disagreement {pct(verdict.disagreement)}"
    if verdict.min_detectable_difference is None:
        return f"These {verdict.test_videos} test videos are too few to detect any difference ({how})."
    return (f"On {verdict.test_videos} test videos, differences under {100 * verdict.min_detectable_difference:.1f} "
            f"points were not detectable ({how}).")


def which_test(test: PairedTest) -> str:
    """Which exact test gave `test.p`: McNemar for one seed pair, the sign-flip test over videos for more."""
    return "exact McNemar" if test.seed_pairs == 1 else f"exact sign-flip over videos, {test.seed_pairs} seed pairs"


def comparison_line(test: PairedTest, first: str, second: str, interval: tuple[float, float]) -> str:
    """`runner compare` and the Compare page: second vs first, with the verdict's paired test (`interval`:
    `paired.difference_interval`, of first minus second)."""
    call = "a real difference" if test.p < ALPHA else "within noise"
    low, high = -100 * interval[1] + 0.0, -100 * interval[0] + 0.0  # + 0.0: no '-0.0'
    return (f"{second} vs {first}: {-100 * test.difference + 0.0:+.1f} points on {test.videos} shared videos, 95% CI "
            f"[{low:+.1f}, {high:+.1f}] (bootstrap over videos), p = {p_text(test.p)} ({which_test(test)}): {call}")


def seed_pair_line(test: PairedTest, index: int, first: str, second: str) -> str:
    """What seed pair `index` of `test` says: its discordant videos and its own exact McNemar p."""
    return (f"{test.only_first[index]} videos only {first} got right, {test.only_second[index]} only {second} "
            f"(exact McNemar p = {p_text(test.p_per_seed[index])})")
