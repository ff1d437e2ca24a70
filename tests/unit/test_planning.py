"""The planner against independent computations: test sets drawn with a fixed seed and tested with statsmodels'
exact McNemar, Connor's normal sample size, a brute-force validation simulation, and seeded test sets tested
with the verdict's sign-flip test; then `runner plan` end to end on a warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from runner.cli import app
from tests.support import right, simulated_power, write_scored_run
from vjepa_core.analysis.paired import mcnemar_power, paired_test, sign_flip_p
from vjepa_core.analysis.planning import (
    Assumptions,
    detectable_curve,
    measured_seed_noise,
    normal_videos,
    plan,
    validation_choice,
    videos_needed,
)
from vjepa_core.store.warehouse import Warehouse


@pytest.mark.parametrize(("difference", "disagreement", "comparisons"), [(0.10, 0.2, 5), (0.05, 0.1, 1),
                                                                          (0.10, 0.3, 1), (0.08, 0.15, 5)])
def test_videos_needed_reach_the_power_in_an_independent_simulation(difference: float, disagreement: float,
                                                                       comparisons: int) -> None:
    needed = videos_needed(difference, disagreement, comparisons=comparisons)
    alpha, draws = 0.05 / comparisons, 4000
    assert mcnemar_power(needed, disagreement, difference, alpha=alpha) >= 0.8
    assert mcnemar_power(needed - 1, disagreement, difference, alpha=alpha) < 0.8
    tolerance = 4 * np.sqrt(0.8 * 0.2 / draws)
    assert simulated_power(needed, disagreement, difference, alpha=alpha, draws=draws, seed=needed) > 0.8 - tolerance
    fewer = int(needed * 0.8)  # a fifth fewer videos fall clearly short
    assert simulated_power(fewer, disagreement, difference, alpha=alpha, draws=draws, seed=fewer) < 0.8 - tolerance
    # Connor's normal approximation of the paired test lands within a few percent of the exact count.
    assert normal_videos(difference, disagreement, comparisons=comparisons) == pytest.approx(needed, rel=0.08)


def test_the_plan_and_the_verdict_use_one_detectable_difference() -> None:
    curve = detectable_curve(0.2, 5, [54, 400])
    stated = plan(Assumptions("q", 5, 0.2, "stated", None, "unknown", test_videos=54), differences=[0.1], draws=200)
    assert stated["min_detectable_difference"] == pytest.approx(curve[0], abs=1e-3) and curve[1] < 0.08 < curve[0]
    assert stated["alpha"] == pytest.approx(0.01)
    row = stated["differences"][0]
    assert row["test_videos_needed"] == videos_needed(0.1, 0.2, comparisons=5)
    assert detectable_curve(0.5, 1, [5]) == [None]  # five videos detect nothing


def brute_force_choice(videos: int, gap: float, disagreement: float, *, draws: int, seed: int) -> tuple[float, float]:
    """Two configurations: draw validation sets as multinomial (best only right, other only right, agree)."""
    tables = np.random.default_rng(seed).multinomial(
        videos, [(disagreement + gap) / 2, (disagreement - gap) / 2, 1 - disagreement], size=draws)
    return float(np.mean(tables[:, 0] > tables[:, 1])), float(np.mean(tables[:, 0] == tables[:, 1]))


@pytest.mark.parametrize(("videos", "gap", "disagreement"), [(54, 0.05, 0.2), (300, 0.05, 0.15), (40, 0.1, 0.1)])
def test_validation_choice_of_two_is_exact(videos: int, gap: float, disagreement: float) -> None:
    exact = validation_choice(videos, gap, disagreement)
    assert exact.method == "exact"
    alone, tied = brute_force_choice(videos, gap, disagreement, draws=20_000, seed=videos)
    assert exact.alone == pytest.approx(alone, abs=0.012) and exact.tied == pytest.approx(tied, abs=0.008)
    # The probit simulation of several configurations reduces to the same law with one comparison.
    from vjepa_core.analysis.planning import _simulated_choice

    simulated = _simulated_choice(videos, gap, disagreement, comparisons=1, accuracy=0.8, draws=20_000, seed=1)
    assert simulated.alone == pytest.approx(exact.alone, abs=0.015)
    assert simulated.tied == pytest.approx(exact.tied, abs=0.01)


def test_validation_choice_of_many_is_simulated_and_said_so() -> None:
    many = validation_choice(54, 0.05, 0.2, comparisons=5, draws=4000)
    two = validation_choice(54, 0.05, 0.2)
    assert many.method == "simulated (4,000 draws, seed 0)"
    assert many.alone < two.alone  # five rivals to beat, not one
    bigger = validation_choice(300, 0.05, 0.2, comparisons=5, draws=4000)
    assert bigger.alone > many.alone and 0 <= bigger.tied < many.tied


def seeded_test_sets(videos: int, *, shared: float, noise: float, difference: float, seeds: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two configurations over `seeds` seeds: a share `shared` of videos where they differ whatever the seed
    (split to give `difference`), a share `noise` where a seed decides who is right, agreement elsewhere."""
    kind = rng.choice(3, size=videos, p=[shared, noise, 1 - shared - noise])
    favours_first = rng.random(videos) < 0.5 * (1 + difference / shared)
    first = np.ones((seeds, videos), dtype=bool)
    second = np.ones((seeds, videos), dtype=bool)
    second[:, (kind == 0) & favours_first] = False
    first[:, (kind == 0) & ~favours_first] = False
    coin = rng.random((seeds, videos)) < 0.5
    first[:, kind == 1], second[:, kind == 1] = coin[:, kind == 1], ~coin[:, kind == 1]
    return first, second


def test_seed_noise_is_measured_and_seeds_buy_what_the_plan_says() -> None:
    rng = np.random.default_rng(0)
    shared, noise, difference = 0.1, 0.1, 0.06  # half of the 20% disagreement changes from seed to seed
    tests = [paired_test(*seeded_test_sets(400, shared=shared, noise=noise, difference=difference, seeds=3, rng=rng))
             for _ in range(20)]
    assert measured_seed_noise(tests) == pytest.approx(0.5, abs=0.05)
    assert measured_seed_noise([paired_test(np.ones((1, 5), bool), np.zeros((1, 5), bool))]) is None  # one seed
    given = Assumptions("q", 1, shared + noise, "stated", 0.5, "stated")
    (row,) = plan(given, differences=[difference], seeds=[1, 3], draws=200)["differences"]
    one, three = (cell["test_videos"] for cell in row["seeds"])
    assert three < one
    # The verdict's sign-flip test over 3 seeds on that many videos reaches about 80% power.
    draws = 600
    rejected = np.mean([sign_flip_p(paired_test(*seeded_test_sets(three, shared=shared, noise=noise,
                                                                  difference=difference, seeds=3, rng=rng)).per_video)
                        < 0.05 for _ in range(draws)])
    assert rejected == pytest.approx(0.8, abs=0.07)
    unknown = plan(Assumptions("q", 1, 0.2, "stated", None, "unknown"), differences=[difference], seeds=[3], draws=200)
    (cell,) = unknown["differences"][0]["seeds"]
    assert cell["test_videos"] is None and cell["range"][0] < three < cell["range"][1] == one


def invoke(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_runner_plan_from_a_matrix_and_from_stated_assumptions(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    store = Warehouse(path)
    run_ids = [write_scored_run(store, "head", val=0.9, correct=right(range(40))),
               write_scored_run(store, "lora", val=0.8, correct=right(range(5, 44))),
               write_scored_run(store, "pooler_head", val=0.7, correct=right(range(30)))]
    store.upsert_matrix({"matrix_id": "m", "name": "study", "status": "finished", "total_runs": 3,
                         "spec": {"name": "study", "run_ids": run_ids}})
    verdict = json.loads(invoke("verdict", "--json", "--warehouse", path).output)["verdicts"][0]
    result = invoke("plan", "study", "--json", "--difference", "10", "--draws", "500", "--warehouse", path)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    (question,) = out["plans"]
    assert out["matrix"] == {"matrix_id": "m", "name": "study"}
    assert question["question"] == verdict["question"] and question["comparisons"] == 2
    assert question["disagreement"] == pytest.approx(verdict["disagreement"])
    assert question["min_detectable_difference"] == pytest.approx(verdict["min_detectable_difference"], abs=1e-3)
    assert question["test_videos"] == 54 and question["val_videos"] == 54 and question["accuracy"] == 0.9
    (row,) = question["differences"]
    assert row["test_videos_needed"] == videos_needed(0.1, verdict["disagreement"], comparisons=2)
    assert row["validation"]["method"] == "simulated (500 draws, seed 0)" and question["seed_noise"] is None
    text = invoke("plan", "--draws", "500", "--warehouse", path).output
    assert text.startswith("matrix study (m)\nWhich strategy: 2 comparison(s) against the winner (alpha 0.025)")
    assert "  5 points: test videos needed: 1 seed " in text and "  10 points: " in text

    stated = invoke("plan", "--disagreement", "0.2", "--comparisons", "5", "--test-videos", "54", "--json",
                    "--draws", "500")
    (alone,) = json.loads(stated.output)["plans"]
    assert alone["comparisons"] == 5 and alone["disagreement_from"] == "stated"
    assert [r["test_videos_needed"] for r in alone["differences"]] == [videos_needed(d, 0.2, comparisons=5)
                                                                         for d in (0.05, 0.1)]
    for bad, message in ((["--disagreement", "1.5"], "--disagreement must be a share"),
                         (["--disagreement", "0.2", "--difference", "0"], "--difference must be points"),
                         (["study", "--disagreement", "0.2", "--warehouse", str(path)], "not both"),
                         (["--comparisons", "3", "--warehouse", str(path)], "use them with --disagreement")):
        failed = invoke("plan", *bad)
        assert failed.exit_code == 2 and message in failed.output and len(failed.output.splitlines()) == 1


def test_connor_is_the_textbook_formula() -> None:
    z_a, z_b = scipy_stats.norm.ppf(0.975), scipy_stats.norm.ppf(0.8)
    assert normal_videos(0.1, 0.2) == pytest.approx((z_a * 0.2**0.5 + z_b * 0.19**0.5) ** 2 / 0.01)
